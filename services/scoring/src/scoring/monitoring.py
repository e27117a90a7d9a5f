"""Drift of the residents a worker holds against the training distribution in each card.

Reads the worker's own state (the Faust table, or a dict in tests): every resident who can
be scored is folded into features by the same code that scores them, scored by the served
models in batches, and compared with the cards' reference distributions
(`scoring.domain.drift`). Nothing leaves the worker but shares and indices.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.drift import ALARM_PSI, measure_drift
from scoring.domain.features import FEATURE_COUNT, FEATURE_NAMES, can_be_scored, feature_vector
from scoring.domain.state import ResidentState, read_stored

OPTED_OUT = "opted_out"


def held_features(states: Iterable[bytes | Mapping[str, Any] | None]) -> np.ndarray:
    """The feature rows of every stored state that the worker would score."""
    rows = []
    for value in states:
        stored = read_stored(value)
        if not stored or stored.get(OPTED_OUT):
            continue
        state = ResidentState.from_json(dict(stored))
        if can_be_scored(state):
            rows.append(feature_vector(state))
    if not rows:
        return np.zeros((0, FEATURE_COUNT), dtype=np.float32)
    return np.vstack(rows)


def drift_report(
    states: Iterable[bytes | Mapping[str, Any] | None],
    models: ModelRegistry,
    alarm_at: float = ALARM_PSI,
) -> dict[str, Any]:
    """PSI of every feature and model score, with the alarms (PSI over `alarm_at`)."""
    features = held_features(states)
    scores = (
        {name: np.asarray(result[0]) for name, result in models.score(features).items()}
        if len(features)
        else {name: np.zeros(0) for name in models.models}
    )
    report = measure_drift(
        {name: model.card for name, model in models.models.items()},
        features,
        FEATURE_NAMES,
        scores,
        alarm_at,
    )
    report["measured_at"] = datetime.now(UTC).isoformat()
    report["model_versions"] = {name: model.version for name, model in models.models.items()}
    return report
