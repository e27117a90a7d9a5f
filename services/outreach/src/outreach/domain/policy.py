"""The outreach policy, as a file people can read, and the decision it makes on a score.

The decision is a pure function of the score, the policy and what is already known about
the resident (their tasks and flags), so it can be tested and explained without a database.
Whether a new task goes straight to the officers' queue or waits for the team's capacity
is decided afterwards, across the team (see `handlers.release_held`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from outreach.domain.fairness import FairnessThresholds
from shared.events import Band, ModelName, RiskScored

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policy.yaml"
# A resident with a task in one of these has a conversation under way (or about to be).
OPEN_STATUSES = frozenset({"held_for_capacity", "proposed", "approved", "letter_sent", "contacted"})


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    bands: list[Band] = Field(min_length=1)
    team: str = Field(min_length=1)


class Team(BaseModel):
    model_config = ConfigDict(extra="forbid")

    weekly_capacity: int = Field(ge=0)


class Exclusions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    flags: dict[str, str] = Field(
        default_factory=dict, description="flag name → why it stops outreach, in plain English"
    )
    minimum_age: dict[ModelName, int] = Field(default_factory=dict)


class Retention(BaseModel):
    model_config = ConfigDict(extra="forbid")

    closed_task_days: int = Field(730, ge=1)
    audit_days: int = Field(2190, ge=1)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    description: str = ""
    rules: list[Rule] = Field(min_length=1)
    teams: dict[str, Team] = Field(default_factory=dict)
    exclusions: Exclusions = Field(default_factory=Exclusions)
    cooldown_days: int = Field(180, ge=0)
    after_rejection_days: int = Field(90, ge=0)
    contact_due_working_days: int = Field(10, ge=1, le=60)
    retention: Retention = Field(default_factory=Retention)
    fairness: FairnessThresholds = Field(default_factory=FairnessThresholds)

    @model_validator(mode="after")
    def _every_rule_names_a_known_team(self) -> Policy:
        unknown = {rule.team for rule in self.rules} - set(self.teams)
        if self.teams and unknown:
            raise ValueError(f"rules name teams with no capacity set: {sorted(unknown)}")
        return self

    def rule_for(self, model: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.model == model), None)

    def capacity_of(self, team: str) -> int | None:
        """A team's weekly capacity; None means the policy sets no limit."""
        found = self.teams.get(team)
        return found.weekly_capacity if found else None


def load_policy(path: Path = DEFAULT_POLICY_PATH) -> Policy:
    """Read and check the policy file; a mistake stops start-up with the file's name."""
    try:
        return Policy.model_validate(yaml.safe_load(path.read_text()))
    except Exception as error:
        raise ValueError(f"The outreach policy {path} is not valid: {error}") from error


@dataclass(frozen=True)
class ExistingTask:
    status: str
    models: list[str]
    created_at: datetime
    last_contact_at: datetime | None = None
    closed_at: datetime | None = None


@dataclass(frozen=True)
class Resident:
    """What outreach knows about a resident when a score arrives."""

    tasks: list[ExistingTask] = field(default_factory=list)
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Decision:
    action: Literal["create", "add_to_open_task", "none", "suppress"]
    reason: str
    team: str | None = None


def youngest_age(age_band: str) -> int | None:
    """The lower bound of an age band such as `0-17`, `75-84` or `85+`."""
    head = age_band.split("-")[0].rstrip("+").strip()
    return int(head) if head.isdigit() else None


def acts_on(score: RiskScored, policy: Policy) -> bool:
    """Whether the policy has a rule for the score's model and band. When it has none,
    the decision is `none` whatever is known about the resident."""
    rule = policy.rule_for(score.model)
    return rule is not None and score.band in rule.bands


def decide(score: RiskScored, policy: Policy, resident: Resident, now: datetime) -> Decision:
    """What to do with one score: one task per resident, however many models fire."""
    rule = policy.rule_for(score.model)
    if rule is None or not acts_on(score, policy):
        return Decision("none", f"{score.model} band {score.band} does not lead to outreach")
    for flag in sorted(resident.flags):
        if flag in policy.exclusions.flags:
            return Decision("suppress", f"excluded ({flag}): {policy.exclusions.flags[flag]}")
    minimum = policy.exclusions.minimum_age.get(score.model)
    if minimum is not None:
        youngest = youngest_age(score.age_band) if score.age_band else None
        if youngest is None:
            return Decision(
                "suppress",
                f"excluded: {score.model} is for people aged {minimum} or over, "
                "and this resident's age band is not known",
            )
        if youngest < minimum:
            return Decision(
                "suppress",
                f"excluded: {score.model} is for people aged {minimum} or over "
                f"(age band {score.age_band})",
            )
    open_task = next((t for t in resident.tasks if t.status in OPEN_STATUSES), None)
    if open_task is not None:
        if score.model in open_task.models:
            return Decision("none", "an open task already covers this model")
        return Decision("add_to_open_task", f"{score.model} joins the resident's open task")
    contacts = [t.last_contact_at for t in resident.tasks if t.last_contact_at is not None]
    if contacts and max(contacts) >= now - timedelta(days=policy.cooldown_days):
        return Decision(
            "suppress",
            f"cool-down: we contacted the resident within the last {policy.cooldown_days} days",
        )
    rejections = [
        t.closed_at for t in resident.tasks if t.status == "rejected" and t.closed_at is not None
    ]
    if rejections and max(rejections) >= now - timedelta(days=policy.after_rejection_days):
        return Decision(
            "suppress",
            "cool-down: an officer decided against contact within the last "
            f"{policy.after_rejection_days} days",
        )
    return Decision("create", f"{score.model} band {score.band}", team=rule.team)


def week_start(now: datetime) -> datetime:
    """Monday 00:00 of `now`'s week, in `now`'s time zone: capacity is counted per week."""
    monday = now - timedelta(days=now.weekday())
    return monday.replace(hour=0, minute=0, second=0, microsecond=0)


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days (Monday to Friday) after `start`."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current
