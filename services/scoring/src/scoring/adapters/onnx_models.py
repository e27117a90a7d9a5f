"""The three ONNX models and their cards, scored in batches with ONNX Runtime.

One `InferenceSession` per model, one intra-op thread each: the worker is one process per
core, and a logistic model on a micro-batch is far too small to gain from more threads.
A card whose feature list differs from the code's is refused at start-up, because the
model would otherwise read the wrong columns without any error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from scoring.domain.explain import ReasonText
from scoring.domain.features import FEATURE_NAMES

MODEL_NAMES: tuple[str, ...] = ("falls", "homelessness", "frailty")


class ModelDoesNotFit(RuntimeError):
    """A model file or card that the running code cannot safely use."""


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    feature_names: tuple[str, ...]
    reasons: Mapping[str, ReasonText]
    thresholds: Mapping[str, float]
    card: Mapping[str, Any]
    session: ort.InferenceSession

    def run(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities [N] and logit contributions [N, F] for a float32 batch [N, F]."""
        probability, contributions = self.session.run(
            ["probability", "contributions"], {"features": features.astype(np.float32, copy=False)}
        )
        return probability, contributions


def load_model(directory: Path, name: str) -> LoadedModel:
    card_path = directory / f"{name}.card.json"
    model_path = directory / f"{name}.onnx"
    if not card_path.exists() or not model_path.exists():
        raise ModelDoesNotFit(
            f"{name}: expected {model_path.name} and {card_path.name} in {directory}"
        )
    card = json.loads(card_path.read_text(encoding="utf-8"))
    names = tuple(feature["name"] for feature in card["features"])
    if names != FEATURE_NAMES:
        raise ModelDoesNotFit(
            f"{name} {card.get('version')}: its card lists features {names}, this code computes "
            f"{FEATURE_NAMES}; retrain with `python -m scoring.training`"
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return LoadedModel(
        name=name,
        version=str(card["version"]),
        feature_names=names,
        reasons={
            feature["name"]: ReasonText(feature["reason_text"], feature["source_table"])
            for feature in card["features"]
        },
        thresholds={
            "medium": float(card["thresholds"]["medium"]),
            "high": float(card["thresholds"]["high"]),
        },
        card=card,
        session=session,
    )


class ModelRegistry:
    """Every model the worker serves, by name."""

    def __init__(self, models: Iterable[LoadedModel]) -> None:
        self.models = {model.name: model for model in models}

    @classmethod
    def load(cls, directory: Path, names: Iterable[str] = MODEL_NAMES) -> ModelRegistry:
        return cls(load_model(directory, name) for name in names)

    def score(self, features: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """One ONNX Runtime call per model for the whole batch."""
        return {name: model.run(features) for name, model in self.models.items()}
