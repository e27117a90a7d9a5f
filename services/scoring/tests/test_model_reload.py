"""The model registry picks up a new model without a restart, and refuses — keeping the
version already serving — a model without its card or one that breaks the ONNX contract."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from scoring.adapters.onnx_models import ModelDoesNotFit, ModelRegistry, load_model
from scoring.settings import DEFAULT_MODELS_DIR

pytestmark = pytest.mark.unit


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(DEFAULT_MODELS_DIR, folder)
    return folder


def touch_later(path: Path) -> None:
    stat = path.stat()
    os.utime(path, (stat.st_atime + 10, stat.st_mtime + 10))


def rewrite_card(folder: Path, name: str, **changes: object) -> None:
    path = folder / f"{name}.card.json"
    card = json.loads(path.read_text())
    card.update(changes)
    path.write_text(json.dumps(card))
    touch_later(path)


def test_a_new_version_is_served_without_a_restart(models: Path):
    registry = ModelRegistry.load(models)
    old = registry.models["falls"].version
    rewrite_card(models, "falls", version="9.9.9")
    assert registry.reload() == [f"falls: {old} -> 9.9.9"]
    assert registry.models["falls"].version == "9.9.9"
    assert registry.reload() == []  # nothing changed since


def test_a_model_that_breaks_the_contract_is_refused_and_the_old_one_keeps_serving(models: Path):
    registry = ModelRegistry.load(models)
    serving = registry.models["frailty"]
    card = json.loads((models / "frailty.card.json").read_text())
    rewrite_card(models, "frailty", version="bad", bias=card["bias"] + 1.0)
    [change] = registry.reload()
    assert change.startswith("frailty: refused")
    assert "logit(probability)" in change
    assert registry.models["frailty"] is serving


def test_a_model_without_its_card_is_refused(models: Path):
    registry = ModelRegistry.load(models)
    serving = registry.models["homelessness"]
    (models / "homelessness.card.json").unlink()
    touch_later(models / "homelessness.onnx")
    [change] = registry.reload()
    assert "refused" in change
    assert registry.models["homelessness"] is serving
    with pytest.raises(ModelDoesNotFit, match="expected"):
        load_model(models, "homelessness")


def test_every_committed_model_passes_the_contract_check_at_load():
    for name in ("falls", "homelessness", "frailty"):
        assert load_model(DEFAULT_MODELS_DIR, name).name == name
