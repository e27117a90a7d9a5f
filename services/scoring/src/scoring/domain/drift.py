"""Has the population the worker scores moved away from the one the models were trained on?

Training writes, into each model card, the decile cut points of every feature and of the
model's score over the training population, and the share of that population in each bin
(`reference_distribution`). The worker bins the residents it holds today with the same cut
points and compares the shares with the population stability index:

    PSI = sum over bins of (actual - expected) * ln(actual / expected)

By the usual reading, under 0.1 is stable, 0.1 to 0.2 is worth watching, and over 0.2 is a
shift large enough that the model's ranking and calibration may no longer hold: an alarm.

Pure functions of numbers, so training (which writes the reference) and the worker (which
measures against it) share one binning rule, and tests need neither broker nor models.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

DECILES = 10
ALARM_PSI = 0.2
WATCH_PSI = 0.1
# An empty bin on either side would make ln(actual / expected) infinite; a tiny floor keeps
# the index finite while an empty-versus-full bin still counts heavily.
FLOOR = 1e-4
# Fewer residents than this and the index is mostly noise: it is reported, never alarmed.
MIN_RESIDENTS = 200


def cut_points(values: np.ndarray, deciles: int = DECILES) -> list[float]:
    """The distinct interior decile cut points of `values`. A yes/no feature has one (or
    none), a count a few, a continuous feature up to nine."""
    # Cut points are values the population really has (no interpolation between them).
    quantiles = np.quantile(
        values.astype(np.float64), np.arange(1, deciles) / deciles, method="inverted_cdf"
    )
    return [float(v) for v in np.unique(np.round(quantiles, 6))]


def bin_shares(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """The share of `values` in each of the len(edges) + 1 bins: bin 0 holds values at or
    below edges[0], bin i values above edges[i-1] and at or below edges[i], the last bin
    values above every edge."""
    if len(values) == 0:
        return np.zeros(len(edges) + 1)
    index = np.searchsorted(np.asarray(edges, dtype=np.float64), values.astype(np.float64))
    counts = np.bincount(index, minlength=len(edges) + 1)
    return np.asarray(counts / len(values), dtype=np.float64)


def reference_distribution(values: np.ndarray, deciles: int = DECILES) -> dict[str, list[float]]:
    """What a model card keeps of the training population, for one feature or score."""
    edges = cut_points(values, deciles)
    return {
        "edges": edges,
        "proportions": [round(float(s), 6) for s in bin_shares(values, edges)],
    }


def psi(
    expected: Sequence[float] | np.ndarray,
    actual: Sequence[float] | np.ndarray,
    floor: float = FLOOR,
) -> float:
    """Population stability index of `actual` shares against `expected` shares."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    a = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((a - e) * np.log(a / e)))


def level(value: float, alarm_at: float = ALARM_PSI) -> str:
    if value > alarm_at:
        return "alarm"
    if value > WATCH_PSI:
        return "watch"
    return "stable"


@dataclass(frozen=True)
class Drift:
    model: str
    measure: str  # a feature name, or "score"
    psi: float
    residents: int
    level: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "measure": self.measure,
            "psi": round(self.psi, 4),
            "residents": self.residents,
            "level": self.level,
        }


def measure_drift(
    cards: Mapping[str, Mapping[str, Any]],
    features: np.ndarray,
    feature_names: Sequence[str],
    scores: Mapping[str, np.ndarray],
    alarm_at: float = ALARM_PSI,
) -> dict[str, Any]:
    """PSI of every feature and of every model's score against each card's reference.

    `features` is [N, F] for the residents held now; `scores` each model's probabilities
    for the same residents. The features are the same for every model, so each feature is
    reported once, against the first card that carries a reference for it.
    """
    residents = int(features.shape[0])
    enough = residents >= MIN_RESIDENTS
    rows: list[Drift] = []

    def add(model: str, measure: str, reference: Mapping[str, Any], values: np.ndarray) -> None:
        value = psi(reference["proportions"], bin_shares(values, reference["edges"]))
        judged = level(value, alarm_at) if enough else "too_few_residents"
        rows.append(Drift(model, measure, value, residents, judged))

    seen: set[str] = set()
    for model, card in cards.items():
        reference = card.get("distribution")
        if not reference:
            continue
        for index, name in enumerate(feature_names):
            if name in seen or name not in reference["features"]:
                continue
            seen.add(name)
            add(model, name, reference["features"][name], features[:, index])
        if model in scores:
            add(model, "score", reference["score"], scores[model])
    alarms = [row.as_dict() for row in rows if row.level == "alarm"]
    return {
        "residents": residents,
        "alarm_at": alarm_at,
        "measures": [row.as_dict() for row in rows],
        "alarms": alarms,
        "missing_reference": sorted(m for m, c in cards.items() if not c.get("distribution")),
    }
