"""What each source table's rows look like, and which columns are personal.

Each table has a pydantic model of its columns as the data contract defines them, so a
row with a wrong type is refused with a message that names the column. Splitting a row
separates what may leave ingest (attributes) from what stays in the vault (personal).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.events import Scalar
from shared.inbound import RECORD_KEYS

PERSONAL_COLUMNS = frozenset(
    {
        "given_name",
        "family_name",
        "date_of_birth",
        "address_line_1",
        "address_line_2",
        "address_line_3",
        "town",
        "postcode",
        "uprn",
    }
)


class Row(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Resident(Row):
    person_ref: str = Field(min_length=1, max_length=32)
    given_name: str | None = None
    family_name: str | None = None
    date_of_birth: date | None = None
    address_line_1: str | None = None
    address_line_2: str | None = None
    address_line_3: str | None = None
    town: str | None = None
    postcode: str | None = None
    uprn: str | None = None
    ward: str | None = None
    sex: Literal["female", "male", "unknown"] = "unknown"
    ethnicity: str | None = None
    preferred_language: str | None = Field(None, max_length=8)
    lives_alone: bool | None = None
    deceased_date: date | None = None


class Tenancy(Row):
    tenancy_ref: str
    person_ref: str
    tenure_type: Literal[
        "secure", "introductory", "temporary_accommodation", "private_rented_sector_lease"
    ]
    start_date: date | None = None
    end_date: date | None = None
    household_size: int | None = Field(None, ge=0, le=30)
    bedrooms: int | None = Field(None, ge=0, le=20)


class RentAccount(Row):
    tenancy_ref: str
    balance_pence: int | None = None
    weeks_in_arrears: float | None = Field(None, ge=0)
    last_payment_date: date | None = None
    nosp_served: bool | None = None
    eviction_date: date | None = None


class CouncilTaxAccount(Row):
    account_ref: str
    person_ref: str
    arrears_pence: int | None = Field(None, ge=0)
    single_person_discount: bool | None = None
    reduction_award_pence: int | None = Field(None, ge=0)
    enforcement_stage: Literal[
        "none", "reminder", "summons", "liability_order", "enforcement_agent"
    ] = "none"


class BenefitClaim(Row):
    claim_ref: str
    person_ref: str
    benefit_type: Literal[
        "housing_benefit",
        "universal_credit_housing",
        "pension_credit",
        "discretionary_housing_payment",
    ]
    status: Literal["active", "suspended", "ended"]
    weekly_amount_pence: int | None = Field(None, ge=0)
    benefit_cap_applied: bool | None = None


class SocialCareContact(Row):
    contact_id: str
    person_ref: str
    contact_date: date
    reason: Literal[
        "fall", "self_neglect", "carer_breakdown", "mobility", "information_advice", "other"
    ]
    outcome: Literal["no_further_action", "assessment", "service_provided", "signposted"] | None = (
        None
    )


class CarePackage(Row):
    package_id: str
    person_ref: str
    service_type: Literal["home_care", "reablement", "telecare", "day_care"]
    hours_per_week: float | None = Field(None, ge=0, le=168)
    start_date: date | None = None
    end_date: date | None = None


class AmbulanceCallout(Row):
    incident_id: str
    person_ref: str
    incident_at: datetime
    category: Literal["fall_not_conveyed", "fall_conveyed", "breathing", "other"]


class HospitalDischarge(Row):
    spell_id: str
    person_ref: str
    admitted_on: date
    discharged_on: date
    reason: Literal["fall_injury", "frailty_related", "respiratory", "other"]
    destination: Literal["usual_residence", "care_home", "temporary_residence", "died"]


ROW_MODELS: dict[str, type[Row]] = {
    "people.residents": Resident,
    "housing.tenancies": Tenancy,
    "housing.rent_accounts": RentAccount,
    "revenues.council_tax_accounts": CouncilTaxAccount,
    "benefits.claims": BenefitClaim,
    "social_care.contacts": SocialCareContact,
    "social_care.care_packages": CarePackage,
    "health.ambulance_callouts": AmbulanceCallout,
    "health.hospital_discharges": HospitalDischarge,
}


class InvalidRow(ValueError):
    """A row that does not match its table's contract; the message names the columns."""


def validate_row(table: str, record: dict[str, Scalar]) -> Row:
    model = ROW_MODELS[table]
    try:
        return model.model_validate(record)
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'record'}: {e['msg']}" for e in error.errors()
        )
        raise InvalidRow(f"{table} row is not valid: {problems}") from error


def validate_key_only(table: str, record: dict[str, Scalar]) -> str:
    """A delete may carry only the row's key; return it or say which column is missing."""
    key_column = RECORD_KEYS[table]
    key = record.get(key_column)
    if not isinstance(key, str) or not key:
        raise InvalidRow(f"{table} delete needs its key column '{key_column}'")
    return key


def years_between(born: date, on: date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def non_personal_attributes(row: Row, on: date) -> dict[str, Scalar]:
    """The columns that may leave ingest. Dates of birth become age in whole years, a
    death date becomes a flag, and the person reference is replaced by resident_key."""
    attributes: dict[str, Scalar] = {}
    for column, value in row.model_dump(mode="json").items():
        if column in PERSONAL_COLUMNS or column == "person_ref" or column == "deceased_date":
            continue
        attributes[column] = value
    if isinstance(row, Resident):
        if row.date_of_birth is not None:
            attributes["age_years"] = years_between(row.date_of_birth, on)
        attributes["deceased"] = row.deceased_date is not None
    return attributes
