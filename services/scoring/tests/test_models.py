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

    rows = features_of(generate_borough(0.03, seed=11))
    assert len(rows) >= count
    return rows[:count]


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
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_committed_model_meets_the_bars_on_its_held_out_set(name: str) -> None:
    card = json.loads((DEFAULT_MODELS_DIR / f"{name}.card.json").read_text())
    assert card["metrics"]["held_out_auc"] >= 0.75
    assert card["metrics"]["expected_calibration_error"] <= 0.02
    assert card["bars"]["met"] is True
    assert card["training_data"]["scale"] == 1.0  # trained on the whole synthetic borough


@pytest.mark.unit
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_each_card_has_fairness_by_group_at_the_policy_threshold(name: str) -> None:
    card = json.loads((DEFAULT_MODELS_DIR / f"{name}.card.json").read_text())
    for column in ("age_band", "sex", "ethnicity", "ward"):
        groups = card["fairness"][column]
        assert groups, column
        for figures in groups.values():
            assert {
                "selection_rate_high_band",
                "true_positive_rate_high_band",
                "mean_predicted",
                "outcome_rate",
                "calibration_gap",
            } <= set(figures)
    assert len(card["fairness"]["ward"]) == 17
    assert card["intended_use"] and card["limitations"] and card["training_data"]["description"]
    assert all(f["source_columns"] for f in card["features"])


@pytest.mark.unit
def test_the_falls_card_says_it_ranks_offers_and_predicts_nothing_about_anyone() -> None:
    card = json.loads((DEFAULT_MODELS_DIR / "falls.card.json").read_text())
    text = card["intended_use"].lower()
    assert "nice ng249" in text
    assert "offer a falls assessment" in text
    assert "predicts nothing about any individual" in text


@pytest.mark.unit
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_the_card_describes_the_weights_the_onnx_file_holds(name: str) -> None:
    import onnx
    from onnx import numpy_helper

    card = json.loads((DEFAULT_MODELS_DIR / f"{name}.card.json").read_text())
    graph = onnx.load(str(DEFAULT_MODELS_DIR / f"{name}.onnx")).graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for key in ("coefficient", "mean", "scale"):
        column = {"coefficient": "coef"}.get(key, key)
        card_values = np.array([f[key] for f in card["features"]], dtype=np.float32)
        assert np.array_equal(card_values, weights[column]), key
    assert np.float32(card["bias"]) == weights["bias"]


@pytest.mark.unit
def test_the_committed_models_and_cards_are_small() -> None:
    total = sum(path.stat().st_size for path in DEFAULT_MODELS_DIR.iterdir())
    assert total < 1_000_000


@pytest.mark.unit
def test_training_twice_with_one_seed_writes_byte_identical_files(tmp_path) -> None:
    """The committed models come from `python -m scoring.training` at full scale (about a
    quarter of a minute); a small run shows the same determinism quickly."""
    pytest.importorskip("sklearn")
    from scoring.training import train

    first, second, other = tmp_path / "first", tmp_path / "second", tmp_path / "other"
    train(0.02, 5, first)
    train(0.02, 5, second)
    train(0.02, 6, other)
    for name in MODEL_NAMES:
        for suffix in (".onnx", ".card.json"):
            file = f"{name}{suffix}"
            assert (first / file).read_bytes() == (second / file).read_bytes(), file
        assert (first / f"{name}.onnx").read_bytes() != (other / f"{name}.onnx").read_bytes()


@pytest.mark.unit
def test_a_thousand_event_demo_puts_residents_in_the_high_band() -> None:
    from collections import defaultdict

    from proactive.borough import SourceRow, demo_stream
    from scoring.domain.features import feature_vector
    from scoring.domain.state import ResidentState
    from scoring.training import change_like_ingest
    from shared.inbound import RECORD_KEYS

    states: dict[str, ResidentState] = defaultdict(ResidentState)
    owner: dict[tuple[str, str], str] = {}
    for change in demo_stream(1000, seed=1):
        record = change.record
        key = str(record[RECORD_KEYS[change.table]])
        # Rent accounts and deletes carry no person_ref; ingest finds the person through
        # the row (or, for a rent account, the tenancy) it has seen before.
        table = "housing.tenancies" if change.table == "housing.rent_accounts" else change.table
        person = str(record.get("person_ref") or owner[(table, key)])
        owner[(change.table, key)] = person
        row = SourceRow(change.source_event_id, change.table, change.op, change.occurred_at, record)
        states[person].apply(change_like_ingest(row))
    rows = np.vstack([feature_vector(state) for state in states.values()])
    scores = ModelRegistry.load(DEFAULT_MODELS_DIR).score(rows)
    high = {
        name: int((p >= load_model(DEFAULT_MODELS_DIR, name).thresholds["high"]).sum())
        for name, (p, _) in scores.items()
    }
    assert sum(high.values()) >= 20, high
