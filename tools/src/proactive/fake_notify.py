"""A stand-in for GOV.UK Notify on a local port, for the fault-injection run.

It follows the public API (https://docs.notifications.service.gov.uk/rest-api.html) for
what notify uses: the JWT (HS256, `iss` the service id, `iat` within 30 seconds), POST
/v2/notifications/letter (precompiled and templated), GET /v2/notifications/{id} and GET
/v2/notifications with its `template_type`, `status` and `reference` filters, letter
statuses that move on as they are polled, and Notify's error body
`{"errors": [{"error", "message"}], "status_code"}`.

`outage` is the switch: `"500"` answers every request with a server error, `"429"` with
`RateLimitError`, and `"timeout"` takes a letter but holds every answer back for longer
than the caller waits. `posts_by_reference` counts every letter Notify took, so a letter
sent twice shows up here whatever notify's own records say.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import uuid
from collections import Counter
from typing import Any, Literal

import jwt
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from proactive.broker import free_port

Outage = Literal["none", "500", "429", "timeout"]
SERVICE_ID = "5d8a1c1e-6f7b-4b8e-9d7e-3f0c2a4b6e91"
SECRET = "0f2e4d6c-8b9a-4c1d-9e3f-5a7b9c1d3e5f"
API_KEY = f"proactive_faults-{SERVICE_ID}-{SECRET}"
LETTER_TEMPLATE_ID = "c3a8f1de-2b4c-4d6e-8f0a-1b3c5d7e9f2a"
NEXT_STATUS = {"pending-virus-check": "accepted", "accepted": "received"}
POSTAGE = ("first", "second", "economy")


class NotifyError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


def error_body(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse(
        {"errors": [{"error": error, "message": message}], "status_code": status},
        status_code=status,
    )


class FakeNotify:
    def __init__(self, stall_s: float = 6.0) -> None:
        self.outage: Outage = "none"
        self.stall_s = stall_s
        self.notifications: list[dict[str, Any]] = []
        self.posts_by_reference: Counter[str] = Counter()
        self.refused_by_outage: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.app = self._build()

    @staticmethod
    def check_token(authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise NotifyError(401, "AuthError", "Unauthorized: authentication token must be provided")  # fmt: skip
        token = authorization.removeprefix("Bearer ")
        try:
            claims = jwt.decode(
                token, SECRET, algorithms=["HS256"], options={"require": ["iss", "iat"]}
            )
        except jwt.PyJWTError as problem:
            raise NotifyError(403, "AuthError", f"Invalid token: {problem}") from None
        if claims["iss"] != SERVICE_ID:
            raise NotifyError(403, "AuthError", "Invalid token: service not found")
        if abs(time.time() - int(claims["iat"])) > 30:
            raise NotifyError(403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds")  # fmt: skip

    def letters_sent_more_than_once(self) -> dict[str, int]:
        return {ref: n for ref, n in self.posts_by_reference.items() if n > 1}

    def _take_letter(self, body: dict[str, Any]) -> dict[str, Any]:
        reference = body.get("reference")
        if "content" in body:
            if not reference:
                raise NotifyError(400, "ValidationError", "reference is a required property")
            postage = body.get("postage", "second")
            if postage not in POSTAGE:
                raise NotifyError(400, "ValidationError", "postage invalid. It must be either first, second or economy.")  # fmt: skip
            try:
                pdf = base64.b64decode(body["content"], validate=True)
            except ValueError:
                pdf = b""
            if not pdf.startswith(b"%PDF-"):
                raise NotifyError(400, "BadRequestError", "Letter content is not a valid PDF")
            status = "pending-virus-check"
        else:
            if body.get("template_id") != LETTER_TEMPLATE_ID:
                raise NotifyError(400, "BadRequestError", "Template not found")
            fields = body.get("personalisation") or {}
            if not isinstance(fields, dict) or "address_line_1" not in fields:
                raise NotifyError(400, "ValidationError", "personalisation address_line_1 is a required property")  # fmt: skip
            postage, status = "second", "accepted"
        notification = {
            "id": str(uuid.uuid4()),
            "reference": reference,
            "type": "letter",
            "status": status,
            "postage": postage,
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime()),
        }
        with self._lock:
            self.notifications.append(notification)
            self.posts_by_reference[str(reference)] += 1
        return notification

    def _build(self) -> FastAPI:
        app = FastAPI(title="fake GOV.UK Notify")
        fake = self

        @app.middleware("http")
        async def rules(request: Request, call_next: Any) -> Any:
            try:
                fake.check_token(request.headers.get("authorization"))
            except NotifyError as problem:
                return error_body(problem.status, problem.error, problem.message)
            if fake.outage == "500":
                fake.refused_by_outage["500"] += 1
                return error_body(500, "Exception", "Internal server error")
            if fake.outage == "429":
                fake.refused_by_outage["429"] += 1
                return error_body(429, "RateLimitError", "Exceeded rate limit for key type LIVE of 3000 requests per 60 seconds")  # fmt: skip
            stalled = fake.outage == "timeout"
            try:
                answer = await call_next(request)
            except NotifyError as problem:
                answer = error_body(problem.status, problem.error, problem.message)
            if stalled:
                # Notify did the work; the answer comes too late for the caller.
                fake.refused_by_outage["timeout"] += 1
                await asyncio.sleep(fake.stall_s)
            return answer

        @app.exception_handler(NotifyError)
        async def notify_error(_request: Request, problem: NotifyError) -> JSONResponse:
            return error_body(problem.status, problem.error, problem.message)

        @app.post("/v2/notifications/letter", status_code=201)
        async def send_letter(request: Request) -> dict[str, Any]:
            body = await request.json()
            if not isinstance(body, dict):
                raise NotifyError(400, "ValidationError", "Request body must be an object")
            notification = fake._take_letter(body)
            return {
                "id": notification["id"],
                "reference": notification["reference"],
                "postage": notification["postage"],
                "content": {"subject": "Proactive Support", "body": ""},
                "uri": f"{request.base_url}v2/notifications/{notification['id']}",
                "template": {"id": LETTER_TEMPLATE_ID, "version": 1, "uri": ""},
            }

        @app.get("/v2/notifications/{notification_id}")
        async def one(notification_id: str) -> dict[str, Any]:
            for notification in fake.notifications:
                if notification["id"] == notification_id:
                    notification["status"] = NEXT_STATUS.get(
                        notification["status"], notification["status"]
                    )
                    return notification
            raise NotifyError(404, "NoResultFound", "No result found")

        @app.get("/v2/notifications")
        async def many(request: Request) -> dict[str, Any]:
            query = request.query_params
            kind, statuses = query.get("template_type"), query.getlist("status")
            found = [
                n
                for n in reversed(fake.notifications)  # newest first, as Notify lists them
                if (not kind or n["type"] == kind)
                and (not statuses or n["status"] in statuses)
                and ("reference" not in query or n["reference"] == query["reference"])
            ][:250]
            return {"notifications": found, "links": {"current": str(request.url)}}

        return app


class ServedFakeNotify:
    """The fake under uvicorn in a background thread, on a free port."""

    def __init__(self, stall_s: float = 6.0) -> None:
        self.fake = FakeNotify(stall_s)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(self.fake.app, host="127.0.0.1", port=self.port, log_level="error")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout_s: float = 30.0) -> ServedFakeNotify:
        self._thread.start()
        deadline = time.monotonic() + timeout_s
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake GOV.UK Notify did not start")
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
