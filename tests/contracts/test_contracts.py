import json
import uuid
from datetime import UTC, datetime

import pytest

from shared.codec import UndecodableEvent, decode, encode, message_key
from shared.events import EVENT_MODELS, ResidentEventRecorded, RiskScored, json_schemas
from shared.pseudonymise import age_band, resident_key
from shared.topics import ALL_TOPICS, RESIDENT_EVENTS_DEAD_LETTERS

pytestmark = pytest.mark.unit
KEY = "r_" + "0" * 32


def an_event() -> ResidentEventRecorded:
    return ResidentEventRecorded(
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        resident_key=KEY,
        source="housing",
        table="housing.rent_accounts",
        record_key="T1",
        change="upsert",
        attributes={"balance_pence": 84250, "nosp_served": True},
        age_band="45-64",
        ward="Abbey",
    )


def test_an_event_survives_the_round_trip_through_kafka_bytes():
    event = an_event()
    assert decode(encode(event), ResidentEventRecorded) == event
    assert message_key(event) == KEY.encode()


def test_every_envelope_field_is_on_every_event():
    for model in EVENT_MODELS.values():
        if model.__name__ == "EventRejected":
            continue
        fields = set(model.model_fields)
        assert {
            "event_id",
            "schema_version",
            "occurred_at",
            "produced_at",
            "resident_key",
            "source",
            "event_type",
        } <= fields, model.__name__


def test_every_topic_has_a_json_schema_and_a_topic_definition():
    schemas = json_schemas()
    # The dead-letter topic keeps the unreadable record as it came, so it has no schema.
    assert set(schemas) == {t.name for t in ALL_TOPICS} - {RESIDENT_EVENTS_DEAD_LETTERS.name}
    assert schemas["risk.scores.v1"]["properties"]["probability"]["maximum"] == 1.0
    json.dumps(schemas)  # exportable as JSON


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        (b"{not json", "not a valid ResidentEventRecorded"),
        (b'{"event_type": "ResidentEventRecorded"}', "resident_key: Field required"),
    ],
)
def test_an_unreadable_record_is_refused_with_a_reason(value, reason):
    with pytest.raises(UndecodableEvent, match=reason):
        decode(value, ResidentEventRecorded)


def test_a_record_from_a_newer_schema_version_is_refused_not_misread():
    newer = an_event().model_copy(update={"schema_version": 2})
    with pytest.raises(UndecodableEvent, match="schema_version 2"):
        decode(encode(newer), ResidentEventRecorded)


def test_a_resident_key_cannot_be_set_to_something_that_looks_like_a_person_reference():
    with pytest.raises(ValueError, match="resident_key"):
        RiskScored(
            occurred_at=datetime.now(UTC),
            resident_key="P0001234",
            source="scoring",
            model="falls",
            model_version="1",
            probability=0.5,
            band="low",
            reasons=[],
            feature_hash="x",
            triggered_by=uuid.uuid4(),
        )


def test_pseudonyms_are_stable_keyed_and_blind_to_case_and_spaces():
    assert resident_key("P0001234", "k1") == resident_key(" p0001234 ", "k1")
    assert resident_key("P0001234", "k1") != resident_key("P0001234", "k2")
    assert resident_key("P0001234", "k1") != resident_key("P0001235", "k1")
    assert "P0001234" not in resident_key("P0001234", "k1")


@pytest.mark.parametrize(
    ("age", "band"),
    [(17, "0-17"), (18, "18-24"), (64, "45-64"), (65, "65-74"), (84, "75-84"), (85, "85+")],
)
def test_ages_fall_into_reporting_bands(age, band):
    assert age_band(age) == band
