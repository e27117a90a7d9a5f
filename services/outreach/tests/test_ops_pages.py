"""The ops view over HTTP: health and figures gathered from the services (ingest here is
the contract-exact stand-in; scoring and notify do not answer), refused changes replayed
through ingest and audited, and traces read from span files written by real tracer
providers."""

from __future__ import annotations

import html
import json
import re

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from outreach.adapters.peers import Peers
from outreach.adapters.store import AuditEntry
from proactive.broker import free_port

pytestmark = pytest.mark.integration


def signed_in(app, role: str, passwords: dict[str, str]) -> TestClient:
    client = TestClient(app)
    page = client.get("/officer/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/officer/login",
        data={"username": role, "password": passwords[role], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    client.landing = response.headers["location"]  # type: ignore[attr-defined]
    return client


@pytest.fixture(scope="module")
def ops(offline_app, passwords) -> TestClient:
    return signed_in(offline_app, "ops", passwords)


LONELY = "1" * 32


@pytest.fixture(scope="module")
def journey(offline_app, write_trace) -> str:
    """The journey's spans, and beside them a trace that stays within one service."""
    traces = offline_app.state.settings.data_dir / "traces"
    trace_id = write_trace(traces)
    lonely = {
        "name": "SELECT outreach.db",
        "context": {"trace_id": f"0x{LONELY}", "span_id": "0x00000000000000aa"},
        "kind": "SpanKind.CLIENT",
        "parent_id": None,
        "start_time": "2026-11-01T09:00:00.000000Z",
        "end_time": "2026-11-01T09:00:00.000500Z",
        "attributes": {"db.system": "sqlite"},
        "resource": {"attributes": {"service.name": "outreach"}},
    }
    (traces / "outreach-housekeeping.jsonl").write_text(json.dumps(lonely) + "\n")
    return trace_id


def form_token(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)  # type: ignore[union-attr]


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


def test_ops_staff_land_on_the_ops_view_and_see_no_task_pages_in_the_menu(ops):
    assert ops.landing == "/ops"  # type: ignore[attr-defined]
    page = ops.get("/ops")
    assert page.status_code == 200
    assert 'href="/ops"' in page.text
    assert 'href="/officer/tasks"' not in page.text


def test_the_ops_view_shows_each_services_health_in_plain_english(ops, fake_vault):
    text = text_of(ops.get("/ops").text)
    assert "Ingest Running Alive and ready for work." in text
    assert re.search(
        r"Scoring Not answering No answer within 1.5 seconds. http://127.0.0.1:\d+", text
    )
    assert "Notify Not answering No answer within 1.5 seconds." in text
    # The app under test runs without its lifespan, so its consumers never started.
    assert "Outreach Starting Alive, but not ready yet" in text


def test_a_service_whose_metrics_fail_is_named_and_the_page_still_answers(ops, fake_vault):
    fake_vault.metrics_broken = True
    try:
        page = ops.get("/ops")
    finally:
        fake_vault.metrics_broken = False
    assert page.status_code == 200
    text = text_of(page.text)
    assert "Ingest's metrics (/metrics) answered 500, so its figures are missing below." in text
    assert "Ingest Running" in text


def test_the_ops_view_shows_throughput_and_lag_from_the_services_metrics(ops):
    text = text_of(ops.get("/ops").text)
    assert "Ingest resident.events.v1 0 1,250" in text
    assert "Ingest ingest-approvals outreach.tasks.v1 3" in text  # two partitions added up
    assert "lag reads low there" in text
    assert "Accepted 1,250" in text  # ingest's own /stats counters
    assert "Notify did not answer, so its count is not known." in text


def test_a_refused_change_is_replayed_through_ingest_and_the_replay_is_audited(
    offline_app, ops, fake_vault
):
    rejection = fake_vault.refuse("event 0 (h-9): unknown table housing.tenancy")
    page = ops.get("/ops")
    assert "unknown table housing.tenancy" in page.text
    assert f'action="/ops/rejections/{rejection}/replay"' in page.text

    response = ops.post(
        f"/ops/rejections/{rejection}/replay",
        data={"csrf_token": form_token(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert fake_vault.replays == [rejection]
    after = ops.get(response.headers["location"])
    assert f"Refused change {rejection} was replayed." in text_of(after.text)
    assert f'action="/ops/rejections/{rejection}/replay"' not in after.text  # replayed now

    again = ops.post(
        f"/ops/rejections/{rejection}/replay", data={"csrf_token": form_token(after.text)}
    )
    assert f"Refused change {rejection} had been replayed already" in text_of(again.text)
    with Session(offline_app.state.engine) as session:
        entries = session.exec(
            select(AuditEntry).where(AuditEntry.actor == "ops").order_by(AuditEntry.id)  # type: ignore[arg-type]
        ).all()
    assert [(e.action, e.resident_key) for e in entries[-2:]] == [
        ("rejection_replayed", ""),
        ("rejection_replay_failed", ""),
    ]
    assert f"refused change {rejection} at ingest: replayed (accepted 1" in entries[-2].reason


def test_when_ingest_does_not_answer_the_page_says_so_and_a_replay_is_not_lost_silently(
    offline_app, ops
):
    closed = f"http://127.0.0.1:{free_port()}"
    # Starlette's State keeps attributes in a dict that monkeypatch cannot restore: by hand.
    original = offline_app.state.peers
    offline_app.state.peers = Peers(
        {"ingest": closed, "scoring": closed, "notify": closed}, "t", timeout_s=0.5
    )
    try:
        page = ops.get("/ops")
        assert page.status_code == 200
        text = text_of(page.text)
        assert "Ingest did not answer, so its refused changes cannot be shown." in text
        response = ops.post("/ops/rejections/7/replay", data={"csrf_token": form_token(page.text)})
        assert response.status_code == 200
        assert "Ingest did not answer, so refused change 7 was not replayed." in text_of(
            response.text
        )
    finally:
        offline_app.state.peers = original


def test_recent_traces_list_the_journey_with_its_services_spans_and_duration(ops, journey):
    text = text_of(ops.get("/ops/traces").text)
    assert journey in text
    row = text[text.index("POST /v1/events") :][:200]
    assert "ingest scoring outreach notify 14 267 ms" in row


def test_traces_within_one_service_are_listed_only_when_asked_for(offline_app, ops, journey):
    assert LONELY not in ops.get("/ops/traces").text
    assert LONELY in ops.get("/ops/traces?every=true").text


def test_a_trace_opens_as_a_waterfall_of_its_spans(ops, journey):
    page = ops.get(f"/ops/traces/{journey}")
    assert page.status_code == 200
    html = page.text
    bars = re.findall(r'<rect x="([\d.]+)%" y="4" width="([\d.]+)%"', html)
    assert len(bars) == 12
    assert bars[0] == ("0.0", "14.232")  # the HTTP request: 38 of 267 ms, from the start
    for name in ("resident.events.v1 process", "render letter pdf", "notify.deliveries.v1 send"):
        assert name in html
    assert "app-service--notify" in html and "Consumer" in html
    assert "<dt>letter.channel</dt><dd>pdf</dd>" in html
    assert "INSERT ingest.db" not in html
    assert "2 database and web-framework spans hidden" in text_of(html)
    every = ops.get(f"/ops/traces/{journey}?detail=true").text
    assert len(re.findall(r'<rect x="', every)) == 14
    assert "INSERT ingest.db" in every


def test_an_unknown_or_malformed_trace_id_is_a_page_not_found(ops):
    unknown = ops.get("/ops/traces/" + "0" * 32, headers={"accept": "text/html"})
    assert unknown.status_code == 404
    assert "is not among the recent spans read" in unknown.text
    assert ops.get("/ops/traces/not-a-trace", headers={"accept": "text/html"}).status_code == 404


def test_with_a_trace_viewer_configured_trace_links_go_there(
    offline_app, ops, journey, monkeypatch
):
    monkeypatch.setattr(
        offline_app.state.settings, "trace_viewer_url", "https://jaeger.council.example"
    )
    assert f'href="https://jaeger.council.example/trace/{journey}"' in ops.get("/ops/traces").text


def test_the_ops_view_lists_fairness_and_drift_alarms_or_says_there_are_none(ops, fake_vault):
    text = text_of(ops.get("/ops").text)
    assert "Alarms" in text
    assert "Fairness (from outreach's decisions, by age band and ward): none." in text
    # The stand-in services have no /drift: the page says scoring did not answer.
    assert (
        "Drift (scoring, population stability against the training data): scoring did not answer."
        in text
    )
