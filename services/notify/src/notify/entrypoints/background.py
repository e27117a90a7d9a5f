"""notify's timed loops: Notify status polling (with the outbox relay) and the daily digest."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta

from notify.adapters.govuk_notify import NotifyUnauthorised, NotifyUnavailable
from notify.handlers import Collaborators, poll_letter_statuses, publish_pending, send_daily_digest
from shared.service import Readiness

log = logging.getLogger(__name__)

STATUS_POLLER = "notify-status-poller"
DIGEST_SCHEDULER = "officer-digest"


def status_poller(
    deps: Collaborators, readiness: Readiness, tick_s: float
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """Every tick: ask Notify about letters due a check, and publish anything left unpublished.

    Notify being away is not notify being broken: the poller says so and asks again later.
    """

    async def run(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            readiness.set(STATUS_POLLER, True)
            try:
                await poll_letter_statuses(deps)
            except (NotifyUnavailable, NotifyUnauthorised) as error:
                log.warning("letter statuses not checked this time: %s", error)
            await publish_pending(deps)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), tick_s)

    return run


def digest_scheduler(
    deps: Collaborators, readiness: Readiness, hour_utc: int, tick_s: float = 60.0
) -> Callable[[asyncio.Event], Awaitable[None]]:
    """From `hour_utc` each day, send yesterday's digest once (a restart does not repeat it)."""

    async def run(stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            readiness.set(DIGEST_SCHEDULER, True)
            now = deps.now()
            if now.hour >= hour_utc:
                await send_daily_digest(deps, now.date() - timedelta(days=1))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stopping.wait(), tick_s)

    return run
