"""The fairness monitor: rates, disparity ratios and alarms by age band and ward, checked
against a small case worked by hand; a skewed stream of scores raising the alarm; and the
model-change record (which model versions' scores made each task) in the subject-access
export."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from outreach import handlers
from outreach.adapters.monitoring import fairness_cells
from outreach.domain.fairness import (
    FairnessThresholds,
    ResidentCell,
    TaskCell,
    fairness_report,
)
from outreach.domain.policy import Policy
from shared.events import LetterSent, Reason, RiskScored
from shared.references import reference_for
from shared.settings import DEV_SERVICE_TOKEN


def _cells() -> tuple[list[ResidentCell], list[TaskCell]]:
    """100 residents scored: 40 aged A in ward X, 10 A in Y, 30 B in X, 20 B in Y.
    Ten tasks in A/X (8 reviewed, 6 approved, 4 contacted, 2 offered support) and ten in
    B/Y (10 reviewed, 9 approved, 9 contacted, 6 offered support)."""
    residents = [
        ResidentCell("A", "X", 40),
        ResidentCell("A", "Y", 10),
        ResidentCell("B", "X", 30),
        ResidentCell("B", "Y", 20),
    ]

    def tasks(age: str, ward: str, reviewed: int, approved: int, contacted: int, offered: int, total: int) -> list[TaskCell]:  # fmt: skip
        # Each task as far as it got: offered ⊂ contacted ⊂ approved ⊂ reviewed ⊂ total.
        steps = [
            (True, True, True, True, offered),
            (True, True, True, False, contacted - offered),
            (True, True, False, False, approved - contacted),
            (True, False, False, False, reviewed - approved),
            (False, False, False, False, total - reviewed),
        ]
        return [TaskCell(age, ward, *flags, count=n) for *flags, n in steps if n]

    return residents, [*tasks("A", "X", 8, 6, 4, 2, 10), *tasks("B", "Y", 10, 9, 9, 6, 10)]


@pytest.mark.unit
def test_borough_rates_are_the_hand_computed_ones() -> None:
    report = fairness_report(*_cells())
    assert report["borough"]["counts"] == {
        "scored": 100,
        "tasks": 20,
        "reviewed": 18,
        "approved": 15,
        "contacted": 13,
        "support_offered": 8,
    }
    # 20/100, 15/18, 13/15, 8/13
    assert report["borough"]["rates"] == {
        "selection": 0.2,
        "approval": 0.8333,
        "contact": 0.8667,
        "support_offered": 0.6154,
    }


@pytest.mark.unit
def test_group_rates_and_disparity_ratios_are_the_hand_computed_ones() -> None:
    report = fairness_report(*_cells())
    ward = {row["group"]: row for row in report["groups"]["ward"]}
    # Ward X: 10 tasks for 70 scored = 0.142857, ÷ 0.2 = 0.714; approval 6/8 = 0.75, ÷ 15/18
    # = 0.9; contact 4/6 = 0.6667, ÷ 13/15 = 0.769; support 2/4 = 0.5, ÷ 8/13 = 0.8125.
    assert ward["X"]["rates"] == {
        "selection": 0.1429,
        "approval": 0.75,
        "contact": 0.6667,
        "support_offered": 0.5,
    }
    assert ward["X"]["ratios"] == {
        "selection": 0.7143,
        "approval": 0.9,
        "contact": 0.7692,
        "support_offered": 0.8125,
    }
    # Ward Y: 10 of 30 = 0.3333, ÷ 0.2 = 1.667.
    assert ward["Y"]["ratios"]["selection"] == 1.6667
    age = {row["group"]: row for row in report["groups"]["age_band"]}
    assert age["A"]["counts"]["scored"] == 50
    assert age["A"]["ratios"]["selection"] == 1.0  # 10 of 50 = 0.2, as the borough


@pytest.mark.unit
def test_only_disparities_beyond_the_thresholds_in_groups_large_enough_raise_alarms() -> None:
    alarms = fairness_report(*_cells())["alarms"]
    # smallest_group 20: only the two wards' selection has a denominator that large.
    assert [(a["dimension"], a["group"], a["measure"], a["direction"]) for a in alarms] == [
        ("ward", "X", "selection", "below"),
        ("ward", "Y", "selection", "above"),
    ]
    # Age band A's selection ratio is 1.0 anyway; selection by age band is never alarmed.
    looser = fairness_report(*_cells(), FairnessThresholds(smallest_group=5))["alarms"]
    assert {(a["dimension"], a["group"], a["measure"]) for a in looser} == {
        ("age_band", "A", "contact"),  # 4 of 6 approved contacted: 0.769 of the borough's
        ("ward", "X", "selection"),
        ("ward", "X", "contact"),
        ("ward", "Y", "selection"),
    }


@pytest.mark.unit
def test_with_nothing_scored_there_are_no_rates_and_no_alarms() -> None:
    report = fairness_report([], [])
    assert report["not_monitored"] == {}
    assert report["alarms"] == []
    assert report["borough"]["rates"]["selection"] is None


def test_selection_by_sex_and_ethnic_group_is_monitored_and_a_skew_is_alarmed() -> None:
    residents = [
        ResidentCell("75-84", "Abbey", 50, sex="female", ethnicity="white"),
        ResidentCell("75-84", "Abbey", 50, sex="male", ethnicity="black"),
    ]
    tasks = [
        TaskCell("75-84", "Abbey", False, False, False, False, 10, sex="female", ethnicity="white"),
        TaskCell("75-84", "Abbey", False, False, False, False, 2, sex="male", ethnicity="black"),
    ]
    report = fairness_report(residents, tasks)
    by_sex = {row["group"]: row for row in report["groups"]["sex"]}
    # Borough-wide 12 of 100; women 10 of 50 (ratio 1.67), men 2 of 50 (ratio 0.33).
    assert by_sex["female"]["rates"]["selection"] == 0.2
    assert by_sex["male"]["ratios"]["selection"] == round(0.04 / 0.12, 4)
    flagged = {(a["dimension"], a["group"]) for a in report["alarms"]}
    assert {
        ("sex", "female"),
        ("sex", "male"),
        ("ethnicity", "white"),
        ("ethnicity", "black"),
    } <= flagged
    assert any(a["text"].startswith("ethnic group black:") for a in report["alarms"])


def _score(key: str, ward: str, band: str = "high", model: str = "falls", version: str = "1.0.0") -> RiskScored:  # fmt: skip
    return RiskScored(
        occurred_at=datetime.now(UTC),
        resident_key=key,
        source="scoring",
        model=model,  # type: ignore[arg-type]
        model_version=version,
        probability=0.6 if band == "high" else 0.05,
        band=band,  # type: ignore[arg-type]
        reasons=[
            Reason(
                feature="falls_reported_12m",
                text="Social care heard about a fall in the last year",
                contribution=1.2,
                source_table="social_care.contacts",
            )
        ],
        feature_hash="h",
        triggered_by=uuid.uuid4(),
        age_band="75-84",
        ward=ward,
    )


def _key() -> str:
    return "r_" + uuid.uuid4().hex


@pytest.mark.integration
def test_a_skewed_stream_of_scores_raises_the_ward_disparity_alarm(engine, policy: Policy) -> None:
    # Abbey: 60 residents scored, 6 picked out (10%); Becontree: 30 scored, 24 (80%).
    # Borough: 30 of 90 = 33%; Abbey 0.3 of it (below 0.8), Becontree 2.4 (above 1.25).
    for ward, picked, total in (("Abbey", 6, 60), ("Becontree", 24, 30)):
        for index in range(total):
            band = "high" if index < picked else "low"
            handlers.handle_score(engine, _score(_key(), ward, band), policy)
    residents, tasks = fairness_cells(engine)
    report = fairness_report(residents, tasks, policy.fairness)
    assert report["borough"]["counts"]["scored"] == 90
    assert report["borough"]["counts"]["tasks"] == 30
    alarms = {(a["group"], a["measure"]): a for a in report["alarms"]}
    assert alarms["Abbey", "selection"]["ratio"] == 0.3
    assert alarms["Abbey", "selection"]["direction"] == "below"
    assert alarms["Becontree", "selection"]["ratio"] == 2.4
    assert set(alarms) == {("Abbey", "selection"), ("Becontree", "selection")}


@pytest.mark.integration
def test_officer_decisions_move_the_approval_contact_and_support_figures(
    engine, policy: Policy
) -> None:
    keys = [_key() for _ in range(4)]
    for key in keys:
        handlers.handle_score(engine, _score(key, "Eastbrook"), policy)
    # A later score for a resident already counted: still one resident scored.
    handlers.handle_score(engine, _score(keys[0], "Eastbrook"), policy)
    ids = {t.resident_key: t.task_id for t in _tasks(engine)}
    handlers.approve_task(engine, ids[keys[0]], "officer", policy)
    handlers.approve_task(engine, ids[keys[1]], "officer", policy)
    handlers.reject_task(engine, ids[keys[2]], "officer", "already known to the team", policy)
    handlers.handle_delivery(
        engine,
        LetterSent(
            event_type="LetterSent",
            occurred_at=datetime.now(UTC),
            resident_key=keys[0],
            source="notify",
            task_id=ids[keys[0]],
            channel="pdf",
            status="rendered",
            reference=reference_for(ids[keys[0]]),
        ),
        policy,
    )
    handlers.record_contact(engine, ids[keys[0]], "officer")
    handlers.record_outcome(engine, ids[keys[0]], "support_offered", "officer")
    report = fairness_report(*fairness_cells(engine), policy.fairness)
    assert report["borough"]["counts"] == {
        "scored": 4,  # the same resident scored twice counts once
        "tasks": 4,
        "reviewed": 3,
        "approved": 2,
        "contacted": 1,
        "support_offered": 1,
    }
    assert report["borough"]["rates"]["approval"] == 0.6667


def _tasks(engine):
    from sqlmodel import Session, select

    from outreach.adapters.store import Task

    with Session(engine) as session:
        return list(session.exec(select(Task)).all())


@pytest.mark.integration
def test_the_subject_access_export_names_the_model_version_of_every_score_behind_a_task(
    engine, policy: Policy
) -> None:
    key = _key()
    handlers.handle_score(engine, _score(key, "Abbey", version="2.0.0+aaaa"), policy)
    handlers.handle_score(
        engine, _score(key, "Abbey", model="frailty", version="2.0.0+bbbb"), policy
    )
    export = handlers.subject_access(engine, key)
    (task,) = export["tasks"]
    assert [(s["model"], s["model_version"], s["band"]) for s in task["scores"]] == [
        ("falls", "2.0.0+aaaa", "high"),
        ("frailty", "2.0.0+bbbb", "high"),
    ]
    assert task["scores"][0]["reasons"][0]["feature"] == "falls_reported_12m"


@pytest.mark.integration
def test_the_retention_job_deletes_a_tasks_scores_with_it(engine, policy: Policy) -> None:
    from datetime import timedelta

    key = _key()
    handlers.handle_score(engine, _score(key, "Abbey"), policy)
    (task,) = [t for t in _tasks(engine) if t.resident_key == key]
    handlers.close_task(engine, task.task_id, "officer", "moved away")
    later = datetime.now(UTC) + timedelta(days=policy.retention.closed_task_days + 1)
    handlers.purge(engine, policy, later)
    assert handlers.subject_access(engine, key)["tasks"] == []
    from sqlmodel import Session, select

    from outreach.adapters.monitoring import TaskScore

    with Session(engine) as session:
        assert session.exec(select(TaskScore).where(TaskScore.task_id == task.task_id)).all() == []


ROUTES = [
    ("/officer/fairness", "page", {"team_lead", "admin"}),
    ("/v1/fairness", "api", {"team_lead", "admin"}),
    ("/v1/fairness/alarms", "api", {"team_lead", "admin", "ops", "service"}),
]


@pytest.fixture(scope="module")
def signed_in(offline_app, passwords):
    """A browser and an API token per role."""
    import re

    clients, tokens = {}, {"service": {"Authorization": f"Bearer {DEV_SERVICE_TOKEN}"}}
    for role in ("officer", "team_lead", "admin", "ops"):
        client = TestClient(offline_app)
        page = client.get("/opt-out")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post(
            "/officer/login",
            data={"username": role, "password": passwords[role], "csrf_token": csrf},
            follow_redirects=False,
        )
        clients[role] = client
        token = client.post("/v1/token", data={"username": role, "password": passwords[role]})
        tokens[role] = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return clients, tokens


@pytest.mark.integration
@pytest.mark.parametrize(("path", "kind", "allowed"), ROUTES)
def test_the_fairness_monitor_answers_only_team_leads_and_admins_and_its_alarms_ops_too(
    offline_app, signed_in, path, kind, allowed
) -> None:
    clients, tokens = signed_in
    for role in ("officer", "team_lead", "admin", "ops", "service"):
        if kind == "page":
            if role == "service":
                continue
            response = clients[role].get(path, follow_redirects=False)
        else:
            response = TestClient(offline_app).get(path, headers=tokens[role])
        assert (response.status_code == 200) == (role in allowed), (role, response.status_code)
        if role not in allowed:
            assert response.status_code == 403
    if kind == "page":
        anonymous = TestClient(offline_app).get(path, follow_redirects=False)
        assert anonymous.headers["location"].startswith("/officer/login")


@pytest.mark.integration
def test_the_fairness_page_shows_the_groups_and_the_alarms(offline_app, signed_in) -> None:
    engine, policy = offline_app.state.engine, offline_app.state.policy
    for ward, picked, total in (("Mayesbrook", 2, 40), ("Heath", 20, 25)):
        for index in range(total):
            band = "high" if index < picked else "low"
            handlers.handle_score(engine, _score(_key(), ward, band), policy)
    clients, tokens = signed_in
    page = clients["team_lead"].get("/officer/fairness")
    assert page.status_code == 200
    assert "Mayesbrook" in page.text and "Heath" in page.text
    assert "Ethnic group" in page.text or "ethnicity" in page.text.lower()
    alarms = TestClient(offline_app).get("/v1/fairness/alarms", headers=tokens["ops"]).json()
    assert alarms["alarms"] >= 2
    assert any("ward Mayesbrook" in text for text in alarms["texts"])
