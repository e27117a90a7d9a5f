"""Wiring: settings, policy, database, outbox relay, the two consumers and the HTTP API."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from outreach.adapters.store import create_tables
from outreach.domain.policy import load_policy
from outreach.entrypoints.consumers import deliveries_consumer, scores_consumer
from outreach.entrypoints.http import router
from outreach.settings import OutreachSettings
from shared.database import database_url, make_engine
from shared.kafka import ensure_topics
from shared.outbox import OutboxRelay
from shared.service import Readiness, Supervisor
from shared.telemetry import setup_logging, setup_tracing, shutdown_tracing


def create_app(settings: OutreachSettings | None = None) -> FastAPI:
    settings = (settings or OutreachSettings()).check()
    policy = load_policy(settings.policy_path)
    engine = make_engine(
        database_url(settings.outreach_database_url, settings.data_dir, "outreach")
    )
    create_tables(engine)
    readiness = Readiness()
    relay = OutboxRelay(engine, settings.kafka_bootstrap)
    counters = {"scores_seen": 0}

    def ready(part: str) -> Callable[[], None]:
        return lambda: readiness.set(part, True)

    async def relay_loop(stopping) -> None:
        readiness.set("outbox-relay", True)
        await relay.run(stopping)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level)
        setup_tracing("outreach", settings.data_dir, to_file=settings.traces_to_file)
        await ensure_topics(settings.kafka_bootstrap)
        supervisor = Supervisor(readiness)
        loops: dict[str, Callable[..., Awaitable[None]]] = {
            "outbox-relay": relay_loop,
            "scores-consumer": scores_consumer(
                engine,
                settings.kafka_bootstrap,
                policy,
                counters,
                relay.wake,
                ready("scores-consumer"),
            ),
            "deliveries-consumer": deliveries_consumer(
                engine, settings.kafka_bootstrap, relay.wake, ready("deliveries-consumer")
            ),
        }
        for name, loop in loops.items():
            supervisor.run(name, loop)
        yield
        await supervisor.stop()
        shutdown_tracing()

    app = FastAPI(
        title="Proactive Support — outreach",
        description="Turns explained scores into outreach tasks under a readable policy, "
        "with an officer's review before any letter.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.policy = policy
    app.state.engine = engine
    app.state.readiness = readiness
    app.state.relay = relay
    app.state.counters = counters
    app.include_router(router)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,stats")
    return app
