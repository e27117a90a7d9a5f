"""Wiring: real adapters by default, fakes when a test passes its own; the FastAPI app and its lifespan."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

from notify.adapters.channels import LetterChannel, NotifyLetterChannel, PdfLetterChannel
from notify.adapters.database import LetterStore
from notify.adapters.govuk_notify import GovukNotify
from notify.adapters.officer_email import NotifyEmailOfficerNotifier
from notify.adapters.publisher import KafkaDeliveryPublisher
from notify.adapters.vault import ContactDirectory, VaultContactDirectory
from notify.adapters.webhook import OfficerNotifier, WebhookOfficerNotifier
from notify.entrypoints.api import router
from notify.entrypoints.background import (
    DIGEST_SCHEDULER,
    STATUS_POLLER,
    digest_scheduler,
    status_poller,
)
from notify.entrypoints.consumer import (
    OPTOUTS_CONSUMER,
    TASKS_CONSUMER,
    optout_consumer,
    task_consumer,
)
from notify.handlers import Collaborators
from notify.migrations import prepare_database
from notify.settings import NotifySettings
from notify.templates import load_council_details, load_letter_template
from shared.database import make_engine
from shared.http import add_metrics_route
from shared.kafka import ensure_topics_if_reachable
from shared.service import Readiness, Supervisor, answer_database_outages
from shared.telemetry import flush_telemetry, instrument_database, setup_logging, setup_tracing

log = logging.getLogger(__name__)


def create_app(
    settings: NotifySettings | None = None,
    *,
    contacts: ContactDirectory | None = None,
    officers: OfficerNotifier | None = None,
) -> FastAPI:
    settings = settings or NotifySettings()
    settings.validate_for_start()
    store = LetterStore(make_engine(settings.database()))
    pdf_channel = PdfLetterChannel(settings.letters_dir)
    notify_api = _notify_api(settings)
    channel: LetterChannel = pdf_channel
    if settings.letter_channel == "govuk-notify" and notify_api is not None:
        channel = NotifyLetterChannel(
            notify_api,
            mode=settings.notify_letter_mode,
            postage=settings.notify_postage,
            template_id=settings.notify_letter_template_id,
        )
    readiness = Readiness()
    readiness.set(TASKS_CONSUMER, False)
    readiness.set(OPTOUTS_CONSUMER, False)
    council = load_council_details()
    template = load_letter_template()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        setup_tracing("notify", settings.data_dir, to_file=settings.traces_to_file)
        instrument_database(store.engine)
        setup_logging(settings.log_level)
        await asyncio.to_thread(prepare_database, store.engine, dev=settings.is_dev)
        await ensure_topics_if_reachable(settings.kafka_bootstrap)
        publisher = KafkaDeliveryPublisher(settings.kafka_bootstrap)
        owned_vault = (
            None
            if contacts
            else VaultContactDirectory(
                settings.ingest_url,
                settings.service_token,
                attempts=settings.vault_attempts,
                timeout_s=settings.vault_timeout_s,
            )
        )
        owned_officers = None if officers is not None else _officer_notifier(settings, notify_api)
        deps = Collaborators(
            store=store,
            contacts=contacts or owned_vault,  # type: ignore[arg-type]
            channel=channel,
            publisher=publisher,
            council=council,
            template=template,
            officers=officers or owned_officers,
            outreach_url=settings.outreach_url,
            notify_url=settings.notify_url,
            poll_interval_s=settings.notify_poll_interval_s,
            poll_days=settings.notify_poll_days,
            officer_digest=settings.officer_digest == "daily",
        )
        supervisor = Supervisor(readiness)
        supervisor.run(
            TASKS_CONSUMER,
            task_consumer(
                bootstrap=settings.kafka_bootstrap,
                group_id=settings.notify_consumer_group,
                deps=deps,
                readiness=readiness,
            ),
        )
        supervisor.run(
            OPTOUTS_CONSUMER,
            optout_consumer(
                bootstrap=settings.kafka_bootstrap,
                group_id=f"{settings.notify_consumer_group}-optouts",
                deps=deps,
                readiness=readiness,
            ),
        )
        # The poller is also the outbox relay, so it runs on the PDF channel too.
        supervisor.run(
            STATUS_POLLER,
            status_poller(deps, readiness, tick_s=min(settings.notify_poll_interval_s, 5.0)),
        )
        if deps.officer_digest:
            supervisor.run(
                DIGEST_SCHEDULER, digest_scheduler(deps, readiness, settings.officer_digest_hour)
            )
        log.info("notify started: letters go by %s", settings.letter_channel)
        try:
            yield
        finally:
            await supervisor.stop()
            await publisher.stop()
            for client in (owned_vault, owned_officers):
                if client is not None:
                    await client.aclose()
            flush_telemetry()
            store.engine.dispose()

    app = FastAPI(title="notify", summary="Letters and officer notifications", lifespan=lifespan)
    answer_database_outages(app)
    app.state.settings = settings
    app.state.store = store
    app.state.readiness = readiness
    app.state.pdf_channel = pdf_channel
    app.include_router(router)
    # Middleware must be added before the app starts, so this happens here rather than in the
    # lifespan; its tracer resolves to the provider that setup_tracing installs at start-up.
    add_metrics_route(app)
    FastAPIInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,stats,metrics")
    return app


def _notify_api(settings: NotifySettings) -> GovukNotify | None:
    key = settings.notify_key()
    if key is None:
        return None
    return GovukNotify(
        key,
        settings.notify_base_url,
        timeout_s=settings.notify_timeout_s,
        attempts=settings.notify_attempts,
        backoff_s=settings.notify_backoff_s,
        rate_per_minute=settings.notify_rate_per_minute,
        breaker_failures=settings.notify_breaker_failures,
        breaker_reset_s=settings.notify_breaker_reset_s,
    )


def _officer_notifier(
    settings: NotifySettings, notify_api: GovukNotify | None
) -> WebhookOfficerNotifier | NotifyEmailOfficerNotifier | None:
    """A Notify email when its template is set, else the webhook when its URL is, else none."""
    if settings.notify_officer_email_template_id and notify_api and settings.notify_officer_email:
        return NotifyEmailOfficerNotifier(
            notify_api, settings.notify_officer_email_template_id, settings.notify_officer_email
        )
    if settings.officer_webhook_url:
        return WebhookOfficerNotifier(settings.officer_webhook_url)
    return None
