"""notify's settings: the shared ones plus its port, database, vault and channels."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr

from notify.domain.notify_key import NotifyKey, parse_notify_key
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
    letter_channel: Literal["pdf", "govuk-notify"] = Field(
        "pdf", description="How letters leave: `pdf` files for the print room, or GOV.UK Notify"
    )
    notify_base_url: str = Field(
        "https://api.notifications.service.gov.uk", description="GOV.UK Notify's API"
    )
    notify_api_key: SecretStr | None = Field(
        None, description="A Notify API key, `{key_name}-{service_id}-{secret}`"
    )
    notify_letter_mode: Literal["precompiled", "template"] = Field(
        "precompiled", description="Send our PDF (`precompiled`) or fill in a Notify template"
    )
    notify_letter_template_id: str | None = Field(
        None, description="The Notify letter template, when the letter mode is `template`"
    )
    notify_postage: Literal["first", "second", "economy"] = "second"
    notify_officer_email_template_id: str | None = Field(
        None, description="Tell officers by a Notify email with this template (else the webhook)"
    )
    notify_officer_email: str | None = Field(
        None, description="The team mailbox officer emails go to"
    )
    notify_timeout_s: float = 30.0
    notify_attempts: int = Field(5, ge=1, description="Tries for a Notify call that fails briefly")
    notify_backoff_s: float = Field(1.0, gt=0, description="First retry pause; doubles, jittered")
    notify_rate_per_minute: int = Field(
        3000, ge=1, description="Notify allows 3,000 requests a minute per key; we stay under it"
    )
    notify_breaker_failures: int = Field(
        5, ge=1, description="Consecutive Notify failures that open the circuit breaker"
    )
    notify_breaker_reset_s: float = Field(
        60.0, gt=0, description="How long the breaker stays open before trying Notify again"
    )
    notify_poll_interval_s: float = Field(
        300.0, gt=0, description="How often a sent letter's status is asked for until it is final"
    )
    notify_poll_days: int = Field(
        7, ge=1, description="Stop asking after this many days (Notify keeps data for 7 by default)"
    )
    officer_digest: Literal["off", "daily"] = Field(
        "off", description="`daily`: one summary a day instead of a notice per letter"
    )
    officer_digest_hour: int = Field(
        8, ge=0, le=23, description="The hour (UTC) the daily digest of yesterday is sent"
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

    def notify_key(self) -> NotifyKey | None:
        if self.notify_api_key is None:
            return None
        return parse_notify_key(self.notify_api_key.get_secret_value())

    def validate_for_start(self) -> None:
        self.refuse_dev_secrets(service_token=self.service_token)
        needs_key = self.letter_channel == "govuk-notify" or self.notify_officer_email_template_id
        if needs_key:
            if self.notify_api_key is None:
                raise ValueError(
                    "GOV.UK Notify is switched on but PROACTIVE_NOTIFY_API_KEY is not set."
                )
            self.notify_key()  # raises with a plain reason when the key is malformed
        if (
            self.letter_channel == "govuk-notify"
            and self.notify_letter_mode == "template"
            and not _is_uuid(self.notify_letter_template_id)
        ):
            raise ValueError(
                "PROACTIVE_NOTIFY_LETTER_MODE=template needs PROACTIVE_NOTIFY_LETTER_TEMPLATE_ID "
                "set to the letter template's id."
            )
        if self.notify_officer_email_template_id and not self.notify_officer_email:
            raise ValueError(
                "PROACTIVE_NOTIFY_OFFICER_EMAIL_TEMPLATE_ID is set but PROACTIVE_NOTIFY_OFFICER_EMAIL "
                "(the team mailbox) is not."
            )
        if self.notify_officer_email_template_id and not _is_uuid(
            self.notify_officer_email_template_id
        ):
            raise ValueError("PROACTIVE_NOTIFY_OFFICER_EMAIL_TEMPLATE_ID is not a template id.")


def _is_uuid(text: str | None) -> bool:
    try:
        uuid.UUID(text or "")
    except ValueError:
        return False
    return True
