"""notify's HTTP routes, through TestClient, without the broker (the lifespan is not run)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from notify.app import create_app
from notify.handlers import handle_task_changed
from notify.settings import NotifySettings
from shared.references import reference_for

pytestmark = pytest.mark.unit


@pytest.fixture
def app(tmp_path, kit):
    settings = NotifySettings(data_dir=tmp_path, service_token=kit.SERVICE_TOKEN)
    app = create_app(settings)
    app.state.store.create_tables()
    return app


@pytest.fixture
def client(app):
    return TestClient(app)


def auth(kit):
    return {"Authorization": f"Bearer {kit.SERVICE_TOKEN}"}


def test_healthz_says_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_503_until_both_consumers_are_ready(client, app):
    assert client.get("/readyz").status_code == 503
    app.state.readiness.set("outreach-tasks-consumer", True)
    assert client.get("/readyz").status_code == 503
    app.state.readiness.set("resident-optouts-consumer", True)
    assert client.get("/readyz").status_code == 200


def test_stats_counts_from_the_database(client):
    assert client.get("/stats").json() == {
        "tasks_seen": 0,
        "letters_rendered": 0,
        "notifications_sent": 0,
        "deliveries_failed": 0,
        "letters_cancelled": 0,
        "letters_received": 0,
        "dead_letters": 0,
    }


def test_letters_need_the_service_token(client):
    missing = client.get("/v1/letters")
    assert missing.status_code == 401
    assert "service token" in missing.json()["detail"]
    wrong = client.get("/v1/letters", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert client.get("/v1/letters/PS-AAAAAAAA.pdf").status_code == 401


async def test_a_rendered_letter_is_listed_and_its_pdf_served(client, app, kit, deps_factory):
    deps = deps_factory(the_store=app.state.store)
    deps.channel = app.state.pdf_channel
    task = kit.make_task()
    await handle_task_changed(task, deps)
    reference = reference_for(task.task_id)

    listed = client.get("/v1/letters", headers=auth(kit))
    assert listed.status_code == 200
    [row] = listed.json()
    assert set(row) == {"reference", "task_id", "status", "channel", "created_at"}
    assert (row["reference"], row["task_id"], row["status"], row["channel"]) == (
        reference,
        str(task.task_id),
        "rendered",
        "pdf",
    )
    assert row["created_at"].endswith(("+00:00", "Z"))

    pdf = client.get(f"/v1/letters/{reference}.pdf", headers=auth(kit))
    assert pdf.status_code == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF-")
    assert client.get("/stats").json()["letters_rendered"] == 1


def test_unknown_letters_get_a_clear_404(client, kit):
    unknown = client.get("/v1/letters/PS-AAAAAAAA.pdf", headers=auth(kit))
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "No letter has the reference PS-AAAAAAAA."
    bad = client.get("/v1/letters/..%2Fnotify.db.pdf", headers=auth(kit))
    assert bad.status_code == 404


async def test_a_failed_letter_has_no_pdf(client, app, kit, deps_factory):
    deps = deps_factory(kit.fake_vault({}), the_store=app.state.store)
    task = kit.make_task()
    await handle_task_changed(task, deps)
    response = client.get(f"/v1/letters/{reference_for(task.task_id)}.pdf", headers=auth(kit))
    assert response.status_code == 404
    assert "status is 'failed'" in response.json()["detail"]
