"""Wiring: settings, policy, database, outbox relay, the consumers, the housekeeping job,
the JSON API, the officer pages, the ops view and the residents' pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from sqlalchemy.engine import Engine
from starlette.middleware.sessions import SessionMiddleware

from outreach import handlers
from outreach.adapters.peers import Peers
from outreach.adapters.traces import TraceStore
from outreach.adapters.vault import PostcodeChecker
from outreach.domain.policy import Policy, load_policy
from outreach.entrypoints import api, fairness, http, oidc, ops, public, transparency, web
from outreach.entrypoints.consumers import (
    deliveries_consumer,
    flags_consumer,
    optouts_consumer,
    scores_consumer,
)
from outreach.entrypoints.login_limits import LoginLimits
from outreach.entrypoints.security import LoginRequired, SecurityHeaders, Signer, end_session
from outreach.entrypoints.templating import GOVUK_ASSETS, STATIC, make_templates, page_context
from outreach.migrations import prepare_database
from outreach.settings import OutreachSettings
from shared.database import database_url, make_engine
from shared.http import add_metrics_route, probe_routes
from shared.kafka import ensure_topics_if_reachable
from shared.outbox import OutboxRelay
from shared.service import Readiness, Supervisor, answer_database_outages
from shared.telemetry import flush_telemetry, instrument_database, setup_logging, setup_tracing

log = logging.getLogger(__name__)


def housekeeping(
    engine: Engine, policy: Policy, every_s: float, wake_relay: asyncio.Event
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """The scheduled job: release held tasks when a team has room (a new week, a
    rejection), and purge what is past the policy's retention periods."""

    async def run(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if await asyncio.to_thread(handlers.release_held, engine, policy):
                wake_relay.set()
            await asyncio.to_thread(handlers.purge, engine, policy)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), every_s)

    return run


def create_app(settings: OutreachSettings | None = None) -> FastAPI:
    settings = (settings or OutreachSettings()).check()
    policy = load_policy(settings.policy_path)
    engine = make_engine(
        database_url(settings.outreach_database_url, settings.data_dir, "outreach")
    )
    prepare_database(engine, dev=settings.is_dev)
    readiness = Readiness()
    relay = OutboxRelay(engine, settings.kafka_bootstrap)
    counters = {"scores_seen": 0}

    def ready(part: str) -> Callable[[], None]:
        return lambda: readiness.set(part, True)

    async def relay_loop(stopping: asyncio.Event) -> None:
        readiness.set("outbox-relay", True)
        await relay.run(stopping)

    async def housekeeping_loop(stopping: asyncio.Event) -> None:
        readiness.set("housekeeping", True)
        await housekeeping(engine, policy, settings.outreach_housekeeping_seconds, relay.wake)(
            stopping
        )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        setup_logging(settings.log_level)
        setup_tracing("outreach", settings.data_dir, to_file=settings.traces_to_file)
        instrument_database(engine)
        await ensure_topics_if_reachable(settings.kafka_bootstrap)
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
                engine, settings.kafka_bootstrap, policy, relay.wake, ready("deliveries-consumer")
            ),
            "optouts-consumer": optouts_consumer(
                engine, settings.kafka_bootstrap, relay.wake, ready("optouts-consumer")
            ),
            "flags-consumer": flags_consumer(
                engine, settings.kafka_bootstrap, policy, relay.wake, ready("flags-consumer")
            ),
            "housekeeping": housekeeping_loop,
        }
        for name, loop in loops.items():
            supervisor.run(name, loop)
        yield
        await supervisor.stop()
        flush_telemetry()

    app = FastAPI(
        title="Proactive Support — outreach",
        description="Turns explained scores into outreach tasks under a readable policy, "
        "with an officer's review before any letter. Sign in for a token at `/v1/token` "
        "(development users) and send it as `Authorization: Bearer <token>`.",
        version="0.2.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.policy = policy
    app.state.engine = engine
    app.state.readiness = readiness
    app.state.relay = relay
    app.state.counters = counters
    app.state.signer = Signer(settings)
    app.state.login_limits = LoginLimits(settings)
    app.state.identity_provider = oidc.IdentityProvider(settings) if settings.oidc_sign_in else None
    app.state.templates = make_templates()
    app.state.postcodes = PostcodeChecker(settings.ingest_url, settings.service_token)
    app.state.peers = Peers(settings.service_urls, settings.service_token, settings.ops_timeout_s)
    app.state.traces = TraceStore(settings.data_dir / "traces")

    app.add_middleware(SecurityHeaders)
    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.outreach_session_secret,
        session_cookie=oidc.FLOW_COOKIE,
        max_age=oidc.FLOW_MAX_AGE_S,
        path=oidc.FLOW_COOKIE_PATH,
        same_site="lax",
        https_only=settings.cookies_secure,
    )
    app.include_router(http.router)
    app.include_router(api.router)
    app.include_router(web.router)
    app.include_router(oidc.router)
    app.include_router(ops.router)
    app.include_router(public.router)
    app.include_router(fairness.router)
    app.include_router(transparency.router)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    if (GOVUK_ASSETS / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=GOVUK_ASSETS / "assets"), name="govuk-assets")
    else:
        log.warning(
            "GOV.UK Frontend is not installed, so the pages are unstyled: "
            "run services/outreach/scripts/fetch_govuk_frontend.sh"
        )

    answer_database_outages(app)

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, refusal: LoginRequired) -> Response:
        target = request.url.path if request.method == "GET" else "/officer/tasks"
        query = {"next": target, **({"expired": refusal.expired} if refusal.expired else {})}
        response = RedirectResponse(f"/officer/login?{urlencode(query)}", 303)
        if refusal.expired:
            end_session(response)
        return response

    @app.exception_handler(HTTPException)
    async def as_page(request: Request, error: HTTPException) -> Response:
        if request.url.path.startswith("/v1/") or "text/html" not in request.headers.get(
            "accept", ""
        ):
            return await http_exception_handler(request, error)
        titles = {403: "You cannot do this", 404: "Page not found", 409: "This has changed"}
        return app.state.templates.TemplateResponse(
            request,
            "error.html",
            page_context(
                request,
                title=titles.get(error.status_code, "Sorry, there is a problem"),
                message=str(error.detail),
                officer_area=request.url.path.startswith(("/officer", "/ops")),
            ),
            status_code=error.status_code,
        )

    add_metrics_route(app)
    probe_routes(app)
    FastAPIInstrumentor.instrument_app(
        app, excluded_urls="healthz,readyz,stats,metrics,static,assets"
    )
    return app
