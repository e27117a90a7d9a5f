"""The committed ONNX models keep the glass-box contract their cards describe."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from scoring.adapters.onnx_models import MODEL_NAMES, ModelDoesNotFit, ModelRegistry, load_model
from scoring.domain.features import FEATURE_COUNT, FEATURE_NAMES
from scoring.settings import DEFAULT_MODELS_DIR


def _realistic_rows(count: int = 3000) -> np.ndarray:
    """Feature rows of a fresh synthetic borough, made by the same fold the worker runs.

    Realistic rows matter: the identity is exact in the graph, but a float32 probability
    cannot show a logit beyond about ±9, which no real resident reaches.
    """
    from proactive.borough import generate_borough
    from scoring.training import features_of

    return features_of(generate_borough(count, seed=11))


@pytest.mark.unit
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_bias_plus_contributions_is_the_logit_of_the_probability(name: str) -> None:
    model = load_model(DEFAULT_MODELS_DIR, name)
    probability, contributions = model.run(_realistic_rows())
    p = probability.astype(np.float64)
    logit = np.log(p / (1 - p))
    total = float(model.card["bias"]) + contributions.astype(np.float64).sum(axis=1)
    assert np.max(np.abs(total - logit)) < 1e-4


@pytest.mark.unit
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_graph_has_the_contract_names_and_shapes(name: str) -> None:
    session = ort.InferenceSession(str(DEFAULT_MODELS_DIR / f"{name}.onnx"))
    (features,) = session.get_inputs()
    assert (features.name, features.type, features.shape[1]) == (
        "features",
        "tensor(float)",
        FEATURE_COUNT,
    )
    outputs = {o.name: o for o in session.get_outputs()}
    assert set(outputs) == {"probability", "contributions"}
    probability, contributions = session.run(None, {"features": _realistic_rows(7)})
    assert probability.shape == (7,) and probability.dtype == np.float32
    assert contributions.shape == (7, FEATURE_COUNT)


@pytest.mark.unit
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_card_explains_every_feature_and_never_uses_ethnicity(name: str) -> None:
    card = json.loads((DEFAULT_MODELS_DIR / f"{name}.card.json").read_text())
    assert tuple(f["name"] for f in card["features"]) == FEATURE_NAMES
    assert all(f["reason_text"] and f["source_table"] for f in card["features"])
    assert "ethnicity" not in FEATURE_NAMES
    assert set(card["fairness"]) >= {"age_band", "sex", "ethnicity", "ward"}
    assert 0 < card["thresholds"]["medium"] < card["thresholds"]["high"] < 1
    assert card["metrics"]["held_out_auc"] > 0.7
    assert len(card["metrics"]["calibration_by_decile"]) == 10
    assert not any("will" in f["reason_text"].lower() for f in card["features"])


@pytest.mark.unit
def test_a_card_listing_other_features_is_refused(tmp_path) -> None:
    for suffix in (".onnx", ".card.json"):
        (tmp_path / f"falls{suffix}").write_bytes(
            (DEFAULT_MODELS_DIR / f"falls{suffix}").read_bytes()
        )
    card = json.loads((tmp_path / "falls.card.json").read_text())
    card["features"] = card["features"][::-1]
    (tmp_path / "falls.card.json").write_text(json.dumps(card))
    with pytest.raises(ModelDoesNotFit):
        ModelRegistry.load(tmp_path, ["falls"])


@pytest.mark.unit
def test_training_with_its_defaults_reproduces_the_committed_models(tmp_path) -> None:
    pytest.importorskip("sklearn")
    from scoring.training import main

    assert main(["--out", str(tmp_path)]) == 0
    for name in MODEL_NAMES:
        for suffix in (".onnx", ".card.json"):
            committed = (DEFAULT_MODELS_DIR / f"{name}{suffix}").read_bytes()
            assert (tmp_path / f"{name}{suffix}").read_bytes() == committed, (
                f"{name}{suffix} differs"
            )


@pytest.mark.unit
def test_a_thousand_event_demo_puts_residents_in_the_high_band() -> None:
    from collections import defaultdict

    from proactive.borough import DEFAULT_AS_OF, SourceRow, demo_stream
    from scoring.domain.features import feature_vector
    from scoring.domain.state import ResidentState
    from scoring.training import change_like_ingest

    states: dict[str, ResidentState] = defaultdict(ResidentState)
    owner: dict[str, str] = {}
    for change in demo_stream(1000, seed=1):
        record = change.record
        # rent accounts carry no person_ref; ingest maps them through the tenancy
        person = str(record.get("person_ref") or owner[str(record["tenancy_ref"])])
        if change.table == "housing.tenancies":
            owner[str(record["tenancy_ref"])] = person
        row = SourceRow(change.source_event_id, change.table, change.op, change.occurred_at, record)
        states[person].apply(change_like_ingest(row, DEFAULT_AS_OF))
    rows = np.vstack([feature_vector(state) for state in states.values()])
    scores = ModelRegistry.load(DEFAULT_MODELS_DIR).score(rows)
    high = {
        name: int((p >= load_model(DEFAULT_MODELS_DIR, name).thresholds["high"]).sum())
        for name, (p, _) in scores.items()
    }
    assert sum(high.values()) >= 20, high
