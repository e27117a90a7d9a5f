"""Ingest's HTTP API with its lifespan, against a real Tansu broker and real databases."""

import asyncio
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from ingest.adapters.store import create_source_key
from ingest.app import create_app
from ingest.settings import IngestSettings
from shared.codec import decode
from shared.events import ResidentEventRecorded, TaskChanged
from shared.kafka import make_producer, publish
from shared.pseudonymise import resident_key
from shared.settings import DEV_PSEUDONYM_KEY, DEV_SERVICE_TOKEN
from shared.telemetry import context_from_headers
from shared.topics import OUTREACH_TASKS, RESIDENT_EVENTS

pytestmark = pytest.mark.integration


def resident_change(person_ref: str, source_event_id: str) -> dict:
    return {
        "source_event_id": source_event_id,
        "table": "people.residents",
        "occurred_at": "2026-11-01T10:00:00Z",
        "record": {
            "person_ref": person_ref,
            "given_name": "Ada",
            "family_name": "Example",
            "date_of_birth": "1941-03-02",
            "address_line_1": "1 Test Street",
            "town": "Dagenham",
            "postcode": "RM10 8AA",
            "ward": "Village",
            "sex": "female",
        },
    }


@pytest.fixture
def client_for(tmp_path, kafka_bootstrap):
    def make(database_url: str | None = None) -> tuple[TestClient, str]:
        settings = IngestSettings(
            kafka_bootstrap=kafka_bootstrap, data_dir=tmp_path, ingest_database_url=database_url
        )
        app = create_app(settings)
        return TestClient(app), create_source_key(app.state.engine, "people")

    return make


def test_posted_events_are_published_pseudonymised_with_their_trace(client_for, topic_reader):
    client, api_key = client_for()
    person_ref = f"P{uuid.uuid4().hex[:7].upper()}"
    key = resident_key(person_ref, DEV_PSEUDONYM_KEY)
    with client:
        response = client.post(
            "/v1/events",
            json={"events": [resident_change(person_ref, f"{person_ref}-1")]},
            headers={"Authorization": f"Bearer {api_key}"},
        )
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": 1, "duplicates": 0, "parked": 0}
        [record] = topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key.encode())
    assert person_ref.encode() not in record.value and b"Ada" not in record.value
    assert b"RM10" not in record.value and b"1941" not in record.value
    event = decode(record.value, ResidentEventRecorded)
    assert event.ward == "Village" and event.attributes["age_years"] == 85
    assert context_from_headers(record.headers)  # a traceparent travelled with it
    assert any(name == "traceparent" for name, _ in record.headers)


def test_an_invalid_event_gets_a_422_naming_the_problem_and_the_rejection_is_kept(client_for):
    client, api_key = client_for()
    bad = resident_change("P1", "bad-1")
    bad["record"]["sex"] = "dragon"
    with client:
        response = client.post(
            "/v1/events", json=bad, headers={"Authorization": f"Bearer {api_key}"}
        )
        assert response.status_code == 422
        detail = response.json()["detail"]
        assert "none was accepted" in detail["message"]
        assert any("sex" in problem for problem in detail["problems"])
        assert client.get("/stats").json()["rejected"] == 1
        kept = client.get(
            "/v1/rejections", headers={"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}
        )
        assert kept.json()[0]["source_event_id"] == "bad-1"


def test_an_unknown_api_key_is_refused(client_for):
    client, _ = client_for()
    with client:
        response = client.post(
            "/v1/events",
            json=resident_change("P1", "x"),
            headers={"Authorization": "Bearer not-a-key"},
        )
    assert response.status_code == 401


def test_the_vault_opens_only_after_outreach_approves_a_task_and_every_lookup_is_audited(
    client_for, kafka_bootstrap
):
    client, api_key = client_for()
    person_ref = f"P{uuid.uuid4().hex[:7].upper()}"
    key = resident_key(person_ref, DEV_PSEUDONYM_KEY)
    task_id = uuid.uuid4()
    service = {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}
    with client:
        client.post(
            "/v1/events",
            json=resident_change(person_ref, f"{person_ref}-v"),
            headers={"Authorization": f"Bearer {api_key}"},
        )
        before = client.get(
            f"/internal/v1/vault/{key}", params={"task_id": str(task_id)}, headers=service
        )
        assert before.status_code == 403
        asyncio.run(_publish_approval(kafka_bootstrap, key, task_id))
        for _ in range(100):
            after = client.get(
                f"/internal/v1/vault/{key}", params={"task_id": str(task_id)}, headers=service
            )
            if after.status_code == 200:
                break
            asyncio.run(asyncio.sleep(0.2))
        assert after.status_code == 200, after.text
        assert after.json()["display_name"] == "Ada Example"
        assert after.json()["postcode"] == "RM10 8AA"
        no_token = client.get(f"/internal/v1/vault/{key}", params={"task_id": str(task_id)})
        assert no_token.status_code == 401
        assert client.get("/stats").json()["vault_lookups"] >= 3


async def _publish_approval(bootstrap: str, key: str, task_id: uuid.UUID) -> None:
    producer = make_producer(bootstrap)
    await producer.start()
    try:
        await publish(
            producer,
            OUTREACH_TASKS.name,
            TaskChanged(
                event_type="TaskApproved",
                occurred_at=datetime.now(UTC),
                resident_key=key,
                source="outreach",
                task_id=task_id,
                status="approved",
                models=["falls"],
                reasons=[],
                team="Community independence team",
                policy_version="test",
                actor="officer-1",
            ),
        )
    finally:
        await producer.stop()


def test_ingest_keeps_its_records_in_postgresql_when_configured(
    client_for, postgres_url, topic_reader
):
    client, api_key = client_for(postgres_url)
    person_ref = f"P{uuid.uuid4().hex[:7].upper()}"
    with client:
        for _ in range(2):  # a redelivery is accepted once
            response = client.post(
                "/v1/events",
                json=resident_change(person_ref, f"{person_ref}-pg"),
                headers={"Authorization": f"Bearer {api_key}"},
            )
            assert response.status_code == 202
        assert client.get("/stats").json()["accepted"] == 1
        key = resident_key(person_ref, DEV_PSEUDONYM_KEY).encode()
        assert topic_reader(RESIDENT_EVENTS.name, lambda r: r.key == key)
