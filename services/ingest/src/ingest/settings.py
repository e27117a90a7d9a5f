"""Ingest's settings: `PROACTIVE_*` environment variables, checked at start-up."""

from pathlib import Path

from pydantic import Field

from ingest.domain.mapping import DEFAULT_MAPPING_PATH
from shared.settings import DEV_PSEUDONYM_KEY, CommonSettings


class IngestSettings(CommonSettings):
    ingest_port: int = 8001
    ingest_database_url: str | None = Field(
        None, description="PostgreSQL URL in production; empty means SQLite in the data folder"
    )
    pseudonym_key: str = Field(
        DEV_PSEUDONYM_KEY, description="Secret for the keyed HMAC that makes resident_key"
    )
    mapping_path: Path = Field(DEFAULT_MAPPING_PATH, description="The source mapping (YAML)")
    cdc_prefix: str = Field("council", description="Kafka CDC topics are <prefix>.<schema>.<table>")
    cdc_from_kafka: bool = Field(True, description="Consume the Kafka CDC topics")
    max_body_bytes: int = Field(10 * 1024 * 1024, description="Larger request bodies get 413")
    rate_limit: str = Field(
        "200/second", description="Requests a source's API key may make (429 beyond it)"
    )
    outbox_batch_size: int = 1000

    def check(self) -> "IngestSettings":
        self.refuse_dev_secrets(
            PROACTIVE_PSEUDONYM_KEY=self.pseudonym_key, PROACTIVE_SERVICE_TOKEN=self.service_token
        )
        return self
