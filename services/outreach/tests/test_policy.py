import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from outreach.domain.policy import ExistingTask, add_working_days, decide, load_policy
from shared.events import RiskScored

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
POLICY = load_policy()


def score(model: str = "falls", band: str = "high") -> RiskScored:
    return RiskScored(
        occurred_at=NOW,
        resident_key="r_" + "a" * 32,
        source="scoring",
        model=model,
        model_version="1",
        probability=0.4,
        band=band,
        reasons=[],
        feature_hash="h",
        triggered_by=uuid.uuid4(),
    )


def test_a_high_band_score_creates_a_task_for_the_models_team():
    decision = decide(score("homelessness"), POLICY, [], NOW)
    assert decision.action == "create"
    assert decision.team == "Housing prevention team"


def test_a_medium_band_score_leads_to_nothing():
    assert decide(score(band="medium"), POLICY, [], NOW).action == "none"


def test_a_second_model_joins_the_open_task_so_the_resident_gets_one_conversation():
    open_task = ExistingTask("proposed", ["falls"], NOW - timedelta(days=1))
    assert decide(score("frailty"), POLICY, [open_task], NOW).action == "add_to_open_task"
    assert decide(score("falls"), POLICY, [open_task], NOW).action == "none"


def test_no_new_task_within_the_cool_down_after_the_last_one():
    closed = ExistingTask("closed", ["falls"], NOW - timedelta(days=POLICY.cooldown_days - 1))
    assert decide(score(), POLICY, [closed], NOW).action == "suppress"
    old = ExistingTask("closed", ["falls"], NOW - timedelta(days=POLICY.cooldown_days + 1))
    assert decide(score(), POLICY, [old], NOW).action == "create"


def test_working_days_skip_the_weekend():
    friday = date(2026, 11, 27)
    assert add_working_days(friday, 1) == date(2026, 11, 30)
    assert add_working_days(friday, 10) == date(2026, 12, 11)


def test_a_policy_file_with_a_mistake_stops_start_up_with_its_name(tmp_path: Path):
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: x\nrules:\n  - model: astrology\n    bands: [high]\n    team: t\n")
    with pytest.raises(ValueError, match=r"policy\.yaml is not valid"):
        load_policy(broken)
