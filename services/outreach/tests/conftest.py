"""Outreach's fixtures: its database on SQLite and PostgreSQL, scores to feed it, an app
without a broker (for pages and the API), and a stand-in for ingest's postcode check that
follows its contract exactly."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from outreach.adapters.store import create_tables
from outreach.adapters.users import add_user
from outreach.app import create_app
from outreach.domain.policy import DEFAULT_POLICY_PATH, Policy, load_policy
from outreach.settings import OutreachSettings
from shared.database import database_url, make_engine
from shared.events import Reason, RiskScored
from shared.settings import DEV_SERVICE_TOKEN

PASSWORDS = {"officer": "officer-pass-1", "team_lead": "lead-pass-1", "admin": "admin-pass-1"}
TEAM = "Community independence team"


def new_key() -> str:
    return "r_" + uuid.uuid4().hex


@pytest.fixture
def make_score() -> Callable[..., RiskScored]:
    def make(
        key: str | None = None,
        model: str = "falls",
        band: str = "high",
        probability: float = 0.6,
        age_band: str | None = "75-84",
    ) -> RiskScored:
        return RiskScored(
            occurred_at=datetime.now(UTC),
            resident_key=key or new_key(),
            source="scoring",
            model=model,  # type: ignore[arg-type]
            model_version="test",
            probability=probability,
            band=band,  # type: ignore[arg-type]
            reasons=[
                Reason(
                    feature="falls_reported_12m",
                    text="A fall was reported to adult social care this year",
                    contribution=1.2,
                    source_table="social_care.contacts",
                )
            ],
            feature_hash="h",
            triggered_by=uuid.uuid4(),
            age_band=age_band,
            ward="Abbey",
        )

    return make


@pytest.fixture
def policy() -> Policy:
    return load_policy()


@pytest.fixture
def policy_with(tmp_path: Path) -> Callable[..., Policy]:
    """The packaged policy with some values changed, read back through the file loader."""

    def change(**overrides: object) -> Policy:
        data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
        data.update(overrides)
        path = tmp_path / f"policy-{uuid.uuid4().hex[:6]}.yaml"
        path.write_text(yaml.safe_dump(data))
        return load_policy(path)

    return change


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[Engine]:
    url = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    engine = make_engine(database_url(url, tmp_path, "outreach"))
    create_tables(engine)
    yield engine
    engine.dispose()


class FakeVault:
    """ingest's `POST /internal/v1/vault/verify-postcode`: Bearer service token, JSON
    {"resident_key", "postcode"} → 200 {"match": bool}."""

    def __init__(self) -> None:
        self.postcodes: dict[str, str] = {}
        self.requests: list[dict[str, str]] = []
        vault = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                if self.path != "/internal/v1/vault/verify-postcode":
                    return self._answer(404, {"detail": "Not Found"})
                if self.headers.get("Authorization") != f"Bearer {DEV_SERVICE_TOKEN}":
                    return self._answer(401, {"detail": "A valid token is required."})
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if set(body) != {"resident_key", "postcode"}:
                    return self._answer(422, {"detail": "resident_key and postcode"})
                vault.requests.append(body)
                known = vault.postcodes.get(body["resident_key"], "")
                same = known.replace(" ", "").upper() == body["postcode"].replace(" ", "").upper()
                return self._answer(200, {"match": bool(known) and same})

            def _answer(self, code: int, payload: dict[str, object]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture(scope="module")
def fake_vault() -> Iterator[FakeVault]:
    vault = FakeVault()
    vault.thread.start()
    yield vault
    vault.server.shutdown()
    vault.server.server_close()


@pytest.fixture(scope="module")
def passwords() -> dict[str, str]:
    return PASSWORDS


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory: pytest.TempPathFactory, fake_vault: FakeVault) -> FastAPI:
    """The whole app on SQLite, without its lifespan (so no broker): for pages and the API.
    One user per role, with the passwords in PASSWORDS. Shared by a module's tests, since
    hashing passwords with argon2 is deliberately slow."""
    app = create_app(
        OutreachSettings(
            data_dir=tmp_path_factory.mktemp("outreach"),
            kafka_bootstrap="127.0.0.1:1",
            ingest_url=fake_vault.url,
            traces_to_file=False,
        )
    )
    for role, password in PASSWORDS.items():
        add_user(app.state.engine, role, password, role, TEAM if role != "admin" else None)
    return app
