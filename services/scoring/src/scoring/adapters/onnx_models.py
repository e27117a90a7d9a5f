"""The three ONNX models and their cards, scored in batches with ONNX Runtime.

One `InferenceSession` per model, one intra-op thread each: the worker is one process per
core, and a logistic model on a micro-batch is far too small to gain from more threads.
A card whose feature list differs from the code's is refused at start-up, because the
model would otherwise read the wrong columns without any error.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from scoring.domain.explain import ReasonText
from scoring.domain.features import FEATURE_NAMES

MODEL_NAMES: tuple[str, ...] = ("falls", "homelessness", "frailty")
log = logging.getLogger(__name__)


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
    model = LoadedModel(
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
    check_contract(model, float(card["bias"]))
    return model


def check_contract(model: LoadedModel, bias: float, tolerance: float = 1e-3) -> None:
    """Refuse a model whose outputs break the ONNX contract: `probability` [N] in [0, 1],
    `contributions` [N, F], and bias + Σ contributions = logit(probability)."""
    probe = np.random.default_rng(0).normal(size=(16, len(model.feature_names)))
    probe = np.vstack([np.zeros((1, probe.shape[1])), probe]).astype(np.float32)
    try:
        probability, contributions = model.run(probe)
    except Exception as error:
        raise ModelDoesNotFit(f"{model.name} {model.version}: it does not run: {error}") from None
    if probability.shape != (len(probe),) or contributions.shape != probe.shape:
        raise ModelDoesNotFit(f"{model.name} {model.version}: outputs of the wrong shape")
    p = np.clip(probability.astype(np.float64), 1e-12, 1 - 1e-12)
    gap = np.abs(bias + contributions.astype(np.float64).sum(axis=1) - np.log(p / (1 - p)))
    if not np.all(np.isfinite(gap)) or float(gap.max()) > tolerance:
        raise ModelDoesNotFit(
            f"{model.name} {model.version}: bias + contributions differ from logit(probability) "
            f"by up to {float(np.nanmax(gap)):.4f}; the explanations would not be faithful"
        )


class ModelRegistry:
    """Every model the worker serves, by name."""

    def __init__(self, models: Iterable[LoadedModel], directory: Path | None = None) -> None:
        self.models = {model.name: model for model in models}
        self.directory = directory
        self._stamps = {name: self._stamp(name) for name in self.models} if directory else {}

    @classmethod
    def load(cls, directory: Path, names: Iterable[str] = MODEL_NAMES) -> ModelRegistry:
        return cls((load_model(directory, name) for name in names), directory)

    @classmethod
    def candidates(cls, directory: Path) -> ModelRegistry:
        """The candidate models in a shadow folder: whichever of the three are there
        (none if the folder is absent). `refresh` follows the folder as it changes."""
        registry = cls([], directory)
        registry.refresh()
        return registry

    def refresh(self) -> list[str]:
        """For a shadow folder: load candidates that appeared or changed, drop those
        removed. A candidate that breaks the contract is refused with its reason."""
        if self.directory is None:
            return []
        changes = []
        for name in MODEL_NAMES:
            stamp = self._stamp(name)
            if stamp == self._stamps.get(name):
                continue
            self._stamps[name] = stamp
            if 0.0 in stamp:
                if self.models.pop(name, None) is not None:
                    log.warning("stopped the %s shadow candidate: its files are gone", name)
                    changes.append(f"{name}: shadow candidate removed")
                continue
            try:
                candidate = load_model(self.directory, name)
            except (ModelDoesNotFit, OSError, ValueError, KeyError) as error:
                log.error("refused a %s shadow candidate: %s", name, error)
                self.models.pop(name, None)
                changes.append(f"{name}: shadow candidate refused ({error})")
                continue
            self.models[name] = candidate
            log.warning("scoring %s %s in shadow mode", name, candidate.version)
            changes.append(f"{name}: shadow candidate {candidate.version}")
        return changes

    def _stamp(self, name: str) -> tuple[float, float]:
        assert self.directory is not None
        files = (self.directory / f"{name}.onnx", self.directory / f"{name}.card.json")
        return tuple(path.stat().st_mtime if path.exists() else 0.0 for path in files)  # type: ignore[return-value]

    def reload(self) -> list[str]:
        """Pick up models whose files changed, without a restart. A model that is missing
        its card, or breaks the contract, is refused with a log line and the version
        already loaded keeps serving. Returns what changed, in words."""
        if self.directory is None:
            return []
        changes = []
        for name in list(self.models):
            stamp = self._stamp(name)
            if stamp == self._stamps.get(name):
                continue
            self._stamps[name] = stamp
            current = self.models[name]
            try:
                candidate = load_model(self.directory, name)
            except (ModelDoesNotFit, OSError, ValueError, KeyError) as error:
                log.error(
                    "refused a new %s model: %s; version %s keeps serving",
                    name,
                    error,
                    current.version,
                )
                changes.append(f"{name}: refused ({error})")
                continue
            if candidate.version != current.version:
                self.models[name] = candidate
                log.warning("now serving %s %s (was %s)", name, candidate.version, current.version)
                changes.append(f"{name}: {current.version} -> {candidate.version}")
        return changes

    def score(self, features: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """One ONNX Runtime call per model for the whole batch."""
        return {name: model.run(features) for name, model in self.models.items()}
