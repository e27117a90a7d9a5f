"""Guards in front of the routes: a cap on request size, and a rate limit per API key."""

from __future__ import annotations

import json

from limits import parse, storage, strategies
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyTooLarge(Exception):
    pass


class MaxBodySize:
    """Answer 413 for a body over the limit, whether or not it declared its length, before
    any of it is parsed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "detail": f"The request body is larger than {self.max_bytes} bytes; send smaller batches."
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})


class KeyRateLimit:
    """A fixed-window rate limit per API key (in memory: per process)."""

    def __init__(self, limit: str) -> None:
        self.limit = parse(limit)
        self.limiter = strategies.FixedWindowRateLimiter(storage.MemoryStorage())

    def allow(self, key_hash: str) -> bool:
        return self.limiter.hit(self.limit, key_hash)

    def retry_after_s(self, key_hash: str) -> int:
        import time

        reset = self.limiter.get_window_stats(self.limit, key_hash).reset_time
        return max(1, int(reset - time.time()) + 1)
