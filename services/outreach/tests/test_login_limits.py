"""Password guessing is slowed down: failures are counted per user name and per client
address, and past the limit the service answers 429 saying when to try again."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from outreach.entrypoints.login_limits import LoginLimits

pytestmark = pytest.mark.integration


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no form token"
    return found.group(1)


@pytest.fixture
def app(offline_app: FastAPI) -> Iterator[FastAPI]:
    """The shared app with fresh counts for each test."""
    offline_app.state.login_limits = LoginLimits(offline_app.state.settings)
    yield offline_app
    offline_app.state.login_limits = LoginLimits(offline_app.state.settings)


def tighter(app: FastAPI, per_account: int = 5, per_address: int = 20) -> None:
    """Smaller limits, so a test needs fewer (deliberately slow) password checks."""
    settings = app.state.settings.model_copy(
        update={
            "outreach_login_failures_per_account": f"{per_account}/15 minutes",
            "outreach_login_failures_per_address": f"{per_address}/15 minutes",
        }
    )
    app.state.login_limits = LoginLimits(settings)


def browser(app: FastAPI, address: str = "198.51.100.7") -> TestClient:
    return TestClient(app, client=(address, 50000), headers={"accept": "text/html"})


def try_password(client: TestClient, username: str, password: str) -> int:
    page = client.get("/officer/login")
    token = form_token(page.text)
    response = client.post(
        "/officer/login",
        data={"username": username, "password": password, "csrf_token": token},
        follow_redirects=False,
    )
    return response.status_code


def test_five_failures_for_one_account_then_it_must_wait(app, passwords):
    client = browser(app)
    assert [try_password(client, "officer", "wrong") for _ in range(5)] == [401] * 5
    # Now even the right password waits: the guesser cannot learn it is right.
    page = client.post(
        "/officer/login",
        data={
            "username": "officer",
            "password": passwords["officer"],
            "csrf_token": form_token(client.get("/officer/login").text),
        },
        follow_redirects=False,
    )
    assert page.status_code == 429
    assert "too many attempts to sign in" in page.text
    assert "Wait 15 minutes, then try again" in page.text
    assert 800 < int(page.headers["retry-after"]) <= 900
    # The same name typed differently is the same account.
    assert try_password(browser(app, "203.0.113.9"), " Officer ", "wrong") == 429


def test_a_locked_account_does_not_stop_others_signing_in(app, passwords):
    client = browser(app)
    for _ in range(5):
        try_password(client, "officer", "wrong")
    assert try_password(client, "team_lead", passwords["team_lead"]) == 303
    # ...and that success leaves the guessed account's count as it was.
    assert try_password(browser(app, "203.0.113.9"), "officer", passwords["officer"]) == 429


def test_a_correct_password_clears_only_that_accounts_failures(app, passwords):
    tighter(app, per_account=3)
    client = browser(app)
    for _ in range(2):
        try_password(client, "officer", "wrong")
        try_password(client, "admin", "wrong")
    assert try_password(client, "officer", passwords["officer"]) == 303
    assert [try_password(client, "officer", "wrong") for _ in range(3)] == [401] * 3
    assert try_password(client, "admin", "wrong") == 401  # its third failure
    assert try_password(client, "admin", passwords["admin"]) == 429


def test_many_failures_from_one_address_are_refused_whatever_the_name(app, passwords):
    tighter(app, per_address=4)
    guesser = browser(app, "192.0.2.66")
    codes = [try_password(guesser, f"someone-{n}", "wrong") for n in range(4)]
    assert codes == [401] * 4
    assert try_password(guesser, "ops", passwords["ops"]) == 429
    # Someone at another address is not held up by it.
    assert try_password(browser(app, "192.0.2.67"), "ops", passwords["ops"]) == 303


def test_the_token_endpoint_counts_against_the_same_limits(app, passwords):
    client = TestClient(app, client=("198.51.100.8", 50000))
    for _ in range(5):
        answer = client.post("/v1/token", data={"username": "admin", "password": "wrong"})
        assert answer.status_code == 401
    refused = client.post("/v1/token", data={"username": "admin", "password": passwords["admin"]})
    assert refused.status_code == 429
    assert "Wait 15 minutes" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 0
    assert try_password(browser(app, "198.51.100.9"), "admin", passwords["admin"]) == 429


def test_an_unparseable_limit_is_refused_at_start_up(tmp_path):
    from outreach.settings import OutreachSettings

    with pytest.raises(ValueError, match="rate limit"):
        OutreachSettings(data_dir=tmp_path, outreach_login_failures_per_account="five")
