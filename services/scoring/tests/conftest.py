"""Builders for resident events as ingest writes them, shared by the scoring tests."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from types import ModuleType
from typing import Any

import pytest

from shared.events import ResidentEventRecorded

RESIDENT = "r_" + "a" * 32
START = datetime(2025, 6, 1, 9, 0, tzinfo=UTC)


def resident_event(
    table: str,
    record_key: str,
    attributes: dict[str, Any],
    *,
    at: datetime | int = 0,
    resident_key: str = RESIDENT,
    change: str = "upsert",
    event_id: uuid.UUID | None = None,
) -> ResidentEventRecorded:
    """`at` is a datetime, or whole days after START."""
    occurred = at if isinstance(at, datetime) else START + timedelta(days=at)
    return ResidentEventRecorded(
        event_id=event_id or uuid.uuid4(),
        occurred_at=occurred,
        resident_key=resident_key,
        source="test",
        table=table,
        record_key=record_key,
        change=change,  # type: ignore[arg-type]
        attributes=attributes,
        age_band="85+",
        ward="Heath",
    )


def person(age: int = 86, *, lives_alone: bool = True, deceased: bool = False) -> dict[str, Any]:
    return {
        "age_years": age,
        "sex": "female",
        "ethnicity": "white",
        "preferred_language": "en",
        "lives_alone": lives_alone,
        "deceased": deceased,
        "ward": "Heath",
    }


def fall_contact(day: str) -> dict[str, Any]:
    return {"contact_id": "SC1", "contact_date": day, "reason": "fall", "outcome": "assessment"}


def high_risk_history(resident_key: str = RESIDENT) -> list[ResidentEventRecorded]:
    """An 88-year-old living alone, with falls, a fall admission and home care."""
    events = [resident_event("people.residents", "P1", person(88), at=0, resident_key=resident_key)]
    for n, day in enumerate(("2025-06-02", "2025-06-05", "2025-06-08")):
        events.append(
            resident_event(
                "social_care.contacts",
                f"SC{n}",
                {**fall_contact(day), "contact_id": f"SC{n}"},
                at=n + 1,
                resident_key=resident_key,
            )
        )
        events.append(
            resident_event(
                "health.ambulance_callouts",
                f"AMB{n}",
                {
                    "incident_id": f"AMB{n}",
                    "incident_at": f"{day}T10:00:00+00:00",
                    "category": "fall_conveyed",
                },
                at=n + 1,
                resident_key=resident_key,
            )
        )
    events.append(
        resident_event(
            "health.hospital_discharges",
            "HS1",
            {
                "spell_id": "HS1",
                "admitted_on": "2025-06-08",
                "discharged_on": "2025-06-12",
                "reason": "fall_injury",
                "destination": "usual_residence",
            },
            at=11,
            resident_key=resident_key,
        )
    )
    return events


@pytest.fixture
def build() -> ModuleType:
    """These builders, as a fixture: with --import-mode=importlib tests cannot import conftest."""
    return sys.modules[__name__]
