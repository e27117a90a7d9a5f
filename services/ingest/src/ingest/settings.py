"""Ingest's settings: `PROACTIVE_*` environment variables, checked at start-up."""

from functools import lru_cache

from pydantic import Field

from shared.settings import DEV_PSEUDONYM_KEY, CommonSettings


class IngestSettings(CommonSettings):
    ingest_port: int = 8001
    ingest_database_url: str | None = Field(
        None, description="PostgreSQL URL in production; empty means SQLite in the data folder"
    )
    pseudonym_key: str = Field(
        DEV_PSEUDONYM_KEY, description="Secret for the keyed HMAC that makes resident_key"
    )
    outbox_batch_size: int = 500

    def check(self) -> "IngestSettings":
        self.refuse_dev_secrets(
            PROACTIVE_PSEUDONYM_KEY=self.pseudonym_key, PROACTIVE_SERVICE_TOKEN=self.service_token
        )
        return self


@lru_cache
def get_settings() -> IngestSettings:
    return IngestSettings().check()
