"""Every endpoint against every role and against nobody: the JSON API with bearer tokens,
the officer and ops pages with sessions, and the residents' pages open to all."""

import re
import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from outreach import handlers
from outreach.domain.roles import PERMISSIONS
from outreach.settings import OutreachSettings
from shared.events import Reason, RiskScored
from shared.settings import DEV_SERVICE_TOKEN

pytestmark = pytest.mark.integration
ROLES = ("officer", "team_lead", "admin", "ops")
KEY = "r_" + "b" * 32

API = [
    ("GET", "/v1/tasks", None, "tasks:list"),
    ("GET", "/v1/tasks/{task}", None, "tasks:view"),
    ("POST", "/v1/tasks/{task}/approve", {}, "tasks:approve"),
    ("POST", "/v1/tasks/{task}/reject", {"reason": "r"}, "tasks:reject"),
    ("POST", "/v1/tasks/{task}/assign", {"officer": "o"}, "tasks:assign"),
    ("POST", "/v1/tasks/{task}/contact", {"text": ""}, "tasks:contact"),
    ("POST", "/v1/tasks/{task}/outcome", {"outcome": "declined"}, "tasks:outcome"),
    ("POST", "/v1/tasks/{task}/close", {"reason": "r"}, "tasks:close"),
    ("POST", "/v1/tasks/{task}/notes", {"text": "n"}, "tasks:note"),
    ("GET", "/v1/teams", None, "team:summary"),
    ("GET", f"/v1/residents/{KEY}/export", None, "residents:export"),
    ("POST", f"/v1/residents/{KEY}/flags", {"flag": "open_case", "source": "t"}, "residents:flag"),
    ("DELETE", f"/v1/residents/{KEY}/flags/open_case", None, "residents:flag"),
    ("POST", "/v1/retention/run", None, "retention:run"),
    ("GET", "/v1/fairness", None, "fairness:view"),
    ("GET", "/v1/fairness/alarms", None, "fairness:alarms"),
]
PAGES = [
    ("GET", "/officer/tasks", "tasks:list"),
    ("GET", "/officer/tasks/{task}", "tasks:view"),
    ("POST", "/officer/tasks/{task}/approve", "tasks:approve"),
    ("POST", "/officer/tasks/{task}/reject", "tasks:reject"),
    ("POST", "/officer/tasks/{task}/assign", "tasks:assign"),
    ("POST", "/officer/tasks/{task}/contact", "tasks:contact"),
    ("POST", "/officer/tasks/{task}/outcome", "tasks:outcome"),
    ("POST", "/officer/tasks/{task}/close", "tasks:close"),
    ("POST", "/officer/tasks/{task}/notes", "tasks:note"),
    ("GET", "/officer/team", "team:summary"),
    ("GET", "/officer/residents/export", "residents:export"),
    ("GET", f"/officer/residents/{KEY}/export.json", "residents:export"),
    ("GET", "/ops", "ops:view"),
    ("GET", "/ops/traces", "ops:view"),
    ("GET", "/ops/traces/{trace}", "ops:view"),
    ("POST", "/ops/rejections/1/replay", "ops:replay"),
    ("GET", "/officer/fairness", "fairness:view"),
]
PUBLIC = [
    "/how-we-use-your-information",
    "/opt-out",
    "/transparency",
    "/officer/login",
    "/officer/signed-out",
    "/healthz",
    "/stats",
    "/metrics",
]


@pytest.fixture(scope="module")
def world(offline_app):
    score = RiskScored(
        occurred_at=datetime.now(UTC),
        resident_key="r_" + uuid.uuid4().hex,
        source="scoring",
        model="falls",
        model_version="t",
        probability=0.5,
        band="high",
        reasons=[Reason(feature="f", text="t", contribution=1.0, source_table="health.x")],
        feature_hash="h",
        triggered_by=uuid.uuid4(),
        age_band="75-84",
    )
    handlers.handle_score(offline_app.state.engine, score, offline_app.state.policy)
    client = TestClient(offline_app)
    task = client.get("/v1/tasks", headers={"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"})
    return client, task.json()[0]["task_id"]


@pytest.fixture(scope="module")
def trace_id(offline_app, write_trace) -> str:
    return write_trace(offline_app.state.settings.data_dir / "traces")


@pytest.fixture(scope="module")
def tokens(world, passwords) -> dict[str | None, dict[str, str]]:
    """Bearer headers per role, each fetched once from /v1/token."""
    client, _ = world
    headers: dict[str | None, dict[str, str]] = {
        None: {},
        "service": {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"},
    }
    for role in ROLES:
        token = client.post("/v1/token", data={"username": role, "password": passwords[role]})
        headers[role] = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return headers


@pytest.fixture(scope="module")
def browsers(offline_app, passwords) -> dict[str | None, tuple[TestClient, str]]:
    """One signed-in browser per role (and one signed out), each with a form token."""
    return {role: sign_in(TestClient(offline_app), role, passwords) for role in (None, *ROLES)}


@pytest.mark.parametrize("role", [None, "service", *ROLES])
@pytest.mark.parametrize(("method", "path", "body", "permission"), API)
def test_each_api_route_answers_only_the_roles_allowed(
    world, tokens, role, method, path, body, permission
):
    client, task_id = world
    response = client.request(method, path.format(task=task_id), json=body, headers=tokens[role])
    if role is None:
        assert response.status_code == 401
    elif role in PERMISSIONS[permission]:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500
    else:
        assert response.status_code == 403


def form_token(client: TestClient) -> str:
    page = client.get("/opt-out")  # any page with a form
    return re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)


def sign_in(
    client: TestClient, role: str | None, passwords: dict[str, str]
) -> tuple[TestClient, str]:
    """Sign in as `role` (or stay signed out); returns the client and a form token."""
    if role is not None:
        client.post(
            "/officer/login",
            data={
                "username": role,
                "password": passwords[role],
                "csrf_token": form_token(client),
            },
            follow_redirects=False,
        )
    return client, form_token(client)


@pytest.mark.parametrize("role", [None, *ROLES])
@pytest.mark.parametrize(("method", "path", "permission"), PAGES)
def test_each_officer_page_answers_only_the_roles_allowed(
    world, browsers, trace_id, role, method, path, permission
):
    _, task_id = world
    client, token = browsers[role]
    data = {"csrf_token": token, "reason": "r", "officer": "o", "text": "n", "outcome": "declined"}
    response = client.request(
        method,
        path.format(task=task_id, trace=trace_id),
        data=data if method == "POST" else None,
        follow_redirects=False,
    )
    if role is None:
        assert response.status_code == 303
        assert response.headers["location"].startswith("/officer/login")
    elif role in PERMISSIONS[permission]:
        assert response.status_code not in (401, 403), response.text
        assert response.status_code < 500
    else:
        assert response.status_code == 403


def test_the_service_token_opens_no_officer_page(world):
    client, _ = world
    response = client.get(
        "/officer/tasks",
        headers={"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"},
        follow_redirects=False,
    )
    assert response.status_code == 303


@pytest.mark.parametrize("path", PUBLIC)
def test_residents_pages_and_health_need_no_sign_in(world, path):
    client, _ = world
    assert client.get(path).status_code == 200


def test_a_form_without_its_csrf_token_is_refused_even_when_signed_in(world, browsers):
    _, task_id = world
    client, _ = browsers["officer"]
    response = client.post(f"/officer/tasks/{task_id}/approve", data={"csrf_token": "forged"})
    assert response.status_code == 403
    assert client.post("/opt-out", data={"reference": "PS-AAAAAAAA"}).status_code == 403


def test_every_response_carries_the_security_headers(world):
    client, _ = world
    headers = client.get("/opt-out").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"


def test_outside_dev_the_service_token_cannot_approve_and_passwords_are_off(tmp_path):
    from outreach.app import create_app

    with pytest.raises(ValueError, match="OIDC"):
        OutreachSettings(
            environment="production",
            service_token="s" * 32,
            outreach_session_secret="k" * 32,
            data_dir=tmp_path,
        ).check()
    settings = OutreachSettings(
        environment="production",
        service_token="s" * 32,
        outreach_session_secret="k" * 32,
        oidc_issuer="https://login.example.gov.uk",
        oidc_client_id="outreach",
        oidc_client_secret="x" * 32,
        data_dir=tmp_path,
    )
    # Outside dev the service refuses an unmigrated database: the migration job runs first.
    from outreach.migrations import migrate
    from shared.database import database_url, make_engine

    migrate(make_engine(database_url(None, tmp_path, "outreach")), "head")
    client = TestClient(create_app(settings))
    machine = {"Authorization": "Bearer " + "s" * 32}
    assert client.post(f"/v1/tasks/{uuid.uuid4()}/approve", headers=machine).status_code == 403
    assert client.post("/v1/token", data={"username": "a", "password": "b"}).status_code == 404
