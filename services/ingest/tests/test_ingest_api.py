"""Ingest's HTTP API and consumers with their lifespan, against a real Tansu broker and
real databases."""

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.partitioner import DefaultPartitioner
from fastapi.testclient import TestClient

from ingest.adapters.store import create_source_key, revoke_source_keys
from ingest.app import create_app
from ingest.handlers import event_id_for
from ingest.settings import IngestSettings
from proactive.broker import EmbeddedBroker
from shared.codec import decode
from shared.events import ResidentEventRecorded, TaskChanged
from shared.kafka import make_producer, publish
from shared.pseudonymise import resident_key
from shared.settings import DEV_PSEUDONYM_KEY, DEV_SERVICE_TOKEN
from shared.topics import INGEST_REJECTED, OUTREACH_TASKS, RESIDENT_EVENTS

pytestmark = pytest.mark.integration
SERVICE = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}
SAMPLES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "debezium-samples"


def resident_change(person_ref: str, source_event_id: str, postcode: str = "RM10 8AA") -> dict:
    return {
        "source_event_id": source_event_id,
        "table": "people.residents",
        "occurred_at": "2026-11-01T10:00:00Z",
        "record": {"person_ref": person_ref, "given_name": "Ada", "family_name": "Example",
                   "date_of_birth": "1941-03-02", "address_line_1": "1 Test Street",
                   "town": "Dagenham", "postcode": postcode, "ward": "Village", "sex": "female"},
    }  # fmt: skip


def a_person() -> tuple[str, str]:
    person_ref = f"P{uuid.uuid4().hex[:7].upper()}"
    return person_ref, resident_key(person_ref, DEV_PSEUDONYM_KEY)


def wait_for(predicate, timeout_s: float = 30.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


@pytest.fixture
def client_for(tmp_path, kafka_bootstrap):
    def make(database_url: str | None = None, **overrides) -> tuple[TestClient, str]:
        settings = IngestSettings(
            kafka_bootstrap=overrides.pop("kafka_bootstrap", kafka_bootstrap),
            data_dir=tmp_path,
            ingest_database_url=database_url,
            **overrides,
        )
        app = create_app(settings)
        return TestClient(app), create_source_key(app.state.engine, "people")

    return make


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_posted_events_are_published_pseudonymised_with_their_trace(client_for, topic_reader):
    client, api_key = client_for(cdc_from_kafka=False)
    person_ref, key = a_person()
    with client:
        body = {"events": [resident_change(person_ref, f"{person_ref}-1")]}
        response = client.post("/v1/events", json=body, headers=bearer(api_key))
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1, "duplicates": 0, "parked": 0}
        [record] = topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key.encode())
    for personal in (person_ref.encode(), b"Ada", b"RM10", b"1941", b"Test Street"):
        assert personal not in record.value
    event = decode(record.value, ResidentEventRecorded)
    assert event.ward == "Village"
    assert event.attributes["age_years"] == 85
    assert [name for name, _ in record.headers].count("traceparent") == 1


def test_an_invalid_event_gets_a_422_naming_the_problem_and_the_rejection_is_kept_and_announced(
    client_for, topic_reader
):
    client, api_key = client_for(cdc_from_kafka=False)
    bad = resident_change("P1", f"bad-{uuid.uuid4().hex[:6]}")
    bad["record"]["sex"] = "dragon"
    with client:
        response = client.post("/v1/events", json=bad, headers=bearer(api_key))
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "none was accepted" in detail["message"]
        assert any("sex" in problem for problem in detail["problems"])
        metrics = client.get("/metrics")
        assert metrics.status_code == 200
        assert 'proactive_ingest_rejected_total{channel="http"' in metrics.text
        kept = client.get("/v1/rejections", headers=SERVICE).json()
        assert kept[0]["source_event_id"] == bad["source_event_id"]
        assert "payload" not in kept[0]
        [announced] = topic_reader(
            INGEST_REJECTED.name, lambda r: bad["source_event_id"].encode() in r.value
        )
    assert b"Ada" not in announced.value  # the reason travels, the personal payload does not


def test_a_batch_with_a_bad_change_in_the_middle_keeps_nothing_but_the_refusal(client_for):
    client, api_key = client_for(cdc_from_kafka=False)
    batch = [resident_change(a_person()[0], f"mid-{n}-{uuid.uuid4().hex[:6]}") for n in range(5)]
    batch[2]["record"]["date_of_birth"] = "not a date"
    with client:
        response = client.post("/v1/events", json={"events": batch}, headers=bearer(api_key))
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert detail["message"].startswith("1 of 5 events are not valid")
        [problem] = detail["problems"]
        assert problem.startswith(f"event 2 ({batch[2]['source_event_id']})")
        assert "date_of_birth" in problem
        assert "not a date" not in problem  # the reason names the field, not what was in it
        stats = client.get("/stats").json()
        assert (stats["accepted"], stats["rejected"]) == (0, 1)
        # Once corrected, the whole batch goes in; a change repeated within it counts once.
        batch[2]["record"]["date_of_birth"] = "1950-05-17"
        again = client.post(
            "/v1/events", json={"events": [*batch, batch[0]]}, headers=bearer(api_key)
        )
        assert again.status_code == 202, again.text
        assert again.json() == {"accepted": 5, "duplicates": 1, "parked": 0}
        assert client.get("/stats").json()["accepted"] == 5


def test_keys_sizes_and_rates_are_enforced(client_for):
    client, api_key = client_for(cdc_from_kafka=False, rate_limit="3/minute", max_body_bytes=2000)
    with client:
        body = resident_change("P1", "x")
        assert client.post("/v1/events", json=body).status_code == 401
        assert client.post("/v1/events", json=body, headers=bearer("nope")).status_code == 401
        too_big = {"events": [resident_change("P1", f"x{i}") for i in range(20)]}
        assert client.post("/v1/events", json=too_big, headers=bearer(api_key)).status_code == 413
        statuses = [
            client.post("/v1/events", json=body, headers=bearer(api_key)).status_code
            for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429]
        assert (
            "Retry-After" in client.post("/v1/events", json=body, headers=bearer(api_key)).headers
        )
        revoke_source_keys(client.app.state.engine, "people")
        assert client.post("/v1/events", json=body, headers=bearer(api_key)).status_code == 403


def test_the_debezium_http_sink_takes_wrapped_unwrapped_arrays_and_tombstones(
    client_for, topic_reader
):
    client, api_key = client_for(cdc_from_kafka=False)
    callout = json.loads((SAMPLES / "ambulance_callout_create_with_schema.json").read_text())
    rent = json.loads((SAMPLES / "rent_account_update.json").read_text())
    person_ref, key = a_person()
    tenancy_ref = f"T{uuid.uuid4().hex[:7]}"
    callout["payload"]["after"]["person_ref"] = person_ref
    rent["after"]["tenancy_ref"] = rent["before"]["tenancy_ref"] = tenancy_ref
    tenancy = {
        "before": None,
        "after": {"tenancy_ref": tenancy_ref, "person_ref": person_ref, "tenure_type": "secure",
                  "start_date": 19000, "end_date": None, "household_size": 2, "bedrooms": 1},
        "source": {"schema": "housing", "table": "tenancies", "ts_ms": 1764151100000, "lsn": 1},
        "op": "r",
    }  # fmt: skip
    with client:
        first = client.post("/v1/cdc", json=callout, headers=bearer(api_key))
        assert first.json()["accepted"] == 1
        parked = client.post("/v1/cdc", json=[rent, None], headers=bearer(api_key))
        assert parked.json() | {} == {**parked.json(), "parked": 1, "ignored": 1}
        released = client.post("/v1/cdc", json=tenancy, headers=bearer(api_key))
        assert released.json()["accepted"] == 2  # the tenancy, then the waiting rent account
        again = client.post("/v1/cdc", json=callout, headers=bearer(api_key))
        assert again.json()["duplicates"] == 1
        records = topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key.encode(), want=3)
    tables = [decode(r.value, ResidentEventRecorded).table for r in records]
    assert tables == ["health.ambulance_callouts", "housing.tenancies", "housing.rent_accounts"]


def test_a_refused_cdc_change_can_be_replayed_once_its_cause_is_fixed(client_for):
    client, api_key = client_for(cdc_from_kafka=False)
    rent = json.loads((SAMPLES / "rent_account_update.json").read_text())
    rent["after"]["balance_pence"] = "eighty pounds"
    with client:
        response = client.post("/v1/cdc", json=rent, headers=bearer(api_key))
        assert response.status_code == 202
        assert response.json()["rejected"] == 1
        [rejection] = client.get("/v1/rejections", headers=SERVICE).json()[:1]
        assert "balance_pence" in rejection["reason"]
        still_bad = client.post(f"/v1/rejections/{rejection['id']}/replay", headers=SERVICE)
        assert still_bad.status_code == 422
        # An operator corrects the stored change (here: the mapping would be fixed instead).
        from sqlmodel import Session

        from ingest.adapters.store import Rejection

        with Session(client.app.state.engine) as session:
            row = session.get(Rejection, rejection["id"])
            row.payload = row.payload.replace('"eighty pounds"', "8000")
            session.add(row)
            session.commit()
        replayed = client.post(f"/v1/rejections/{rejection['id']}/replay", headers=SERVICE)
        assert replayed.status_code == 200
        assert replayed.json()["parked"] + replayed.json()["accepted"] == 1
        twice = client.post(f"/v1/rejections/{rejection['id']}/replay", headers=SERVICE)
        assert twice.status_code == 409


def test_changes_on_the_kafka_cdc_topics_are_ingested(client_for, kafka_bootstrap, topic_reader):
    client, _ = client_for()
    person_ref, key = a_person()
    callout = json.loads((SAMPLES / "ambulance_callout_create_with_schema.json").read_text())
    callout["payload"]["after"]["person_ref"] = person_ref
    callout["payload"]["after"]["incident_id"] = f"LAS-{uuid.uuid4().hex[:6]}"

    async def send() -> None:
        producer = make_producer(kafka_bootstrap)
        await producer.start()
        topic = "council.health.ambulance_callouts"
        await producer.send_and_wait(topic, json.dumps(callout).encode(), key=b"k")
        await producer.send_and_wait(topic, None, key=b"k")  # a tombstone
        await producer.send_and_wait(topic, b"{broken", key=b"k")
        await producer.stop()

    with client:
        asyncio.run(send())
        [record] = topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key.encode())
        assert decode(record.value, ResidentEventRecorded).table == "health.ambulance_callouts"
        wait_for(lambda: any("not JSON" in r["reason"] for r in
                             client.get("/v1/rejections", headers=SERVICE).json()))  # fmt: skip


def test_schemas_of_native_events_and_every_table_are_published(client_for):
    client, _ = client_for(cdc_from_kafka=False)
    with client:
        schemas = client.get("/v1/schema").json()
    assert "source_event_id" in schemas["event"]["properties"]
    assert "weeks_in_arrears" in schemas["tables"]["housing.rent_accounts"]["properties"]


def test_the_vault_opens_only_after_outreach_approves_a_task_and_every_lookup_is_audited(
    client_for, kafka_bootstrap
):
    client, api_key = client_for(cdc_from_kafka=False)
    person_ref, key = a_person()
    task_id = uuid.uuid4()
    params = {"task_id": str(task_id)}
    with client:
        client.post("/v1/events", json=resident_change(person_ref, f"{person_ref}-v"),
                    headers=bearer(api_key))  # fmt: skip
        assert (
            client.get(f"/internal/v1/vault/{key}", params=params, headers=SERVICE).status_code
            == 403
        )
        asyncio.run(_publish_approval(kafka_bootstrap, key, task_id))
        after = wait_for(
            lambda: (
                (r := client.get(f"/internal/v1/vault/{key}", params=params, headers=SERVICE))
                and r.status_code == 200
                and r
            )
        )
        assert after.json()["display_name"] == "Ada Example"
        assert after.json()["postcode"] == "RM10 8AA"
        assert client.get(f"/internal/v1/vault/{key}", params=params).status_code == 401
        assert client.get("/stats").json()["vault_lookups"] >= 3


def test_a_postcode_check_answers_only_yes_or_no(client_for):
    client, api_key = client_for(cdc_from_kafka=False)
    person_ref, key = a_person()
    with client:
        client.post("/v1/events", json=resident_change(person_ref, f"{person_ref}-p"),
                    headers=bearer(api_key))  # fmt: skip
        check = "/internal/v1/vault/verify-postcode"
        assert client.post(check, json={"resident_key": key, "postcode": "rm108aa"},
                           headers=SERVICE).json() == {"match": True}  # fmt: skip
        assert client.post(check, json={"resident_key": key, "postcode": "E1 6AN"},
                           headers=SERVICE).json() == {"match": False}  # fmt: skip
        assert (
            client.post(check, json={"resident_key": key, "postcode": "RM10 8AA"}).status_code
            == 401
        )


async def _publish_approval(bootstrap: str, key: str, task_id: uuid.UUID) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await publish(producer, OUTREACH_TASKS.name, TaskChanged(
            event_type="TaskApproved", occurred_at=datetime.now(UTC), resident_key=key,
            source="outreach", task_id=task_id, status="approved", models=["falls"], reasons=[],
            team="Community independence team", policy_version="test", actor="officer-1",
        ))  # fmt: skip
    finally:
        await producer.stop()


def test_accepted_events_survive_a_broker_restart(client_for, read_topic_from):
    """The embedded broker forgets everything when it stops; the outbox does not."""
    broker = EmbeddedBroker().start()
    client, api_key = client_for(kafka_bootstrap=broker.bootstrap, cdc_from_kafka=False)
    people = [a_person() for _ in range(6)]
    try:
        with client:
            for person_ref, _ in people[:3]:
                client.post(
                    "/v1/events",
                    json=resident_change(person_ref, person_ref),
                    headers=bearer(api_key),
                )
            wait_for(lambda: client.get("/stats").json()["outbox_pending"] == 0)
            broker.stop()
            for person_ref, _ in people[3:]:
                response = client.post("/v1/events", json=resident_change(person_ref, person_ref),
                                       headers=bearer(api_key))  # fmt: skip
                assert response.status_code == 202  # accepted while the broker is down
            assert client.get("/stats").json()["outbox_pending"] == 3
            broker.start()
            # What the new broker never got (and what the old one forgot) is sent again.
            wait_for(lambda: client.app.state.relay.republished >= 3, timeout_s=60)
            wait_for(lambda: client.get("/stats").json()["outbox_pending"] == 0, timeout_s=60)
            keys = {key.encode() for _, key in people}
            records = read_topic_from(
                broker.bootstrap, RESIDENT_EVENTS.name, lambda r: r.key in keys, want=6
            )
            assert {r.key for r in records} == keys
    finally:
        broker.stop()


def test_a_batch_is_published_on_each_residents_partition_in_the_trace_it_was_posted_in(
    client_for, topic_reader
):
    """The relay sends record batches it partitions itself: each resident's events must
    land where Kafka's default partitioner puts that key (scoring's state depends on it),
    in order, each carrying a traceparent of the request's trace."""
    client, api_key = client_for(cdc_from_kafka=False)
    people = [a_person() for _ in range(12)]
    trace_id = uuid.uuid4().hex
    changes = [
        resident_change(person_ref, f"{person_ref}-{round_}", postcode=f"RM{round_} 8AA")
        for round_ in range(3)
        for person_ref, _ in people
    ]
    headers = {**bearer(api_key), "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"}
    with client:
        response = client.post("/v1/events", json={"events": changes}, headers=headers)
        assert response.json()["accepted"] == len(changes)
        keys = {key.encode() for _, key in people}
        records = topic_reader(RESIDENT_EVENTS.name, lambda r: r.key in keys, want=len(changes))
    everyone = list(range(RESIDENT_EVENTS.partitions))
    for record in records:
        assert record.partition == DefaultPartitioner()(record.key, everyone, everyone)
        [traceparent] = [value for name, value in record.headers if name == "traceparent"]
        assert traceparent.decode().split("-")[1] == trace_id
    for person_ref, key in people:  # one resident's events in the order they were posted
        theirs = sorted((r for r in records if r.key == key.encode()), key=lambda r: r.offset)
        assert [decode(r.value, ResidentEventRecorded).event_id for r in theirs] == [
            event_id_for("people", f"{person_ref}-{round_}") for round_ in range(3)
        ]


def test_ingest_keeps_its_records_in_postgresql_when_configured(
    client_for, postgres_url, topic_reader
):
    client, api_key = client_for(postgres_url, cdc_from_kafka=False)
    person_ref, key = a_person()
    with client:
        for _ in range(2):  # a redelivery is accepted once
            response = client.post("/v1/events", json=resident_change(person_ref, f"{person_ref}-pg"),
                                   headers=bearer(api_key))  # fmt: skip
            assert response.status_code == 202
        assert client.get("/stats").json()["accepted"] == 1
        assert topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key.encode())
