"""The event contracts that travel between services, one pydantic model per event.

Every event carries the same envelope. Events are named as past-tense facts. Within a
topic version only additive changes are allowed; `schema_version` says which shape a
producer wrote so that a consumer can refuse one it does not know.

No model here has a field for a name, an address, a postcode or a date of birth: those
stay in ingest's identity vault.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

SCHEMA_VERSION = 1

Scalar = str | int | float | bool | None
ModelName = Literal["falls", "homelessness", "frailty"]
Band = Literal["low", "medium", "high"]
TaskStatus = Literal[
    "proposed",
    "held_for_capacity",
    "approved",
    "rejected",
    "letter_sent",
    "contacted",
    "support_offered",
    "declined",
    "no_response",
    "closed",
]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields every event on every topic carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    schema_version: int = SCHEMA_VERSION
    occurred_at: datetime
    produced_at: datetime = Field(default_factory=utc_now)
    resident_key: str = Field(pattern=r"^r_[0-9a-f]{32}$")
    source: str = Field(min_length=1, max_length=64)


class ResidentEventRecorded(Envelope):
    """A change to one row of a council source table, with personal data removed."""

    event_type: Literal["ResidentEventRecorded"] = "ResidentEventRecorded"
    table: str = Field(description="Source table, `<schema>.<table>`, e.g. housing.rent_accounts")
    record_key: str = Field(description="The row's natural key (a council reference)")
    change: Literal["upsert", "delete"]
    attributes: dict[str, Scalar] = Field(default_factory=dict)
    age_band: str | None = None
    ward: str | None = None


class Reason(BaseModel):
    """One feature's part in a score, in words a resident or officer can read."""

    model_config = ConfigDict(frozen=True)

    feature: str
    text: str
    contribution: float
    source_table: str


class RiskScored(Envelope):
    """A model's explained score for one resident."""

    event_type: Literal["RiskScored"] = "RiskScored"
    model: ModelName
    model_version: str
    probability: float = Field(ge=0.0, le=1.0)
    band: Band
    reasons: list[Reason] = Field(max_length=3)
    feature_hash: str
    triggered_by: uuid.UUID
    age_band: str | None = None
    ward: str | None = None
    # For fairness monitoring only (never a model input, never shown to an officer).
    sex: str | None = None
    ethnicity: str | None = None


class TaskChanged(Envelope):
    """An outreach task was created or moved along its lifecycle."""

    event_type: Literal["TaskCreated", "TaskApproved", "TaskStatusChanged"]
    task_id: uuid.UUID
    status: TaskStatus
    models: list[ModelName]
    reasons: list[Reason]
    team: str
    policy_version: str
    due_by: date | None = None
    actor: str = Field(
        description="Who made the change: an officer id, `policy` or `simulated-officer`"
    )
    reason: str | None = Field(
        None, description="Why, in plain words (a rejection, a closure); never personal"
    )


class LetterSent(Envelope):
    """A letter or officer notification left the platform (or failed to)."""

    event_type: Literal["LetterSent", "OfficerNotified", "DeliveryFailed"]
    task_id: uuid.UUID
    channel: Literal["pdf", "govuk_notify", "webhook"]
    status: str
    reference: str = Field(description="Our reference printed on the letter; never personal")
    reason: str | None = Field(None, description="Why a delivery failed or was cancelled")


class ResidentOptedOut(Envelope):
    """A resident asked not to be contacted (or to have their data left out)."""

    event_type: Literal["ResidentOptedOut"] = "ResidentOptedOut"
    scope: Literal["contact", "all"] = "contact"


ResidentFlag = Literal["deceased", "open_case"]


class ResidentFlagsChanged(Envelope):
    """What the source systems now say about a resident that stops outreach, published by
    scoring (which holds each resident's state) whenever it changes: `deceased` when the
    resident index has a date of death or a hospital discharge ended in death; `open_case`
    while social care is already working with them (an active care package, or a contact
    that led to an assessment in the last 90 days). `flags` holds every flag now set; an
    empty list clears them. The `basis` names the source tables, never their values."""

    event_type: Literal["ResidentFlagsChanged"] = "ResidentFlagsChanged"
    flags: list[ResidentFlag] = Field(default_factory=list)
    basis: list[str] = Field(
        default_factory=list, description="Source tables the flags were derived from"
    )


class EventRejected(BaseModel):
    """Why ingest refused an inbound change. Holds no personal data, only the reason."""

    model_config = ConfigDict(frozen=True)

    event_type: Literal["EventRejected"] = "EventRejected"
    event_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    rejected_at: datetime = Field(default_factory=utc_now)
    source: str
    channel: Literal["http", "cdc-http", "cdc-kafka"]
    reason: str
    source_event_id: str | None = None


AnyEvent = Annotated[
    ResidentEventRecorded
    | RiskScored
    | TaskChanged
    | LetterSent
    | ResidentOptedOut
    | ResidentFlagsChanged,
    Field(discriminator="event_type"),
]
any_event_adapter: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)

EVENT_MODELS: dict[str, type[BaseModel]] = {
    "resident.events.v1": ResidentEventRecorded,
    "risk.scores.v1": RiskScored,
    "risk.scores.shadow.v1": RiskScored,
    "outreach.tasks.v1": TaskChanged,
    "notify.deliveries.v1": LetterSent,
    "resident.optouts.v1": ResidentOptedOut,
    "resident.flags.v1": ResidentFlagsChanged,
    "ingest.rejected.v1": EventRejected,
}


def json_schemas() -> dict[str, dict[str, object]]:
    """JSON Schema of every topic's event model, keyed by topic name."""
    return {topic: model.model_json_schema() for topic, model in EVENT_MODELS.items()}
