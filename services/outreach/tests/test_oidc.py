"""Officers sign in through an identity provider: the real Authlib client in the app talks
HTTP to a local provider that follows OpenID Connect Core 1.0 and Discovery 1.0 (and
RP-Initiated Logout) for the authorization-code flow with PKCE. The provider signs in
whichever person the test chooses, as a real one would after its own log-in page."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlmodel import Session, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from outreach import handlers
from outreach.adapters.store import AuditEntry, Task
from outreach.app import create_app
from outreach.settings import OutreachSettings
from proactive.broker import free_port

pytestmark = pytest.mark.integration


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
CLIENT_ID = "proactive-outreach"
CLIENT_SECRET = "outreach-client-secret-for-tests"
APP_URL = "http://testserver"
# The council's groups, as the provider names them, and what they mean to us.
ROLE_MAP = {
    "PS-Officers": "officer",
    "PS-TeamLeads": "team_lead",
    "PS-Admins": "admin",
    "PS-Ops": "ops",
}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    person: dict[str, Any]
    used: bool = False


@dataclass
class FakeProvider:
    """An OpenID provider on a real port. `person` is who signs in next; `tamper` changes
    claims of the next ID token; `sign_with` signs it with another key."""

    url: str
    redirect_uris: set[str]
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, {"kid": "k1"}))
    person: dict[str, Any] = field(default_factory=dict)
    tamper: dict[str, Any] = field(default_factory=dict)
    sign_with: RSAKey | None = None
    grants: dict[str, Grant] = field(default_factory=dict)
    token_errors: list[str] = field(default_factory=list)
    signed_out: list[str] = field(default_factory=list)

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/.well-known/openid-configuration", self.discovery),
                Route("/authorize", self.authorize),
                Route("/token", self.token, methods=["POST"]),
                Route("/jwks", self.jwks),
                Route("/logout", self.logout),
            ]
        )

    async def discovery(self, _: Request) -> Response:
        return JSONResponse(
            {
                "issuer": self.url,
                "authorization_endpoint": f"{self.url}/authorize",
                "token_endpoint": f"{self.url}/token",
                "jwks_uri": f"{self.url}/jwks",
                "end_session_endpoint": f"{self.url}/logout",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "scopes_supported": ["openid", "profile"],
                "grant_types_supported": ["authorization_code"],
            }
        )

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        redirect_uri = query.get("redirect_uri", "")
        # Core §3.1.2.1-2: an unknown client or redirect URI is shown an error, never sent on.
        if query.get("client_id") != CLIENT_ID or redirect_uri not in self.redirect_uris:
            return JSONResponse({"error": "invalid_request"}, 400)
        back: dict[str, str] = {"state": query["state"]} if "state" in query else {}
        scopes = query.get("scope", "").split()
        if query.get("response_type") != "code" or "openid" not in scopes:
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'error': 'invalid_request', **back})}", 302
            )
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return RedirectResponse(
                f"{redirect_uri}?{urlencode({'error': 'invalid_request', **back})}", 302
            )
        code = secrets.token_urlsafe(24)
        self.grants[code] = Grant(
            CLIENT_ID, redirect_uri, query["code_challenge"], query.get("nonce"), dict(self.person)
        )
        return RedirectResponse(f"{redirect_uri}?{urlencode({'code': code, **back})}", 302)

    async def token(self, request: Request) -> Response:
        form = await request.form()
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        basic = request.headers.get("authorization", "")
        if basic.startswith("Basic "):
            client_id, _, client_secret = base64.b64decode(basic[6:]).decode().partition(":")
        if client_id != CLIENT_ID or client_secret != CLIENT_SECRET:
            self.token_errors.append("invalid_client")
            return JSONResponse({"error": "invalid_client"}, 401)
        grant = self.grants.get(str(form.get("code", "")))
        verifier = str(form.get("code_verifier", ""))
        challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
        if (
            form.get("grant_type") != "authorization_code"
            or grant is None
            or grant.used
            or grant.redirect_uri != form.get("redirect_uri")
            or not secrets.compare_digest(challenge, grant.code_challenge)
        ):
            self.token_errors.append("invalid_grant")
            return JSONResponse({"error": "invalid_grant"}, 400)
        grant.used = True
        now = int(time.time())
        claims = {
            "iss": self.url,
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "auth_time": now,
            **({"nonce": grant.nonce} if grant.nonce else {}),
            **grant.person,
            **self.tamper,
        }
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, key)
        return JSONResponse(
            {
                "access_token": secrets.token_urlsafe(24),
                "token_type": "Bearer",
                "expires_in": 300,
                "id_token": id_token,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def jwks(self, _: Request) -> Response:
        return JSONResponse(KeySet([self.key]).as_dict(private=False))

    async def logout(self, request: Request) -> Response:
        target = request.query_params.get("post_logout_redirect_uri", "")
        if request.query_params.get("client_id") != CLIENT_ID:
            return JSONResponse({"error": "invalid_request"}, 400)
        self.signed_out.append(request.query_params["client_id"])
        return RedirectResponse(target or f"{self.url}/signed-out", 302)


def serve(app: Any, port: int) -> tuple[uvicorn.Server, threading.Thread]:
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    return server, thread


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    port = free_port()
    fake = FakeProvider(url=f"http://127.0.0.1:{port}", redirect_uris=set())
    server, thread = serve(fake.app(), port)
    yield fake
    server.should_exit = True
    thread.join(timeout=5)


@pytest.fixture
def person(provider: FakeProvider) -> FakeProvider:
    """The provider, reset for one test."""
    provider.person = {"sub": "u-1", "preferred_username": "sam.officer", "groups": []}
    provider.tamper, provider.sign_with = {}, None
    provider.token_errors.clear()
    return provider


def oidc_settings(data_dir: Path, provider: FakeProvider, **extra: Any) -> OutreachSettings:
    return OutreachSettings(
        data_dir=data_dir,
        kafka_bootstrap="127.0.0.1:1",
        traces_to_file=False,
        oidc_issuer=provider.url,
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
        oidc_role_claim="groups",
        oidc_role_map=ROLE_MAP,
        **extra,
    )


@pytest.fixture(scope="module")
def oidc_app(tmp_path_factory: pytest.TempPathFactory, provider: FakeProvider) -> FastAPI:
    provider.redirect_uris.add(f"{APP_URL}/officer/login/oidc/callback")
    return create_app(
        oidc_settings(tmp_path_factory.mktemp("outreach-oidc"), provider, outreach_url=APP_URL)
    )


def start_sign_in(client: TestClient, next_page: str = "/officer/tasks") -> str:
    """Press 'Sign in with your council account'; returns the provider's URL we are sent to."""
    response = client.get(f"/officer/login/oidc?next={next_page}", follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def at_provider(authorize_url: str) -> str:
    """The browser at the provider (over real HTTP): returns where it sends us back."""
    response = httpx.get(authorize_url, follow_redirects=False)
    assert response.status_code == 302, response.text
    return response.headers["location"]


def come_back(client: TestClient, callback_url: str) -> httpx.Response:
    parts = urlsplit(callback_url)
    assert f"{parts.scheme}://{parts.netloc}" == APP_URL
    return client.get(f"{parts.path}?{parts.query}", follow_redirects=False)


def sign_in(client: TestClient, next_page: str = "/officer/tasks") -> httpx.Response:
    return come_back(client, at_provider(start_sign_in(client, next_page)))


@pytest.mark.parametrize(
    ("groups", "role", "landing"),
    [
        (["PS-Officers"], "officer", "/officer/tasks"),
        (["PS-TeamLeads"], "team_lead", "/officer/tasks"),
        (["Everyone", "PS-Admins"], "admin", "/officer/tasks"),
        (["PS-Ops"], "ops", "/ops"),
    ],
)
def test_a_person_signs_in_with_the_role_their_group_maps_to(
    oidc_app, person, groups, role, landing
):
    person.person["groups"] = groups
    client = TestClient(oidc_app)
    authorize = start_sign_in(client)
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(f"{person.url}/authorize?")
    assert query["code_challenge_method"] == ["S256"]
    assert query["response_type"] == ["code"]
    assert {"state", "nonce", "code_challenge"} <= set(query)
    assert "openid" in query["scope"][0].split()

    callback = at_provider(authorize)
    response = come_back(client, callback)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == landing
    assert come_back(client, callback).status_code == 400  # a state is good for one return
    cookie = next(c for c in response.headers.get_list("set-cookie") if "outreach_session=" in c)
    assert "HttpOnly" in cookie
    assert "samesite=lax" in cookie.lower()
    page = client.get(landing)
    assert page.status_code == 200
    assert "Sign out sam.officer" in page.text
    team_page = client.get("/officer/team", follow_redirects=False)
    assert team_page.status_code == (200 if role in ("team_lead", "admin") else 403)


def test_the_page_asked_for_is_where_a_signed_in_officer_lands(oidc_app, person):
    person.person["groups"] = ["PS-Officers"]
    client = TestClient(oidc_app)
    response = sign_in(client, "/officer/residents/export")
    assert response.headers["location"] == "/officer/residents/export"


def test_what_an_oidc_officer_does_is_recorded_under_their_name(oidc_app, person, make_score):
    person.person["groups"] = ["PS-Officers"]
    client = TestClient(oidc_app)
    sign_in(client)
    score = make_score()
    assert handlers.handle_score(oidc_app.state.engine, score, oidc_app.state.policy) == "create"
    with Session(oidc_app.state.engine) as session:
        task = session.exec(select(Task).where(Task.resident_key == score.resident_key)).one()
    page = client.get(f"/officer/tasks/{task.task_id}")
    token = form_token(page.text)
    approved = client.post(
        f"/officer/tasks/{task.task_id}/approve",
        data={"csrf_token": token},
        follow_redirects=False,
    )
    assert approved.status_code == 303
    with Session(oidc_app.state.engine) as session:
        stored = session.get(Task, task.task_id)
        assert stored is not None
        assert stored.approved_by == "sam.officer"
        actors = session.exec(select(AuditEntry.actor).where(AuditEntry.task_id == task.task_id))
        assert "sam.officer" in set(actors)


def test_a_person_with_no_mapped_role_is_told_they_have_no_access(oidc_app, person):
    person.person["groups"] = ["Everyone", "Finance"]
    client = TestClient(oidc_app, headers={"accept": "text/html"})
    response = sign_in(client)
    assert response.status_code == 403
    assert "You do not have access to this service" in response.text
    assert "outreach_session=" not in response.headers.get("set-cookie", "")
    assert client.get("/officer/tasks", follow_redirects=False).status_code == 303


def test_a_return_with_another_state_is_refused(oidc_app, person):
    person.person["groups"] = ["PS-Officers"]
    client = TestClient(oidc_app)
    callback = at_provider(start_sign_in(client))
    forged = re.sub(r"state=[^&]+", "state=" + secrets.token_urlsafe(16), callback)
    response = come_back(client, forged)
    assert response.status_code == 400
    assert "outreach_session=" not in response.headers.get("set-cookie", "")
    # The code was never exchanged: it is still unused at the provider.
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert not person.grants[code].used


def test_a_return_in_another_browser_is_refused(oidc_app, person):
    person.person["groups"] = ["PS-Officers"]
    callback = at_provider(start_sign_in(TestClient(oidc_app)))
    response = come_back(TestClient(oidc_app), callback)  # no flow cookie in this one
    assert response.status_code == 400


@pytest.mark.parametrize(
    "tamper",
    [
        {"aud": "someone-else"},
        # Passes Authlib's own checks (they look at `azp` only): refused by ours.
        {"aud": ["someone-else"], "azp": CLIENT_ID},
        {"nonce": "not-the-one-we-sent"},
        {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200},
        {"iss": "https://impostor.example"},
    ],
    ids=[
        "wrong-audience",
        "another-audience-naming-us-as-azp",
        "wrong-nonce",
        "expired",
        "wrong-issuer",
    ],
)
def test_an_id_token_that_is_not_for_us_is_refused(oidc_app, person, tamper):
    person.person["groups"] = ["PS-Admins"]
    person.tamper = tamper
    client = TestClient(oidc_app)
    response = sign_in(client)
    assert response.status_code == 401, response.text
    assert "outreach_session=" not in response.headers.get("set-cookie", "")
    assert client.get("/officer/tasks", follow_redirects=False).status_code == 303


def test_an_id_token_signed_with_another_key_is_refused(oidc_app, person):
    person.person["groups"] = ["PS-Admins"]
    person.sign_with = RSAKey.generate_key(2048, {"kid": "k1"})
    client = TestClient(oidc_app)
    response = sign_in(client)
    assert response.status_code == 401, response.text
    assert client.get("/officer/tasks", follow_redirects=False).status_code == 303


def test_a_code_is_only_exchanged_with_the_verifier_for_its_challenge(oidc_app, person):
    """What an attacker who stole the code (but not this browser's verifier) would get."""
    person.person["groups"] = ["PS-Officers"]
    client = TestClient(oidc_app)
    callback = at_provider(start_sign_in(client))
    code = parse_qs(urlsplit(callback).query)["code"][0]
    verifier = secrets.token_urlsafe(48)
    person.grants[code].code_challenge = _b64url(hashlib.sha256(verifier.encode()).digest())
    assert come_back(client, callback).status_code == 401
    assert person.token_errors == ["invalid_grant"]


def test_a_client_with_the_wrong_secret_cannot_exchange_the_code(tmp_path, provider, person):
    """The provider refuses the client, and so the sign-in is refused."""
    provider.redirect_uris.add(f"{APP_URL}/officer/login/oidc/callback")
    settings = oidc_settings(tmp_path, provider, outreach_url=APP_URL)
    settings.oidc_client_secret = "not-the-secret"
    client = TestClient(create_app(settings))
    person.person["groups"] = ["PS-Officers"]
    assert sign_in(client).status_code == 401
    assert person.token_errors == ["invalid_client"]


def test_signing_out_ends_the_session_here_and_at_the_provider(oidc_app, person):
    person.person["groups"] = ["PS-Officers"]
    client = TestClient(oidc_app)
    sign_in(client)
    page = client.get("/officer/tasks")
    token = form_token(page.text)
    response = client.post("/officer/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    logout = response.headers["location"]
    assert logout.startswith(f"{person.url}/logout?")
    assert parse_qs(urlsplit(logout).query)["post_logout_redirect_uri"] == [
        f"{APP_URL}/officer/signed-out"
    ]
    back = httpx.get(logout, follow_redirects=False).headers["location"]
    assert back == f"{APP_URL}/officer/signed-out"
    assert "You have signed out" in client.get("/officer/signed-out").text
    assert client.get("/officer/tasks", follow_redirects=False).status_code == 303


def test_the_discovered_issuer_must_be_the_one_configured(tmp_path, provider, person):
    settings = oidc_settings(tmp_path, provider, outreach_url=APP_URL)
    settings.oidc_issuer = provider.url + "/"  # the document names it without the slash
    client = TestClient(create_app(settings), headers={"accept": "text/html"})
    response = client.get("/officer/login/oidc", follow_redirects=False)
    assert response.status_code == 503
    assert "because of a set-up problem" in response.text


def test_an_unreachable_provider_gets_a_plain_page(tmp_path):
    settings = OutreachSettings(
        data_dir=tmp_path,
        kafka_bootstrap="127.0.0.1:1",
        traces_to_file=False,
        oidc_issuer=f"http://127.0.0.1:{free_port()}",
        oidc_client_id=CLIENT_ID,
        oidc_client_secret=CLIENT_SECRET,
    )
    client = TestClient(create_app(settings))
    response = client.get("/officer/login/oidc", headers={"accept": "text/html"})
    assert response.status_code == 503
    assert "sign-in service is not answering" in response.text


def test_the_sign_in_page_offers_the_council_account_only_when_configured(oidc_app, offline_app):
    assert "Sign in with your council account" in TestClient(oidc_app).get("/officer/login").text
    assert (
        "Sign in with your council account"
        not in TestClient(offline_app).get("/officer/login").text
    )
    assert TestClient(offline_app).get("/officer/login/oidc").status_code == 404


def test_a_flood_of_returns_from_one_address_is_refused(tmp_path, provider):
    settings = oidc_settings(tmp_path, provider, oidc_callbacks_per_address="3/minute")
    client = TestClient(create_app(settings))
    codes = [
        client.get(f"/officer/login/oidc/callback?code=c&state={uuid.uuid4().hex}").status_code
        for _ in range(5)
    ]
    assert codes == [400, 400, 400, 429, 429]


def test_the_role_claim_can_be_a_path_into_an_object_or_a_spaced_string(tmp_path, provider):
    from outreach.entrypoints.oidc import IdentityProvider

    nested = IdentityProvider(
        oidc_settings(tmp_path, provider).model_copy(
            update={"oidc_role_claim": "realm_access.roles"}
        )
    )
    assert nested.role_of({"realm_access": {"roles": ["x", "PS-TeamLeads"]}}) == "team_lead"
    assert nested.role_of({"realm_access": "PS-Ops"}) is None
    spaced = IdentityProvider(oidc_settings(tmp_path, provider))
    assert spaced.role_of({"groups": "PS-Officers PS-Admins"}) == "admin"
    assert spaced.role_of({}) is None
    assert spaced.name_of({"sub": "u-9"}) == "u-9"


@pytest.fixture(scope="module")
def served_oidc_app(tmp_path_factory, provider) -> Iterator[str]:
    """The app on a real port, configured for the provider, for a real browser."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    provider.redirect_uris.add(f"{url}/officer/login/oidc/callback")
    app = create_app(oidc_settings(tmp_path_factory.mktemp("outreach-browser"), provider))
    server, thread = serve(app, port)
    yield url
    server.should_exit = True
    thread.join(timeout=5)


@pytest.mark.e2e
def test_an_officer_signs_in_and_out_through_the_provider_in_chromium(served_oidc_app, person):
    if not CHROMIUM.exists():
        pytest.skip("Debian's chromium is not installed at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    person.person["groups"] = ["PS-Officers"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_context(base_url=served_oidc_app).new_page()
            page.goto("/officer/tasks")
            assert "/officer/login" in page.url
            page.get_by_role("button", name="Sign in with your council account").click()
            page.wait_for_url("**/officer/tasks")
            assert page.get_by_role("heading", name="Outreach tasks").is_visible()
            page.get_by_role("button", name="Sign out sam.officer").click()
            page.wait_for_url("**/officer/signed-out")
            assert page.get_by_text("You have signed out").is_visible()
            assert CLIENT_ID in person.signed_out
            page.goto("/officer/tasks")
            assert "/officer/login" in page.url
        finally:
            browser.close()
