"""The contact directory: ingest's identity vault, asked over HTTP for one approved task.

Contract: `GET {ingest_url}/internal/v1/vault/{resident_key}?task_id={task_id}` with
`Authorization: Bearer {service_token}` answers `{"display_name", "address_lines",
"postcode", "preferred_language"}`. ingest audit-logs every call. 404 (no such resident)
is a final answer. 403 (not approved, or opted out) is asked again a few times before it
is taken as final, because ingest learns of an approval from the same topic notify reads
and may simply not have seen it yet; 5xx and network errors are retried with a backoff; 401 means our own token is wrong, which no retry fixes and no
letter should be dropped for, so it stops the consumer until someone fixes the setting.

The answer is personal data: it is returned in memory, never logged, stored or put on a span.
"""

from __future__ import annotations

import uuid
from typing import Protocol

import httpx
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from notify.domain.letter import Contact

tracer = trace.get_tracer("notify.vault")
VAULT_PATH = "/internal/v1/vault/{resident_key}"


class ContactUnavailable(Exception):
    """The vault gave a final answer that there is no contact for us: record it, send nothing."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class VaultUnauthorised(RuntimeError):
    """The vault refused our service token: a setting to fix, not a letter to drop."""


class VaultUnavailable(RuntimeError):
    """The vault did not answer properly after every retry."""


class ContactDirectory(Protocol):
    async def contact_for(self, resident_key: str, task_id: uuid.UUID) -> Contact: ...


class _VaultAnswer(BaseModel):
    display_name: str
    address_lines: list[str]
    postcode: str
    preferred_language: str | None = None


class VaultContactDirectory:
    def __init__(
        self,
        base_url: str,
        service_token: str,
        *,
        client: httpx.AsyncClient | None = None,
        attempts: int = 4,
        timeout_s: float = 5.0,
        backoff_s: float = 0.2,
    ) -> None:
        self._client = client or httpx.AsyncClient(timeout=timeout_s)
        self._base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"Bearer {service_token}"}
        self._attempts = attempts
        self._backoff_s = backoff_s

    async def aclose(self) -> None:
        await self._client.aclose()

    async def contact_for(self, resident_key: str, task_id: uuid.UUID) -> Contact:
        url = self._base_url + VAULT_PATH.format(resident_key=resident_key)
        with tracer.start_as_current_span(
            "GET vault contact",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": "GET", "url.template": VAULT_PATH},
        ) as span:
            response = await self._get_with_retries(url, task_id, span)
            span.set_attribute("http.response.status_code", response.status_code)
            return self._read(response)

    async def _get_with_retries(
        self, url: str, task_id: uuid.UUID, span: trace.Span
    ) -> httpx.Response:
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._backoff_s, max=5),
            retry=retry_if_exception_type((httpx.TransportError, _ServerError, _NotApprovedYet)),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    span.set_attribute(
                        "http.request.resend_count", attempt.retry_state.attempt_number - 1
                    )
                    response = await self._client.get(
                        url, params={"task_id": str(task_id)}, headers=self._headers
                    )
                    if response.status_code >= 500:
                        raise _ServerError(response.status_code)
                    if response.status_code == 403:
                        raise _NotApprovedYet(response)
                    return response
        except _NotApprovedYet as refused:
            return refused.response
        except _ServerError as error:
            raise VaultUnavailable(
                f"the vault answered {error.status} {self._attempts} times"
            ) from None
        except httpx.TransportError as error:
            raise VaultUnavailable(
                f"the vault could not be reached after {self._attempts} tries: {type(error).__name__}"
            ) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    @staticmethod
    def _read(response: httpx.Response) -> Contact:
        if response.status_code == 401:
            raise VaultUnauthorised("the vault refused notify's service token (401)")
        if response.status_code == 403:
            raise ContactUnavailable("contact_refused", "the vault refused contact details (403)")
        if response.status_code == 404:
            raise ContactUnavailable("contact_not_found", "the vault has no such resident (404)")
        if response.status_code != 200:
            raise ContactUnavailable(
                "contact_invalid", f"the vault answered {response.status_code} unexpectedly"
            )
        try:
            answer = _VaultAnswer.model_validate_json(response.content)
        except ValidationError as error:
            # The fields that failed, never their values: those may be personal.
            fields = sorted({".".join(str(p) for p in e["loc"]) for e in error.errors()})
            raise ContactUnavailable(
                "contact_invalid", f"the vault's answer broke the contract at: {', '.join(fields)}"
            ) from None
        if (
            not answer.display_name.strip()
            or not answer.postcode.strip()
            or not answer.address_lines
        ):
            raise ContactUnavailable("contact_invalid", "the vault's answer has no usable address")
        return Contact(
            display_name=answer.display_name,
            address_lines=tuple(answer.address_lines),
            postcode=answer.postcode,
            preferred_language=answer.preferred_language,
        )


class _ServerError(Exception):
    def __init__(self, status: int) -> None:
        super().__init__(f"vault answered {status}")
        self.status = status


class _NotApprovedYet(Exception):
    def __init__(self, response: httpx.Response) -> None:
        super().__init__("vault answered 403")
        self.response = response
