"""The one feature vector every model reads, computed from a resident's state.

Training calls `feature_vector` on states folded from the synthetic borough; the worker
calls it on states folded from `resident.events.v1`. Same code, same numbers.

Every feature is an input a council can justify (FACTS.md: minimise inputs and justify
each one). Ethnicity, sex and ward are deliberately absent: they are kept only to
monitor fairness. Counts look back 12 months from `as_of`, which by default is the time
of the latest change applied to the resident, not the wall clock, so that a replay of the
same events gives the same features.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from scoring.domain.state import ResidentState
from shared.events import ResidentFlag, Scalar

DAY = 86_400.0
WINDOW_DAYS = 365.0
YEAR_DAYS = 365.25


@dataclass(frozen=True)
class Feature:
    name: str
    source_table: str
    columns: tuple[str, ...]


FEATURES: tuple[Feature, ...] = (
    Feature("age_years", "people.residents", ("date_of_birth",)),
    Feature("age_80_plus", "people.residents", ("date_of_birth",)),
    Feature("lives_alone", "people.residents", ("lives_alone",)),
    Feature("falls_reported_12m", "social_care.contacts", ("reason", "contact_date")),
    Feature(
        "ambulance_fall_callouts_12m", "health.ambulance_callouts", ("category", "incident_at")
    ),
    Feature(
        "fall_injury_admissions_12m", "health.hospital_discharges", ("reason", "discharged_on")
    ),
    Feature("frailty_admissions_12m", "health.hospital_discharges", ("reason", "discharged_on")),
    Feature("other_admissions_12m", "health.hospital_discharges", ("reason", "discharged_on")),
    Feature("care_concern_contacts_12m", "social_care.contacts", ("reason", "contact_date")),
    Feature(
        "care_hours_per_week",
        "social_care.care_packages",
        ("hours_per_week", "start_date", "end_date"),
    ),
    Feature(
        "has_telecare", "social_care.care_packages", ("service_type", "start_date", "end_date")
    ),
    Feature("rent_weeks_in_arrears", "housing.rent_accounts", ("weeks_in_arrears",)),
    Feature("possession_notice_served", "housing.rent_accounts", ("nosp_served",)),
    Feature("eviction_date_set", "housing.rent_accounts", ("eviction_date",)),
    Feature("temporary_accommodation", "housing.tenancies", ("tenure_type", "end_date")),
    Feature("overcrowded", "housing.tenancies", ("household_size", "bedrooms", "end_date")),
    Feature("council_tax_arrears_hundreds", "revenues.council_tax_accounts", ("arrears_pence",)),
    Feature(
        "council_tax_enforcement_stage", "revenues.council_tax_accounts", ("enforcement_stage",)
    ),
    Feature("benefit_cap_applied", "benefits.claims", ("benefit_cap_applied", "status")),
    Feature("benefit_suspended", "benefits.claims", ("status",)),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
FEATURE_COUNT = len(FEATURES)

ENFORCEMENT_STAGES = ("none", "reminder", "summons", "liability_order", "enforcement_agent")
TEMPORARY_TENURES = frozenset({"temporary_accommodation", "private_rented_sector_lease"})
CARE_CONCERNS = frozenset({"mobility", "self_neglect", "carer_breakdown"})
# Caps keep a handful of extreme values from dominating a linear model.
COUNT_CAP = 5.0


def _epoch_seconds(value: Scalar, *, timestamp: bool = False) -> float | None:
    """A date or timestamp column as seconds since the epoch.

    Native events carry ISO strings; Debezium sends a `date` as days since 1970-01-01 and a
    `timestamp` as microseconds, and ingest may pass either through.
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) / 1e6 if timestamp else float(value) * DAY
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), datetime.min.time(), UTC).timestamp()
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _number(value: Scalar, default: float = 0.0) -> float:
    """Numbers may arrive as strings (Debezium's `decimal.handling.mode=string`)."""
    if value is None or isinstance(value, bool):
        return float(value) if isinstance(value, bool) else default
    try:
        return float(value)
    except ValueError:
        return default


def _truthy(value: Scalar) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in {"true", "t", "1", "yes", "y"}
    return bool(value)


def resident_row(state: ResidentState) -> dict[str, Scalar] | None:
    rows = state.live_rows("people.residents")
    return rows[0] if rows else None


def is_deceased(state: ResidentState) -> bool:
    row = resident_row(state)
    return row is not None and (
        _truthy(row.get("deceased")) or row.get("deceased_date") is not None
    )


def can_be_scored(state: ResidentState) -> bool:
    """Only a resident whose index record is known (age, and not deceased) is scored."""
    row = resident_row(state)
    return row is not None and row.get("age_years") is not None and not is_deceased(state)


# How long a social care contact that led to an assessment keeps a case open.
OPEN_ASSESSMENT_DAYS = 90.0
# Packages that mean a worker is actively involved now; long-term home care and telecare
# are services the resident receives, not an open piece of casework.
CASEWORK_PACKAGES = frozenset({"reablement"})


def source_flags(state: ResidentState) -> list[ResidentFlag]:
    """What the source systems say that stops outreach, for `resident.flags.v1`:

    - `deceased`: the resident index has a date of death, or a hospital stay ended in death;
    - `open_case`: social care is already working with the resident: a contact that led to
      an assessment in the last 90 days, or a reablement package running now.

    Judged at the time of the latest change applied (as the features are), so that a
    replay of the same events gives the same flags."""
    now = state.latest
    flags: list[ResidentFlag] = []
    died_in_hospital = any(
        row.get("destination") == "died" for row in state.live_rows("health.hospital_discharges")
    )
    if is_deceased(state) or died_in_hospital:
        flags.append("deceased")
    assessing = any(
        row.get("outcome") == "assessment"
        and (moment := _epoch_seconds(row.get("contact_date"))) is not None
        and now - OPEN_ASSESSMENT_DAYS * DAY <= moment <= now + DAY
        for row in state.live_rows("social_care.contacts")
    )
    casework = False
    for row in state.live_rows("social_care.care_packages"):
        started = _epoch_seconds(row.get("start_date"))
        ended = _epoch_seconds(row.get("end_date"))
        running = (started is None or started <= now + DAY) and (ended is None or ended >= now)
        casework = casework or (running and row.get("service_type") in CASEWORK_PACKAGES)
    if assessing or casework:
        flags.append("open_case")
    return flags


def _whole_years_since_resident_row(state: ResidentState, now: float) -> int:
    """Ingest gives the age on the day the resident row last changed; a row unchanged for
    years would otherwise make a resident look years younger than they are."""
    for slot, row in state.rows.items():
        if slot.startswith("people.residents/") and not row.deleted:
            return max(0, int((now - row.occurred_at) // (YEAR_DAYS * DAY)))
    return 0


def feature_vector(state: ResidentState, as_of: float | None = None) -> np.ndarray:
    """The features, float32, in the order of `FEATURE_NAMES`."""
    now = state.latest if as_of is None else as_of
    since = now - WINDOW_DAYS * DAY

    def recent(moment: float | None) -> bool:
        return moment is not None and since <= moment <= now + DAY

    person = resident_row(state) or {}
    age = _number(person.get("age_years")) + _whole_years_since_resident_row(state, now)

    falls = concerns = 0
    for row in state.live_rows("social_care.contacts"):
        if recent(_epoch_seconds(row.get("contact_date"))):
            falls += row.get("reason") == "fall"
            concerns += row.get("reason") in CARE_CONCERNS

    fall_callouts = sum(
        1
        for row in state.live_rows("health.ambulance_callouts")
        if str(row.get("category", "")).startswith("fall")
        and recent(_epoch_seconds(row.get("incident_at"), timestamp=True))
    )

    admissions = {"fall_injury": 0, "frailty_related": 0, "other": 0}
    for row in state.live_rows("health.hospital_discharges"):
        if recent(_epoch_seconds(row.get("discharged_on"))):
            reason = str(row.get("reason"))
            admissions[reason if reason in admissions else "other"] += 1

    care_hours = 0.0
    telecare = False
    for row in state.live_rows("social_care.care_packages"):
        started = _epoch_seconds(row.get("start_date"))
        ended = _epoch_seconds(row.get("end_date"))
        if (started is None or started <= now + DAY) and (ended is None or ended >= now):
            care_hours += _number(row.get("hours_per_week"))
            telecare = telecare or row.get("service_type") == "telecare"

    weeks = 0.0
    nosp = eviction = False
    for row in state.live_rows("housing.rent_accounts"):
        weeks = max(weeks, _number(row.get("weeks_in_arrears")))
        nosp = nosp or _truthy(row.get("nosp_served"))
        eviction = eviction or row.get("eviction_date") is not None

    temporary = overcrowded = False
    for row in state.live_rows("housing.tenancies"):
        ended = _epoch_seconds(row.get("end_date"))
        if ended is not None and ended < now:
            continue
        temporary = temporary or row.get("tenure_type") in TEMPORARY_TENURES
        household = _number(row.get("household_size"))
        bedrooms = _number(row.get("bedrooms"), default=household)
        overcrowded = overcrowded or household - 2 * bedrooms > 0

    ct_arrears = 0.0
    stage = 0
    for row in state.live_rows("revenues.council_tax_accounts"):
        ct_arrears += max(0.0, _number(row.get("arrears_pence")))
        reached = row.get("enforcement_stage")
        if reached in ENFORCEMENT_STAGES:
            stage = max(stage, ENFORCEMENT_STAGES.index(str(reached)))

    cap = suspended = False
    for row in state.live_rows("benefits.claims"):
        if row.get("status") == "ended":
            continue
        cap = cap or _truthy(row.get("benefit_cap_applied"))
        suspended = suspended or row.get("status") == "suspended"

    return np.array(
        [
            age,
            float(age >= 80),
            float(_truthy(person.get("lives_alone"))),
            min(falls, COUNT_CAP),
            min(fall_callouts, COUNT_CAP),
            min(admissions["fall_injury"], COUNT_CAP),
            min(admissions["frailty_related"], COUNT_CAP),
            min(admissions["other"], COUNT_CAP),
            min(concerns, COUNT_CAP),
            min(care_hours, 40.0),
            float(telecare),
            min(weeks, 52.0),
            float(nosp),
            float(eviction),
            float(temporary),
            float(overcrowded),
            min(ct_arrears / 10_000, 30.0),
            float(stage),
            float(cap),
            float(suspended),
        ],
        dtype=np.float32,
    )


def feature_hash(vector: np.ndarray) -> str:
    """sha256 of the little-endian float32 bytes: what the model saw, without showing it."""
    return hashlib.sha256(np.ascontiguousarray(vector, dtype="<f4").tobytes()).hexdigest()
