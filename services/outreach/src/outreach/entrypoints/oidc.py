"""Signing officers in through the council's identity provider (OpenID Connect).

Authlib does the protocol: discovery from `<issuer>/.well-known/openid-configuration`, the
authorization-code flow with PKCE (S256), `state` and `nonce` kept in a short-lived signed
cookie, the code exchanged with the client's credentials, and the ID token checked against
the provider's published keys (signature, `iss`, `aud`, `exp`, `iat`, `nonce`). We add what
is ours: the discovered issuer must be the configured one, a configurable claim decides the
person's role, a person with no role we know is refused, and the officer's session starts
as for a password sign-in (their name from a configurable claim, for the audit log)."""

from __future__ import annotations

import logging
from typing import Any

import httpx
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError
from authlib.integrations.starlette_client import OAuth, StarletteOAuth2App
from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import RedirectResponse, Response
from joserfc.errors import JoseError

from outreach.entrypoints.login_limits import LoginLimits
from outreach.entrypoints.security import (
    Caller,
    client_address,
    public_base_url,
    start_session,
)
from outreach.entrypoints.web import landing, safe_next, too_many_attempts
from outreach.settings import OutreachSettings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/officer/login/oidc", include_in_schema=False)
CALLBACK_PATH = "/officer/login/oidc/callback"
# Authlib keeps the flow's state, nonce and PKCE verifier here between the redirect to the
# provider and the return; only the sign-in paths ever see this cookie.
FLOW_COOKIE = "outreach_signin"
FLOW_COOKIE_PATH = "/officer/login"
FLOW_MAX_AGE_S = 600
# With several roles, the broadest wins: an admin can do all an officer or ops can.
ROLE_ORDER = ("admin", "team_lead", "officer", "ops")


class ProviderMisconfigured(Exception):
    """The provider's published settings do not match ours: an administrator must look."""


class IdentityProvider:
    """The council's identity provider, as Authlib's Starlette client sees it."""

    def __init__(self, settings: OutreachSettings) -> None:
        self.settings = settings
        issuer = (settings.oidc_issuer or "").rstrip("/")
        self.client: StarletteOAuth2App = OAuth().register(
            "council",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=f"{issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.oidc_scopes,
                "code_challenge_method": "S256",
                "timeout": 10.0,
            },
        )

    @property
    def claims_options(self) -> dict[str, Any]:
        """What the ID token must say. Authlib checks `iss` by default but `aud` only
        through `azp`; OpenID Connect Core §3.1.3.7 wants our client id in `aud`."""
        return {
            "iss": {"essential": True, "values": [self.settings.oidc_issuer]},
            "aud": {"essential": True, "values": [self.settings.oidc_client_id]},
            "sub": {"essential": True},
        }

    async def metadata(self) -> dict[str, Any]:
        metadata: dict[str, Any] = await self.client.load_server_metadata()
        # OpenID Connect Discovery §4.3: the document must name the issuer we asked.
        if metadata.get("issuer") != self.settings.oidc_issuer:
            self.client.server_metadata.clear()
            raise ProviderMisconfigured("The discovery document names a different issuer.")
        return metadata

    def role_of(self, claims: dict[str, Any]) -> str | None:
        """Our role for a person, from the configured claim through the role map."""
        value: Any = claims
        for part in self.settings.oidc_role_claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, str):
            value = value.split()
        if not isinstance(value, list):
            return None
        mapped = {self.settings.oidc_role_map.get(str(v)) for v in value}
        return next((role for role in ROLE_ORDER if role in mapped), None)

    async def sign_out_url(self, base_url: str) -> str | None:
        """Where to send a browser leaving an OIDC session so the provider signs it out
        too (RP-Initiated Logout), or None when the provider offers no such page."""
        try:
            metadata = await self.metadata()
        except (httpx.HTTPError, ValueError, ProviderMisconfigured):
            return None
        if not metadata.get("end_session_endpoint"):
            return None
        logout = await self.client.create_logout_url(
            post_logout_redirect_uri=base_url + "/officer/signed-out",
            client_id=self.settings.oidc_client_id,
        )
        return str(logout["url"])

    def name_of(self, claims: dict[str, Any]) -> str:
        name = claims.get(self.settings.oidc_name_claim) or claims["sub"]
        return str(name)[:128]


def _provider(request: Request) -> IdentityProvider:
    provider: IdentityProvider | None = request.app.state.identity_provider
    if provider is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Sign-in with a council account is off.")
    return provider


def _misconfigured(error: ProviderMisconfigured) -> HTTPException:
    log.error("Identity provider refused as misconfigured: %s", error)
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Signing in with a council account is not working because of a set-up problem. "
        "Tell your administrator.",
    )


def _not_answering() -> HTTPException:
    return HTTPException(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "The council's sign-in service is not answering. Try again in a few minutes.",
    )


@router.get("")
async def start(request: Request, next: str = "/officer/tasks") -> Response:
    """Send the browser to the identity provider, remembering where it was going."""
    provider = _provider(request)
    try:
        await provider.metadata()
        redirect: Response = await provider.client.authorize_redirect(
            request, public_base_url(request) + CALLBACK_PATH
        )
    except ProviderMisconfigured as error:
        raise _misconfigured(error) from error
    except (httpx.HTTPError, ValueError) as error:
        log.warning("Identity provider discovery failed: %s", type(error).__name__)
        raise _not_answering() from error
    request.session["next"] = safe_next(next)
    return redirect


@router.get("/callback")
async def callback(request: Request) -> Response:
    """The provider sends the browser back here with a code; check everything, then
    start the officer's session."""
    provider = _provider(request)
    limits: LoginLimits = request.app.state.login_limits
    refused = limits.callback_refused(client_address(request))
    if refused:
        return too_many_attempts(request, refused)
    try:
        await provider.metadata()
        token = await provider.client.authorize_access_token(
            request, claims_options=provider.claims_options
        )
    except ProviderMisconfigured as error:
        raise _misconfigured(error) from error
    except MismatchingStateError as error:
        raise HTTPException(
            status.HTTP_400_BAD_REQUEST,
            "This sign-in has expired or was not started here. Go back to the sign-in page "
            "and try again.",
        ) from error
    except httpx.HTTPError as error:
        log.warning("Identity provider did not answer: %s", type(error).__name__)
        raise _not_answering() from error
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as error:
        # What was wrong goes to the log (it names no one), not to the page.
        log.warning("Sign-in refused: %s %s", type(error).__name__, error)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "We could not confirm who you are with the council's sign-in service. Go back "
            "to the sign-in page and try again.",
        ) from error
    claims = token.get("userinfo")
    if not claims:
        log.warning("Sign-in refused: the provider sent no ID token")
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "We could not confirm who you are with the council's sign-in service.",
        )
    role = provider.role_of(dict(claims))
    if role is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            "You do not have access to this service. If you need it for your work, ask "
            "your manager to request access.",
        )
    caller = Caller(name=provider.name_of(dict(claims)), role=role)
    target = landing(request.session.pop("next", "/officer/tasks"), role)
    response = RedirectResponse(target, status.HTTP_303_SEE_OTHER)
    start_session(request, response, caller, via="oidc")
    return response
