"""From a score's exact per-feature contributions to bands, reasons and the emit decision."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from shared.events import Band, Reason

TOP_REASONS = 3


@dataclass(frozen=True)
class ReasonText:
    text: str
    source_table: str


def band_for(probability: float, thresholds: Mapping[str, float]) -> Band:
    """`high` at or above the card's high threshold, `medium` at or above its medium one."""
    if probability >= thresholds["high"]:
        return "high"
    if probability >= thresholds["medium"]:
        return "medium"
    return "low"


def top_reasons(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    texts: Mapping[str, ReasonText],
    limit: int = TOP_REASONS,
) -> list[Reason]:
    """The features that raised this score most, largest first.

    Only positive contributions are reasons: a feature that lowered the score is not a
    reason to reach out. A resident with no raising feature gets no reasons.
    """
    return [
        Reason.model_construct(
            feature=str(fields["feature"]),
            text=str(fields["text"]),
            contribution=float(fields["contribution"]),
            source_table=str(fields["source_table"]),
        )
        for fields in top_reason_fields(contributions, feature_names, texts, limit)
    ]


def top_reason_fields(
    contributions: np.ndarray,
    feature_names: Sequence[str],
    texts: Mapping[str, ReasonText],
    limit: int = TOP_REASONS,
) -> list[dict[str, str | float]]:
    """`top_reasons` as plain mappings, the fields of `Reason` in its order (for a worker
    that writes scores' JSON directly)."""
    values = contributions.tolist()  # 20 floats: plain Python beats numpy calls here
    order = sorted(range(len(values)), key=lambda index: -values[index])[:limit]
    reasons: list[dict[str, str | float]] = []
    for index in order:
        value = values[index]
        if value <= 0:
            break
        name = feature_names[index]
        reasons.append(
            {
                "feature": name,
                "text": texts[name].text,
                "contribution": round(value, 4),
                "source_table": texts[name].source_table,
            }
        )
    return reasons


def should_emit(
    previous: tuple[float, str] | None, probability: float, band: str, delta: float
) -> bool:
    """Hysteresis: a first score, a band change, or a move of more than `delta`."""
    if previous is None:
        return True
    last_probability, last_band = previous
    return band != last_band or abs(probability - last_probability) > delta
