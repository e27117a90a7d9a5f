"""The service's Algorithmic Transparency Recording Standard (ATRS) record, tier 1 and tier 2,
made from what the code already says: the model cards, the outreach policy, the data
minimisation register, the retention settings and the deployment's topic list. The few
answers only a person can give (who is accountable, how to get in touch, the DPIA) come
from a small file the council fills in, and are flagged until it does.

A record is identified by a hash of everything it was made from. A new hash (a retrained
model, a changed policy, a new answer in the owner file) makes a new version, kept in
`history/<hash>.json` and listed in `history/index.json`; the same inputs make the same
bytes, so running the command again changes nothing.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

REPOSITORY = Path(__file__).resolve().parents[3]
RECORD_FORMAT = 1  # bump when the record's layout changes, so the hash does too
STANDARD = "Algorithmic Transparency Recording Standard"
STANDARD_VERSION = "4.0"
MODELS = ("falls", "homelessness", "frailty")
PERSON = "TO BE WRITTEN BY THE COUNCIL: "
PLACEHOLDER = "PLACEHOLDER"
START, END = "<!-- record:start -->", "<!-- record:end -->"

# What only a person can answer, with the question put to them.
OWNER_FIELDS: dict[str, str] = {
    "organisation": "the council's full name",
    "team": "the team that owns the service day to day",
    "senior_responsible_owner": "the senior responsible owner's role (and name, if published)",
    "contact_email": "a public mailbox for questions about the tool",
    "website": "the public web page about the service",
    "phase": "the phase: pre-deployment, beta, production or retired",
    "geographic_region": "where it is used (for example, the borough)",
    "external_supplier": "any external supplier and its role, or that there is none",
    "previous_process": "how residents were found for this help before",
    "required_training": "the training officers take before they review tasks",
    "data_sharing_agreements": "the agreements under which partner health data is shared",
    "success_measures": "the measures of success set before launch, and their targets",
    "impact_assessments": "the DPIA and equality impact assessment: names, dates, links",
    "review_cadence": "how often a person reviews this record and the monitors",
}


@dataclass(frozen=True)
class Sources:
    """Where each input lives; the defaults are the repository's own files."""

    models_dir: Path = REPOSITORY / "services" / "scoring" / "models"
    policy: Path = REPOSITORY / "services" / "outreach" / "src" / "outreach" / "policy.yaml"
    register: Path = REPOSITORY / "docs" / "data-minimisation.md"
    owner: Path = REPOSITORY / "docs" / "transparency" / "owner.yaml"
    topics: Path = REPOSITORY / "deploy" / "base" / "kafka" / "topics.txt"

    def files(self) -> dict[str, Path]:
        found = {f"model_card:{m}": self.models_dir / f"{m}.card.json" for m in MODELS}
        found.update(policy=self.policy, register=self.register, owner=self.owner)
        if self.topics.is_file():
            found["topics"] = self.topics
        return found


def inputs_hash(sources: Sources) -> str:
    """sha256 over the record format and every input's name and bytes."""
    digest = hashlib.sha256(f"atrs-record-format-{RECORD_FORMAT}\n".encode())
    for name, path in sorted(sources.files().items()):
        content = path.read_bytes() if path.is_file() else b"<missing>"
        digest.update(f"{name}\n{len(content)}\n".encode())
        digest.update(content)
    return digest.hexdigest()


# Reading the inputs


def read_register(path: Path) -> dict[str, Any]:
    """The data-minimisation register's feature table and its never-used list."""
    text = path.read_text(encoding="utf-8")
    features = []
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`") and cells[0].endswith("`"):
            features.append(
                {
                    "feature": cells[0].strip("`"),
                    "source": _plain(cells[1]),
                    "why_needed": _plain(cells[2]),
                    "never_used_for": _plain(cells[3]),
                }
            )
    never = []
    section = text.split("## What is never used", 1)
    if len(section) == 2:
        body = section[1].split("\n## ", 1)[0]
        never = [_plain(item) for item in re.findall(r"^- (.+?)(?=^- |\Z)", body, re.M | re.S)]
    return {"features": features, "never_used": [" ".join(n.split()) for n in never]}


def _plain(markdown: str) -> str:
    return re.sub(r"\*\*|`", "", markdown).strip()


def read_topics(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    topics = []
    for line in path.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 4 and not line.lstrip().startswith("#"):
            name, _, cleanup, days = parts
            topics.append({"topic": name, "cleanup": cleanup, "retention_days": days})
    return topics


def read_owner(path: Path) -> tuple[dict[str, str], list[str]]:
    """The person-written answers, and which of them are still missing or placeholders."""
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else {}
    answers: dict[str, str] = {}
    missing = []
    for field, question in OWNER_FIELDS.items():
        value = str((raw or {}).get(field) or "").strip()
        if not value or value.upper().startswith(PLACEHOLDER):
            missing.append(field)
            answers[field] = PERSON + question
        else:
            answers[field] = " ".join(value.split())
    return answers, missing


# Building the record


def build_record(sources: Sources, history: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    cards = {
        m: json.loads((sources.models_dir / f"{m}.card.json").read_text(encoding="utf-8"))
        for m in MODELS
    }
    policy = yaml.safe_load(sources.policy.read_text(encoding="utf-8"))
    register = read_register(sources.register)
    topics = read_topics(sources.topics)
    owner, _ = read_owner(sources.owner)
    digest = inputs_hash(sources)
    versions = [h for h in history or [] if h.get("hash") != digest]
    first = min((h["first_generated"] for h in history or []), default=None)
    this = next((h for h in history or [] if h.get("hash") == digest), None)

    teams = policy.get("teams", {})
    capacity = sum(int(t.get("weekly_capacity", 0)) for t in teams.values())
    retention = policy.get("retention", {})
    rules = [f"{r['model']} ({', '.join(r['bands'])} band) → {r['team']}" for r in policy["rules"]]
    exclusions = [f"{flag}: {why}" for flag, why in policy["exclusions"]["flags"].items()]
    minimum_age = policy["exclusions"].get("minimum_age", {})
    falls = cards["falls"]
    adults = falls["training_data"]["adults_in_resident_index"]
    feature_rows = register["features"]
    source_tables = sorted({f["source_table"] for f in falls["features"]})
    score_topic = next((t for t in topics if t["topic"] == "risk.scores.v1"), None)
    event_topic = next((t for t in topics if t["topic"] == "resident.events.v1"), None)

    description = (
        "Proactive Support finds residents who might welcome early, light-touch help from the "
        "council (a falls-prevention check, housing and money advice, or a conversation about "
        "staying well at home) from records the council already holds. Three models put "
        "residents in order; an officer reviews every case before anyone is contacted, and "
        "the first contact is a personal letter."
    )
    models = [_model_section(cards[m]) for m in MODELS]
    record: dict[str, Any] = {
        "metadata": {
            "standard": STANDARD,
            "standard_version": STANDARD_VERSION,
            "record_format": RECORD_FORMAT,
            "inputs_hash": digest,
            "date_first_published": first or (this or {}).get("first_generated"),
            "date_updated": (this or {}).get("first_generated"),
            "model_versions": {m: cards[m]["version"] for m in MODELS},
            "policy_version": policy["version"],
            "previous_versions": [
                {"inputs_hash": h["hash"], "date": h["first_generated"]} for h in versions
            ],
            "made_from": {name: _shown(path) for name, path in sorted(sources.files().items())},
            "needs_a_person": [],
        },
        "tier_1": {
            "name": "Proactive Support",
            "description": description,
            "website": owner["website"],
            "contact_email": owner["contact_email"],
            "organisation": owner["organisation"],
            "function": "Housing, adult social care, revenues and benefits: prevention",
            "phase": owner["phase"],
            "geographic_region": owner["geographic_region"],
        },
        "tier_2": {
            "owner_and_responsibility": {
                "organisation": owner["organisation"],
                "team": owner["team"],
                "senior_responsible_owner": owner["senior_responsible_owner"],
                "external_supplier": owner["external_supplier"],
                "accountability": (
                    "Officers decide: no letter, call or visit happens without an officer "
                    "approving the task. The outreach policy (version "
                    f"{policy['version']}) is owned by the team above and every task records "
                    "the policy version and the model versions that led to it."
                ),
            },
            "description_and_rationale": {
                "detailed_description": description
                + " "
                + " ".join(str(policy.get("description", "")).split())
                + " Models: "
                + " ".join(f"{c['title']}: {c['intended_use']}" for c in cards.values()),
                "scope": "; ".join(
                    f"{c['title']}: {c['population']}. Outcome ranked: {c['outcome']}"
                    for c in cards.values()
                ),
                "benefit": (
                    "Residents hear from the council before a crisis (a fall, losing a home, "
                    "growing frailty), when help is cheaper and kinder. Success measures: "
                    + owner["success_measures"]
                ),
                "previous_process": owner["previous_process"],
                "alternatives_considered": (
                    "Black-box models with approximate explanations were rejected: each model "
                    "is a standardised logistic regression whose per-feature contributions are "
                    "exact, so every reason shown is the true reason. A falls-risk prediction "
                    "tool was rejected following NICE NG249 (2025); the falls model only "
                    "ranks who to offer an assessment. Blanket letters to whole groups were "
                    "rejected because residents said a generic letter gets ignored."
                ),
            },
            "decision_making_process": {
                "process_integration": (
                    "Scores arrive in real time; the outreach policy turns the high band of "
                    f"each model into a task for a team ({'; '.join(rules)}). Each resident "
                    "has at most one open task. Teams take on at most their weekly capacity "
                    f"({capacity} tasks a week in all); further tasks wait, highest score first."
                ),
                "provided_information": (
                    "Officers see the need (which model), the band and the top three reasons "
                    "in plain English with the council system each came from; the score itself "
                    "only on request. Residents see none of it as a 'risk': the letter asks how "
                    "things are going and offers help."
                ),
                "frequency_and_scale_of_usage": (
                    f"Every change a source system sends is scored within seconds. The "
                    f"synthetic borough the models were built on has {adults:,} adults in the "
                    "resident index; the high band is the top 5% of each model's scores."
                ),
                "human_decisions_and_review": (
                    "An officer approves or rejects every task before any letter. "
                    f"Exclusions: {'; '.join(exclusions)}; minimum age "
                    + ", ".join(f"{m} {a}" for m, a in minimum_age.items())
                    + f". No new task within {policy['cooldown_days']} days of the last "
                    f"contact, nor {policy['after_rejection_days']} days after a rejection."
                ),
                "required_training": owner["required_training"],
                "appeals_and_review": (
                    "A resident can ask for a person to look again, quoting the reference on "
                    "their letter; an officer not involved reviews it. Residents can opt out "
                    "online at any time (every service then stops), and can ask for "
                    "everything outreach holds about them (subject access). Contact: "
                    + owner["contact_email"]
                ),
            },
            "tool_specification": {
                "system_architecture": (
                    "Four services on an event stream: ingest (checks and pseudonymises "
                    "changes; the only holder of names and addresses), scoring (keeps each "
                    "resident's features and runs three ONNX models), outreach (policy, "
                    "officer review, audit log) and notify (letters). Source tables read: "
                    + ", ".join(source_tables)
                    + "."
                ),
                "phase": owner["phase"],
                "maintenance": (
                    "Models are retrained reproducibly from a fixed seed (`proactive train`); "
                    "each card carries its training distribution, and the scoring worker "
                    "checks the population stability index of every feature and score daily "
                    "(alarm above 0.2). Outreach's fairness monitor compares selection, "
                    "approval, contact and support rates by age band and ward with the "
                    "borough (alarm outside "
                    f"{policy.get('fairness', {}).get('lowest_ratio', 0.8)} to "
                    f"{policy.get('fairness', {}).get('highest_ratio', 1.25)} of the borough "
                    "rate). This record is regenerated whenever a model or the policy changes; "
                    "earlier versions are kept. Review: " + owner["review_cadence"]
                ),
                "models": models,
            },
            "data_specification": {
                "source_data_name": ", ".join(source_tables),
                "data_modality": "Tabular",
                "data_description": [
                    {
                        "feature": f["feature"],
                        "source": f["source"],
                        "why_needed": f["why_needed"],
                        "never_used_for": f["never_used_for"],
                    }
                    for f in feature_rows
                ],
                "data_quantities": "; ".join(
                    f"{c['title']}: trained on {c['training_data']['training_residents']:,} "
                    f"residents, tested on {c['training_data']['held_out_residents']:,}"
                    for c in cards.values()
                ),
                "sensitive_attributes": (
                    "Health information from partners (ambulance call-outs after a fall, "
                    "broad reasons for hospital stays, never diagnoses) and age are model "
                    "inputs. Sex, ethnicity and ward are never inputs; they are used only to "
                    "check fairness (the cards' tables). " + falls["never_used"]
                ),
                "data_completeness_and_representativeness": (
                    " ".join(falls["limitations"][:2])
                    + " Fairness by age band, sex, ethnicity and ward is published in each "
                    "model card."
                ),
                "source_data_url": (
                    "Not published: the council's own systems. The training data is a "
                    "synthetic borough generated by the open-source code "
                    f"({falls['training_data']['generator']}, seed "
                    f"{falls['training_data']['seed']})."
                ),
                "data_collection": (
                    "Council systems send changes as they happen (an HTTP API or change data "
                    "capture). Ingest checks each one, keeps refusals with their reasons, and "
                    "replaces the person reference with a keyed pseudonym before anything "
                    "else sees it."
                ),
                "data_cleaning": (
                    "Each change is checked against its table's contract; counts look back "
                    "12 months and are capped at 5, so a long history cannot dominate a "
                    "score; deceased residents are never scored."
                ),
                "data_sharing_agreements": owner["data_sharing_agreements"],
                "data_access_and_storage": _storage(retention, score_topic, event_topic, topics),
                "never_used": register["never_used"],
            },
            "risks_mitigations_and_impact_assessments": {
                "impact_assessments": owner["impact_assessments"],
                "risks_and_mitigations": _risks(cards),
            },
        },
        "explanations": _ico_explanations(cards, policy, owner),
    }
    record["metadata"]["needs_a_person"] = sorted(
        path for path, value in _leaves(record) if isinstance(value, str) and PERSON in value
    )
    return record


def _shown(path: Path) -> str:
    return str(path.relative_to(REPOSITORY)) if path.is_relative_to(REPOSITORY) else str(path)


def _model_section(card: Mapping[str, Any]) -> dict[str, Any]:
    metrics = card["metrics"]
    selection = {
        dimension: _spread(card["fairness"][dimension])
        for dimension in ("age_band", "sex", "ethnicity", "ward")
    }
    return {
        "model_name": card["name"],
        "model_title": card["title"],
        "model_version": card["version"],
        "model_task": f"Ranks residents for: {card['outcome']}. {card['intended_use']}",
        "model_input": [
            f"{f['name']} ({f['source_table']}: {', '.join(f['source_columns'])})"
            for f in card["features"]
        ],
        "model_output": (
            "A probability, a band (low, medium, high: "
            f"{card['band_rule']}) and up to three reasons in plain English: the features "
            "that raised the score most."
        ),
        "model_architecture": f"{card['model_type']}; ONNX: {card['onnx_contract']['identity']}",
        "model_performance": (
            f"On held-out residents: AUC {metrics['held_out_auc']}, Brier score "
            f"{metrics['held_out_brier']}, expected calibration error "
            f"{metrics['expected_calibration_error']}; {metrics['held_out_outcome_rate_in_high_band']:.0%} "
            "of the high band had the outcome. Bars: AUC at least "
            f"{card['bars']['held_out_auc_at_least']}, calibration error at most "
            f"{card['bars']['expected_calibration_error_at_most']} (met: {card['bars']['met']})."
        ),
        "fairness_selection_rate_range": selection,
        "datasets": card["training_data"]["description"],
        "dataset_purpose": (
            f"Training ({card['training_data']['training_residents']:,} residents) and testing "
            f"({card['training_data']['held_out_residents']:,}); population: "
            f"{card['training_data']['population']}."
        ),
        "limitations": card["limitations"],
    }


def _spread(table: Mapping[str, Any]) -> str:
    """The lowest and highest share selected (high band) across a dimension's groups."""
    rates = {
        group: row["selection_rate_high_band"]
        for group, row in table.items()
        if isinstance(row, Mapping) and row.get("selection_rate_high_band") is not None
    }
    if not rates:
        return "no groups"
    low = min(rates, key=lambda g: rates[g])
    high = max(rates, key=lambda g: rates[g])
    return f"{rates[low]:.1%} ({low}) to {rates[high]:.1%} ({high})"


def _storage(
    retention: Mapping[str, Any],
    scores: Mapping[str, str] | None,
    events: Mapping[str, str] | None,
    topics: list[dict[str, str]],
) -> str:
    parts = [
        "Names, addresses, postcodes and dates of birth stay in ingest's identity vault; "
        "every other service sees a keyed pseudonym, an age band and a ward. Notify fetches a "
        "name and address only for a task an officer approved, and each look-up is logged. "
        "Access is by role (officer, team lead, admin, ops).",
        f"Closed outreach tasks are deleted after {retention.get('closed_task_days')} days and "
        f"the audit log after {retention.get('audit_days')} days (outreach policy).",
    ]
    if events and scores:
        parts.append(
            f"Events on the stream are kept {events['retention_days']} days (changes) and "
            f"{scores['retention_days']} days (scores); opt-outs are kept on a compacted topic."
        )
    elif not topics:
        parts.append(PERSON + "how long events are kept on the stream")
    parts.append(
        PERSON + "how long letter PDFs, the identity vault and scoring's state are kept "
        "(the code sets no period for them yet)"
    )
    return " ".join(parts)


def _risks(cards: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    return [
        {
            "risk": "The models treat some groups differently (bias).",
            "mitigation": "Sex, ethnicity and ward are never inputs; each card publishes "
            "selection, true positive rate and calibration by age band, sex, ethnicity and "
            "ward; outreach's live fairness monitor alarms on disparities by age band, ward, "
            "sex and ethnic group.",
        },
        {
            "risk": "The population changes and the models no longer fit it (drift).",
            "mitigation": "A daily population stability index of every feature and score "
            "against the training distribution in the cards; above 0.2 raises an alarm.",
        },
        {
            "risk": "A resident is contacted because of wrong or out-of-date records.",
            "mitigation": "Officers see the reasons and their source systems before approving; "
            "residents can ask for a review and see what is held about them.",
        },
        {
            "risk": "Contact feels intrusive or alarming.",
            "mitigation": "A personal letter first that asks how things are going, never a "
            "'risk'; at most one open task per resident; cool-down periods; opt-out at any time.",
        },
        {
            "risk": "The falls model is read as a prediction that someone will fall.",
            "mitigation": " ".join(cards["falls"].get("statements", [])),
        },
        {
            "risk": "The models were built on synthetic data.",
            "mitigation": cards["falls"]["limitations"][0],
        },
    ]


def _ico_explanations(
    cards: Mapping[str, Mapping[str, Any]], policy: Mapping[str, Any], owner: Mapping[str, str]
) -> dict[str, str]:
    """The six explanation types of the ICO's guidance, pointing into the record."""
    return {
        "rationale": "Each task shows up to three reasons: the features that raised the "
        "score most, with the exact contribution of each (glass-box models).",
        "responsibility": "An officer decides every case; the senior responsible owner is "
        f"{owner['senior_responsible_owner']}; ask for a review at {owner['contact_email']}.",
        "data": "See tier 2, data specification: every input, why it is needed and what it "
        "is never used for.",
        "fairness": "Fairness tables in each model card, and the live fairness monitor "
        "(thresholds in the outreach policy, version " + str(policy["version"]) + ").",
        "safety_and_performance": "; ".join(
            f"{c['title']}: AUC {c['metrics']['held_out_auc']}, calibration error "
            f"{c['metrics']['expected_calibration_error']}"
            for c in cards.values()
        )
        + "; daily drift checks.",
        "impact": "The outcome for a resident is an offer of help they can decline; no "
        "service, benefit or tenancy decision is made from a score.",
    }


def _leaves(value: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        return [leaf for k, v in value.items() for leaf in _leaves(v, f"{path}.{k}" if path else k)]
    if isinstance(value, list):
        return [leaf for i, v in enumerate(value) for leaf in _leaves(v, f"{path}[{i}]")]
    return [(path, value)]


# Writing it out


def render_html(record: Mapping[str, Any]) -> str:
    """A plain HTML page in the GOV.UK Design System's classes; the record's body sits
    between markers so the residents' pages can show it inside their own layout."""
    t1, t2 = record["tier_1"], record["tier_2"]
    meta = record["metadata"]
    out = [
        f'<h1 class="govuk-heading-xl">{_e(t1["name"])}: algorithmic transparency record</h1>',
        f'<p class="govuk-body-l">{_e(t1["description"])}</p>',
        '<p class="govuk-body-s">'
        + _e(
            f"{STANDARD}, version {meta['standard_version']}. Record {meta['inputs_hash'][:12]}, "
            f"updated {meta['date_updated'] or 'not yet dated'}; models "
            + ", ".join(f"{m} {v}" for m, v in meta["model_versions"].items())
            + f"; outreach policy {meta['policy_version']}."
        )
        + "</p>",
    ]
    if meta["needs_a_person"]:
        out.append(
            '<div class="govuk-warning-text"><strong class="govuk-warning-text__text">'
            f"{len(meta['needs_a_person'])} answers are still to be written by the council "
            "and are marked below.</strong></div>"
        )
    out.append('<h2 class="govuk-heading-l">Summary</h2>')
    out.append(_summary(t1))
    titles = {
        "owner_and_responsibility": "Who is responsible",
        "description_and_rationale": "What it does and why",
        "decision_making_process": "How decisions are made",
        "tool_specification": "How the tool works",
        "data_specification": "The data it uses",
        "risks_mitigations_and_impact_assessments": "Risks and how we reduce them",
    }
    for key, title in titles.items():
        section = dict(t2[key])
        out.append(f'<h2 class="govuk-heading-l">{_e(title)}</h2>')
        models = section.pop("models", None)
        features = section.pop("data_description", None)
        risks = section.pop("risks_and_mitigations", None)
        never = section.pop("never_used", None)
        out.append(_summary(section))
        for model in models or []:
            out.append(f'<h3 class="govuk-heading-m">{_e(model["model_title"])}</h3>')
            out.append(_summary(model))
        if features:
            out.append(
                _table(
                    ["Information", "Where it comes from", "Why we need it", "Never used for"],
                    [
                        [f["feature"], f["source"], f["why_needed"], f["never_used_for"]]
                        for f in features
                    ],
                )
            )
        if never:
            out.append('<h3 class="govuk-heading-m">What is never used</h3>')
            out.append(_list(never))
        if risks:
            out.append(
                _table(["Risk", "How we reduce it"], [[r["risk"], r["mitigation"]] for r in risks])
            )
    out.append('<h2 class="govuk-heading-l">Explanations we can give</h2>')
    out.append(_summary(record["explanations"]))
    if meta["previous_versions"]:
        out.append('<h2 class="govuk-heading-l">Earlier versions of this record</h2>')
        out.append(
            _list([f"{v['inputs_hash'][:12]} ({v['date']})" for v in meta["previous_versions"]])
        )
    body = "\n".join(out)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(t1['name'])}: algorithmic transparency record</title>\n</head>\n"
        f'<body class="govuk-template__body">\n<main class="govuk-main-wrapper">\n{START}\n'
        f"{body}\n{END}\n</main>\n</body>\n</html>\n"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _label(key: str) -> str:
    return key.replace("_", " ").capitalize()


def _value(value: Any) -> str:
    if isinstance(value, list):
        return _list(value)
    if isinstance(value, Mapping):
        return _summary(value)
    text = str(value)
    if PERSON in text:
        return f'<strong class="govuk-tag govuk-tag--yellow">To be written</strong> {_e(text.replace(PERSON, ""))}'
    return _e(text)


def _summary(section: Mapping[str, Any]) -> str:
    rows = "".join(
        f'<div class="govuk-summary-list__row"><dt class="govuk-summary-list__key">{_e(_label(k))}'
        f'</dt><dd class="govuk-summary-list__value">{_value(v)}</dd></div>'
        for k, v in section.items()
    )
    return f'<dl class="govuk-summary-list">{rows}</dl>'


def _list(items: list[Any]) -> str:
    return '<ul class="govuk-list govuk-list--bullet">' + "".join(f"<li>{_value(i)}</li>" for i in items) + "</ul>"  # fmt: skip


def _table(head: list[str], rows: list[list[str]]) -> str:
    header = "".join(f'<th scope="col" class="govuk-table__header">{_e(h)}</th>' for h in head)
    body = "".join(
        '<tr class="govuk-table__row">'
        + "".join(f'<td class="govuk-table__cell">{_e(c)}</td>' for c in row)
        + "</tr>"
        for row in rows
    )
    return (
        f'<table class="govuk-table"><thead class="govuk-table__head"><tr class="govuk-table__row">'
        f'{header}</tr></thead><tbody class="govuk-table__body">{body}</tbody></table>'
    )


@dataclass(frozen=True)
class Written:
    inputs_hash: str
    new_version: bool
    record: Path
    page: Path
    needs_a_person: list[str]
    versions: int


def write_record(out: Path, sources: Sources | None = None, today: date | None = None) -> Written:
    """Make the record and write record.json, record.html and, for a new hash, a history
    entry; the same inputs leave every file byte for byte as it was."""
    sources = sources or Sources(owner=out / "owner.yaml")
    history_dir = out / "history"
    index_path = history_dir / "index.json"
    history: list[dict[str, Any]] = (
        json.loads(index_path.read_text(encoding="utf-8")) if index_path.is_file() else []
    )
    digest = inputs_hash(sources)
    new = all(entry["hash"] != digest for entry in history)
    if new:
        draft = build_record(sources)
        history.append(
            {
                "hash": digest,
                "first_generated": (today or date.today()).isoformat(),
                "model_versions": draft["metadata"]["model_versions"],
                "policy_version": draft["metadata"]["policy_version"],
                "needs_a_person": len(draft["metadata"]["needs_a_person"]),
            }
        )
    record = build_record(sources, history)
    text = json.dumps(record, indent=1, ensure_ascii=False) + "\n"
    history_dir.mkdir(parents=True, exist_ok=True)
    (history_dir / f"{digest}.json").write_text(text, encoding="utf-8")
    index_path.write_text(json.dumps(history, indent=1) + "\n", encoding="utf-8")
    (out / "record.json").write_text(text, encoding="utf-8")
    (out / "record.html").write_text(render_html(record), encoding="utf-8")
    return Written(
        inputs_hash=digest,
        new_version=new,
        record=out / "record.json",
        page=out / "record.html",
        needs_a_person=record["metadata"]["needs_a_person"],
        versions=len(history),
    )


def is_current(out: Path, sources: Sources | None = None) -> bool:
    """Whether the record in `out` was made from the inputs as they are now."""
    sources = sources or Sources(owner=out / "owner.yaml")
    path = out / "record.json"
    if not path.is_file():
        return False
    return bool(
        json.loads(path.read_text(encoding="utf-8"))["metadata"]["inputs_hash"]
        == inputs_hash(sources)
    )
