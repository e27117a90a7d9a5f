"""Fixtures for notify's tests: an approved task, a fake vault that follows ingest's contract,
small hand-written fakes for the other collaborators, and a helper to serve an app on a port."""

from __future__ import annotations

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
import pytest
import uvicorn
from fastapi import FastAPI, Header, HTTPException

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
