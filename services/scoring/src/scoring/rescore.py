"""A full re-score: every resident in state, scored again in large batches.

Used nightly (a model changed, or the calendar moved features such as "in the last 12
months"), and measured by `proactive bench`. Feature vectors come from the same
`domain.features` as the live worker; the models are called once per model per batch of
`batch_size` residents; bands and top reasons are derived with array operations rather
than per resident.

`python -m scoring.rescore --bench N --json` times a re-score of N synthetic residents
beside a single ONNX Runtime call over the same matrix, and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from scoring.adapters.onnx_models import ModelRegistry
from scoring.domain.features import FEATURE_COUNT, can_be_scored, feature_vector, is_deceased
from scoring.domain.state import Change, ResidentState
from scoring.settings import ScoringSettings


@dataclass
class Rescored:
    """One model's result for a batch: keys, probabilities, bands, top reason indices."""

    model: str
    resident_keys: list[str]
    probabilities: np.ndarray
    bands: np.ndarray  # 0 low, 1 medium, 2 high
    top_reason_indices: np.ndarray  # [N, 3]


def _batches(
    items: Iterable[tuple[str, ResidentState]], size: int
) -> Iterator[list[tuple[str, ResidentState]]]:
    batch: list[tuple[str, ResidentState]] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def rescore(
    states: Iterable[tuple[str, ResidentState]],
    registry: ModelRegistry,
    *,
    as_of: float | None = None,
    batch_size: int = 50_000,
) -> Iterator[Rescored]:
    """Score every scoreable resident again; deceased residents are never scored."""
    for batch in _batches(states, batch_size):
        keys: list[str] = []
        matrix = np.empty((len(batch), FEATURE_COUNT), dtype=np.float32)
        for key, state in batch:
            if is_deceased(state) or not can_be_scored(state):
                continue
            matrix[len(keys)] = feature_vector(state, as_of=as_of)
            keys.append(key)
        features = matrix[: len(keys)]
        for name, (probabilities, contributions) in registry.score(features).items():
            thresholds = registry.models[name].thresholds
            bands = (probabilities >= thresholds["medium"]).astype(np.int8) + (
                probabilities >= thresholds["high"]
            ).astype(np.int8)
            top = np.argsort(-contributions, axis=1, kind="stable")[:, :3]
            yield Rescored(name, keys, probabilities, bands, top)


def _add(
    state: ResidentState,
    key: str,
    table: str,
    record_key: str,
    attributes: dict[str, object],
    days_ago: float,
) -> None:
    state.apply(
        Change(
            event_id=f"{key}-{table}-{record_key}",
            occurred_at=time.time() - days_ago * 86_400,
            table=table,
            record_key=record_key,
            deleted=False,
            attributes=attributes,  # type: ignore[arg-type]
        )
    )


def synthetic_states(count: int, seed: int = 1) -> Iterator[tuple[str, ResidentState]]:
    """Plausible resident states for benchmarking: a resident row and a few others each."""
    draw = random.Random(seed)
    for index in range(count):
        state = ResidentState()
        key = f"r_{index:032x}"

        age = draw.randint(18, 99)
        _add(
            state,
            key,
            "people.residents",
            key,
            {"age_years": age, "sex": draw.choice(["female", "male"]), "lives_alone": draw.random() < 0.3,
             "ward": "Abbey", "deceased": False},
            400,
        )  # fmt: skip
        if draw.random() < 0.3:
            _add(
                state,
                key,
                "housing.rent_accounts",
                f"T{index}",
                {"balance_pence": draw.randint(0, 300_000), "weeks_in_arrears": draw.random() * 12,
                 "nosp_served": draw.random() < 0.1, "eviction_date": None, "last_payment_date": None},
                draw.random() * 300,
            )  # fmt: skip
        if age > 65 and draw.random() < 0.3:
            _add(
                state,
                key,
                "social_care.contacts",
                f"S{index}",
                {"contact_date": "2026-06-01", "reason": draw.choice(["fall", "mobility", "other"]),
                 "outcome": "assessment"},
                draw.random() * 300,
            )  # fmt: skip
        yield key, state


def bench(count: int, registry: ModelRegistry) -> dict[str, float]:
    states = list(synthetic_states(count))
    started = time.perf_counter()
    scored = sum(len(result.resident_keys) for result in rescore(states, registry))
    rescore_s = time.perf_counter() - started
    matrix = np.vstack([feature_vector(state) for _, state in states[:10_000]])
    matrix = np.resize(matrix, (count, FEATURE_COUNT)).astype(np.float32)
    started = time.perf_counter()
    registry.score(matrix)
    single_call_s = time.perf_counter() - started
    return {
        "residents": count,
        "scores": scored,
        "rescore_s": round(rescore_s, 3),
        "single_onnx_call_s": round(single_call_s, 4),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring.rescore")
    parser.add_argument("--bench", type=int, required=True, help="residents to re-score")
    parser.add_argument("--json", action="store_true")
    arguments = parser.parse_args(argv)
    registry = ModelRegistry.load(ScoringSettings().scoring_models_dir)
    result = bench(arguments.bench, registry)
    print(json.dumps(result) if arguments.json else result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
