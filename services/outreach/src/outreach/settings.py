"""Outreach's settings: `PROACTIVE_*` environment variables."""

from pathlib import Path

from pydantic import Field

from outreach.domain.policy import DEFAULT_POLICY_PATH
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
    outreach_session_hours: int = Field(8, ge=1, le=24)
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
    oidc_role_claim: str = "roles"

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
    def cookies_secure(self) -> bool:
        return self.outreach_secure_cookies or not self.is_dev
