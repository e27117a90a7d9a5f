"""The scoring service's settings, from `PROACTIVE_*` environment variables."""

from pathlib import Path

from pydantic import Field

from shared.settings import CommonSettings

# services/scoring/models, found from this file so that it works from any directory.
DEFAULT_MODELS_DIR = Path(__file__).resolve().parents[2] / "models"


class ScoringSettings(CommonSettings):
    scoring_port: int = Field(
        8002, description="Port of the worker's web pages (/healthz, /readyz, /stats)"
    )
    scoring_models_dir: Path = DEFAULT_MODELS_DIR
    scoring_shadow_models_dir: Path = Field(
        DEFAULT_MODELS_DIR / "shadow",
        description="Candidate models (same file names as the served ones) scored in shadow "
        "mode into risk.scores.shadow.v1: compared, never acted on. Absent or empty: none.",
    )
    scoring_hysteresis_delta: float = Field(
        0.02,
        ge=0.0,
        le=1.0,
        description="Re-emit a score in the same band only if it moved more than this",
    )
    scoring_batch_size: int = Field(
        256, ge=1, description="Score as soon as this many residents wait"
    )
    scoring_batch_max_wait_s: float = Field(
        0.01,
        gt=0.0,
        le=5.0,
        description="...or when the first event waiting has waited this long, whichever "
        "comes first (the bound on what batching adds to an event's latency)",
    )
    scoring_changelog_batching: bool = Field(
        True,
        description="Batch the state changelog's records into produce requests. The embedded "
        "broker under-reports a partition's end offset after a batched produce, so a worker "
        "taking over a partition would restore its state short of the last updates; the "
        "embedded stack sends one record per request instead (slower, but right). Keep it on "
        "with Apache Kafka.",
    )
    scoring_recovery_consistency_check: bool = Field(
        True,
        description="Faust's check that the local state is not ahead of its changelog. The "
        "embedded broker under-reports end offsets, which makes the check fail falsely after "
        "a restart, so the embedded stack turns it off; keep it on with Apache Kafka.",
    )
