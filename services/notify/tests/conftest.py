"""Fixtures for notify's tests: an approved task, a fake vault that follows ingest's contract,
small hand-written fakes for the other collaborators, and a helper to serve an app on a port."""

from __future__ import annotations

import asyncio
import base64
import io
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import jinja2
import jwt
import pypdf
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse

from notify.adapters.channels import PdfLetterChannel
from notify.adapters.database import LetterStore
from notify.adapters.vault import VaultContactDirectory
from notify.domain.letter import Contact, CouncilDetails
from notify.handlers import Collaborators
from notify.templates import load_council_details, load_letter_template
from shared.database import make_engine
from shared.events import LetterSent, TaskChanged

SERVICE_TOKEN = "test-service-token-0123456789"
RESIDENT_KEY = "r_" + "a1" * 16
NAME = "Ms Amara Okonkwo-Example"
ADDRESS = ["Flat 2", "10 Heathway Court", "Dagenham"]
POSTCODE = "RM10 8ZZ"


@pytest.fixture
def council() -> CouncilDetails:
    return load_council_details()


@pytest.fixture
def template() -> jinja2.Template:
    return load_letter_template()


@pytest.fixture
def contact() -> Contact:
    return Contact(NAME, tuple(ADDRESS), POSTCODE, None)


def make_task(
    event_type: str = "TaskApproved",
    *,
    task_id: uuid.UUID | None = None,
    models: list[str] | None = None,
    tables: list[str] | None = None,
    resident_key: str = RESIDENT_KEY,
    team: str = "falls",
) -> TaskChanged:
    tables = (
        tables if tables is not None else ["health.ambulance_callouts", "housing.rent_accounts"]
    )
    return TaskChanged.model_validate(
        {
            "event_type": event_type,
            "occurred_at": "2025-03-03T09:00:00Z",
            "resident_key": resident_key,
            "source": "outreach",
            "task_id": str(task_id or uuid.uuid4()),
            "status": "approved" if event_type == "TaskApproved" else "proposed",
            "models": models or ["falls"],
            # Reason texts written the way a model card might: none of this may reach the letter.
            "reasons": [
                {
                    "feature": f"feature_{n}",
                    "text": "High risk score: 87% probability",
                    "contribution": 0.4,
                    "source_table": table,
                }
                for n, table in enumerate(tables)
            ],
            "team": team,
            "policy_version": "policy-1",
            "due_by": "2025-03-17",
            "actor": "officer-42",
        }
    )


@pytest.fixture
def task_factory() -> Callable[..., TaskChanged]:
    return make_task


def fake_vault(
    contacts: dict[str, dict[str, Any]],
    *,
    refused: set[str] | None = None,
    token: str = SERVICE_TOKEN,
    calls: list[str] | None = None,
) -> FastAPI:
    """ingest's vault, as its contract says: Bearer token, task_id, 403 / 404, a JSON contact."""
    app = FastAPI()

    @app.get("/internal/v1/vault/{resident_key}")
    def read_contact(
        resident_key: str, task_id: uuid.UUID, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        if calls is not None:
            calls.append(resident_key)
        if authorization != f"Bearer {token}":
            raise HTTPException(401, "bad service token")
        if refused and resident_key in refused:
            raise HTTPException(403, "this task is not approved for contact")
        if resident_key not in contacts:
            raise HTTPException(404, "no such resident")
        return contacts[resident_key]

    return app


def vault_contact() -> dict[str, Any]:
    return {
        "display_name": NAME,
        "address_lines": ADDRESS,
        "postcode": POSTCODE,
        "preferred_language": "pl",
    }


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[LetterSent] = []
        self.fail_next = 0

    async def publish(self, event: LetterSent) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("broker went away")
        self.events.append(event)


class FakeOfficers:
    channel = "webhook"

    def __init__(self) -> None:
        self.notices: list[dict[str, Any]] = []

    async def notify(self, notice: dict[str, Any]) -> str:
        self.notices.append(notice)
        return "sent"


class CountingPdfChannel(PdfLetterChannel):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.sent = 0

    async def send(self, letter: Any) -> str:
        self.sent += 1
        return await super().send(letter)


@pytest.fixture
def store(tmp_path: Path) -> LetterStore:
    store = LetterStore(make_engine(f"sqlite:///{tmp_path / 'notify.db'}"))
    store.create_tables()
    return store


@pytest.fixture
def deps_factory(
    tmp_path: Path, store: LetterStore, council: CouncilDetails, template: jinja2.Template
) -> Callable[..., Collaborators]:
    def build(
        vault_app: FastAPI | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        officers: Any = None,
        the_store: LetterStore | None = None,
    ) -> Collaborators:
        app = vault_app or fake_vault({RESIDENT_KEY: vault_contact()})
        client = httpx.AsyncClient(
            transport=transport or httpx.ASGITransport(app=app), base_url="http://vault"
        )
        return Collaborators(
            store=the_store or store,
            contacts=VaultContactDirectory(
                "http://vault", SERVICE_TOKEN, client=client, backoff_s=0.01
            ),
            channel=CountingPdfChannel(tmp_path / "letters"),
            publisher=FakePublisher(),
            council=council,
            template=template,
            officers=officers,
            today=lambda: date(2025, 3, 3),
        )

    return build


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class ServedApp:
    """An ASGI app under uvicorn in a background thread, on a free port."""

    def __init__(self, app: Any) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ServedApp:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], ServedApp]]:
    started: list[ServedApp] = []

    def start(app: Any) -> ServedApp:
        served = ServedApp(app).__enter__()
        started.append(served)
        return served

    yield start
    for served in reversed(started):
        served.__exit__()


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above, for test modules (which cannot import conftest under importlib mode)."""
    return SimpleNamespace(
        make_task=make_task,
        fake_vault=fake_vault,
        vault_contact=vault_contact,
        FakeOfficers=FakeOfficers,
        NAME=NAME,
        ADDRESS=ADDRESS,
        POSTCODE=POSTCODE,
        RESIDENT_KEY=RESIDENT_KEY,
        SERVICE_TOKEN=SERVICE_TOKEN,
    )


# --- A fake GOV.UK Notify, written from its public API documentation ------------------------
#
# https://docs.notifications.service.gov.uk/rest-api.html: the JWT (HS256, `iss` the service
# id, `iat` within 30 seconds), POST /v2/notifications/letter (templated and precompiled),
# POST /v2/notifications/email, GET /v2/notifications/{id}, GET /v2/notifications with its
# filters, the letter statuses, and the error bodies {"errors": [{"error", "message"}],
# "status_code"}. Every payload rule the documentation states is checked; a broken one gets
# the documented error, so a test that sends a bad request fails.

NOTIFY_SERVICE_ID = "26785a09-ab16-4eb0-8407-a37497a57506"
NOTIFY_SECRET = "3d844edf-8d35-48ac-975b-e847b4f122b0"
NOTIFY_KEY = f"proactive_test-{NOTIFY_SERVICE_ID}-{NOTIFY_SECRET}"
LETTER_TEMPLATE_ID = "64415853-cb86-4cc4-b597-2aaa94ef8c39"
EMAIL_TEMPLATE_ID = "f33517ff-2a88-4f6e-b855-c550268ce08a"
_NOTIFY_STATUSES = [
    "cancelled", "created", "sending", "sent", "delivered", "pending", "failed",
    "technical-failure", "temporary-failure", "permanent-failure", "pending-virus-check",
    "validation-failed", "virus-scan-failed", "returned-letter", "accepted", "received",
]  # fmt: skip
_FORBIDDEN_STARTS = tuple('@()=[]"\u201d\\/,<>')
_FAKE_POSTCODE = re.compile(r"^[A-Z]{1,2}[0-9][A-Z0-9]? ?[0-9][A-Z]{2}$")
_MM = 72 / 25.4


class NotifyError(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error, self.message = status, error, message


class FakeNotify:
    """State and behaviour; `app` is the HTTP face, served with `serve(fake.app)`."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self.pdfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.failures: list[tuple[str, int, str, str, dict[str, str]]] = []
        self.templates: dict[str, dict[str, Any]] = {
            LETTER_TEMPLATE_ID: {"type": "letter", "placeholders": ["name", "reference"]},
            EMAIL_TEMPLATE_ID: {"type": "email", "placeholders": ["text", "reference"]},
        }
        self.next_statuses: dict[str, list[str]] = {}  # by reference, scripted by a test
        self.stall_letters = threading.Event()
        self.release_stalled = threading.Event()
        self.letter_posts_received = threading.Event()
        self.app = self._build()

    def fail_next(
        self,
        status: int,
        error: str,
        message: str,
        *,
        times: int = 1,
        path: str = "/v2/",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.failures += [(path, status, error, message, headers or {})] * times

    def letters(self) -> list[dict[str, Any]]:
        return [n for n in self.notifications if n["type"] == "letter"]

    def emails(self) -> list[dict[str, Any]]:
        return [n for n in self.notifications if n["type"] == "email"]

    def pdf_text(self, notification_id: str) -> str:
        reader = pypdf.PdfReader(io.BytesIO(self.pdfs[notification_id]))
        return "\n".join(page.extract_text() for page in reader.pages)

    # The rules.

    @staticmethod
    def check_token(authorization: str | None) -> None:
        if not authorization or not authorization.startswith("Bearer "):
            raise NotifyError(
                401, "AuthError", "Unauthorized: authentication token must be provided"
            )
        token = authorization.removeprefix("Bearer ")
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise NotifyError(403, "AuthError", "Invalid token: signature") from None
        if header.get("alg") != "HS256" or header.get("typ") != "JWT":
            raise NotifyError(403, "AuthError", "Invalid token: algorithm used is not HS256")
        if "iss" not in claims:
            raise NotifyError(403, "AuthError", "Invalid token: iss field not provided")
        if "iat" not in claims:
            raise NotifyError(403, "AuthError", "Invalid token: iat field not provided")
        if claims["iss"] != NOTIFY_SERVICE_ID:
            raise NotifyError(403, "AuthError", "Invalid token: service not found")
        try:
            jwt.decode(token, NOTIFY_SECRET, algorithms=["HS256"], options={"verify_iat": False})
        except jwt.PyJWTError:
            raise NotifyError(403, "AuthError", "Invalid token: API key not found") from None
        if abs(time.time() - int(claims["iat"])) > 30:
            raise NotifyError(
                403, "AuthError", "Error: Your system clock must be accurate to within 30 seconds"
            )

    @staticmethod
    def _only(body: dict[str, Any], allowed: set[str]) -> None:
        extra = sorted(set(body) - allowed)
        if extra:
            raise NotifyError(
                400,
                "ValidationError",
                f"Additional properties are not allowed ({', '.join(extra)} was unexpected)",
            )

    @staticmethod
    def address_errors(lines: list[str]) -> list[str]:
        errors = []
        if len(lines) < 3:
            errors.append("Address must be at least 3 lines")
        if len(lines) > 7:
            errors.append("Address must be no more than 7 lines")
        if any(not any(c.isalnum() for c in line) for line in lines[:2]):
            errors.append("The first 2 lines of the address must include alphanumeric characters")
        if any(line.startswith(_FORBIDDEN_STARTS) for line in lines):
            errors.append(
                "Address lines must not start with any of the following characters: "
                "@ ( ) = [ ] \u201d \\ / , < >"
            )
        if lines and not _FAKE_POSTCODE.match(lines[-1].upper()):
            errors.append("Must be a real UK postcode")
        return errors

    @staticmethod
    def pdf_address(pdf: bytes) -> tuple[list[str], list[str]]:
        """The address printed in the envelope window, and any layout problems on page 1."""
        reader = pypdf.PdfReader(io.BytesIO(pdf))
        problems = []
        for page in reader.pages:
            if (round(float(page.mediabox.width) / _MM), round(float(page.mediabox.height) / _MM)) != (210, 297):  # fmt: skip
                problems.append("not A4")
        page = reader.pages[0]
        height = float(page.mediabox.height)
        window: list[tuple[float, str]] = []

        def visit(text, cm, tm, _font, _size):
            if not text.strip():
                return
            x = (tm[4] * cm[0] + cm[4]) / _MM
            from_top = (height - (tm[5] * cm[3] + cm[5])) / _MM
            if x < 5 or from_top < 5 or from_top > 292:
                problems.append("content is outside the printable area")
            if 20 <= x <= 100 and 39.5 <= from_top <= 66.3:
                window.append((from_top, text.strip()))

        page.extract_text(visitor_text=visit)
        return [text for _, text in sorted(window)], problems

    def _new(self, kind: str, reference: str | None, **fields: Any) -> dict[str, Any]:
        notification = {
            "id": str(uuid.uuid4()),
            "reference": reference,
            "type": kind,
            "status": "created",
            "created_at": time.strftime("%Y-%m-%d %H:%M:%S.000000", time.gmtime()),
            **fields,
        }
        self.notifications.append(notification)
        return notification

    def _advance(self, notification: dict[str, Any]) -> None:
        scripted = self.next_statuses.get(notification["reference"] or "")
        if scripted:
            notification["status"] = scripted.pop(0)
            return
        progression = {"pending-virus-check": "accepted", "accepted": "received"}
        if notification.get("precompiled_problems"):
            notification["status"] = "validation-failed"
        elif notification["status"] in progression:
            notification["status"] = progression[notification["status"]]

    def _build(self) -> FastAPI:
        app = FastAPI()
        fake = self

        @app.middleware("http")
        async def rules(request, call_next):
            fake.requests.append(
                (request.method, request.url.path, dict(request.query_params.multi_items()))
            )
            try:
                fake.check_token(request.headers.get("authorization"))
                for index, (path, status, error, message, headers) in enumerate(fake.failures):
                    if request.url.path.startswith(path):
                        del fake.failures[index]
                        return JSONResponse(
                            {
                                "errors": [{"error": error, "message": message}],
                                "status_code": status,
                            },
                            status_code=status,
                            headers=headers,
                        )
                if request.method == "POST" and request.headers.get("content-type", "").split(";")[0] != "application/json":  # fmt: skip
                    raise NotifyError(
                        400, "BadRequestError", "Content-Type must be application/json"
                    )
                return await call_next(request)
            except NotifyError as problem:
                return JSONResponse(
                    {
                        "errors": [{"error": problem.error, "message": problem.message}],
                        "status_code": problem.status,
                    },
                    status_code=problem.status,
                )

        @app.exception_handler(NotifyError)
        async def notify_error(_request, problem: NotifyError):
            return JSONResponse(
                {
                    "errors": [{"error": problem.error, "message": problem.message}],
                    "status_code": problem.status,
                },
                status_code=problem.status,
            )

        @app.post("/v2/notifications/letter", status_code=201)
        async def send_letter(request: Request) -> dict[str, Any]:
            body = await request.json()
            if not isinstance(body, dict):
                raise NotifyError(400, "ValidationError", "Request body must be an object")
            answer = fake._precompiled(body) if "content" in body else fake._templated(body)
            fake.letter_posts_received.set()
            if fake.stall_letters.is_set():
                # Notify has the letter; the answer never comes (the test kills the sender).
                await asyncio.to_thread(fake.release_stalled.wait, 120)
            return answer

        @app.post("/v2/notifications/email", status_code=201)
        async def send_email(request: Request) -> dict[str, Any]:
            body = await request.json()
            fake._only(
                body,
                {"email_address", "template_id", "personalisation", "reference", "email_reply_to_id", "one_click_unsubscribe_url"},
            )  # fmt: skip
            for required in ("email_address", "template_id"):
                if required not in body:
                    raise NotifyError(400, "ValidationError", f"{required} is a required property")
            if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", str(body["email_address"])):
                raise NotifyError(400, "ValidationError", "email_address Not a valid email address")
            personalisation = fake._personalisation(body, "email")
            notification = fake._new(
                "email",
                body.get("reference"),
                email_address=body["email_address"],
                personalisation=personalisation,
                template={"id": body["template_id"], "version": 1},
            )
            notification["status"] = "sending"
            return {
                "id": notification["id"],
                "reference": notification["reference"],
                "content": {"subject": "Proactive Support", "body": personalisation["text"], "from_email": "notify@example.gov.uk"},
                "uri": f"{request.base_url}v2/notifications/{notification['id']}",
                "template": {"id": body["template_id"], "version": 1, "uri": f"{request.base_url}v2/template/{body['template_id']}"},
            }  # fmt: skip

        @app.get("/v2/notifications/{notification_id}")
        async def one(notification_id: str) -> dict[str, Any]:
            try:
                uuid.UUID(notification_id)
            except ValueError:
                raise NotifyError(400, "ValidationError", "id is not a valid UUID") from None
            for notification in fake.notifications:
                if notification["id"] == notification_id:
                    fake._advance(notification)
                    return fake._public(notification)
            raise NotifyError(404, "NoResultFound", "No result found")

        @app.get("/v2/notifications")
        async def many(request: Request) -> dict[str, Any]:
            query = request.query_params
            template_type = query.get("template_type")
            if template_type and template_type not in ("sms", "email", "letter"):
                raise NotifyError(400, "ValidationError", f"'{template_type}' is not one of [sms, email, letter]")  # fmt: skip
            statuses = query.getlist("status")
            for status in statuses:
                if status not in _NOTIFY_STATUSES:
                    raise NotifyError(400, "ValidationError", f"status '{status}' is not one of [{', '.join(_NOTIFY_STATUSES)}]")  # fmt: skip
            found = [
                fake._public(n)
                for n in reversed(fake.notifications)  # newest first, as Notify lists them
                if (not template_type or n["type"] == template_type)
                and (not statuses or n["status"] in statuses)
                and ("reference" not in query or n["reference"] == query["reference"])
            ][:250]
            return {"notifications": found, "links": {"current": str(request.url)}}

        return app

    def _personalisation(self, body: dict[str, Any], kind: str) -> dict[str, Any]:
        try:
            uuid.UUID(str(body["template_id"]))
        except ValueError:
            raise NotifyError(400, "ValidationError", "template_id is not a valid UUID") from None
        template = self.templates.get(body["template_id"])
        if template is None or template["type"] != kind:
            raise NotifyError(400, "BadRequestError", "Template not found")
        personalisation = body.get("personalisation", {})
        if not isinstance(personalisation, dict):
            raise NotifyError(400, "ValidationError", f"personalisation {type(personalisation).__name__} is not of type object")  # fmt: skip
        for value in personalisation.values():
            if not isinstance(value, str | int | float | list):
                raise NotifyError(400, "ValidationError", "personalisation values must be text or lists")  # fmt: skip
        missing = [p for p in template["placeholders"] if p not in personalisation]
        if missing:
            raise NotifyError(400, "BadRequestError", f"Missing personalisation: {', '.join(missing)}")  # fmt: skip
        return personalisation

    def _templated(self, body: dict[str, Any]) -> dict[str, Any]:
        self._only(body, {"template_id", "personalisation", "reference"})
        if "template_id" not in body:
            raise NotifyError(400, "ValidationError", "template_id is a required property")
        if "personalisation" not in body:
            raise NotifyError(400, "ValidationError", "personalisation is a required property")
        personalisation = self._personalisation(body, "letter")
        if "address_line_1" not in personalisation:
            raise NotifyError(400, "ValidationError", "personalisation address_line_1 is a required property")  # fmt: skip
        lines = [
            str(personalisation[f"address_line_{n}"]).strip()
            for n in range(1, 8)
            if str(personalisation.get(f"address_line_{n}", "")).strip()
        ]
        errors = self.address_errors(lines)
        if errors:
            raise NotifyError(400, "ValidationError", errors[0])
        notification = self._new(
            "letter",
            body.get("reference"),
            postage="second",
            template={"id": body["template_id"], "version": 1},
            personalisation=personalisation,
            **{f"line_{n}": line for n, line in enumerate(lines, start=1)},
        )
        notification["status"] = "accepted"
        return {
            "id": notification["id"],
            "reference": notification["reference"],
            "content": {"subject": "Some help that might be useful to you", "body": f"Dear {personalisation['name']}"},
            "uri": f"/v2/notifications/{notification['id']}",
            "template": {"id": body["template_id"], "version": 1, "uri": f"/v2/template/{body['template_id']}"},
            "scheduled_for": None,
        }  # fmt: skip

    def _precompiled(self, body: dict[str, Any]) -> dict[str, Any]:
        self._only(body, {"reference", "content", "postage"})
        if not body.get("reference"):
            raise NotifyError(400, "ValidationError", "reference is a required property")
        postage = body.get("postage", "second")
        if postage not in ("first", "second", "economy"):
            raise NotifyError(400, "ValidationError", "postage invalid. It must be either first, second or economy.")  # fmt: skip
        try:
            pdf = base64.b64decode(body["content"], validate=True)
            assert pdf.startswith(b"%PDF-")
            address, problems = self.pdf_address(pdf)
        except Exception:
            raise NotifyError(400, "BadRequestError", "Letter content is not a valid PDF") from None
        problems += self.address_errors(address)
        notification = self._new(
            "letter",
            body["reference"],
            postage=postage,
            precompiled_problems=problems,
            **{f"line_{n}": line for n, line in enumerate(address, start=1)},
        )
        notification["status"] = "pending-virus-check"
        self.pdfs[notification["id"]] = pdf
        return {"id": notification["id"], "reference": body["reference"], "postage": postage}

    @staticmethod
    def _public(notification: dict[str, Any]) -> dict[str, Any]:
        return {
            key: value
            for key, value in notification.items()
            if key not in ("precompiled_problems", "personalisation")
        }


@pytest.fixture
def fake_notify(serve) -> Iterator[SimpleNamespace]:
    """A fake GOV.UK Notify on a free port: `.fake` (its state), `.url`, `.key`."""
    fake = FakeNotify()
    served = serve(fake.app)
    yield SimpleNamespace(fake=fake, url=served.url, key=NOTIFY_KEY)
    fake.release_stalled.set()
