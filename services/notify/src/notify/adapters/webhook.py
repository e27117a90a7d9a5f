"""Tells the approving team about a letter, by POSTing JSON to a webhook.

The body (see notify.domain.notices) has a `text` that Microsoft Teams and Slack incoming
webhooks show as it is, plus structured fields: the task id, team, due date, our reference
and links, never a name or an address. Transient failures are retried; a 4xx is a final
answer that is recorded.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

import httpx
from opentelemetry import trace
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_attempt, wait_exponential

tracer = trace.get_tracer("notify.webhook")


NoticeChannel = Literal["webhook", "govuk_notify"]


class OfficerNotifier(Protocol):
    channel: NoticeChannel

    async def notify(self, notice: dict[str, Any]) -> str:
        """Send the notice; returns "sent", or the reason it was refused for good."""
        ...


class WebhookUnavailable(RuntimeError):
    pass


class _Retryable(Exception):
    pass


class WebhookOfficerNotifier:
    channel: NoticeChannel = "webhook"

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        attempts: int = 4,
        timeout_s: float = 5.0,
        backoff_s: float = 0.2,
    ) -> None:
        self._url = url
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def aclose(self) -> None:
        await self._client.aclose()

    async def notify(self, notice: dict[str, Any]) -> str:
        with tracer.start_as_current_span(
            "POST officer webhook",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": "POST"},
        ) as span:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self._attempts),
                wait=wait_exponential(multiplier=self._backoff_s, max=5),
                retry=retry_if_exception_type((httpx.TransportError, _Retryable)),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        response = await self._client.post(self._url, json=notice)
                        span.set_attribute("http.response.status_code", response.status_code)
                        if response.status_code >= 500 or response.status_code == 429:
                            raise _Retryable(str(response.status_code))
            except (httpx.TransportError, _Retryable) as error:
                raise WebhookUnavailable(
                    f"the officer webhook failed {self._attempts} times: {error!s}"
                ) from None
            if response.is_success:
                return "sent"
            return f"refused ({response.status_code})"
