"""What every HTTP service does the same way: keep its Kafka consumers running, and say
whether it is healthy and ready."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class Readiness:
    """What `/readyz` reports: every named part must be ready."""

    parts: dict[str, bool] = field(default_factory=dict)

    def set(self, part: str, ready: bool) -> None:
        self.parts[part] = ready

    @property
    def ready(self) -> bool:
        return bool(self.parts) and all(self.parts.values())


class Supervisor:
    """Runs long-lived loops (consumers, relays) and restarts one that fails, after a pause.

    A consumer that died on a broker or database error has not committed what it was
    handling, so restarting it re-reads those records: at-least-once, never lost.
    """

    def __init__(self, readiness: Readiness, restart_delay_s: float = 2.0) -> None:
        self.readiness = readiness
        self.restart_delay_s = restart_delay_s
        self.stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def run(self, name: str, loop: Callable[[asyncio.Event], Awaitable[None]]) -> None:
        self.readiness.set(name, False)
        self._tasks.append(asyncio.create_task(self._keep_running(name, loop), name=name))

    async def _keep_running(
        self, name: str, loop: Callable[[asyncio.Event], Awaitable[None]]
    ) -> None:
        while not self.stopping.is_set():
            try:
                await loop(self.stopping)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("%s failed; restarting in %.0fs", name, self.restart_delay_s)
            self.readiness.set(name, False)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), self.restart_delay_s)

    async def stop(self, timeout_s: float = 10.0) -> None:
        self.stopping.set()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=timeout_s)
            for task in pending:
                task.cancel()
        self._tasks.clear()


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error answers a route gives, so that clients (and the
    schemathesis tests) know every status code it may return."""
    meanings = {
        400: "The body could not be read",
        401: "No valid token or API key",
        403: "Not allowed for this caller",
        404: "Not found",
        409: "In a state that does not allow this",
        413: "The body is too large",
        422: "Not valid: every problem is named",
        429: "Too many requests; see Retry-After",
        503: "Not ready",
    }
    schema = {
        "type": "object",
        "properties": {"detail": {}},
        "required": ["detail"],
    }
    return {
        code: {"description": meanings[code], "content": {"application/json": {"schema": schema}}}
        for code in codes
    }


DATABASE_RETRY_AFTER_S = 5


def answer_database_outages(app: Any) -> None:
    """While the database is unreachable, answer 503 with Retry-After (a client's cue to
    try again) instead of a 500 and a traceback per request; nothing was committed, so a
    retry is safe, and the log says what happened in one line."""
    from fastapi import Request
    from fastapi.responses import JSONResponse
    from sqlalchemy.exc import OperationalError

    async def unavailable(request: Request, error: Exception) -> JSONResponse:
        cause = getattr(error, "orig", None) or error
        log.warning("the database is unreachable (%s); answered 503", type(cause).__name__)
        return JSONResponse(
            {"detail": "The service's database is unavailable for a moment; try again shortly."},
            status_code=503,
            headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
        )

    app.add_exception_handler(OperationalError, unavailable)
