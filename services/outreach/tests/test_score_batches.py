"""Scores taken in batches (`handle_scores`, one transaction a batch) decide exactly as
taken one at a time: the same outcomes, tasks, audit entries, outbox events and
monitoring rows, in order per resident; a score seen before (in an earlier batch or
earlier in the same one) changes nothing."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from outreach import handlers
from outreach.adapters.monitoring import ScoredResident, TaskScore
from outreach.adapters.store import AuditEntry, ProcessedEvent, Task, create_tables
from outreach.domain.policy import Policy
from shared.database import make_engine
from shared.events import Reason, RiskScored
from shared.outbox import OutboxEntry

pytestmark = pytest.mark.unit
# A Wednesday: capacity is counted from the Monday before.
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
TEAM = "Community independence team"
HOUSING = "Housing prevention team"


def new_key() -> str:
    return "r_" + uuid.uuid4().hex


def _aware(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def snapshot(
    engine: Engine, known_tasks: frozenset[uuid.UUID] | set[uuid.UUID] = frozenset()
) -> dict[str, Any]:
    """Everything a score can change, with ids made comparable across two databases: a
    task made by a score is named by its resident (a resident gets at most one)."""
    with Session(engine) as session:
        tasks = session.exec(select(Task)).all()
        label = {
            t.task_id: str(t.task_id) if t.task_id in known_tasks else f"new:{t.resident_key}"
            for t in tasks
        }
        audit = session.exec(select(AuditEntry).order_by(AuditEntry.at, AuditEntry.id)).all()  # type: ignore[arg-type]
        per_resident: dict[str, list[tuple[str, str | None]]] = {}
        for entry in audit:
            per_resident.setdefault(entry.resident_key, []).append(
                (entry.action, entry.score_event_id)
            )
        outbox = []
        for row in session.exec(select(OutboxEntry)).all():
            payload = json.loads(row.payload)
            for volatile in ("event_id", "occurred_at", "produced_at"):
                payload.pop(volatile, None)
            payload["task_id"] = label[uuid.UUID(payload["task_id"])]
            outbox.append(json.dumps([row.topic, row.message_key, payload], sort_keys=True))
        return {
            "tasks": sorted(
                (
                    label[t.task_id],
                    t.status,
                    t.models,
                    t.reasons,
                    t.team,
                    t.priority,
                    t.policy_version,
                    _aware(t.released_at),
                    _aware(t.updated_at),
                    t.traceparent is not None,
                )
                for t in tasks
            ),
            "audit": sorted(
                (
                    e.resident_key,
                    label.get(e.task_id, "") if e.task_id else "",
                    e.action,
                    e.reason,
                    e.actor,
                    e.policy_version or "",
                    e.score_event_id or "",
                )
                for e in audit
            ),
            "audit_order": per_resident,
            "outbox": sorted(outbox),
            "task_scores": sorted(
                (label[s.task_id], s.score_event_id, s.model, s.probability, s.band)
                for s in session.exec(select(TaskScore)).all()
            ),
            "scored": sorted(
                (
                    r.resident_key,
                    r.age_band,
                    r.ward,
                    r.sex,
                    r.ethnicity,
                    _aware(r.first_scored_at),
                    _aware(r.last_scored_at),
                )
                for r in session.exec(select(ScoredResident)).all()
            ),
            "processed": sorted(
                (p.event_id, p.consumer) for p in session.exec(select(ProcessedEvent)).all()
            ),
        }


def a_score(
    key: str,
    model: str = "falls",
    band: str = "high",
    probability: float = 0.6,
    age_band: str | None = "75-84",
    minute: int = 0,
    sex: str | None = None,
) -> RiskScored:
    return RiskScored(
        occurred_at=NOW - timedelta(hours=1) + timedelta(minutes=minute),
        resident_key=key,
        source="scoring",
        model=model,  # type: ignore[arg-type]
        model_version="test",
        probability=probability,
        band=band,  # type: ignore[arg-type]
        reasons=[
            Reason(
                feature=f"{model}_feature",
                text="A reason in plain English",
                contribution=round(probability * 2, 3),
                source_table="social_care.contacts",
            )
        ],
        feature_hash="h",
        triggered_by=uuid.uuid4(),
        age_band=age_band,
        ward=f"Ward {minute % 3}",
        sex=sex,
    )


def one_at_a_time(engine: Engine, scores: list[RiskScored], policy: Policy) -> list[str]:
    return [handlers.handle_score(engine, score, policy, NOW) for score in scores]


def in_batches(
    engine: Engine, scores: list[RiskScored], policy: Policy, sizes: list[int]
) -> list[str]:
    outcomes: list[str] = []
    start = 0
    for size in [*sizes, len(scores)]:
        if start >= len(scores):
            break
        outcomes += handlers.handle_scores(engine, scores[start : start + size], policy, NOW)
        start += size
    return outcomes


def memory_engine() -> Engine:
    engine = make_engine("sqlite://")
    create_tables(engine)
    return engine


# Examples on both databases


def test_a_batch_of_mixed_residents_decides_each_in_order(engine, policy):
    a, b, c, d = (new_key() for _ in range(4))
    handlers.set_flag(engine, c, "opted_out", "residents-pages", "resident")
    batch = [
        a_score(a, "falls"),  # a new task for a
        a_score(b, "homelessness", band="low"),  # not a band that leads anywhere
        a_score(a, "frailty", probability=0.9),  # joins a's task
        a_score(c, "falls"),  # c opted out
        a_score(a, "falls", minute=1),  # a's task covers falls already
        a_score(d, "falls", age_band="0-17"),  # falls is for adults
        a_score(d, "homelessness", age_band="0-17"),  # homelessness is not
        a_score(b, "homelessness", minute=2),  # now high: b's task
    ]
    assert handlers.handle_scores(engine, batch, policy, NOW) == [
        "create", "none", "add_to_open_task", "suppress", "none", "suppress", "create",
        "create",
    ]  # fmt: skip
    state = snapshot(engine)
    [task_a] = [t for t in state["tasks"] if t[0] == f"new:{a}"]
    assert task_a[1] == "proposed"
    assert task_a[2] == ["falls", "frailty"]
    assert task_a[5] == 0.9  # the highest score's probability
    assert [action for action, _ in state["audit_order"][a]] == ["created", "added_to_open_task"]
    assert state["audit_order"][c][-1] == ("suppressed", str(batch[3].event_id))


def test_a_batch_decides_as_the_same_scores_one_at_a_time(engine, policy, policy_with):
    small = policy_with(teams={TEAM: {"weekly_capacity": 2}, HOUSING: {"weekly_capacity": 1}})
    keys = [new_key() for _ in range(6)]
    scores = [
        a_score(keys[i % 6], model, probability=0.1 * (i % 9 + 1), minute=i)
        for i, model in enumerate(["falls", "homelessness", "frailty"] * 4)
    ]
    expected_outcomes = one_at_a_time(engine, scores, small)
    expected = snapshot(engine)
    again = memory_engine() if engine.dialect.name == "sqlite" else engine
    if again is engine:
        _empty(engine)
    assert handlers.handle_scores(again, scores, small, NOW) == expected_outcomes
    assert "held_for_capacity" in expected_outcomes  # the small teams filled up
    assert snapshot(again) == expected


def _empty(engine: Engine) -> None:
    from sqlmodel import SQLModel

    with Session(engine) as session:
        for table in reversed(SQLModel.metadata.sorted_tables):
            session.execute(table.delete())
        session.commit()


def test_a_score_repeated_within_a_batch_or_in_a_later_one_changes_nothing(engine, policy):
    key, other = new_key(), new_key()
    first, second = a_score(key), a_score(other, "homelessness")
    assert handlers.handle_scores(engine, [first, first, second, first], policy, NOW) == [
        "create", "duplicate", "create", "duplicate",
    ]  # fmt: skip
    before = snapshot(engine)
    assert len(before["tasks"]) == 2
    assert len(before["outbox"]) == 2  # one TaskCreated each
    # The whole batch again (as after a crash before the offsets were committed).
    assert (
        handlers.handle_scores(engine, [first, first, second, first], policy, NOW)
        == ["duplicate"] * 4
    )
    assert handlers.handle_score(engine, second, policy, NOW) == "duplicate"
    assert snapshot(engine) == before


def test_a_task_waiting_for_capacity_is_released_within_the_batch_highest_score_first(
    engine, policy_with
):
    small = policy_with(teams={TEAM: {"weekly_capacity": 1}, HOUSING: {"weekly_capacity": 5}})
    low, high, late = new_key(), new_key(), new_key()
    # A new week: a task held last week waits, with a lower score than the batch's first.
    held_id = uuid.uuid4()
    with Session(engine) as session:
        session.add(
            Task(
                task_id=held_id, resident_key=low, status="held_for_capacity", team=TEAM,
                policy_version=small.version, priority=0.3, models=["falls"],
                created_at=NOW - timedelta(days=7),
            )
        )  # fmt: skip
        session.commit()
    outcomes = handlers.handle_scores(
        engine, [a_score(high, probability=0.8), a_score(late, probability=0.9)], small, NOW
    )
    # The first takes the week's one place ahead of the older, lower one; the second waits.
    assert outcomes == ["create", "held_for_capacity"]
    statuses = {t[0]: t[1] for t in snapshot(engine, {held_id})["tasks"]}
    assert statuses == {
        str(held_id): "held_for_capacity",
        f"new:{high}": "proposed",
        f"new:{late}": "held_for_capacity",
    }


# The property: any scores, any pre-existing state, any cut into batches


RESIDENTS = [f"r_{i:032x}" for i in range(3)]
STATES = ("nothing", "opted_out", "contacted_recently", "rejected_recently", "held", "open")


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[dict[str, str], list[RiskScored], list[int]]:
    states = {key: draw(st.sampled_from(STATES)) for key in RESIDENTS}
    scores: list[RiskScored] = []
    for minute in range(draw(st.integers(1, 24))):
        if scores and draw(st.integers(0, 5)) == 0:
            scores.append(draw(st.sampled_from(scores)))  # redelivered
            continue
        scores.append(
            a_score(
                draw(st.sampled_from(RESIDENTS)),
                draw(st.sampled_from(["falls", "homelessness", "frailty"])),
                draw(st.sampled_from(["high", "high", "high", "medium", "low"])),
                draw(st.sampled_from([0.2, 0.5, 0.7, 0.9])),
                draw(st.sampled_from(["0-17", "75-84", "85+", None])),
                minute,
                draw(st.sampled_from([None, "female", "male"])),
            )
        )
    sizes = draw(st.lists(st.integers(1, 8), max_size=6))
    return states, scores, sizes


def prepare(engine: Engine, states: dict[str, str], policy: Policy) -> set[uuid.UUID]:
    known = set()
    with Session(engine) as session:
        for i, (key, state) in enumerate(sorted(states.items())):
            task_id = uuid.UUID(int=i + 1)
            common = {"task_id": task_id, "resident_key": key, "models": ["frailty"],
                      "team": TEAM, "policy_version": policy.version, "priority": 0.1 * (i + 1),
                      "created_at": NOW - timedelta(days=30),
                      "updated_at": NOW - timedelta(days=30)}  # fmt: skip
            if state == "contacted_recently":
                session.add(Task(**common, status="closed", contacted_at=NOW - timedelta(days=9)))
            elif state == "rejected_recently":
                session.add(Task(**common, status="rejected", closed_at=NOW - timedelta(days=9)))
            elif state == "held":
                session.add(Task(**common, status="held_for_capacity"))
            elif state == "open":
                session.add(Task(**common, status="proposed", released_at=NOW - timedelta(days=1)))
            else:
                continue
            known.add(task_id)
        session.commit()
    for key, state in states.items():
        if state == "opted_out":
            handlers.set_flag(engine, key, "opted_out", "residents-pages", "resident")
    return known


@pytest.fixture(scope="module")
def small_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    import yaml

    from outreach.domain.policy import DEFAULT_POLICY_PATH, load_policy

    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text())
    data["teams"] = {TEAM: {"weekly_capacity": 2}, HOUSING: {"weekly_capacity": 1}}
    path = tmp_path_factory.mktemp("policy") / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_policy(path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=scenarios())
def test_any_batches_decide_as_one_at_a_time(
    scenario: tuple[dict[str, str], list[RiskScored], list[int]], small_policy: Policy
) -> None:
    states, scores, sizes = scenario
    alone, batched = memory_engine(), memory_engine()
    known = prepare(alone, states, small_policy)
    prepare(batched, states, small_policy)
    expected_outcomes = one_at_a_time(alone, scores, small_policy)
    assert in_batches(batched, scores, small_policy, sizes) == expected_outcomes
    after = snapshot(batched, known)
    assert after == snapshot(alone, known)
    # Redelivered, all at once: nothing changes.
    assert handlers.handle_scores(batched, scores, small_policy, NOW) == ["duplicate"] * len(scores)
    assert snapshot(batched, known) == after


def test_the_scenarios_reach_every_outcome(small_policy: Policy) -> None:
    """The property above is only as good as its cases: a fixed run over many residents
    reaches every outcome (so a mistake in any branch would show)."""
    import random

    chooser = random.Random(3)
    states = dict(zip(RESIDENTS, ["held", "opted_out", "open"], strict=True))
    states[f"r_{99:032x}"] = "contacted_recently"
    states.update({f"r_{i + 100:032x}": "nothing" for i in range(8)})
    scores = [
        a_score(
            chooser.choice(sorted(states)), chooser.choice(["falls", "homelessness", "frailty"]),
            chooser.choice(["high", "low"]), chooser.random(), chooser.choice(["0-17", "85+"]),
            minute,
        )
        for minute in range(40)
    ]  # fmt: skip
    alone, batched = memory_engine(), memory_engine()
    known = prepare(alone, states, small_policy)
    prepare(batched, states, small_policy)
    outcomes = one_at_a_time(alone, scores, small_policy)
    assert in_batches(batched, scores, small_policy, [7, 1, 13]) == outcomes
    assert snapshot(batched, known) == snapshot(alone, known)
    assert {"create", "held_for_capacity", "add_to_open_task", "suppress", "none"} <= set(outcomes)
