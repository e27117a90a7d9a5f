"""Wiring: settings, database, outbox relay, the approvals consumer and the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from ingest.adapters.store import create_tables
from ingest.entrypoints.consumers import approvals_consumer
from ingest.entrypoints.http import router
from ingest.settings import IngestSettings
from shared.database import database_url, make_engine
from shared.kafka import ensure_topics
from shared.outbox import OutboxRelay
from shared.service import Readiness, Supervisor
from shared.telemetry import setup_logging, setup_tracing, shutdown_tracing


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = (settings or IngestSettings()).check()
    engine = make_engine(database_url(settings.ingest_database_url, settings.data_dir, "ingest"))
    create_tables(engine)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level)
        setup_tracing("ingest", settings.data_dir, to_file=settings.traces_to_file)
        await ensure_topics(settings.kafka_bootstrap)
        supervisor = Supervisor(app.state.readiness)
        supervisor.run("outbox-relay", _relay_loop(app))
        supervisor.run(
            "approvals-consumer",
            approvals_consumer(
                engine,
                settings.kafka_bootstrap,
                lambda: app.state.readiness.set("approvals-consumer", True),
            ),
        )
        yield
        await supervisor.stop()
        shutdown_tracing()

    def _relay_loop(app: FastAPI):
        async def run(stopping):
            app.state.readiness.set("outbox-relay", True)
            await app.state.relay.run(stopping)

        return run

    app = FastAPI(
        title="Proactive Support — ingest",
        description="Takes change events from council systems, pseudonymises them and publishes them.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.readiness = Readiness()
    app.state.relay = OutboxRelay(engine, settings.kafka_bootstrap, settings.outbox_batch_size)
    app.include_router(router)

    @app.exception_handler(RequestValidationError)
    async def plain_validation_error(_: Request, error: RequestValidationError) -> JSONResponse:
        # The body may be one change or a batch; report only the shape the caller sent.
        sent_batch = isinstance(error.body, dict) and "events" in error.body
        other_shape = "SourceChange" if sent_batch else "SourceChangeBatch"
        problems = []
        for e in error.errors():
            if other_shape in e["loc"]:
                continue
            where = ".".join(
                str(p) for p in e["loc"] if p not in ("body", "SourceChange", "SourceChangeBatch")
            )
            problems.append(f"{where or 'body'}: {e['msg']}")
        return JSONResponse(
            status_code=422,
            content={
                "detail": {
                    "message": "The request is not valid; nothing was accepted.",
                    "problems": problems[:50],
                }
            },
        )

    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,stats")
    return app
