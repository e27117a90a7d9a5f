"""Who is asking, and may they: signed session cookies for the officer pages, signed
bearer tokens (or the service token) for the JSON API, CSRF tokens for every form, and the
security headers every response carries."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated, Any

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
    """A page needs a signed-in officer; the handler sends the browser to the log-in page."""


class Signer:
    def __init__(self, settings: OutreachSettings) -> None:
        self.settings = settings
        self.max_age = settings.outreach_session_hours * 3600
        self.sessions = URLSafeTimedSerializer(settings.outreach_session_secret, "session")
        self.tokens = URLSafeTimedSerializer(settings.outreach_session_secret, "api-token")
        self.csrf = URLSafeSerializer(settings.outreach_session_secret, "csrf")

    def session_value(self, caller: Caller) -> str:
        return self.sessions.dumps({"u": caller.name, "r": caller.role, "t": caller.team})

    def api_token(self, caller: Caller) -> str:
        return self.tokens.dumps({"u": caller.name, "r": caller.role, "t": caller.team})

    def read(self, serializer: URLSafeTimedSerializer, value: str | None) -> Caller | None:
        if not value:
            return None
        try:
            data: dict[str, Any] = serializer.loads(value, max_age=self.max_age)
        except BadSignature:
            return None
        return Caller(name=data["u"], role=data["r"], team=data.get("t"))


def _signer(request: Request) -> Signer:
    return request.app.state.signer


# Sessions (officer pages)


def session_caller(request: Request) -> Caller | None:
    return _signer(request).read(_signer(request).sessions, request.cookies.get(SESSION_COOKIE))


def start_session(request: Request, response: Response, caller: Caller) -> None:
    settings: OutreachSettings = request.app.state.settings
    response.set_cookie(
        SESSION_COOKIE,
        _signer(request).session_value(caller),
        max_age=settings.outreach_session_hours * 3600,
        httponly=True,
        secure=settings.cookies_secure,
        samesite="lax",
        path="/",
    )
    # A fresh CSRF secret with every session, so a token seen before log-in is useless after.
    set_csrf_cookie(request, response, secrets.token_urlsafe(16))


def end_session(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(CSRF_COOKIE, path="/")


def page_user(permission: str) -> Any:
    """A dependency for a page: the signed-in officer, if their role allows `permission`."""

    def check(request: Request) -> Caller:
        caller = session_caller(request)
        if caller is None:
            raise LoginRequired()
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
            caller = _signer(request).read(_signer(request).tokens, credentials.credentials)
        if caller is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, "A valid token is required.")
        if not allowed(caller.role, permission):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "Your role cannot do this.")
        return caller

    return Depends(check)


# Headers


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
                "form-action 'self'; frame-ancestors 'none'; base-uri 'self'; object-src 'none'"
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
        new_secret = getattr(request.state, "csrf_new_secret", None)
        if new_secret and CSRF_COOKIE not in request.cookies:
            set_csrf_cookie(request, response, new_secret)
        return response
