"""Train the three models on the synthetic borough and write glass-box ONNX files and cards.

    python -m scoring.training [--scale 1.0] [--seed 2025] [--out services/scoring/models]

The defaults train on the whole borough (218,900 people, about 155,000 adults in the
resident index) and reproduce the committed models byte for byte, in well under a minute
on two cores. Each resident's native events are stripped of personal data the way ingest
does it, folded through the worker's own `domain.state` and turned into features by the
worker's own `domain.features`; then a standardised logistic regression is fitted per
model and written as an ONNX graph built by hand, so that its per-feature contributions
are exact, not approximated. Each card carries held-out metrics, calibration and fairness
tables, and whether the model meets the project's bars (AUC >= 0.75, ECE <= 0.02).

Training is offline: this is the only module of the service that imports scikit-learn,
onnx or the synthetic borough (from `tools`), and the worker never imports it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score

from proactive.borough import OUTCOMES, PEOPLE, Borough, SourceRow, generate_borough
from scoring.domain.drift import reference_distribution
from scoring.domain.features import FEATURE_COUNT, FEATURES, feature_vector
from scoring.domain.state import Change, ResidentState
from scoring.settings import DEFAULT_MODELS_DIR
from shared.events import Scalar
from shared.inbound import RECORD_KEYS
from shared.pseudonymise import age_band

DEFAULT_SCALE = 1.0
DEFAULT_SEED = 2025
TEST_SHARE = 0.3
HIGH_SHARE = 0.05  # the top 5% of training scores are `high`
MEDIUM_SHARE = 0.15  # the next 15% are `medium`
OPSET = 17
MODEL_VERSION = "2.0.0"
BARS = {"held_out_auc_at_least": 0.75, "expected_calibration_error_at_most": 0.02}
# Fewer of a group than this, or fewer outcomes, and a rate or AUC would be noise.
SMALL_GROUP = 30

# Told (done, total) as work proceeds, for a progress bar.
Advance = Callable[[int, int], None]

# Columns that never leave ingest (the data contract's PII), plus the master reference.
PERSONAL_COLUMNS = frozenset(
    {
        "person_ref",
        "given_name",
        "family_name",
        "date_of_birth",
        "address_line_1",
        "address_line_2",
        "address_line_3",
        "town",
        "postcode",
        "uprn",
        "deceased_date",
    }
)

# What an officer reads beside a score: plain words about the record, never a label on
# the person and never a prediction ("will").
REASON_TEXTS: dict[str, str] = {
    "age_years": "Their stage of life, when a little extra support often goes a long way",
    "age_80_plus": "Aged 80 or over, when a friendly check on strength and balance is most worthwhile",
    "lives_alone": "Lives alone, so a check-in from the council may be welcome",
    "falls_reported_12m": "Social care heard about a fall in the last year",
    "ambulance_fall_callouts_12m": "An ambulance was called after a fall in the last year",
    "fall_injury_admissions_12m": "A hospital stay after a fall in the last year",
    "frailty_admissions_12m": "A hospital stay in the last year linked to getting frailer",
    "other_admissions_12m": "A hospital stay in the last year",
    "care_concern_contacts_12m": "Recent contact with social care about getting around or managing at home",
    "care_hours_per_week": "Has home care, so it may be a good time to check the support still fits",
    "has_telecare": "Has a telecare alarm, so support at home is already part of life",
    "rent_weeks_in_arrears": "Rent has fallen behind, and early advice can help",
    "possession_notice_served": "A notice about the tenancy has been served; advice now can help keep the home",
    "eviction_date_set": "An eviction date has been set; there is still time to help",
    "temporary_accommodation": "Living in temporary accommodation, where a settled home may be the next step",
    "overcrowded": "The home may be too small for everyone living there",
    "council_tax_arrears_hundreds": "Council tax has fallen behind, and there may be help with it",
    "council_tax_enforcement_stage": "Council tax recovery has started, and a payment plan or support may help",
    "benefit_cap_applied": "Housing support has been reduced by the benefit cap",
    "benefit_suspended": "A benefit claim has been paused",
}


@dataclass(frozen=True)
class ModelSpec:
    name: str
    title: str
    outcome: str
    population: str
    intended_use: str
    limitations: tuple[str, ...]
    statements: tuple[str, ...] = ()


NICE_NG249 = (
    "Following NICE NG249 (2025), which advises against using falls-risk prediction tools "
    "to predict whether a person will fall, this model only ranks who to offer a falls "
    "assessment to, and predicts nothing about any individual. Nothing it produces is shown "
    "or worded to a resident as a prediction or a 'risk'."
)

COMMON_LIMITATIONS = (
    "Trained only on a synthetic borough generated by this project; its numbers show the "
    "pipeline works, not how a real borough behaves. Retrain and re-validate on local data, "
    "with a DPIA, before any real use.",
    "Sees only what the council's own systems record; people who never touch those systems "
    "score low whatever their needs.",
    "A score is a reason for a person to look, never a decision: an officer reviews every "
    "case and the resident chooses whether to take up any offer.",
    "Ethnicity, sex and ward are not inputs; they are used only for the fairness tables below.",
    "Fairness figures for small groups (the 'unknown' sex and ethnicity groups, the oldest "
    "age band for the homelessness model) rest on few residents and move from run to run.",
)

SPECS: dict[str, ModelSpec] = {
    "falls": ModelSpec(
        name="falls",
        title="Falls-prevention offer",
        outcome="A fall within the next 12 months",
        population="Every living adult in the resident index",
        intended_use=(
            "Ranks residents the council could offer a falls-prevention assessment to "
            "(strength and balance, home hazards). " + NICE_NG249
        ),
        limitations=(
            *COMMON_LIMITATIONS,
            "Age carries much of the ranking across all adults; within people aged 65 and over "
            "the ranking rests on recorded falls, admissions and care, so the age-band AUCs in "
            "the fairness table are the honest measure of what it adds.",
        ),
        statements=(NICE_NG249,),
    ),
    "homelessness": ModelSpec(
        name="homelessness",
        title="Homelessness prevention",
        outcome="A homelessness prevention or relief duty owed to the household within 6 months",
        population=(
            "Household reference persons (the council tax payer and, for council homes, the "
            "tenant): the duty is owed to a household through them"
        ),
        intended_use=(
            "Ranks households who might welcome early housing and money advice, so that help "
            "arrives before a crisis. Not for decisions about tenancies, enforcement or benefits."
        ),
        limitations=(
            *COMMON_LIMITATIONS,
            "Outcomes are rare (under 1 household in 100 a half-year), so the high band holds "
            "many households who would have been fine: the offer must be helpful to them too.",
            "Trained on household reference persons; other adults of a household have no money "
            "or housing records of their own and score low.",
            "Private tenants' tenancies are not in the council's systems: for them it sees only "
            "council tax and benefits.",
        ),
    ),
    "frailty": ModelSpec(
        name="frailty",
        title="Worsening frailty",
        outcome="Moving to moderate or severe frailty (eFI 0.24 or more) within 12 months",
        population="Living adults below moderate frailty (eFI under 0.24) today",
        intended_use=(
            "Ranks residents who might benefit from an early conversation about staying well "
            "and independent at home. Population stratification, not diagnosis."
        ),
        limitations=(
            *COMMON_LIMITATIONS,
            "Trained only on residents below moderate frailty; it says nothing useful about "
            "people already there.",
        ),
    ),
}


def attributes_like_ingest(table: str, record: Mapping[str, Scalar], on: date) -> dict[str, Scalar]:
    """The row as `resident.events.v1` carries it: no personal data, and an age in whole
    years on the day of the change instead of a date of birth (as ingest's mapping does)."""
    attributes = {k: v for k, v in record.items() if k not in PERSONAL_COLUMNS}
    if table == "people.residents":
        born = date.fromisoformat(str(record["date_of_birth"]))
        attributes["age_years"] = (
            on.year - born.year - ((on.month, on.day) < (born.month, born.day))
        )
        attributes["deceased"] = record.get("deceased_date") is not None
    return attributes


def change_like_ingest(row: SourceRow) -> Change:
    """One native source row as the scoring worker receives it from ingest."""
    deleted = row.op == "delete"
    return Change(
        event_id=row.source_event_id,
        occurred_at=row.occurred_at.timestamp(),
        table=row.table,
        record_key=str(row.record[RECORD_KEYS[row.table]]),
        deleted=deleted,
        # ingest publishes a delete with its key only, and no attributes
        attributes={}
        if deleted
        else attributes_like_ingest(row.table, row.record, row.occurred_at.date()),
    )


def features_of(borough: Borough, advance: Advance | None = None) -> np.ndarray:
    """Every resident's feature vector after their whole history, folded and computed by
    the worker's own `domain.state` and `domain.features`, exactly as the worker computes
    it: at the time of the resident's latest change (the worker has no other clock)."""
    total = len(borough.residents)
    matrix = np.zeros((total, FEATURE_COUNT), dtype=np.float32)
    for index, resident in enumerate(borough.residents):
        state = ResidentState()
        for row in resident.rows:
            state.apply(change_like_ingest(row))
        matrix[index] = feature_vector(state)
        if advance is not None and ((index + 1) % 5000 == 0 or index + 1 == total):
            advance(index + 1, total)
    return matrix


def build_onnx(
    name: str, version: str, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, bias: float
) -> bytes:
    """contributions = coef * (x - mean) / scale; probability = sigmoid(bias + sum)."""
    f32 = np.float32
    initializers = [
        numpy_helper.from_array(mean.astype(f32), "mean"),
        numpy_helper.from_array(scale.astype(f32), "scale"),
        numpy_helper.from_array(coef.astype(f32), "coef"),
        numpy_helper.from_array(np.array(bias, dtype=f32), "bias"),
        numpy_helper.from_array(np.array([1], dtype=np.int64), "feature_axis"),
    ]
    nodes = [
        helper.make_node("Sub", ["features", "mean"], ["centred"]),
        helper.make_node("Div", ["centred", "scale"], ["standardised"]),
        helper.make_node("Mul", ["standardised", "coef"], ["contributions"]),
        helper.make_node("ReduceSum", ["contributions", "feature_axis"], ["total"], keepdims=0),
        helper.make_node("Add", ["total", "bias"], ["logit"]),
        # ONNX Runtime's float Sigmoid is a fast approximation, off by several per cent in
        # the far tail; in double it is exact enough for the contract's 1e-4 on the logit.
        helper.make_node("Cast", ["logit"], ["logit_double"], to=TensorProto.DOUBLE),
        helper.make_node("Sigmoid", ["logit_double"], ["probability_double"]),
        helper.make_node("Cast", ["probability_double"], ["probability"], to=TensorProto.FLOAT),
    ]
    graph = helper.make_graph(
        nodes,
        f"{name}_logistic",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["N", FEATURE_COUNT])],
        [
            helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["N"]),
            helper.make_tensor_value_info("contributions", TensorProto.FLOAT, ["N", FEATURE_COUNT]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="proactive-scoring-training",
        producer_version=version,
        doc_string=f"{name}: standardised logistic regression; contributions are exact logit terms",
    )
    model.ir_version = 8  # the lowest IR that opset 17 allows; any recent runtime reads it
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _round(value: float, places: int = 4) -> float | None:
    return None if np.isnan(value) else round(float(value), places)


def _auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    if labels.sum() < 5 or (1 - labels).sum() < 5:
        return None  # too few of one class to say anything
    return _round(roc_auc_score(labels, scores))


def calibration_by_decile(labels: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
    order = np.argsort(scores, kind="stable")
    rows = []
    for decile, chunk in enumerate(np.array_split(order, 10), start=1):
        rows.append(
            {
                "decile": decile,
                "residents": len(chunk),
                "mean_predicted": _round(scores[chunk].mean()),
                "observed_rate": _round(labels[chunk].mean()),
            }
        )
    return rows


def expected_calibration_error(labels: np.ndarray, scores: np.ndarray) -> float:
    """Mean gap between predicted and observed rates over score deciles, weighted by size."""
    order = np.argsort(scores, kind="stable")
    return float(
        sum(
            len(chunk) * abs(scores[chunk].mean() - labels[chunk].mean())
            for chunk in np.array_split(order, 10)
        )
        / len(scores)
    )


def fairness_table(
    groups: np.ndarray, labels: np.ndarray, scores: np.ndarray, high: float
) -> dict[str, Any]:
    """Per group: who is selected at the policy threshold (the high band), how many of the
    people with the outcome are found (true positive rate), and calibration."""
    table = {}
    for group in sorted(set(groups.tolist())):
        chosen = groups == group
        group_labels, group_scores = labels[chosen], scores[chosen]
        selected = group_scores >= high
        outcomes = int(group_labels.sum())
        table[group] = {
            "residents": int(chosen.sum()),
            "outcomes": outcomes,
            "outcome_rate": _round(group_labels.mean()),
            "selection_rate_high_band": _round(selected.mean()),
            "true_positive_rate_high_band": _round(selected[group_labels == 1].mean())
            if outcomes >= 5
            else None,
            "mean_predicted": _round(group_scores.mean()),
            "calibration_gap": _round(group_scores.mean() - group_labels.mean())
            if chosen.sum() >= SMALL_GROUP
            else None,
            "auc": _auc(group_labels, group_scores),
        }
    return table


def train_model(
    spec: ModelSpec, borough: Borough, features: np.ndarray, seed: int
) -> tuple[bytes, dict[str, Any]]:
    residents = borough.residents
    eligible = np.array([r.eligible[spec.name] for r in residents])
    labels = borough.label_array(spec.name)
    split = np.random.default_rng(seed + 7).random(len(residents)) < TEST_SHARE
    train, test = eligible & ~split, eligible & split

    mean = features[train].mean(axis=0).astype(np.float64)
    scale = features[train].std(axis=0).astype(np.float64)
    scale[scale < 1e-6] = 1.0  # a constant column: leave it unscaled (its weight goes to 0)
    model = LogisticRegression(C=1.0, max_iter=5000)
    model.fit((features[train] - mean) / scale, labels[train])

    # Round-trip through float32, as ONNX stores it, so that card and file agree exactly.
    mean32, scale32, coef32 = (v.astype(np.float32) for v in (mean, scale, model.coef_[0]))
    bias32 = np.float32(model.intercept_[0])
    draft = build_onnx(spec.name, "draft", mean32, scale32, coef32, float(bias32))
    version = f"{MODEL_VERSION}+{hashlib.sha256(draft).hexdigest()[:10]}"
    onnx_bytes = build_onnx(spec.name, version, mean32, scale32, coef32, float(bias32))

    def predict(x: np.ndarray) -> np.ndarray:
        logit = ((x - mean32) / scale32 * coef32).sum(axis=1) + bias32
        return np.asarray(1.0 / (1.0 + np.exp(-logit.astype(np.float64))))

    train_scores = predict(features[train])
    test_scores = predict(features[test])
    high = float(np.quantile(train_scores, 1 - HIGH_SHARE))
    medium = float(np.quantile(train_scores, 1 - HIGH_SHARE - MEDIUM_SHARE))
    test_labels = labels[test].astype(np.float64)
    auc = _auc(test_labels, test_scores)
    ece = expected_calibration_error(test_labels, test_scores)

    # The population the worker scores: every living adult in the resident index, whatever
    # the model's training population, so that drift is measured against what it will see.
    living = ~np.array([r.deceased for r in residents])
    card_distribution = {
        "note": (
            "The training-time distribution the worker's drift check compares against: "
            "decile cut points (`edges`) and the share of residents in each bin "
            "(`proportions`, one more than the edges), over every living adult in the "
            "resident index. Bins are (-inf, e0], (e0, e1], ..., (e_last, +inf)."
        ),
        "residents": int(living.sum()),
        "features": {
            feature.name: reference_distribution(features[living, i])
            for i, feature in enumerate(FEATURES)
        },
        "score": reference_distribution(predict(features[living])),
    }

    group_columns = {
        "age_band": np.array([age_band(r.age) for r in residents])[test],
        "sex": np.array([r.sex for r in residents])[test],
        "ethnicity": np.array([r.ethnicity for r in residents])[test],
        "ward": np.array([r.ward for r in residents])[test],
    }
    card: dict[str, Any] = {
        "name": spec.name,
        "title": spec.title,
        "version": version,
        "model_type": "standardised logistic regression (glass box: exact per-feature contributions)",
        "outcome": spec.outcome,
        "population": spec.population,
        "intended_use": spec.intended_use,
        **({"statements": list(spec.statements)} if spec.statements else {}),
        "limitations": list(spec.limitations),
        "onnx_contract": {
            "input": "features float32 [N, F]",
            "outputs": ["probability float32 [N]", "contributions float32 [N, F]"],
            "identity": "bias + sum(contributions) = logit(probability)",
        },
        "bias": float(bias32),
        "features": [
            {
                "name": feature.name,
                "source_table": feature.source_table,
                "source_columns": list(feature.columns),
                "reason_text": REASON_TEXTS[feature.name],
                "coefficient": float(coef32[i]),
                "mean": float(mean32[i]),
                "scale": float(scale32[i]),
            }
            for i, feature in enumerate(FEATURES)
        ],
        "never_used": (
            "Ethnicity, sex, ward, preferred language, names, addresses, postcodes and dates "
            "of birth are never model inputs (see docs/data-minimisation.md)."
        ),
        "thresholds": {"medium": medium, "high": high},
        "band_rule": (
            f"high = top {HIGH_SHARE:.0%} of training scores, medium = the next {MEDIUM_SHARE:.0%}, "
            "low = the rest"
        ),
        "training_data": {
            "description": (
                "A synthetic borough shaped like Barking and Dagenham (Census 2021 population, "
                "households and 17 wards; base rates from FACTS.md), generated by this project: "
                "no real resident data. Features are computed from two years of source-system "
                "history, folded exactly as the scoring worker folds it; outcomes come from the "
                "borough's stated causal structure plus noise. "
                f"A random {TEST_SHARE:.0%} of residents is held out for every figure below."
            ),
            "generator": "proactive.borough.generate_borough",
            "seed": seed,
            "scale": borough.scale,
            "people": borough.people,
            "households": borough.households,
            "adults_in_resident_index": len(residents),
            "as_of": borough.as_of.isoformat(),
            "population": spec.population,
            "eligible_residents": int(eligible.sum()),
            "training_residents": int(train.sum()),
            "held_out_residents": int(test.sum()),
            "outcome_rate_training": _round(labels[train].mean()),
        },
        "metrics": {
            "held_out_auc": auc,
            "held_out_brier": _round(brier_score_loss(test_labels, test_scores), 5),
            "expected_calibration_error": _round(ece, 5),
            "held_out_outcome_rate": _round(test_labels.mean()),
            "held_out_mean_predicted": _round(test_scores.mean()),
            "held_out_high_band_share": _round((test_scores >= high).mean()),
            "held_out_outcome_rate_in_high_band": _round(test_labels[test_scores >= high].mean()),
            "calibration_by_decile": calibration_by_decile(test_labels, test_scores),
        },
        "bars": {
            **BARS,
            "met": auc is not None
            and auc >= BARS["held_out_auc_at_least"]
            and ece <= BARS["expected_calibration_error_at_most"],
        },
        "distribution": card_distribution,
        "fairness": {
            "note": (
                "On the held-out split. selection_rate_high_band = share of the group in the "
                "high band (the policy threshold); true_positive_rate_high_band = share of the "
                "group's residents with the outcome who are in the high band; calibration_gap "
                "= mean predicted minus observed rate (null for groups under "
                f"{SMALL_GROUP}). Fewer than 5 outcomes leave TPR and AUC null."
            ),
            **{
                column: fairness_table(groups, test_labels, test_scores, high)
                for column, groups in group_columns.items()
            },
        },
    }
    return onnx_bytes, card


@contextmanager
def _progress(show: bool) -> Iterator[Callable[[str], Advance]]:
    """A rich progress bar on stderr per stage, or nothing when `show` is off."""
    if not show:
        yield lambda _: lambda done, total: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    ) as progress:

        def stage(description: str) -> Advance:
            task = progress.add_task(description, total=None)

            def advance(done: int, total: int) -> None:
                progress.update(task, completed=done, total=total)

            return advance

        yield stage


def train(
    scale: float = DEFAULT_SCALE,
    seed: int = DEFAULT_SEED,
    out: Path = DEFAULT_MODELS_DIR,
    *,
    progress: bool = False,
) -> dict[str, Any]:
    """Train all three models and write `<name>.onnx` and `<name>.card.json` into `out`."""
    started = time.perf_counter()
    with _progress(progress) as stage:
        borough = generate_borough(scale, seed, advance=stage("Writing the borough's history"))
        features = features_of(borough, advance=stage("Folding histories into features"))
        fitting = stage("Fitting and checking the models")
        out.mkdir(parents=True, exist_ok=True)
        summary: dict[str, Any] = {}
        for done, name in enumerate(OUTCOMES, start=1):
            onnx_bytes, card = train_model(SPECS[name], borough, features, seed)
            (out / f"{name}.onnx").write_bytes(onnx_bytes)
            (out / f"{name}.card.json").write_text(
                json.dumps(card, indent=1, sort_keys=False) + "\n", encoding="utf-8"
            )
            summary[name] = {
                "version": card["version"],
                "auc": card["metrics"]["held_out_auc"],
                "ece": card["metrics"]["expected_calibration_error"],
                "brier": card["metrics"]["held_out_brier"],
                "outcome_rate": card["metrics"]["held_out_outcome_rate"],
                "high_threshold": round(card["thresholds"]["high"], 4),
                "meets_bars": card["bars"]["met"],
            }
            fitting(done, len(OUTCOMES))
    summary["people"] = borough.people
    summary["seconds"] = round(time.perf_counter() - started, 1)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scoring.training", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--scale", type=float, default=None, help="Share of the borough (1.0 = 218,900 people)"
    )
    parser.add_argument(
        "--people", type=int, default=None, help="People in the borough (instead of --scale)"
    )
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--out", type=Path, default=DEFAULT_MODELS_DIR)
    parser.add_argument("--quiet", action="store_true", help="No progress bar")
    args = parser.parse_args(argv)
    scale = DEFAULT_SCALE if args.scale is None else args.scale
    if args.people is not None:
        scale = args.people / PEOPLE
    summary = train(scale, args.seed, args.out, progress=not args.quiet)
    print(json.dumps(summary, indent=1))
    failing = [name for name in OUTCOMES if not summary[name]["meets_bars"]]
    if failing:
        print(
            f"These models miss the bars {BARS}: {', '.join(failing)}; they were written but "
            "must not be committed.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
