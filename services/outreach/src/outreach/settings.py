"""Outreach's settings: `PROACTIVE_*` environment variables."""

from pathlib import Path

from pydantic import Field

from outreach.domain.policy import DEFAULT_POLICY_PATH
from shared.settings import CommonSettings


class OutreachSettings(CommonSettings):
    outreach_port: int = 8003
    outreach_database_url: str | None = Field(
        None, description="PostgreSQL URL in production; empty means SQLite in the data folder"
    )
    policy_path: Path = DEFAULT_POLICY_PATH

    def check(self) -> "OutreachSettings":
        self.refuse_dev_secrets(PROACTIVE_SERVICE_TOKEN=self.service_token)
        return self
