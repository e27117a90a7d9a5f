"""The live fairness monitor: does outreach treat groups of residents alike?

For each age band and each ward, four rates from tasks and their outcomes, each compared
with the same rate across the whole borough (the disparity ratio, group rate ÷ borough
rate):

- selection: tasks per resident scored (how often the policy picks someone out);
- approval: tasks approved per task reviewed by an officer (approved or rejected);
- contact: tasks where contact was made per task approved;
- support offered: tasks ending with support offered per task where contact was made.

A ratio below `lowest_ratio` or above `highest_ratio` raises an alarm, for a group with
at least `smallest_group` in the rate's denominator (smaller groups are shown, not
alarmed: a handful of people makes any ratio swing). The thresholds live in the policy
file, so a change to them is versioned like any rule.

Sex and ethnicity are not monitored here: outreach never receives them (see
`NOT_MONITORED`). Pure functions of counts, so a small case can be checked by hand.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Measure = Literal["selection", "approval", "contact", "support_offered"]
MEASURES: tuple[Measure, ...] = ("selection", "approval", "contact", "support_offered")
DIMENSIONS = ("age_band", "ward", "sex", "ethnicity")
Dimension = Literal["age_band", "ward", "sex", "ethnicity"]
# What each rate divides by, and what it counts.
RATE_PARTS: dict[Measure, tuple[str, str]] = {
    "selection": ("tasks", "scored"),
    "approval": ("approved", "reviewed"),
    "contact": ("contacted", "approved"),
    "support_offered": ("support_offered", "contacted"),
}
MEASURE_LABELS: dict[Measure, str] = {
    "selection": "Selected for a task (per resident scored)",
    "approval": "Approved at review (per task reviewed)",
    "contact": "Contact made (per task approved)",
    "support_offered": "Support offered (per contact made)",
}
# Every protected characteristic the platform holds is monitored; none is left out.
NOT_MONITORED: dict[str, str] = {}


# The models rank by need, which rises with age: selection differs by age band by design,
# so there only what officers and the service do next is alarmed.
DEFAULT_ALARM_ON: dict[Dimension, list[Measure]] = {
    "age_band": ["approval", "contact", "support_offered"],
    "ward": list(MEASURES),
    "sex": list(MEASURES),
    "ethnicity": list(MEASURES),
}


class FairnessThresholds(BaseModel):
    """When a disparity raises an alarm (policy.yaml, `fairness:`)."""

    model_config = ConfigDict(extra="forbid")

    lowest_ratio: float = Field(0.8, gt=0, le=1, description="the four-fifths rule")
    highest_ratio: float = Field(1.25, ge=1)
    smallest_group: int = Field(20, ge=1)
    alarm_on: dict[Dimension, list[Measure]] = Field(default_factory=lambda: dict(DEFAULT_ALARM_ON))


@dataclass(frozen=True)
class ResidentCell:
    """Scored residents in one age band, ward, sex and ethnic group."""

    age_band: str
    ward: str
    count: int
    sex: str = "unknown"
    ethnicity: str = "unknown"


@dataclass(frozen=True)
class TaskCell:
    """Tasks in one age band and ward that got equally far."""

    age_band: str
    ward: str
    reviewed: bool
    approved: bool
    contacted: bool
    support_offered: bool
    count: int
    sex: str = "unknown"
    ethnicity: str = "unknown"


@dataclass
class Counts:
    scored: int = 0
    tasks: int = 0
    reviewed: int = 0
    approved: int = 0
    contacted: int = 0
    support_offered: int = 0

    def add_task(self, cell: TaskCell) -> None:
        self.tasks += cell.count
        self.reviewed += cell.count * cell.reviewed
        self.approved += cell.count * cell.approved
        self.contacted += cell.count * cell.contacted
        self.support_offered += cell.count * cell.support_offered

    def rate(self, measure: Measure) -> float | None:
        top, bottom = RATE_PARTS[measure]
        denominator = getattr(self, bottom)
        return getattr(self, top) / denominator if denominator else None

    def denominator(self, measure: Measure) -> int:
        return int(getattr(self, RATE_PARTS[measure][1]))

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def fairness_report(
    residents: Iterable[ResidentCell],
    tasks: Iterable[TaskCell],
    thresholds: FairnessThresholds | None = None,
) -> dict[str, Any]:
    """The rates, disparity ratios and alarms, borough-wide and per age band, ward, sex and
    ethnic group."""
    thresholds = thresholds or FairnessThresholds()
    overall = Counts()
    groups: dict[str, dict[str, Counts]] = {d: {} for d in DIMENSIONS}
    for cell in residents:
        overall.scored += cell.count
        for dimension in DIMENSIONS:
            groups[dimension].setdefault(getattr(cell, dimension), Counts()).scored += cell.count
    for task in tasks:
        overall.add_task(task)
        for dimension in DIMENSIONS:
            groups[dimension].setdefault(getattr(task, dimension), Counts()).add_task(task)

    borough = {m: overall.rate(m) for m in MEASURES}
    alarms: list[dict[str, Any]] = []
    table: dict[str, list[dict[str, Any]]] = {}
    for dimension in DIMENSIONS:
        rows = []
        for group, counts in sorted(groups[dimension].items()):
            rates = {m: counts.rate(m) for m in MEASURES}
            ratios = {m: _ratio(rates[m], borough[m]) for m in MEASURES}
            rows.append(
                {
                    "group": group,
                    "counts": counts.as_dict(),
                    "rates": {m: _round(r) for m, r in rates.items()},
                    "ratios": {m: _round(r) for m, r in ratios.items()},
                }
            )
            for measure in thresholds.alarm_on.get(dimension, []):  # type: ignore[call-overload]
                ratio = ratios[measure]
                if ratio is None or counts.denominator(measure) < thresholds.smallest_group:
                    continue
                if ratio < thresholds.lowest_ratio or ratio > thresholds.highest_ratio:
                    alarms.append(
                        {
                            "dimension": dimension,
                            "group": group,
                            "measure": measure,
                            "rate": _round(rates[measure]),
                            "borough_rate": _round(borough[measure]),
                            "ratio": _round(ratio),
                            "direction": "below" if ratio < thresholds.lowest_ratio else "above",
                            "denominator": counts.denominator(measure),
                            "text": _alarm_text(dimension, group, measure, ratio),
                        }
                    )
        table[dimension] = rows
    return {
        "thresholds": thresholds.model_dump(),
        "borough": {
            "counts": overall.as_dict(),
            "rates": {m: _round(r) for m, r in borough.items()},
        },
        "groups": table,
        "alarms": alarms,
        "not_monitored": NOT_MONITORED,
    }


def _ratio(rate: float | None, borough: float | None) -> float | None:
    if rate is None or not borough:
        return None
    return rate / borough


def _alarm_text(dimension: str, group: str, measure: Measure, ratio: float) -> str:
    place = {
        "ward": f"ward {group}",
        "age_band": f"age band {group}",
        "sex": f"sex {group}",
        "ethnicity": f"ethnic group {group}",
    }.get(dimension, f"{dimension} {group}")
    label = MEASURE_LABELS[measure].split(" (")[0].lower()
    return f"{place}: '{label}' is {ratio:.2f} times the borough-wide rate"


def alarm_summary(alarms: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """What the ops view needs: how many alarms, and their one-line texts."""
    return {"alarms": len(alarms), "texts": [a["text"] for a in alarms]}
