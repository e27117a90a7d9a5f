"""The native event a council system posts to ingest's `POST /v1/events`.

It is the contract between source systems and ingest, so the simulator and the tests
build events with the same model ingest validates against. `record` holds the row's
columns exactly as the data contract names them (dates as ISO `YYYY-MM-DD` strings).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.events import Scalar

SourceTable = Literal[
    "people.residents",
    "housing.tenancies",
    "housing.rent_accounts",
    "revenues.council_tax_accounts",
    "benefits.claims",
    "social_care.contacts",
    "social_care.care_packages",
    "health.ambulance_callouts",
    "health.hospital_discharges",
]

# The natural key of each table in the council's data contract (ingest's mapping.yaml is
# what ingest itself reads; the simulator and training use these).
RECORD_KEYS: dict[str, str] = {
    "people.residents": "person_ref",
    "housing.tenancies": "tenancy_ref",
    "housing.rent_accounts": "tenancy_ref",
    "revenues.council_tax_accounts": "account_ref",
    "benefits.claims": "claim_ref",
    "social_care.contacts": "contact_id",
    "social_care.care_packages": "package_id",
    "health.ambulance_callouts": "incident_id",
    "health.hospital_discharges": "spell_id",
}


class SourceChange(BaseModel):
    """One change to one row of a source table."""

    model_config = ConfigDict(extra="forbid")

    source_event_id: str = Field(
        min_length=1,
        max_length=128,
        description="Unique within the sending system; redelivery-safe",
    )
    table: str = Field(
        pattern=r"^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$",
        description="`<schema>.<table>`, one of the tables ingest's mapping accepts",
        examples=["housing.rent_accounts"],
    )
    op: Literal["upsert", "delete"] = "upsert"
    occurred_at: datetime
    record: dict[str, Scalar]


class SourceChangeBatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    events: list[SourceChange] = Field(min_length=1, max_length=1000)
