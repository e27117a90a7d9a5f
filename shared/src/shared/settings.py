"""Settings every service shares, read from `PROACTIVE_*` environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEV_PSEUDONYM_KEY = "dev-only-pseudonym-key-change-me"
DEV_SERVICE_TOKEN = "dev-only-service-token-change-me"


class CommonSettings(BaseSettings):
    """Base class: each service's own settings class adds its fields to these."""

    model_config = SettingsConfigDict(env_prefix="PROACTIVE_", extra="ignore")

    environment: str = Field("dev", description="`dev` allows the built-in development secrets")
    kafka_bootstrap: str = "127.0.0.1:9092"
    data_dir: Path = Path(".proactive")
    service_token: str = Field(
        DEV_SERVICE_TOKEN, description="Shared secret services present to each other's APIs"
    )
    traces_to_file: bool = Field(
        True, description="Write spans to <data_dir>/traces/<service>.jsonl (embedded default)"
    )
    kafka_fetch_max_wait_ms: int = Field(
        500,
        ge=1,
        le=10_000,
        description="How long a consumer's fetch may wait at the broker for records. Apache "
        "Kafka answers as soon as a record arrives, so this only bounds idle polling; the "
        "embedded broker answers only when the wait is over, so there it is the delay of "
        "every hop (the embedded stack sets 20)",
    )
    log_level: str = "INFO"
    bind_host: str = Field(
        "127.0.0.1", description="Address the HTTP services listen on (0.0.0.0 in a container)"
    )

    @property
    def is_dev(self) -> bool:
        return self.environment == "dev"

    def refuse_dev_secrets(self, **secrets: str) -> None:
        """Stop start-up outside dev when a secret still has its published default."""
        if self.is_dev:
            return
        published = {DEV_PSEUDONYM_KEY, DEV_SERVICE_TOKEN}
        weak = [name for name, value in secrets.items() if value in published or len(value) < 16]
        if weak:
            raise ValueError(
                f"Refusing to start in environment '{self.environment}': "
                f"set real values for {', '.join(weak)} (the defaults are public)."
            )

    def service_data_dir(self, service: str) -> Path:
        path = self.data_dir / service
        path.mkdir(parents=True, exist_ok=True)
        return path
