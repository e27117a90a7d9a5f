"""The outreach policy, as a file people can read, and the decision it makes on a score.

The decision is a pure function of the score, the policy and what is already known about
the resident's tasks, so it can be tested and explained without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from shared.events import Band, ModelName, RiskScored

DEFAULT_POLICY_PATH = Path(__file__).resolve().parent.parent / "policy.yaml"
OPEN_STATUSES = frozenset({"proposed", "approved", "letter_sent", "contacted"})


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: ModelName
    bands: list[Band] = Field(min_length=1)
    team: str = Field(min_length=1)


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(min_length=1)
    description: str = ""
    rules: list[Rule] = Field(min_length=1)
    cooldown_days: int = Field(180, ge=0)
    contact_due_working_days: int = Field(10, ge=1, le=60)

    def rule_for(self, model: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.model == model), None)


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


@dataclass(frozen=True)
class Decision:
    action: Literal["create", "add_to_open_task", "none", "suppress"]
    reason: str
    team: str | None = None


def decide(score: RiskScored, policy: Policy, tasks: list[ExistingTask], now: datetime) -> Decision:
    """What to do with one score: one task per resident, however many models fire."""
    rule = policy.rule_for(score.model)
    if rule is None or score.band not in rule.bands:
        return Decision("none", f"{score.model} band {score.band} does not lead to outreach")
    open_task = next((t for t in tasks if t.status in OPEN_STATUSES), None)
    if open_task is not None:
        if score.model in open_task.models:
            return Decision("none", "an open task already covers this model")
        return Decision("add_to_open_task", f"{score.model} joins the resident's open task")
    cutoff = now - timedelta(days=policy.cooldown_days)
    recent = [t for t in tasks if t.created_at >= cutoff]
    if recent:
        return Decision(
            "suppress", f"cool-down: a task was made within the last {policy.cooldown_days} days"
        )
    return Decision("create", f"{score.model} band {score.band}", team=rule.team)


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days (Monday to Friday) after `start`."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current
