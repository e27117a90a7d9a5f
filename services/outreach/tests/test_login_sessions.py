"""Sessions run out: after 30 minutes unused, and 8 hours after signing in however busy.
The app's clock is moved on instead of waiting."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from outreach.adapters.users import add_user
from outreach.app import create_app
from outreach.entrypoints.login_limits import LoginLimits
from outreach.settings import OutreachSettings

pytestmark = pytest.mark.integration


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


@dataclass
class Clock:
    now: float = field(default_factory=time.time)

    def __call__(self) -> float:
        return self.now

    def advance(self, minutes: float) -> None:
        self.now += minutes * 60


@pytest.fixture
def clock(offline_app: FastAPI) -> Iterator[Clock]:
    fake = Clock()
    signer = offline_app.state.signer
    real, signer.clock = signer.clock, fake
    offline_app.state.login_limits = LoginLimits(offline_app.state.settings)
    yield fake
    signer.clock = real


def signed_in(app: FastAPI, passwords: dict[str, str], role: str = "officer") -> TestClient:
    client = TestClient(app, headers={"accept": "text/html"})
    page = client.get("/officer/login")
    token = form_token(page.text)
    response = client.post(
        "/officer/login",
        data={"username": role, "password": passwords[role], "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 303
    return client


def session_cookie(response) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if "outreach_session=" in c)


def test_the_session_cookie_is_http_only_and_same_site(offline_app, passwords, clock):
    client = TestClient(offline_app)
    page = client.get("/officer/login")
    token = form_token(page.text)
    response = client.post(
        "/officer/login",
        data={"username": "officer", "password": passwords["officer"], "csrf_token": token},
        follow_redirects=False,
    )
    cookie = session_cookie(response).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "max-age=28800" in cookie
    assert "secure" not in [part.strip() for part in cookie.split(";")]  # dev: plain HTTP


def test_an_idle_session_runs_out_and_says_why(offline_app, passwords, clock):
    client = signed_in(offline_app, passwords)
    clock.advance(29)
    assert client.get("/officer/tasks", follow_redirects=False).status_code == 200
    clock.advance(29)  # 58 minutes since signing in, but only 29 since last active
    assert client.get("/officer/tasks", follow_redirects=False).status_code == 200
    clock.advance(30)
    response = client.get("/officer/team", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/officer/login?next=%2Fofficer%2Fteam&expired=idle"
    assert 'outreach_session=""' in session_cookie(response)  # the browser forgets it
    page = client.get(response.headers["location"])
    assert "You were signed out because you had not used the service for 30 minutes" in (page.text)
    assert "Sign out" not in page.text


def test_a_busy_session_still_ends_after_eight_hours(offline_app, passwords, clock):
    client = signed_in(offline_app, passwords)
    for _ in range(8 * 3):  # every 20 minutes for 8 hours
        clock.advance(20)
        response = client.get("/officer/tasks", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].endswith("expired=lifetime")
    page = client.get(response.headers["location"])
    assert "because you signed in more than 8 hours ago" in page.text


def test_an_old_session_cookie_replayed_after_going_idle_is_refused(offline_app, passwords, clock):
    client = signed_in(offline_app, passwords)
    stolen = client.cookies.get("outreach_session")
    clock.advance(31)
    thief = TestClient(offline_app, cookies={"outreach_session": stolen})
    assert thief.get("/officer/tasks", follow_redirects=False).status_code == 303


def test_a_forged_session_cookie_is_refused(offline_app, clock):
    thief = TestClient(offline_app, cookies={"outreach_session": "eyJ1IjoiYWRtaW4ifQ.forged"})
    response = thief.get("/officer/tasks", follow_redirects=False)
    assert response.status_code == 303
    assert "expired" not in response.headers["location"]


def test_the_timeouts_are_settings(tmp_path):
    settings = OutreachSettings(
        data_dir=tmp_path, outreach_idle_minutes=5, outreach_session_hours=1
    )
    signer = create_app(settings).state.signer
    assert (signer.idle_s, signer.lifetime_s) == (300, 3600)


def test_outside_dev_the_session_cookie_is_sent_over_https_only(tmp_path):
    production = OutreachSettings(
        environment="production",
        service_token="s" * 32,
        outreach_session_secret="k" * 32,
        oidc_issuer="https://login.example.gov.uk",
        oidc_client_id="outreach",
        oidc_client_secret="x" * 32,
        data_dir=tmp_path,
    )
    assert production.cookies_secure
    # What that setting does to the cookie, shown with a password user (dev only).
    app = create_app(OutreachSettings(data_dir=tmp_path, outreach_secure_cookies=True))
    add_user(app.state.engine, "officer", "officer-pass-1", "officer", None)
    client = TestClient(app, base_url="https://testserver")
    token = form_token(client.get("/officer/login").text)
    response = client.post(
        "/officer/login",
        data={"username": "officer", "password": "officer-pass-1", "csrf_token": token},
        follow_redirects=False,
    )
    assert "secure" in [part.strip() for part in session_cookie(response).lower().split(";")]
