from datetime import date

import pytest

from ingest.domain.records import (
    InvalidRow,
    non_personal_attributes,
    validate_key_only,
    validate_row,
)

pytestmark = pytest.mark.unit

RESIDENT = {
    "person_ref": "P0001234",
    "given_name": "Ada",
    "family_name": "Example",
    "date_of_birth": "1944-06-30",
    "address_line_1": "1 Test Street",
    "town": "Barking",
    "postcode": "IG11 7AA",
    "uprn": "100000000001",
    "ward": "Abbey",
    "sex": "female",
    "ethnicity": "white",
    "preferred_language": "en",
    "lives_alone": True,
    "deceased_date": None,
}


def test_a_resident_row_leaves_ingest_without_any_personal_column():
    row = validate_row("people.residents", RESIDENT)
    attributes = non_personal_attributes(row, date(2026, 11, 1))
    for personal in (
        "given_name",
        "family_name",
        "date_of_birth",
        "postcode",
        "uprn",
        "address_line_1",
        "town",
        "person_ref",
    ):
        assert personal not in attributes
    assert "Ada" not in str(attributes) and "IG11" not in str(attributes)
    assert attributes["age_years"] == 82
    assert attributes["ward"] == "Abbey"
    assert attributes["deceased"] is False


def test_age_is_counted_in_whole_years_before_the_birthday():
    row = validate_row("people.residents", RESIDENT)
    assert non_personal_attributes(row, date(2026, 6, 29))["age_years"] == 81
    assert non_personal_attributes(row, date(2026, 6, 30))["age_years"] == 82


def test_a_death_date_becomes_a_flag_and_not_a_date():
    row = validate_row("people.residents", {**RESIDENT, "deceased_date": "2026-10-01"})
    attributes = non_personal_attributes(row, date(2026, 11, 1))
    assert attributes["deceased"] is True
    assert "deceased_date" not in attributes


def test_a_wrongly_typed_column_is_refused_with_its_name():
    with pytest.raises(InvalidRow, match="balance_pence"):
        validate_row("housing.rent_accounts", {"tenancy_ref": "T1", "balance_pence": "lots"})


def test_an_unknown_column_is_refused_so_nothing_personal_slips_through_unnoticed():
    with pytest.raises(InvalidRow, match="nickname"):
        validate_row("people.residents", {**RESIDENT, "nickname": "Ade"})


def test_a_delete_needs_only_its_key_column():
    assert validate_key_only("social_care.care_packages", {"package_id": "CP-1"}) == "CP-1"
    with pytest.raises(InvalidRow, match="package_id"):
        validate_key_only("social_care.care_packages", {"person_ref": "P1"})
