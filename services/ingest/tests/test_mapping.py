from datetime import date
from pathlib import Path

import pytest

from ingest.domain.mapping import InvalidRow, load_mapping

pytestmark = pytest.mark.unit
MAPPING = load_mapping()

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


def attributes(record: dict, on: date = date(2026, 11, 1)) -> dict:
    return MAPPING.public_attributes(
        "people.residents", MAPPING.validate_row("people.residents", record), on
    )


def test_the_mapping_covers_every_table_of_the_data_contract():
    assert set(MAPPING.tables) == {
        "people.residents", "housing.tenancies", "housing.rent_accounts",
        "revenues.council_tax_accounts", "benefits.claims", "social_care.contacts",
        "social_care.care_packages", "health.ambulance_callouts", "health.hospital_discharges",
    }  # fmt: skip


def test_a_resident_row_leaves_ingest_without_any_personal_column():
    published = attributes(RESIDENT)
    for personal in ("given_name", "family_name", "date_of_birth", "postcode", "uprn",
                     "address_line_1", "town", "person_ref", "deceased_date"):  # fmt: skip
        assert personal not in published
    assert "Ada" not in str(published)
    assert "IG11" not in str(published)
    assert published["ward"] == "Abbey"
    assert published["ethnicity"] == "white"  # for fairness monitoring only


def test_age_is_counted_in_whole_years_before_the_birthday():
    assert attributes(RESIDENT, date(2026, 6, 29))["age_years"] == 81
    assert attributes(RESIDENT, date(2026, 6, 30))["age_years"] == 82


def test_a_death_date_becomes_a_flag_and_not_a_date():
    published = attributes({**RESIDENT, "deceased_date": "2026-10-01"})
    assert published["deceased"] is True
    assert "2026-10-01" not in str(published)


def test_a_wrongly_typed_column_is_refused_with_its_name():
    with pytest.raises(InvalidRow, match="balance_pence"):
        MAPPING.validate_row(
            "housing.rent_accounts", {"tenancy_ref": "T1", "balance_pence": "lots"}
        )


def test_a_numeric_sent_as_a_string_is_read_as_a_number():
    row = MAPPING.validate_row(
        "housing.rent_accounts", {"tenancy_ref": "T1", "weeks_in_arrears": "6.5"}
    )
    assert row["weeks_in_arrears"] == 6.5


def test_an_unknown_column_is_refused_so_nothing_personal_slips_through_unnoticed():
    with pytest.raises(InvalidRow, match="nickname"):
        MAPPING.validate_row("people.residents", {**RESIDENT, "nickname": "Ade"})


def test_an_unknown_table_is_refused_by_name():
    with pytest.raises(InvalidRow, match=r"unknown table `housing\.boats`"):
        MAPPING.validate_row("housing.boats", {})


def test_a_delete_needs_only_its_key_columns():
    assert MAPPING.validate_key("social_care.care_packages", {"package_id": "CP-1"}) == "CP-1"
    with pytest.raises(InvalidRow, match="package_id"):
        MAPPING.validate_key("social_care.care_packages", {"person_ref": "P1"})


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            "version: 1\ntables:\n  a.b:\n    key: [x]\n    columns: {x: {type: text}}\n",
            "exactly one",
        ),
        (
            "version: 1\ntables:\n  a.b:\n    key: [y]\n    person: x\n    columns: {x: {type: text}}\n",
            "not among the columns",
        ),
        (
            "version: 1\ntables:\n  a.b:\n    key: [x]\n    link: c.d\n    columns: {x: {type: text}}\n",
            "link `c.d`",
        ),
        (
            "version: 1\ntables:\n  a.b:\n    key: [x]\n    person: x\n    columns: {x: {type: blob}}\n",
            "type",
        ),
    ],
)
def test_a_mapping_with_a_mistake_stops_start_up_with_its_file_and_fault(
    tmp_path: Path, broken, message
):
    path = tmp_path / "mapping.yaml"
    path.write_text(broken)
    with pytest.raises(ValueError, match=r"mapping\.yaml is not valid") as error:
        load_mapping(path)
    assert message in str(error.value)
