"""notify's settings: the shared ones plus its port, database, vault and channels."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.database import database_url
from shared.settings import CommonSettings


class NotifySettings(CommonSettings):
    notify_port: int = 8004
    notify_database_url: str | None = Field(
        None, description="PostgreSQL URL in production; SQLite in <data_dir>/notify when unset"
    )
    ingest_url: str = Field("http://127.0.0.1:8001", description="Where ingest's vault API answers")
    officer_webhook_url: str | None = Field(
        None, description="Where officer notifications are POSTed; none are sent when unset"
    )
    outreach_url: str = Field(
        "http://127.0.0.1:8003", description="Officer UI base, for the task link in notifications"
    )
    notify_public_url: str | None = Field(
        None,
        description="How staff reach notify, for letter links; http://127.0.0.1:<port> when unset",
    )
    notify_consumer_group: str = "notify"
    letter_channel: Literal["pdf"] = Field(
        "pdf", description="How letters leave: `pdf` files today; GOV.UK Notify is a later adapter"
    )
    vault_timeout_s: float = 5.0
    vault_attempts: int = Field(
        6, ge=1, description="Tries for a vault call that fails transiently"
    )

    def database(self) -> str:
        return database_url(self.notify_database_url, self.data_dir, "notify")

    @property
    def letters_dir(self) -> Path:
        folder = self.service_data_dir("notify") / "letters"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def notify_url(self) -> str:
        return self.notify_public_url or f"http://127.0.0.1:{self.notify_port}"

    def validate_for_start(self) -> None:
        self.refuse_dev_secrets(service_token=self.service_token)
