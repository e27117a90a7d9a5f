"""What notify does with each event, as plain functions over their collaborators.

    TaskApproved      -> ask the vault for the address, render the letter, publish LetterSent,
                         then tell the officer (webhook) and publish OfficerNotified
    any other change  -> noted, nothing sent: a letter goes only to a task an officer approved

Each step is recorded before the next begins, and a step already recorded is skipped, so a
redelivered event (delivery is at-least-once) resumes where the last attempt stopped and
never renders, sends or notifies twice. Events carry stable ids for the same reason.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import jinja2
from opentelemetry import trace

from notify.adapters.channels import LetterChannel
from notify.adapters.database import (
    LETTER_FAILED,
    LETTER_PENDING,
    NOTICE_SENT,
    LetterRecord,
    LetterStore,
)
from notify.adapters.publisher import DeliveryPublisher
from notify.adapters.vault import ContactDirectory, ContactUnavailable
from notify.adapters.webhook import OfficerNotifier
from notify.domain.letter import CouncilDetails, build_letter, wording_problems
from shared.events import LetterSent, TaskChanged
from shared.references import reference_for

log = logging.getLogger(__name__)
_EVENT_IDS = uuid.UUID("6f1c7c1e-3a53-4f55-9d0b-6e6f74696679")


@dataclass
class Collaborators:
    store: LetterStore
    contacts: ContactDirectory
    channel: LetterChannel
    publisher: DeliveryPublisher
    council: CouncilDetails
    template: jinja2.Template
    officers: OfficerNotifier | None = None
    outreach_url: str = "http://127.0.0.1:8003"
    notify_url: str = "http://127.0.0.1:8004"
    today: Callable[[], date] = field(default=lambda: datetime.now(UTC).date())


async def handle_task_changed(event: TaskChanged, deps: Collaborators) -> None:
    deps.store.record_task_event(event.event_id, event.task_id, event.event_type)
    handler = HANDLERS.get(event.event_type)
    if handler is not None:
        await handler(event, deps)


async def send_letter(task: TaskChanged, deps: Collaborators) -> None:
    span = trace.get_current_span()
    reference = reference_for(task.task_id)
    span.set_attributes({"notify.task_id": str(task.task_id), "notify.letter.reference": reference})
    letter = deps.store.claim_letter(
        task_id=task.task_id,
        reference=reference,
        resident_key=task.resident_key,
        team=task.team,
        due_by=task.due_by,
        channel=deps.channel.name,
    )
    if letter.status == LETTER_PENDING:
        letter = await _write_letter(task, letter, deps)
    if letter.published_at is None:
        await deps.publisher.publish(_delivery_event(task, letter))
        letter = deps.store.mark_published(task.task_id)
    if letter.status != LETTER_FAILED and deps.officers is not None:
        await _notify_officer(task, letter, deps.officers, deps)
    span.set_attribute("notify.letter.status", letter.status)


async def _write_letter(
    task: TaskChanged, letter: LetterRecord, deps: Collaborators
) -> LetterRecord:
    try:
        contact = await deps.contacts.contact_for(task.resident_key, task.task_id)
    except ContactUnavailable as refusal:
        log.warning("no letter for task %s: %s", task.task_id, refusal.reason)
        return deps.store.mark_failed(task.task_id, f"{refusal.code}: {refusal.reason}")
    content = build_letter(
        task, contact, deps.council, deps.template, letter.reference, deps.today()
    )
    problems = wording_problems(content)
    if problems:
        log.error("letter for task %s held back: wording %s", task.task_id, problems)
        return deps.store.mark_failed(
            task.task_id, f"wording_refused: the letter would have said {', '.join(problems)}"
        )
    await deps.channel.send(content)
    log.info("letter %s rendered for task %s", letter.reference, task.task_id)
    return deps.store.mark_rendered(task.task_id)


async def _notify_officer(
    task: TaskChanged, letter: LetterRecord, officers: OfficerNotifier, deps: Collaborators
) -> None:
    if letter.officer_notified_at is None:
        outcome = await officers.notify(officer_notice(task, letter, deps))
        letter = deps.store.mark_officer_notified(task.task_id, outcome)
    if letter.officer_notice_published_at is None:
        kind: Literal["OfficerNotified", "DeliveryFailed"] = (
            "OfficerNotified" if letter.officer_notice == NOTICE_SENT else "DeliveryFailed"
        )
        await deps.publisher.publish(
            _event(task, kind, "webhook", letter.officer_notice or "unknown", letter.reference)
        )
        deps.store.mark_officer_notice_published(task.task_id)


def officer_notice(task: TaskChanged, letter: LetterRecord, deps: Collaborators) -> dict[str, Any]:
    """What the team is told: enough to act on, nothing that identifies the resident."""
    return {
        "event_type": "OfficerNotified",
        "task_id": str(task.task_id),
        "team": task.team,
        "due_by": task.due_by.isoformat() if task.due_by else None,
        "reference": letter.reference,
        "letter_status": letter.status,
        "link": f"{deps.outreach_url.rstrip('/')}/tasks/{task.task_id}",
        "letter_url": f"{deps.notify_url.rstrip('/')}/v1/letters/{letter.reference}.pdf",
    }


def _delivery_event(task: TaskChanged, letter: LetterRecord) -> LetterSent:
    if letter.status == LETTER_FAILED:
        code = (letter.failure_reason or "failed").split(":", 1)[0]
        return _event(task, "DeliveryFailed", letter.channel, code, letter.reference)
    return _event(task, "LetterSent", letter.channel, letter.status, letter.reference)


def _event(
    task: TaskChanged,
    kind: Literal["LetterSent", "OfficerNotified", "DeliveryFailed"],
    channel: str,
    status: str,
    reference: str,
) -> LetterSent:
    return LetterSent(
        # The same id on a re-publish, so consumers that dedupe on event_id see one event.
        event_id=uuid.uuid5(_EVENT_IDS, f"{task.task_id}/{kind}/{channel}"),
        event_type=kind,
        occurred_at=datetime.now(UTC),
        resident_key=task.resident_key,
        source="notify",
        task_id=task.task_id,
        channel=channel,
        status=status,
        reference=reference,
    )


HANDLERS: dict[str, Callable[[TaskChanged, Collaborators], Awaitable[None]]] = {
    "TaskApproved": send_letter,
}
