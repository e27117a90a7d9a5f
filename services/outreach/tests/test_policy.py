import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from outreach.domain.lifecycle import TRANSITIONS, TransitionNotAllowed, check_move
from outreach.domain.policy import (
    ExistingTask,
    Resident,
    add_working_days,
    decide,
    load_policy,
    week_start,
    youngest_age,
)
from shared.events import RiskScored

pytestmark = pytest.mark.unit
NOW = datetime(2026, 11, 27, 12, tzinfo=UTC)
POLICY = load_policy()


def score(model: str = "falls", band: str = "high", age_band: str | None = "75-84") -> RiskScored:
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
        age_band=age_band,
    )


def test_a_high_band_score_creates_a_task_for_the_models_team():
    decision = decide(score("homelessness"), POLICY, Resident(), NOW)
    assert decision.action == "create"
    assert decision.team == "Housing prevention team"


def test_a_medium_band_score_leads_to_nothing():
    assert decide(score(band="medium"), POLICY, Resident(), NOW).action == "none"


def test_a_second_model_joins_the_open_task_so_the_resident_gets_one_conversation():
    open_task = ExistingTask("proposed", ["falls"], NOW - timedelta(days=1))
    resident = Resident(tasks=[open_task])
    assert decide(score("frailty"), POLICY, resident, NOW).action == "add_to_open_task"
    assert decide(score("falls"), POLICY, resident, NOW).action == "none"


def test_a_task_held_for_capacity_counts_as_open():
    held = Resident(tasks=[ExistingTask("held_for_capacity", ["falls"], NOW)])
    assert decide(score("frailty"), POLICY, held, NOW).action == "add_to_open_task"


def test_no_new_task_within_the_cool_down_after_the_last_contact():
    def contacted(days_ago: int) -> Resident:
        return Resident(
            tasks=[
                ExistingTask(
                    "closed",
                    ["falls"],
                    NOW - timedelta(days=400),
                    last_contact_at=NOW - timedelta(days=days_ago),
                )
            ]
        )

    recent = decide(score(), POLICY, contacted(POLICY.cooldown_days - 1), NOW)
    assert recent.action == "suppress"
    assert "cool-down" in recent.reason
    assert decide(score(), POLICY, contacted(POLICY.cooldown_days + 1), NOW).action == "create"


def test_a_rejection_holds_off_a_new_task_for_its_own_period():
    rejected = Resident(
        tasks=[ExistingTask("rejected", ["falls"], NOW, closed_at=NOW - timedelta(days=5))]
    )
    assert decide(score(), POLICY, rejected, NOW).action == "suppress"
    later = NOW + timedelta(days=POLICY.after_rejection_days)
    assert decide(score(), POLICY, rejected, later).action == "create"


@pytest.mark.parametrize("flag", ["opted_out", "deceased", "open_case"])
def test_an_excluding_flag_suppresses_with_its_plain_english_reason(flag):
    decision = decide(score(), POLICY, Resident(flags=frozenset({flag})), NOW)
    assert decision.action == "suppress"
    assert flag in decision.reason
    assert POLICY.exclusions.flags[flag] in decision.reason


def test_a_flag_the_policy_does_not_list_changes_nothing():
    assert decide(score(), POLICY, Resident(flags=frozenset({"other"})), NOW).action == "create"


@pytest.mark.parametrize(
    ("model", "age_band", "action"),
    [
        ("falls", "0-17", "suppress"),
        ("frailty", "0-17", "suppress"),
        ("falls", None, "suppress"),
        ("homelessness", "0-17", "create"),
        ("falls", "18-24", "create"),
        ("frailty", "85+", "create"),
    ],
)
def test_falls_and_frailty_are_for_adults_only(model, age_band, action):
    assert decide(score(model, age_band=age_band), POLICY, Resident(), NOW).action == action


def test_age_bands_read_from_their_lower_bound():
    assert youngest_age("0-17") == 0
    assert youngest_age("85+") == 85
    assert youngest_age("unknown") is None


def test_capacity_weeks_start_on_monday_at_midnight():
    assert week_start(NOW) == datetime(2026, 11, 23, tzinfo=UTC)


def test_working_days_skip_the_weekend():
    friday = date(2026, 11, 27)
    assert add_working_days(friday, 1) == date(2026, 11, 30)
    assert add_working_days(friday, 10) == date(2026, 12, 11)


def test_a_policy_file_with_a_mistake_stops_start_up_with_its_name(tmp_path: Path):
    broken = tmp_path / "policy.yaml"
    broken.write_text("version: x\nrules:\n  - model: astrology\n    bands: [high]\n    team: t\n")
    with pytest.raises(ValueError, match=r"policy\.yaml is not valid"):
        load_policy(broken)


def test_a_rule_naming_a_team_without_capacity_is_refused(tmp_path: Path):
    broken = tmp_path / "policy.yaml"
    broken.write_text(
        "version: x\nrules:\n  - {model: falls, bands: [high], team: Nobody}\n"
        "teams:\n  Somebody: {weekly_capacity: 3}\n"
    )
    with pytest.raises(ValueError, match="no capacity set"):
        load_policy(broken)


def test_no_letter_without_review_and_finished_tasks_stay_finished():
    assert "letter_sent" not in TRANSITIONS["proposed"]
    with pytest.raises(TransitionNotAllowed):
        check_move("proposed", "letter_sent")
    for finished in ("closed", "rejected"):
        assert TRANSITIONS[finished] == frozenset()
