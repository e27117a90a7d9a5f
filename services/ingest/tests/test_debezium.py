import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.domain.debezium import InvalidCdc, change_from_envelope, unwrap
from ingest.domain.mapping import InvalidRow, load_mapping
from ingest.handlers import changes_from_cdc

pytestmark = pytest.mark.unit
MAPPING = load_mapping()
SAMPLES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "debezium-samples"


def sample(name: str) -> dict:
    path = SAMPLES / f"{name}.json"
    return json.loads(path.read_text())


def test_a_wrapped_create_is_unwrapped_and_its_microsecond_timestamp_decoded():
    change = change_from_envelope(unwrap(sample("ambulance_callout_create_with_schema")), MAPPING)
    assert change.table == "health.ambulance_callouts"
    assert change.op == "upsert"
    assert change.record["incident_at"] == "2025-11-25T09:02:00+00:00"
    assert change.occurred_at == datetime(2025, 11, 25, 9, 2, 5, tzinfo=UTC)


def test_an_update_decodes_epoch_days_and_string_numerics():
    change = change_from_envelope(unwrap(sample("rent_account_update")), MAPPING)
    assert change.record["last_payment_date"] == "2025-09-20"
    row = MAPPING.validate_row(change.table, change.record)
    assert row["weeks_in_arrears"] == 6.5


def test_a_delete_carries_only_its_key_from_before():
    change = change_from_envelope(unwrap(sample("care_package_delete")), MAPPING)
    assert change.op == "delete"
    assert change.record == {"package_id": "CP-20931"}


def test_the_same_change_redelivered_gets_the_same_source_event_id():
    first = change_from_envelope(unwrap(sample("rent_account_update")), MAPPING)
    again = change_from_envelope(unwrap(sample("rent_account_update")), MAPPING)
    assert first.source_event_id == again.source_event_id
    assert "24023128" in first.source_event_id  # the log position


def test_tombstones_are_skipped_and_bad_records_refused_with_reasons():
    records = [
        sample("rent_account_update"),
        None,
        {"schema": {}, "payload": None},
        {**sample("rent_account_update"), "op": "x"},
        {
            **sample("rent_account_update"),
            "source": {"schema": "housing", "table": "boats", "ts_ms": 1},
        },
        "not an object",
    ]
    changes, rejected, tombstones = changes_from_cdc(records, MAPPING, "cdc-http")
    assert len(changes) == 1
    assert tombstones == 2
    reasons = [r.reason for r in rejected]
    assert any("unknown op 'x'" in r for r in reasons)
    assert any("unknown table `housing.boats`" in r for r in reasons)
    assert any("must be a JSON object" in r for r in reasons)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_at_all_is_either_taken_or_refused_with_a_reason_never_a_crash(value):
    changes, rejected, tombstones = changes_from_cdc([value], MAPPING, "cdc-http")
    assert len(changes) + len(rejected) + tombstones == 1
    for refusal in rejected:
        assert refusal.reason


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["c", "u", "r"]),
    st.integers(min_value=0, max_value=40_000),
    st.integers(min_value=0, max_value=10**6),
    st.booleans(),
)
def test_valid_envelopes_round_trip_into_rows(op, days, balance, wrapped):
    envelope = {
        "before": None,
        "after": {"tenancy_ref": "T1", "balance_pence": balance, "weeks_in_arrears": "1.5",
                  "last_payment_date": days, "nosp_served": False, "eviction_date": None},
        "source": {"schema": "housing", "table": "rent_accounts", "ts_ms": 1, "lsn": 7},
        "op": op,
    }  # fmt: skip
    record = {"schema": {}, "payload": envelope} if wrapped else envelope
    changes, rejected, _ = changes_from_cdc([record], MAPPING, "cdc-http")
    assert rejected == []
    row = MAPPING.validate_row("housing.rent_accounts", changes[0].record)
    assert row["balance_pence"] == balance
    assert (row["last_payment_date"] - datetime(1970, 1, 1).date()).days == days


def test_a_record_without_a_source_table_is_refused():
    with pytest.raises(InvalidCdc, match="schema"):
        change_from_envelope({"op": "c", "after": {}, "source": {}}, MAPPING)


def test_a_create_with_a_wrong_type_is_refused_naming_the_column():
    envelope = unwrap(sample("rent_account_update"))
    envelope["after"]["balance_pence"] = "a lot"
    change = change_from_envelope(envelope, MAPPING)
    with pytest.raises(InvalidRow, match="balance_pence"):
        MAPPING.validate_row(change.table, change.record)
