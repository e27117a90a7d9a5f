"""`proactive transparency`: the ATRS record has every field the standard asks for, each
filled from the code or flagged for a person; the same inputs make the same bytes, a
changed model or policy a new version with the old one kept; and the committed record is
the one the committed inputs make."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from proactive.transparency import (
    OWNER_FIELDS,
    PERSON,
    Sources,
    build_record,
    is_current,
    render_html,
    write_record,
)

pytestmark = pytest.mark.unit
REPOSITORY = Path(__file__).resolve().parents[2]

# The Algorithmic Transparency Recording Standard's fields (tier 1: name, description,
# website, contact; tier 2: owner and responsibility; description and rationale; the
# decision-making process, with human review, training and appeals; the tool and model
# specification, with inputs, outputs, architecture and performance; the data, with
# sensitive attributes, representativeness, collection, sharing, access and storage; and
# risks, mitigations and impact assessments), written out from the standard's template.
ATRS_REQUIRED = [
    "tier_1.name",
    "tier_1.description",
    "tier_1.website",
    "tier_1.contact_email",
    "tier_1.organisation",
    "tier_1.function",
    "tier_1.phase",
    "tier_1.geographic_region",
    "tier_2.owner_and_responsibility.organisation",
    "tier_2.owner_and_responsibility.team",
    "tier_2.owner_and_responsibility.senior_responsible_owner",
    "tier_2.owner_and_responsibility.external_supplier",
    "tier_2.description_and_rationale.detailed_description",
    "tier_2.description_and_rationale.scope",
    "tier_2.description_and_rationale.benefit",
    "tier_2.description_and_rationale.previous_process",
    "tier_2.description_and_rationale.alternatives_considered",
    "tier_2.decision_making_process.process_integration",
    "tier_2.decision_making_process.provided_information",
    "tier_2.decision_making_process.frequency_and_scale_of_usage",
    "tier_2.decision_making_process.human_decisions_and_review",
    "tier_2.decision_making_process.required_training",
    "tier_2.decision_making_process.appeals_and_review",
    "tier_2.tool_specification.system_architecture",
    "tier_2.tool_specification.phase",
    "tier_2.tool_specification.maintenance",
    "tier_2.tool_specification.models",
    "tier_2.data_specification.source_data_name",
    "tier_2.data_specification.data_modality",
    "tier_2.data_specification.data_description",
    "tier_2.data_specification.data_quantities",
    "tier_2.data_specification.sensitive_attributes",
    "tier_2.data_specification.data_completeness_and_representativeness",
    "tier_2.data_specification.source_data_url",
    "tier_2.data_specification.data_collection",
    "tier_2.data_specification.data_cleaning",
    "tier_2.data_specification.data_sharing_agreements",
    "tier_2.data_specification.data_access_and_storage",
    "tier_2.risks_mitigations_and_impact_assessments.impact_assessments",
    "tier_2.risks_mitigations_and_impact_assessments.risks_and_mitigations",
]
# Per model (tier 2, model specification).
ATRS_MODEL_REQUIRED = [
    "model_name",
    "model_version",
    "model_task",
    "model_input",
    "model_output",
    "model_architecture",
    "model_performance",
    "datasets",
    "dataset_purpose",
]
# The ICO's six explanation types ("Explaining decisions made with AI").
ICO_EXPLANATIONS = [
    "rationale",
    "responsibility",
    "data",
    "fairness",
    "safety_and_performance",
    "impact",
]


def _get(record: dict[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        value = value[part]
    return value


def _filled(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | dict):
        return bool(value)
    return value is not None


@pytest.fixture
def copied(tmp_path: Path) -> Sources:
    """The repository's inputs, copied so a test may change them."""
    sources = Sources()
    models = tmp_path / "models"
    models.mkdir()
    for card in sources.models_dir.glob("*.card.json"):
        shutil.copy(card, models / card.name)
    for name in ("policy", "register", "owner", "topics"):
        original: Path = getattr(sources, name)
        if original.is_file():
            shutil.copy(original, tmp_path / original.name)
    return Sources(
        models_dir=models,
        policy=tmp_path / sources.policy.name,
        register=tmp_path / sources.register.name,
        owner=tmp_path / sources.owner.name,
        topics=tmp_path / sources.topics.name,
    )


def test_every_required_atrs_field_is_filled_or_flagged_for_a_person() -> None:
    record = build_record(Sources())
    flagged = set(record["metadata"]["needs_a_person"])
    for path in ATRS_REQUIRED:
        value = _get(record, path)
        assert _filled(value), f"{path} is empty"
        if isinstance(value, str) and PERSON in value:
            assert path in flagged, f"{path} waits for a person but is not flagged"
    for model in record["tier_2"]["tool_specification"]["models"]:
        for field in ATRS_MODEL_REQUIRED:
            assert _filled(model[field]), f"{model['model_name']}.{field} is empty"
    assert sorted(record["explanations"]) == sorted(ICO_EXPLANATIONS)
    assert all(_filled(v) for v in record["explanations"].values())


def test_the_record_is_filled_from_the_cards_policy_and_register() -> None:
    record = build_record(Sources())
    cards = {
        m: json.loads((Sources().models_dir / f"{m}.card.json").read_text())
        for m in ("falls", "homelessness", "frailty")
    }
    assert record["metadata"]["model_versions"] == {m: c["version"] for m, c in cards.items()}
    models = record["tier_2"]["tool_specification"]["models"]
    assert [m["model_version"] for m in models] == [c["version"] for c in cards.values()]
    assert str(cards["falls"]["metrics"]["held_out_auc"]) in models[0]["model_performance"]
    policy = yaml.safe_load(Sources().policy.read_text())
    assert record["metadata"]["policy_version"] == policy["version"]
    storage = record["tier_2"]["data_specification"]["data_access_and_storage"]
    assert f"after {policy['retention']['closed_task_days']} days" in storage
    features = [f["feature"] for f in record["tier_2"]["data_specification"]["data_description"]]
    assert features == [f["name"] for f in cards["falls"]["features"]]


def test_placeholders_and_missing_answers_are_flagged_and_real_answers_are_not(
    copied: Sources,
) -> None:
    copied.owner.unlink()
    missing = build_record(copied)
    assert missing["tier_1"]["contact_email"].startswith(PERSON)
    assert "tier_1.contact_email" in missing["metadata"]["needs_a_person"]

    copied.owner.write_text(
        yaml.safe_dump({field: f"Answer about {field}" for field in OWNER_FIELDS})
    )
    answered = build_record(copied)
    assert answered["tier_1"]["contact_email"] == "Answer about contact_email"
    # Only what the code itself cannot know stays flagged: retention nobody has set yet.
    assert answered["metadata"]["needs_a_person"] == [
        "tier_2.data_specification.data_access_and_storage"
    ]


def test_the_same_inputs_make_the_same_bytes_and_a_changed_policy_a_new_kept_version(
    copied: Sources, tmp_path: Path
) -> None:
    out = tmp_path / "published"
    first = write_record(out, copied, today=date(2026, 12, 1))
    before = {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = write_record(out, copied, today=date(2026, 12, 9))
    assert not again.new_version
    assert {p.name: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before

    policy = yaml.safe_load(copied.policy.read_text())
    policy["version"] = "2027-01-policy-9"
    policy["cooldown_days"] = 120
    copied.policy.write_text(yaml.safe_dump(policy))
    assert not is_current(out, copied)
    second = write_record(out, copied, today=date(2027, 1, 4))
    assert second.new_version and second.inputs_hash != first.inputs_hash
    index = json.loads((out / "history" / "index.json").read_text())
    assert [(e["hash"], e["first_generated"], e["policy_version"]) for e in index] == [
        (first.inputs_hash, "2026-12-01", yaml.safe_load(Sources().policy.read_text())["version"]),
        (second.inputs_hash, "2027-01-04", "2027-01-policy-9"),
    ]
    assert (out / "history" / f"{first.inputs_hash}.json").is_file()
    record = json.loads((out / "record.json").read_text())
    assert record["metadata"]["date_first_published"] == "2026-12-01"
    assert record["metadata"]["previous_versions"] == [
        {"inputs_hash": first.inputs_hash, "date": "2026-12-01"}
    ]
    assert "120 days" in record["tier_2"]["decision_making_process"]["human_decisions_and_review"]


def test_a_retrained_model_makes_a_new_version(copied: Sources, tmp_path: Path) -> None:
    out = tmp_path / "published"
    first = write_record(out, copied, today=date(2026, 12, 1))
    card_path = copied.models_dir / "falls.card.json"
    card = json.loads(card_path.read_text())
    card["version"] = "2.1.0+feedbeef00"
    card_path.write_text(json.dumps(card))
    second = write_record(out, copied, today=date(2026, 12, 2))
    assert second.new_version and second.versions == 2 and second.inputs_hash != first.inputs_hash
    assert json.loads((out / "record.json").read_text())["metadata"]["model_versions"]["falls"] == (
        "2.1.0+feedbeef00"
    )


def test_the_page_escapes_what_it_reads_and_marks_the_body_for_the_residents_pages(
    copied: Sources,
) -> None:
    copied.owner.write_text(yaml.safe_dump({"contact_email": "<script>alert(1)</script>"}))
    page = render_html(build_record(copied))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert page.index("<!-- record:start -->") < page.index("<!-- record:end -->")
    assert "To be written" in page


def test_the_committed_record_is_the_one_the_committed_models_and_policy_make() -> None:
    out = REPOSITORY / "docs" / "transparency"
    assert is_current(out), (
        "A model, the policy, the register or an owner answer changed: run "
        "`proactive transparency` and commit docs/transparency/"
    )


def test_the_command_writes_the_record_and_its_check_fails_once_an_answer_changes(
    copied: Sources, tmp_path: Path
) -> None:
    import typer
    from typer.testing import CliRunner

    from proactive.commands.transparency import transparency

    app = typer.Typer()
    app.command()(transparency)
    out = tmp_path / "published"
    written = CliRunner().invoke(
        app, ["--out", str(out), "--owner", str(copied.owner), "--json"], catch_exceptions=False
    )
    summary = json.loads(written.stdout)
    assert summary["new_version"] and "tier_1.contact_email" in summary["needs_a_person"]
    check = ["--out", str(out), "--owner", str(copied.owner), "--check", "--json"]
    assert CliRunner().invoke(app, check).exit_code == 0
    copied.owner.write_text("contact_email: help@example.gov.uk\n")
    stale = CliRunner().invoke(app, check)
    assert stale.exit_code == 1 and json.loads(stale.stdout) == {"current": False}
