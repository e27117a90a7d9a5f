"""Who is asking, and may they: signed session cookies for the officer pages, signed
bearer tokens (or the service token) for the JSON API, CSRF tokens for every form, and the
security headers every response carries."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import Depends, HTTPException, Request, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from itsdangerous import BadSignature, URLSafeSerializer, URLSafeTimedSerializer
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from outreach.domain.roles import SERVICE_ROLE, allowed
from outreach.settings import OutreachSettings

SESSION_COOKIE = "outreach_session"
CSRF_COOKIE = "outreach_csrf"
bearer = HTTPBearer(auto_error=False, description="An officer's token from /v1/token")


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    team: str | None = None


class LoginRequired(Exception):
    """A page needs a signed-in officer; the handler sends the browser to the log-in page,
    saying why when an earlier session has run out (`expired` is "idle" or "lifetime")."""

    def __init__(self, expired: str | None = None) -> None:
        super().__init__(expired or "not signed in")
        self.expired = expired


@dataclass(frozen=True)
class Session:
    """A signed-in officer's session: how they signed in, when, and when last active."""

    caller: Caller
    via: str  # "password" or "oidc"
    started: float
    seen: float


class Signer:
    """Signs and reads sessions, API tokens and CSRF tokens. Sessions carry their own
    start and last-activity times, checked against `clock` (tests move it on)."""

    def __init__(self, settings: OutreachSettings, clock: Callable[[], float] = time.time):
        self.settings = settings
        self.clock = clock
        self.lifetime_s = settings.outreach_session_hours * 3600
        self.idle_s = settings.outreach_idle_minutes * 60
        self.sessions = URLSafeSerializer(settings.outreach_session_secret, "session-v2")
        self.tokens = URLSafeTimedSerializer(settings.outreach_session_secret, "api-token")
        self.csrf = URLSafeSerializer(settings.outreach_session_secret, "csrf")

    def session_value(self, session: Session) -> str:
        caller = session.caller
        return self.sessions.dumps(
            {
                "u": caller.name,
                "r": caller.role,
                "t": caller.team,
                "v": session.via,
                "s": session.started,
                "a": session.seen,
            }
        )

    def read_session(self, value: str | None) -> Session | None:
        """The session in a cookie, or None if there is none or it is forged. Whether it
        has run out is `expiry`'s question."""
        if not value:
            return None
        try:
            data: dict[str, Any] = self.sessions.loads(value)
            caller = Caller(name=data["u"], role=data["r"], team=data.get("t"))
            return Session(caller, str(data["v"]), float(data["s"]), float(data["a"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    def expiry(self, session: Session) -> str | None:
        """Why this session is over ("lifetime" or "idle"), or None while it is good."""
        now = self.clock()
        if now - session.started >= self.lifetime_s:
            return "lifetime"
        if now - session.seen >= self.idle_s:
            return "idle"
        return None

    def api_token(self, caller: Caller) -> str:
        return self.tokens.dumps({"u": caller.name, "r": caller.role, "t": caller.team})

    def read_token(self, value: str | None) -> Caller | None:
        if not value:
            return None
        try:
            data: dict[str, Any] = self.tokens.loads(value, max_age=self.lifetime_s)
        except BadSignature:
            return None
        return Caller(name=data["u"], role=data["r"], team=data.get("t"))


def _signer(request: Request) -> Signer:
    return request.app.state.signer


def public_base_url(request: Request) -> str:
    """The address officers reach this service at (PROACTIVE_OUTREACH_URL when set)."""
    configured = request.app.state.settings.outreach_url
    return (configured or str(request.base_url)).rstrip("/")


def client_address(request: Request) -> str:
    """The browser's address (behind a proxy, uvicorn takes it from X-Forwarded-For when
    the proxy is in FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


# Sessions (officer pages)


def current_session(request: Request) -> Session | None:
    """This browser's session while it is good; None when signed out or run out."""
    signer = _signer(request)
    session = signer.read_session(request.cookies.get(SESSION_COOKIE))
    if session is None or signer.expiry(session):
        return None
    return session


def session_caller(request: Request) -> Caller | None:
    session = current_session(request)
    return session.caller if session else None


def _set_session_cookie(request: Request, response: Response, session: Session) -> None:
    signer = _signer(request)
    remaining = int(session.started + signer.lifetime_s - signer.clock())
    response.set_cookie(
        SESSION_COOKIE,
        signer.session_value(session),
        max_age=max(1, remaining),
        httponly=True,
        secure=request.app.state.settings.cookies_secure,
        samesite="lax",
        path="/",
    )


def start_session(request: Request, response: Response, caller: Caller, via: str) -> None:
    now = _signer(request).clock()
    _set_session_cookie(request, response, Session(caller, via, now, now))
    # A fresh CSRF secret with every session, so a token seen before log-in is useless after.
    set_csrf_cookie(request, response, secrets.token_urlsafe(16))


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def active_session(request: Request) -> Session:
    """The signed-in officer's session, marked as active now (the cookie is re-signed on
    the way out); LoginRequired, saying why, when there is none or it has run out."""
    signer = _signer(request)
    session = signer.read_session(request.cookies.get(SESSION_COOKIE))
    if session is None:
        raise LoginRequired()
    expired = signer.expiry(session)
    if expired:
        raise LoginRequired(expired)
    request.state.renewed_session = replace(session, seen=signer.clock())
    return session


def page_user(permission: str) -> Any:
    """A dependency for a page: the signed-in officer, if their role allows `permission`."""

    def check(request: Request) -> Caller:
        caller = active_session(request).caller
        if not allowed(caller.role, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Your role cannot do this.")
        return caller

    return Depends(check)


# CSRF: a random secret in a cookie; each form carries that secret signed with the
# server's key, so another site can neither read nor forge it.


def set_csrf_cookie(request: Request, response: Response, value: str) -> None:
    request.state.csrf_secret = value
    response.set_cookie(
        CSRF_COOKIE,
        value,
        httponly=True,
        secure=request.app.state.settings.cookies_secure,
        samesite="lax",
        path="/",
    )


def csrf_token(request: Request) -> str:
    """The token for a form on this page (creating the cookie's secret when needed)."""
    secret = getattr(request.state, "csrf_secret", None) or request.cookies.get(CSRF_COOKIE)
    if not secret:
        secret = secrets.token_urlsafe(16)
        request.state.csrf_new_secret = secret
    request.state.csrf_secret = secret
    return _signer(request).csrf.dumps(secret)


async def check_csrf(request: Request) -> None:
    """Refuse a form post whose token does not match this browser's CSRF cookie."""
    form = await request.form()
    token = str(form.get("csrf_token", ""))
    secret = request.cookies.get(CSRF_COOKIE, "")
    try:
        expected = _signer(request).csrf.loads(token)
    except BadSignature:
        expected = None
    if not secret or not isinstance(expected, str) or not secrets.compare_digest(expected, secret):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "This form has expired or did not come from this service. Go back and try again.",
        )


CsrfChecked = Depends(check_csrf)


# Bearer tokens (JSON API)


def api_caller(permission: str) -> Any:
    """A dependency for an API route: the service token or an officer's signed token."""

    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Caller:
        settings: OutreachSettings = request.app.state.settings
        if credentials is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid token is required.")
        if secrets.compare_digest(credentials.credentials, settings.service_token):
            caller: Caller | None = Caller(name="service", role=SERVICE_ROLE)
        else:
            caller = _signer(request).read_token(credentials.credentials)
        if caller is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid token is required.")
        if not allowed(caller.role, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Your role cannot do this.")
        return caller

    return Depends(check)


# Headers


def _provider_origin(request: Request) -> str:
    """The identity provider's origin, when officers sign in there: signing out posts a
    form here that redirects to the provider, and browsers hold redirects after a form to
    the form-action policy too."""
    provider = request.app.state.identity_provider
    if provider is None:
        return ""
    addresses = [request.app.state.settings.oidc_issuer]
    # Its sign-out page may be elsewhere; known once discovery has run.
    addresses.append(provider.client.server_metadata.get("end_session_endpoint") or "")
    origins = {f"{u.scheme}://{u.netloc}" for u in map(urlsplit, addresses) if u.netloc}
    return "".join(f" {origin}" for origin in sorted(origins))


class SecurityHeaders(BaseHTTPMiddleware):
    """CSP with a per-response nonce (the GOV.UK template's one inline script uses it),
    no framing, no sniffing, no referrer, and nothing about residents left in caches."""

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        nonce = secrets.token_urlsafe(16)
        request.state.csp_nonce = nonce
        response = await call_next(request)
        path = request.url.path
        if path in ("/docs", "/redoc"):
            # FastAPI's API explorer loads its scripts and styles from a CDN.
            cdn = "https://cdn.jsdelivr.net"
            csp = (
                f"default-src 'self'; script-src 'self' 'unsafe-inline' {cdn}; "
                f"style-src 'self' 'unsafe-inline' {cdn}; img-src 'self' data: https:; "
                "frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
            )
        else:
            csp = (
                f"default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self'; "
                "img-src 'self' data:; font-src 'self'; connect-src 'self'; "
                f"form-action 'self'{_provider_origin(request)}; frame-ancestors 'none'; "
                "base-uri 'self'; object-src 'none'"
            )
        response.headers["Content-Security-Policy"] = csp
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=()"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if not path.startswith(("/assets", "/static")):
            response.headers["Cache-Control"] = "no-store"
        if request.app.state.settings.cookies_secure:
            response.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        renewed = getattr(request.state, "renewed_session", None)
        cookies_set = response.headers.getlist("set-cookie")
        if renewed is not None and not any(c.startswith(SESSION_COOKIE) for c in cookies_set):
            # The officer was active: their idle time starts again from now.
            _set_session_cookie(request, response, renewed)
        new_secret = getattr(request.state, "csrf_new_secret", None)
        if new_secret and CSRF_COOKIE not in request.cookies:
            set_csrf_cookie(request, response, new_secret)
        return response
