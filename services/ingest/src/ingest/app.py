"""Wiring: settings, mapping, database, outbox relay, the consumers and the HTTP API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from ingest.domain.mapping import load_mapping
from ingest.entrypoints.consumers import approvals_consumer, cdc_consumer, cdc_topics
from ingest.entrypoints.http import router
from ingest.entrypoints.limits import KeyRateLimit, MaxBodySize
from ingest.migrations import prepare_database
from ingest.settings import IngestSettings
from shared.database import database_url, make_engine
from shared.http import add_metrics_route, probe_routes
from shared.kafka import ensure_topics_if_reachable
from shared.outbox import OutboxRelay
from shared.service import Readiness, Supervisor, answer_database_outages
from shared.telemetry import flush_telemetry, instrument_database, setup_logging, setup_tracing
from shared.topics import Topic

Loop = Callable[[asyncio.Event], Awaitable[None]]


def create_app(settings: IngestSettings | None = None) -> FastAPI:
    settings = (settings or IngestSettings()).check()
    mapping = load_mapping(settings.mapping_path)
    engine = make_engine(database_url(settings.ingest_database_url, settings.data_dir, "ingest"))
    prepare_database(engine, dev=settings.is_dev)
    readiness = Readiness()
    relay = OutboxRelay(engine, settings.kafka_bootstrap, settings.outbox_batch_size)

    def ready(part: str) -> Callable[[], None]:
        return lambda: readiness.set(part, True)

    async def relay_loop(stopping: asyncio.Event) -> None:
        readiness.set("outbox-relay", True)
        await relay.run(stopping)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level)
        setup_tracing("ingest", settings.data_dir, to_file=settings.traces_to_file)
        instrument_database(engine)
        await ensure_topics_if_reachable(settings.kafka_bootstrap)
        loops: dict[str, Loop] = {
            "outbox-relay": relay_loop,
            "approvals-consumer": approvals_consumer(
                engine, settings.kafka_bootstrap, ready("approvals-consumer")
            ),
        }
        if settings.cdc_from_kafka:
            # In production Debezium makes these topics; in dev they are made here so that
            # the consumer can subscribe before the first change arrives.
            await ensure_topics_if_reachable(
                settings.kafka_bootstrap,
                [Topic(name, 1) for name in cdc_topics(mapping, settings.cdc_prefix)],
            )
            loops["cdc-consumer"] = cdc_consumer(
                engine,
                settings.kafka_bootstrap,
                mapping,
                settings.cdc_prefix,
                settings.pseudonym_key,
                relay.wake,
                ready("cdc-consumer"),
            )
        supervisor = Supervisor(readiness)
        for name, loop in loops.items():
            supervisor.run(name, loop)
        yield
        await supervisor.stop()
        flush_telemetry()

    app = FastAPI(
        title="Proactive Support — ingest",
        description=(
            "Takes change events from council systems (native events, Debezium Server's HTTP "
            "sink, Kafka CDC topics), pseudonymises them and publishes them."
        ),
        version="0.2.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.mapping = mapping
    app.state.engine = engine
    app.state.readiness = readiness
    app.state.relay = relay
    app.state.rate_limit = KeyRateLimit(settings.rate_limit)
    app.include_router(router)
    app.add_middleware(MaxBodySize, max_bytes=settings.max_body_bytes)

    answer_database_outages(app)

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

    add_metrics_route(app)
    probe_routes(app)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,stats,metrics")
    return app
