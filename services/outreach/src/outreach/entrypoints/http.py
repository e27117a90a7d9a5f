"""Health, readiness and counts: unauthenticated, and free of anything about residents."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from sqlalchemy import func
from sqlmodel import Session, col, select

from outreach.adapters.store import AuditEntry, DeadLetter, Task
from shared.outbox import OutboxEntry

router = APIRouter(tags=["operations"])


@router.get("/stats")
def stats(request: Request) -> dict[str, int]:
    """Exact counts from the database; the demo polls these to know when outreach is idle."""
    with Session(request.app.state.engine) as session:

        def count(*where: Any) -> int:
            return int(session.exec(select(func.count()).select_from(Task).where(*where)).one())

        return {
            "scores_seen": request.app.state.counters["scores_seen"],
            "tasks_created": count(),
            "tasks_held": count(Task.status == "held_for_capacity"),
            "tasks_proposed": count(Task.status == "proposed"),
            "tasks_approved": count(col(Task.approved_by).is_not(None)),
            "letters_sent": count(col(Task.letter_sent_at).is_not(None)),
            "tasks_rejected": count(Task.status == "rejected"),
            "audit_entries": int(session.exec(select(func.count()).select_from(AuditEntry)).one()),
            "dead_letters": int(session.exec(select(func.count()).select_from(DeadLetter)).one()),
            "outbox_pending": int(
                session.exec(
                    select(func.count()).where(col(OutboxEntry.published_at).is_(None))
                ).one()
            ),
        }
