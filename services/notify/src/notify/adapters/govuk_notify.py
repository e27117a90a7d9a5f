"""GOV.UK Notify through its official Python client, made safe to lean on.

- Every request is paced to stay under the key's rate limit (3,000 a minute) and goes
  through a circuit breaker, so an outage makes us wait instead of hammering Notify.
- 5xx answers, timeouts, lost connections and 429 `RateLimitError` are retried with
  exponential backoff and jitter; a 429 also pauses every other request (honouring a
  `Retry-After` header when one is sent). A 429 `TooManyRequestsError` (the daily limit)
  is not retried: nothing will change before midnight.
- A 400 is Notify refusing this request for good (`NotifyRejected`); a 403 means our key
  or service is wrong (`NotifyUnauthorised`), which no retry fixes and no letter should be
  dropped for.
- A letter is never posted twice: before any repeat of the POST we ask Notify whether a
  letter with our reference already exists (`GET /v2/notifications?reference=`), since a
  request that timed out may still have arrived.

The client is synchronous (requests), so calls run in a worker thread, one client each
(the client says it is not thread-safe).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable
from io import BytesIO
from typing import Any, TypeVar

import pybreaker
from notifications_python_client.errors import APIError
from notifications_python_client.notifications import NotificationsAPIClient
from opentelemetry import trace
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from notify.domain.notify_key import NotifyKey

log = logging.getLogger(__name__)
tracer = trace.get_tracer("notify.govuk_notify")
T = TypeVar("T")
Answer = dict[str, Any]

# What GOV.UK Notify documents for letters; the rest are the email and text statuses.
LETTER_STATUSES = frozenset(
    {
        "accepted",
        "received",
        "cancelled",
        "technical-failure",
        "permanent-failure",
        "pending-virus-check",
        "virus-scan-failed",
        "validation-failed",
    }
)
FINAL_LETTER_STATUSES = frozenset(
    {
        "received",
        "cancelled",
        "technical-failure",
        "permanent-failure",
        "virus-scan-failed",
        "validation-failed",
    }
)
FAILED_LETTER_STATUSES = frozenset(
    {"technical-failure", "permanent-failure", "virus-scan-failed", "validation-failed"}
)


class NotifyRejected(Exception):
    """Notify refused this request (400): sending it again would be refused again."""

    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(f"{status} {error}: {message}")
        self.status = status
        self.error = error
        self.message = message


class NotifyUnauthorised(RuntimeError):
    """Notify refused our key or our service (403): a setting to fix, not a letter to drop."""


class NotifyUnavailable(RuntimeError):
    """Notify did not answer properly after every retry, the breaker is open, or the day's
    limit is reached: try the whole delivery again later."""


class NotifyNotFound(Exception):
    pass


class _Transient(Exception):
    def __init__(self, reason: str, retry_after_s: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after_s = retry_after_s


class Pacer:
    """Spaces requests evenly under the rate limit; `pause` holds every request back."""

    def __init__(self, per_minute: int) -> None:
        self._interval = 60.0 / per_minute
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def pause(self, seconds: float) -> None:
        self._next = max(self._next, time.monotonic() + seconds)


class GovukNotify:
    def __init__(
        self,
        key: NotifyKey,
        base_url: str,
        *,
        timeout_s: float = 30.0,
        attempts: int = 5,
        backoff_s: float = 1.0,
        rate_per_minute: int = 3000,
        breaker_failures: int = 5,
        breaker_reset_s: float = 60.0,
    ) -> None:
        self._key = key
        self._base_url = base_url.rstrip("/")
        self._timeout_s = timeout_s
        self.attempts = attempts
        self._backoff_s = backoff_s
        self.pacer = Pacer(rate_per_minute)
        # Only Notify being unwell counts towards opening the breaker, not its answers.
        self.breaker = pybreaker.CircuitBreaker(
            fail_max=breaker_failures,
            reset_timeout=breaker_reset_s,
            exclude=[NotifyRejected, NotifyUnauthorised, NotifyNotFound],
            name="govuk-notify",
        )

    # The calls notify makes.

    async def send_precompiled_letter(
        self, reference: str, pdf: bytes, postage: str, *, maybe_sent: bool
    ) -> Answer:
        return await self.send_once(
            "POST precompiled letter",
            reference,
            lambda client: client.send_precompiled_letter_notification(
                reference=reference, pdf_file=BytesIO(pdf), postage=postage
            ),
            maybe_sent=maybe_sent,
        )

    async def send_template_letter(
        self,
        reference: str,
        template_id: str,
        personalisation: dict[str, Any],
        *,
        maybe_sent: bool,
    ) -> Answer:
        return await self.send_once(
            "POST letter",
            reference,
            lambda client: client.send_letter_notification(
                template_id=template_id, personalisation=personalisation, reference=reference
            ),
            maybe_sent=maybe_sent,
        )

    async def letter_with_reference(self, reference: str) -> Answer | None:
        answer = await self.call(
            "GET notifications by reference",
            lambda client: client.get_all_notifications(
                template_type="letter", reference=reference
            ),
        )
        matches = [
            item for item in answer.get("notifications", []) if item.get("reference") == reference
        ]
        return matches[-1] if matches else None  # newest first: the last is the first sent

    async def notification(self, notification_id: str) -> Answer:
        return await self.call(
            "GET notification", lambda client: client.get_notification_by_id(notification_id)
        )

    async def send_email(
        self, email_address: str, template_id: str, personalisation: dict[str, Any], reference: str
    ) -> Answer:
        return await self.call(
            "POST email",
            lambda client: client.send_email_notification(
                email_address=email_address,
                template_id=template_id,
                personalisation=personalisation,
                reference=reference,
            ),
        )

    # How every call is made.

    async def send_once(
        self,
        what: str,
        reference: str,
        post: Callable[[NotificationsAPIClient], Answer],
        *,
        maybe_sent: bool,
    ) -> Answer:
        """POST, retrying transient failures, but never before checking the last try missed."""
        with tracer.start_as_current_span(
            what, kind=trace.SpanKind.CLIENT, attributes={"notify.reference": reference}
        ) as span:
            for attempt in range(1, self.attempts + 1):
                if maybe_sent or attempt > 1:
                    earlier = await self.letter_with_reference(reference)
                    if earlier is not None:
                        span.set_attribute("notify.found_earlier_send", True)
                        log.info("Notify already had letter %s: not sending it again", reference)
                        return earlier
                span.set_attribute("http.request.resend_count", attempt - 1)
                try:
                    await self.pacer.wait()
                    return await asyncio.to_thread(self._attempt, post)
                except _Transient as error:
                    if attempt == self.attempts:
                        raise NotifyUnavailable(
                            f"GOV.UK Notify did not take letter {reference} after "
                            f"{self.attempts} tries: {error}"
                        ) from None
                    pause = self._pause(attempt, error)
                    log.warning("Notify %s failed (%s); trying again in %.1fs", what, error, pause)
                    await asyncio.sleep(pause)
            raise AssertionError("unreachable: the loop returns or raises")

    async def call(self, what: str, request: Callable[[NotificationsAPIClient], T]) -> T:
        """A request that is safe to repeat, with retries."""
        with tracer.start_as_current_span(what, kind=trace.SpanKind.CLIENT) as span:
            retrying = AsyncRetrying(
                stop=stop_after_attempt(self.attempts),
                wait=self._wait,
                retry=retry_if_exception_type(_Transient),
                reraise=True,
            )
            try:
                async for attempt in retrying:
                    with attempt:
                        span.set_attribute(
                            "http.request.resend_count", attempt.retry_state.attempt_number - 1
                        )
                        await self.pacer.wait()
                        return await asyncio.to_thread(self._attempt, request)
            except _Transient as error:
                raise NotifyUnavailable(
                    f"GOV.UK Notify {what} failed {self.attempts} times: {error}"
                ) from None
            raise AssertionError("unreachable: tenacity either returns or raises")

    def _attempt(self, request: Callable[[NotificationsAPIClient], T]) -> T:
        client = NotificationsAPIClient(
            self._key.full, base_url=self._base_url, timeout=self._timeout_s
        )
        try:
            return self.breaker.call(self._classified, request, client)
        except pybreaker.CircuitBreakerError:
            raise NotifyUnavailable(
                "GOV.UK Notify's circuit breaker is open after repeated failures; "
                f"it is tried again {self.breaker.reset_timeout:.0f}s after it opened"
            ) from None
        finally:
            client.request_session.close()

    def _classified(
        self, request: Callable[[NotificationsAPIClient], T], client: NotificationsAPIClient
    ) -> T:
        try:
            return request(client)
        except APIError as error:
            raise self._classify(error) from None

    def _classify(self, error: APIError) -> Exception:
        response = error.response
        if response is None:
            return _Transient("no answer (timeout or connection failure)")
        status = response.status_code
        kind, message = _error_of(response)
        if status == 429:
            if kind == "TooManyRequestsError":
                return NotifyUnavailable(f"GOV.UK Notify's daily limit is reached: {message}")
            retry_after = _retry_after(response.headers.get("Retry-After"))
            self.pacer.pause(retry_after or self._backoff_s)
            return _Transient(f"429 {kind}", retry_after)
        if status >= 500:
            return _Transient(f"{status} {kind}")
        if status == 403:
            return NotifyUnauthorised(f"GOV.UK Notify refused our API key (403 {kind}: {message})")
        if status == 404:
            return NotifyNotFound(message)
        if 200 <= status < 300:
            return _Transient(f"{status} with a body that is not JSON")
        return NotifyRejected(status, kind, message)

    def _pause(self, attempt: int, error: BaseException | None) -> float:
        base = min(self._backoff_s * 2 ** (attempt - 1), 60.0)
        pause = base / 2 + random.uniform(0, base / 2)  # "equal jitter"
        if isinstance(error, _Transient) and error.retry_after_s:
            pause = max(pause, error.retry_after_s)
        return pause

    def _wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        return self._pause(state.attempt_number, error)


def _error_of(response: Any) -> tuple[str, str]:
    """Notify's error body: {"errors": [{"error": ..., "message": ...}], "status_code": ...}."""
    try:
        body = response.json()
        first = body["errors"][0]
        return str(first.get("error", "Error")), str(first.get("message", ""))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "Error", f"an answer without Notify's error body ({response.status_code})"


def _retry_after(header: str | None) -> float | None:
    try:
        return max(float(header), 0.0) if header else None
    except ValueError:
        return None
