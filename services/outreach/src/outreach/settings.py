"""Outreach's settings: `PROACTIVE_*` environment variables."""

from pathlib import Path

from limits import parse
from pydantic import Field, field_validator

from outreach.domain.policy import DEFAULT_POLICY_PATH
from outreach.domain.roles import HUMAN_ROLES
from shared.settings import CommonSettings

DEV_SESSION_SECRET = "dev-only-outreach-session-secret-change-me"


class OutreachSettings(CommonSettings):
    outreach_port: int = 8003
    outreach_database_url: str | None = Field(
        None, description="PostgreSQL URL in production; empty means SQLite in the data folder"
    )
    policy_path: Path = DEFAULT_POLICY_PATH
    ingest_url: str = Field(
        "http://127.0.0.1:8001",
        description="ingest, which checks an opt-out's postcode and keeps refused changes",
    )
    # The ops view asks the other services for their health and figures. Unset, these
    # follow the ports the embedded stack gives each service.
    scoring_port: int = 8002
    notify_port: int = 8004
    scoring_url: str | None = Field(None, description="scoring's base URL (for the ops view)")
    notify_url: str | None = Field(None, description="notify's base URL (for the ops view)")
    trace_viewer_url: str | None = Field(
        None,
        description="Jaeger or Tempo in production: trace links go to '<url>/trace/<id>', "
        "or to the URL with '{trace_id}' replaced; unset, to the ops view's own waterfall",
    )
    ops_timeout_s: float = Field(
        1.5, gt=0, le=10, description="How long the ops view waits for another service"
    )
    outreach_session_secret: str = Field(
        DEV_SESSION_SECRET, description="Signs officers' session cookies and API tokens"
    )
    outreach_session_hours: int = Field(
        8, ge=1, le=24, description="An officer signs in again after this long, however busy"
    )
    outreach_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="An officer signs in again after this long unused"
    )
    outreach_login_failures_per_account: str = Field(
        "5/15 minutes",
        description="Failed password sign-ins allowed per user name before refusing (429)",
    )
    outreach_login_failures_per_address: str = Field(
        "20/15 minutes",
        description="Failed password sign-ins allowed per client address before refusing",
    )
    oidc_callbacks_per_address: str = Field(
        "30/minute",
        description="Returns from the identity provider accepted per client address",
    )
    outreach_secure_cookies: bool = Field(
        False, description="Send cookies over HTTPS only (always on outside dev)"
    )
    outreach_housekeeping_seconds: float = Field(
        60.0, gt=0, description="How often held tasks are released and old records purged"
    )
    transparency_record_url: str = Field(
        "/transparency",
        description="The council's published algorithmic transparency record",
    )
    council_name: str = "the council"
    # Production sign-in is through the council's identity provider (OpenID Connect).
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: str | None = None
    oidc_role_claim: str = Field(
        "roles",
        description="The ID token claim listing a person's roles or groups; a dotted path "
        "reaches into an object (Keycloak: `realm_access.roles`)",
    )
    oidc_role_map: dict[str, str] = Field(
        default_factory=lambda: {role: role for role in HUMAN_ROLES},
        description="Values of the role claim → our roles (JSON); anyone with none is refused",
    )
    oidc_name_claim: str = Field(
        "preferred_username",
        description="The claim that names an officer in the audit log (falls back to `sub`)",
    )
    oidc_scopes: str = "openid profile"
    outreach_url: str | None = Field(
        None,
        description="The address officers reach this service at; the identity provider "
        "sends them back to <url>/officer/login/oidc/callback. Unset, taken from the request",
    )

    @field_validator(
        "outreach_login_failures_per_account",
        "outreach_login_failures_per_address",
        "oidc_callbacks_per_address",
    )
    @classmethod
    def _a_rate(cls, value: str) -> str:
        parse(value)  # "5/15 minutes", "30/minute", …: refused here rather than at sign-in
        return value

    @field_validator("oidc_role_map")
    @classmethod
    def _our_roles(cls, mapping: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(mapping.values()) - set(HUMAN_ROLES))
        if unknown:
            raise ValueError(f"PROACTIVE_OIDC_ROLE_MAP maps to {unknown}; use {HUMAN_ROLES}")
        return mapping

    def check(self) -> "OutreachSettings":
        self.refuse_dev_secrets(
            PROACTIVE_SERVICE_TOKEN=self.service_token,
            PROACTIVE_OUTREACH_SESSION_SECRET=self.outreach_session_secret,
        )
        if not self.is_dev:
            if self.outreach_session_secret == DEV_SESSION_SECRET:
                raise ValueError(
                    "Refusing to start outside dev with the published session secret: "
                    "set PROACTIVE_OUTREACH_SESSION_SECRET."
                )
            missing = [
                name
                for name, value in (
                    ("PROACTIVE_OIDC_ISSUER", self.oidc_issuer),
                    ("PROACTIVE_OIDC_CLIENT_ID", self.oidc_client_id),
                    ("PROACTIVE_OIDC_CLIENT_SECRET", self.oidc_client_secret),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    "Officers sign in through the council's identity provider outside dev: "
                    f"set {', '.join(missing)}."
                )
            if not (self.oidc_issuer or "").startswith("https://"):
                raise ValueError("PROACTIVE_OIDC_ISSUER must be an https:// URL.")
        return self

    @property
    def service_urls(self) -> dict[str, str]:
        """The other services' base URLs, in the pipeline's order."""
        return {
            "ingest": self.ingest_url.rstrip("/"),
            "scoring": (self.scoring_url or f"http://127.0.0.1:{self.scoring_port}").rstrip("/"),
            "notify": (self.notify_url or f"http://127.0.0.1:{self.notify_port}").rstrip("/"),
        }

    @property
    def password_login(self) -> bool:
        """Seeded users with passwords are for development only."""
        return self.is_dev

    @property
    def oidc_sign_in(self) -> bool:
        """Sign-in through the identity provider, whenever it is configured (dev too)."""
        return bool(self.oidc_issuer and self.oidc_client_id and self.oidc_client_secret)

    @property
    def cookies_secure(self) -> bool:
        return self.outreach_secure_cookies or not self.is_dev
