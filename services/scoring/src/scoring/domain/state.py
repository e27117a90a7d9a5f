"""Each resident's current picture, folded from their pseudonymised source changes.

The state keeps the latest version of every source row seen for the resident, keyed by
table and record key. Versions are ordered by `occurred_at` (then `event_id`, only so that
ties break the same way everywhere), so a late or redelivered event can never overwrite a
newer one, and a delete leaves a tombstone that an older upsert cannot resurrect. Event
ids recently applied are remembered so that a redelivery is counted as a duplicate.

The same fold runs in the worker and in training, which is what makes the features the
models were trained on the features they are served.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic_core

from shared.events import ResidentEventRecorded, Scalar

# Enough to catch redelivery of a recent batch; older duplicates are still refused by
# the version check, they are then counted as stale rather than as duplicates.
SEEN_LIMIT = 64
# Recent event ids are remembered by their first 16 hex digits (60 random bits of a
# UUID4): a false match among 64 ids is about 1 in 10^15, and it keeps a busy resident's
# state near a kilobyte instead of several.
SEEN_ID_CHARS = 16
STATE_FORMAT = 2


@dataclass(frozen=True)
class Change:
    """One change to one source row for one resident, in the form the fold needs."""

    event_id: str
    occurred_at: float  # seconds since the epoch, UTC
    table: str
    record_key: str
    deleted: bool
    attributes: Mapping[str, Scalar]

    @classmethod
    def from_event(cls, event: ResidentEventRecorded) -> Change:
        return cls(
            event_id=str(event.event_id),
            occurred_at=event.occurred_at.timestamp(),
            table=event.table,
            record_key=event.record_key,
            deleted=event.change == "delete",
            attributes=event.attributes,
        )


class Outcome(enum.Enum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # this very event was applied before
    STALE = "stale"  # a newer version of the same row is already held


@dataclass
class Row:
    occurred_at: float
    event_id: str
    deleted: bool
    attributes: dict[str, Scalar]


@dataclass
class ResidentState:
    rows: dict[str, Row] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    latest: float = 0.0
    # The hash of the features whose scores were last published, so that an event that
    # changes nothing a model reads costs no model call and no score. It is written only
    # after the scores are out: after a crash, a redelivered event finds it behind the
    # features and scores them again, instead of believing they were sent.
    feature_hash: str | None = None
    # The last score emitted per model: (probability, band), for hysteresis.
    scores: dict[str, tuple[float, str]] = field(default_factory=dict)
    # The source-system flags last published on `resident.flags.v1` (deceased, open case).
    flags: list[str] = field(default_factory=list)
    # Live rows by table, built on first use after a change: the features ask for one
    # table at a time, a dozen times per event (not stored, not compared).
    _live_by_table: dict[str, list[dict[str, Scalar]]] | None = field(
        default=None, init=False, repr=False, compare=False
    )

    def apply(self, change: Change) -> Outcome:
        seen_id = change.event_id[:SEEN_ID_CHARS]
        if seen_id in self.seen:
            return Outcome.DUPLICATE
        self._remember(seen_id)
        slot = row_slot(change.table, change.record_key)
        held = self.rows.get(slot)
        if held is not None and (held.occurred_at, held.event_id) >= (
            change.occurred_at,
            change.event_id,
        ):
            return Outcome.STALE
        self.rows[slot] = Row(
            change.occurred_at, change.event_id, change.deleted, dict(change.attributes)
        )
        self._live_by_table = None
        self.latest = max(self.latest, change.occurred_at)
        return Outcome.APPLIED

    def _remember(self, event_id: str) -> None:
        self.seen.append(event_id)
        if len(self.seen) > SEEN_LIMIT:
            del self.seen[: len(self.seen) - SEEN_LIMIT]

    def live_rows(self, table: str) -> list[dict[str, Scalar]]:
        """The current attributes of every row of `table` that has not been deleted, in
        the order the rows were first seen."""
        if self._live_by_table is None:
            index: dict[str, list[dict[str, Scalar]]] = {}
            for slot, row in self.rows.items():
                if not row.deleted:
                    index.setdefault(slot.partition("/")[0], []).append(row.attributes)
            self._live_by_table = index
        return self._live_by_table.get(table, [])

    def to_json(self) -> dict[str, Any]:
        return {
            "v": STATE_FORMAT,
            "rows": {
                slot: [row.occurred_at, row.event_id, row.deleted, row.attributes]
                for slot, row in self.rows.items()
            },
            "seen": self.seen,
            "latest": self.latest,
            "feature_hash": self.feature_hash,
            "scores": {model: list(score) for model, score in self.scores.items()},
            "flags": self.flags,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ResidentState:
        return cls(
            rows={slot: Row(r[0], r[1], r[2], r[3]) for slot, r in data["rows"].items()},
            seen=[event_id[:SEEN_ID_CHARS] for event_id in data["seen"][-SEEN_LIMIT:]],
            latest=float(data["latest"]),
            feature_hash=data.get("feature_hash"),
            scores={model: (float(s[0]), str(s[1])) for model, s in data.get("scores", {}).items()},
            flags=list(data.get("flags", [])),
        )


def stored_form(data: Mapping[str, Any]) -> bytes:
    """A state (`ResidentState.to_json()`, or the opted-out marker) as the table holds it:
    JSON bytes, written by pydantic-core (several times faster than the json module, and
    the table then needs no codec of its own)."""
    return pydantic_core.to_json(data)


def read_stored(value: bytes | Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """A table value as a mapping: JSON bytes in the worker's table (including values the
    json codec wrote before the table held raw bytes), or a mapping already (tests)."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        decoded = pydantic_core.from_json(bytes(value))
        return decoded if isinstance(decoded, dict) else None
    return value


def row_slot(table: str, record_key: str) -> str:
    return f"{table}/{record_key}"


def fold(changes: list[Change]) -> ResidentState:
    """A resident's state after all of `changes`, in whatever order they came."""
    state = ResidentState()
    for change in changes:
        state.apply(change)
    return state
