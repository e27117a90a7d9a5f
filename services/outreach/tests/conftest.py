"""Outreach's fixtures: its database on SQLite and PostgreSQL, scores to feed it, an app
without a broker (for pages and the API), and a stand-in for the parts of ingest outreach
calls (the postcode check, health and figures, refused changes) that follows its contract
exactly."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import uvicorn
import yaml
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from outreach.adapters.store import create_tables
from outreach.adapters.users import add_user
from outreach.app import create_app
from outreach.domain.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from outreach.settings import OutreachSettings
from proactive.broker import free_port
from shared.database import database_url, make_engine
from shared.events import Reason, RiskScored
from shared.settings import DEV_SERVICE_TOKEN

PASSWORDS = {
    "officer": "officer-pass-1",
    "team_lead": "lead-pass-1",
    "admin": "admin-pass-1",
    "ops": "ops-pass-1",
}
TEAM = "Community independence team"


def new_key() -> str:
    return "r_" + uuid.uuid4().hex


@pytest.fixture
def make_score() -> Callable[..., RiskScored]:
    def make(
        key: str | None = None,
        model: str = "falls",
        band: str = "high",
        probability: float = 0.6,
        age_band: str | None = "75-84",
    ) -> RiskScored:
        return RiskScored(
            occurred_at=datetime.now(UTC),
            resident_key=key or new_key(),
            source="scoring",
            model=model,  # type: ignore[arg-type]
            model_version="test",
            probability=probability,
            band=band,  # type: ignore[arg-type]
            reasons=[
                Reason(
                    feature="falls_reported_12m",
                    text="A fall was reported to adult social care this year",
                    contribution=1.2,
                    source_table="social_care.contacts",
                )
            ],
            feature_hash="h",
            triggered_by=uuid.uuid4(),
            age_band=age_band,
            ward="Abbey",
        )

    return make


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def policy_with(tmp_path: Path) -> Callable[..., Policy]:
    """The packaged policy with some values changed, read back through the file loader."""

    def change(**overrides: object) -> Policy:
        data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
        data.update(overrides)
        path = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_policy(path)

    return change


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    engine = make_engine(database_url(url, tmp_path, "outreach"))
    create_tables(engine)
    yield engine
    engine.dispose()


INGEST_METRICS = """# HELP proactive_events_published_total Records published, by topic
# TYPE proactive_events_published_total counter
proactive_events_published_total{messaging_destination_name="resident.events.v1",otel_scope_name="proactive",otel_scope_schema_url="",otel_scope_version=""} 1250.0
proactive_events_published_total{messaging_destination_name="ingest.rejected.v1",otel_scope_name="proactive",otel_scope_schema_url="",otel_scope_version=""} 2.0
# HELP proactive_events_consumed_total Records consumed, by topic
# TYPE proactive_events_consumed_total counter
proactive_events_consumed_total{messaging_destination_name="outreach.tasks.v1",otel_scope_name="proactive",otel_scope_schema_url="",otel_scope_version=""} 310.0
# HELP proactive_consumer_lag High watermark minus position, per group and partition.
# TYPE proactive_consumer_lag gauge
proactive_consumer_lag{messaging_consumer_group_name="ingest-approvals",messaging_destination_name="outreach.tasks.v1",messaging_destination_partition_id="0",otel_scope_name="proactive",otel_scope_schema_url="",otel_scope_version=""} 1.0
proactive_consumer_lag{messaging_consumer_group_name="ingest-approvals",messaging_destination_name="outreach.tasks.v1",messaging_destination_partition_id="1",otel_scope_name="proactive",otel_scope_schema_url="",otel_scope_version=""} 2.0
# HELP proactive_ingest_rejected_total Inbound changes refused, by reason
# TYPE proactive_ingest_rejected_total counter
proactive_ingest_rejected_total{channel="http",otel_scope_name="proactive",otel_scope_schema_url="",otel_scope_version="",reason="unknown_table"} 2.0
"""


class FakeVault:
    """The parts of ingest that outreach calls, following its contract exactly:
    `POST /internal/v1/vault/verify-postcode` (Bearer service token, JSON
    {"resident_key", "postcode"} → 200 {"match": bool}); and for the ops view
    `GET /healthz`, `/readyz`, `/stats`, `/metrics` (no token), `GET /v1/rejections?limit=`
    (newest first, without the payload) and `POST /v1/rejections/{id}/replay` (Bearer
    service token → 200 counts, 404 unknown, 409 replayed already)."""

    def __init__(self) -> None:
        self.postcodes: dict[str, str] = {}
        self.requests: list[dict[str, str]] = []
        self.rejections: list[dict[str, object]] = []
        self.replays: list[int] = []
        self.metrics_broken = False
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                if path == "/healthz":
                    return self._answer(200, {"status": "ok"})
                if path == "/readyz":
                    return self._answer(200, {"status": "ready", "parts": {"outbox-relay": True}})
                if path == "/stats":
                    return self._answer(200, {"accepted": 1250, "rejected": 2, "parked": 0})
                if path == "/metrics":
                    if vault.metrics_broken:
                        return self._send(500, b"Internal Server Error", "text/plain")
                    return self._text(INGEST_METRICS)
                if path == "/v1/rejections":
                    if not self._authorised():
                        return self._answer(401, {"detail": "A valid token is required."})
                    limit = int(dict(p.split("=") for p in query.split("&") if p).get("limit", 100))
                    newest = sorted(vault.rejections, key=lambda r: -int(r["id"]))  # type: ignore[call-overload]
                    return self._answer(200, newest[:limit])
                return self._answer(404, {"detail": "Not Found"})

            def do_POST(self) -> None:
                if self.path.startswith("/v1/rejections/") and self.path.endswith("/replay"):
                    return self._replay(int(self.path.split("/")[3]))
                if self.path != "/internal/v1/vault/verify-postcode":
                    return self._answer(404, {"detail": "Not Found"})
                if not self._authorised():
                    return self._answer(401, {"detail": "A valid token is required."})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if set(body) != {"resident_key", "postcode"}:
                    return self._answer(422, {"detail": "resident_key and postcode"})
                vault.requests.append(body)
                known = vault.postcodes.get(body["resident_key"], "")
                same = known.replace(" ", "").upper() == body["postcode"].replace(" ", "").upper()
                return self._answer(200, {"match": bool(known) and same})

            def _replay(self, rejection_id: int) -> None:
                if not self._authorised():
                    return self._answer(401, {"detail": "A valid token is required."})
                found = [r for r in vault.rejections if r["id"] == rejection_id]
                if not found:
                    return self._answer(404, {"detail": f"No rejection {rejection_id}."})
                if found[0]["replayed_at"] is not None:
                    return self._answer(409, {"detail": "That change was replayed already."})
                found[0]["replayed_at"] = datetime.now(UTC).isoformat()
                vault.replays.append(rejection_id)
                counts = {"accepted": 1, "duplicates": 0, "parked": 0, "rejected": 0, "ignored": 0}
                return self._answer(200, {"replayed": rejection_id, **counts})

            def _authorised(self) -> bool:
                return self.headers.get("Authorization") == f"Bearer {DEV_SERVICE_TOKEN}"

            def _answer(self, code: int, payload: object) -> None:
                self._send(code, json.dumps(payload).encode(), "application/json")

            def _text(self, text: str) -> None:
                self._send(200, text.encode(), "text/plain; version=0.0.4; charset=utf-8")

            def _send(self, code: int, data: bytes, content_type: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def refuse(self, reason: str, channel: str = "http", source: str = "housing") -> int:
        """Add a refused change, as ingest's `record_rejections` keeps one."""
        rejection_id = len(self.rejections) + 1
        self.rejections.append(
            {
                "id": rejection_id,
                "source": source,
                "channel": channel,
                "source_event_id": f"h-{rejection_id}",
                "reason": reason,
                "received_at": datetime.now(UTC).isoformat(),
                "replayed_at": None,
            }
        )
        return rejection_id


@pytest.fixture(scope="module")
def fake_vault() -> Iterator[FakeVault]:
    vault = FakeVault()
    vault.thread.start()
    yield vault
    vault.server.shutdown()
    vault.server.server_close()


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    return PASSWORDS


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory: pytest.TempPathFactory, fake_vault: FakeVault) -> FastAPI:
    """The whole app on SQLite, without its lifespan (so no broker): for pages and the API.
    One user per role, with the passwords in PASSWORDS. Shared by a module's tests, since
    hashing passwords with argon2 is deliberately slow."""
    app = create_app(
        OutreachSettings(
            data_dir=tmp_path_factory.mktemp("outreach"),
            kafka_bootstrap="127.0.0.1:1",
            ingest_url=fake_vault.url,
            # Nothing listens there: the ops view shows scoring and notify as not answering.
            scoring_url=f"http://127.0.0.1:{free_port()}",
            notify_url=f"http://127.0.0.1:{free_port()}",
            traces_to_file=False,
        )
    )
    for role, password in PASSWORDS.items():
        team = TEAM if role in ("officer", "team_lead") else None
        add_user(app.state.engine, role, password, role, team)
    return app


CHROMIUM = Path("/usr/bin/chromium")
ARTEFACTS = Path(__file__).parent / "artefacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def server(offline_app: FastAPI) -> Iterator[str]:
    """The app served over HTTP on a free port (no broker: the outbox keeps the events)."""
    port = free_port()
    config = uvicorn.Config(
        offline_app, host="127.0.0.1", port=port, lifespan="off", log_level="warning"
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not running.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def page(server: str) -> Iterator[Any]:
    """One headless Debian Chromium per test module (Playwright drives it, never downloads
    one), its page on the served app; screenshots go to tests/artefacts/."""
    if not CHROMIUM.exists():
        pytest.skip(
            "Debian's chromium is not installed at /usr/bin/chromium (apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    ARTEFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 900})
        yield context.new_page()
        context.close()
        browser.close()


# One change's journey, as the four services' tracer providers would export it: (service,
# name, kind, parent index, start ms, duration ms, attributes). Timings are invented; the
# shape (both Kafka edges of each hop) is what the real pipeline writes.
JOURNEY: list[tuple[str, str, str, int | None, float, float, dict[str, object]]] = [
    ("ingest", "POST /v1/events", "SERVER", None, 0, 38, {"http.route": "/v1/events"}),
    ("ingest", "resident.events.v1 send", "PRODUCER", 0, 30, 4, {"messaging.system": "kafka"}),
    ("scoring", "resident.events.v1 process", "CONSUMER", 1, 41, 22, {"messaging.system": "kafka"}),
    ("scoring", "score falls", "INTERNAL", 2, 48, 9, {"model": "falls", "band": "high"}),
    ("scoring", "risk.scores.v1 send", "PRODUCER", 3, 58, 3, {"messaging.system": "kafka"}),
    ("outreach", "risk.scores.v1 process", "CONSUMER", 4, 70, 30, {"messaging.system": "kafka"}),
    ("outreach", "task create", "INTERNAL", 5, 75, 18, {"outreach.decision": "create"}),
    ("outreach", "outreach.tasks.v1 send", "PRODUCER", 5, 160, 5, {"messaging.system": "kafka"}),
    ("notify", "outreach.tasks.v1 process", "CONSUMER", 7, 172, 95, {"messaging.system": "kafka"}),
    ("notify", "GET vault contact", "CLIENT", 8, 176, 20, {"http.request.method": "GET"}),
    ("notify", "render letter pdf", "INTERNAL", 8, 200, 55, {"letter.channel": "pdf"}),
    ("notify", "notify.deliveries.v1 send", "PRODUCER", 8, 258, 6, {"messaging.system": "kafka"}),
    # Detail the waterfall hides unless asked: a statement, and the framework's own step.
    ("ingest", "INSERT ingest.db", "CLIENT", 0, 10, 2, {"db.system": "sqlite"}),
    ("notify", "POST /hook http send", "INTERNAL", 8, 262, 1, {"asgi.event.type": "x"}),
]


def write_journey_trace(traces_dir: Path, started_at: datetime | None = None) -> str:
    """Write JOURNEY as span files in `traces_dir` through real tracer providers (one per
    service, exporting JSON lines as shared.telemetry does); returns the trace id."""
    import os

    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor

    traces_dir.mkdir(parents=True, exist_ok=True)
    origin_ns = int((started_at or datetime.now(UTC)).timestamp() * 1e9)
    providers, sinks = {}, []
    for service in ("ingest", "scoring", "outreach", "notify"):
        sink = (traces_dir / f"{service}-{uuid.uuid4().hex[:6]}.jsonl").open("a")
        sinks.append(sink)
        provider = TracerProvider(resource=Resource.create({"service.name": service}))
        provider.add_span_processor(
            SimpleSpanProcessor(
                ConsoleSpanExporter(
                    out=sink, formatter=lambda s: s.to_json(indent=None) + os.linesep
                )
            )
        )
        providers[service] = provider
    spans: list[trace.Span] = []
    for service, name, kind, parent, start_ms, _duration_ms, attributes in JOURNEY:
        context = trace.set_span_in_context(spans[parent]) if parent is not None else None
        span = (
            providers[service]
            .get_tracer("test")
            .start_span(
                name,
                context=context,
                kind=trace.SpanKind[kind],
                attributes=attributes,  # type: ignore[arg-type]
                start_time=origin_ns + int(start_ms * 1e6),
            )
        )
        spans.append(span)
    for span, (*_, start_ms, duration_ms, _attributes) in zip(spans, JOURNEY, strict=True):
        span.end(end_time=origin_ns + int((start_ms + duration_ms) * 1e6))
    for provider in providers.values():
        provider.shutdown()
    for sink in sinks:
        sink.close()
    return format(spans[0].get_span_context().trace_id, "032x")


@pytest.fixture(scope="session")
def write_trace() -> Callable[..., str]:
    """`write_journey_trace`, for test modules (which cannot import conftest)."""
    return write_journey_trace
