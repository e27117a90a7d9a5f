"""What notify does with each event, as plain functions over their collaborators.

    TaskApproved       -> ask the vault for the address, write the letter, send it (a PDF, or
                          GOV.UK Notify), record LetterSent, tell the officer
    ResidentOptedOut   -> remember it; a letter not yet sent is cancelled
    (every few seconds) -> ask Notify how each letter it has is getting on, until final
    (once a day)        -> the officers' digest, when it is switched on
    any other change   -> noted, nothing sent: a letter goes only to a task an officer approved

Each step is recorded before the next begins, and a step already recorded is skipped, so a
redelivered event (delivery is at-least-once) resumes where the last attempt stopped and
never renders, sends or notifies twice. Every event we publish is first stored in the
`delivery_events` outbox with the change it reports, and has a stable id.

Sending through Notify is once-only across crashes: the delivery row is committed before
the POST, and if a POST may have reached Notify (a crash, a timeout) we look the letter up
by its reference before ever posting it again.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, cast

import jinja2
from opentelemetry import trace

from notify.adapters.channels import LetterChannel, NotifyLetterChannel
from notify.adapters.database import (
    DELIVERY_SENDING,
    LETTER_CANCELLED,
    LETTER_FAILED,
    LETTER_PENDING,
    LETTER_RECEIVED,
    LETTER_RENDERED,
    LETTER_SUBMITTED,
    NOTICE_SENT,
    LetterRecord,
    LetterStore,
    NotifyDelivery,
    as_event,
    as_utc,
)
from notify.adapters.govuk_notify import (
    FAILED_LETTER_STATUSES,
    FINAL_LETTER_STATUSES,
    NotifyNotFound,
    NotifyRejected,
)
from notify.adapters.publisher import DeliveryPublisher
from notify.adapters.vault import ContactDirectory, ContactUnavailable
from notify.adapters.webhook import OfficerNotifier
from notify.domain.address import address_problems
from notify.domain.letter import CouncilDetails, Letter, build_letter, wording_problems
from notify.domain.notices import build_digest, letter_notice, plain_status, problem_notice
from shared.events import LetterSent, ResidentOptedOut, TaskChanged
from shared.references import reference_for

log = logging.getLogger(__name__)
_EVENT_IDS = uuid.UUID("6f1c7c1e-3a53-4f55-9d0b-6e6f74696679")
# A task's letter is version 1. A second letter for the same task (say, after one came back
# undelivered) would be version 2: a new delivery record and a new Notify reference.
LETTER_VERSION = 1
# Failures a person has to look at: the team is told at once, whatever the digest setting.
NEEDS_A_PERSON = frozenset({"address_invalid", "notify_rejected"}) | FAILED_LETTER_STATUSES
EventKind = Literal["LetterSent", "OfficerNotified", "DeliveryFailed"]


def _utc_now() -> datetime:
    return datetime.now(UTC)


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
    now: Callable[[], datetime] = _utc_now
    poll_interval_s: float = 300.0
    poll_days: int = 7
    officer_digest: bool = False


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
        letter = await _deliver(task, letter, deps)
    await publish_pending(deps, task.task_id)
    await tell_officers(letter, deps)
    span.set_attribute("notify.letter.status", letter.status)


async def _deliver(task: TaskChanged, letter: LetterRecord, deps: Collaborators) -> LetterRecord:
    if deps.store.is_opted_out(task.resident_key):
        return _cancel(letter, deps)
    try:
        contact = await deps.contacts.contact_for(task.resident_key, task.task_id)
    except ContactUnavailable as refusal:
        log.warning("no letter for task %s: %s", task.task_id, refusal.reason)
        return _fail(letter, deps, refusal.code, refusal.reason)
    content = build_letter(
        task, contact, deps.council, deps.template, letter.reference, deps.today()
    )
    problems = wording_problems(content)
    if problems:
        log.error("letter for task %s held back: wording %s", task.task_id, problems)
        return _fail(
            letter,
            deps,
            "wording_refused",
            f"the letter would have said {', '.join(problems)}",
        )
    if isinstance(deps.channel, NotifyLetterChannel):
        return await _send_through_notify(letter, content, deps.channel, deps)
    if deps.store.is_opted_out(task.resident_key):  # it may have arrived while we waited
        return _cancel(letter, deps)
    await deps.channel.send(content)
    log.info("letter %s rendered for task %s", letter.reference, task.task_id)
    return deps.store.mark_rendered(
        task.task_id, _letter_event(letter, "LetterSent", LETTER_RENDERED)
    )


async def _send_through_notify(
    letter: LetterRecord, content: Letter, channel: NotifyLetterChannel, deps: Collaborators
) -> LetterRecord:
    problems = address_problems(content.recipient_lines)
    if problems:
        log.warning("letter %s not sent: its address breaks Notify's rules", letter.reference)
        return _fail(letter, deps, "address_invalid", "; ".join(problems))
    delivery = deps.store.claim_delivery(
        letter.task_id, LETTER_VERSION, notify_reference(letter.reference, LETTER_VERSION)
    )
    if delivery.state != DELIVERY_SENDING:
        # Recorded as sent together with the letter row; only a hand-edited database gets here.
        raise RuntimeError(f"delivery for task {letter.task_id} is {delivery.state} already")
    maybe_sent = delivery.send_attempts > 0
    if not maybe_sent and deps.store.is_opted_out(letter.resident_key):
        return _cancel(letter, deps)
    assert delivery.id is not None
    deps.store.note_send_attempt(delivery.id)
    try:
        answer = await channel.submit(content, delivery.notify_reference, maybe_sent=maybe_sent)
    except NotifyRejected as refusal:
        detail = _without(f"{refusal.error}: {refusal.message}", content.recipient_lines)
        log.warning("Notify refused letter %s: %s", letter.reference, detail)
        deps.store.record_status(
            delivery.id,
            notify_status="rejected",
            final=True,
            next_check_at=None,
            letter_changes={
                "status": LETTER_FAILED,
                "failure_reason": f"notify_rejected: {detail}"[:500],
            },
            events=[_letter_event(letter, "DeliveryFailed", "notify_rejected")],
        )
        return _current(letter, deps)
    log.info("letter %s handed to GOV.UK Notify", letter.reference)
    return deps.store.record_submission(
        delivery.id,
        notification_id=str(answer["id"]),
        notify_status=answer.get("status"),
        next_check_at=deps.now(),
    )


def notify_reference(reference: str, letter_version: int) -> str:
    """Notify's `reference` for a letter: our printed reference, never anything personal."""
    return reference if letter_version == 1 else f"{reference}-{letter_version}"


async def poll_letter_statuses(deps: Collaborators) -> int:
    """Ask Notify about every letter whose check is due; returns how many were asked about."""
    if not isinstance(deps.channel, NotifyLetterChannel):
        return 0
    due = deps.store.deliveries_due(deps.now())
    for delivery in due:
        await _check_status(delivery, deps.channel, deps)
    await publish_pending(deps)
    return len(due)


async def _check_status(
    delivery: NotifyDelivery, channel: NotifyLetterChannel, deps: Collaborators
) -> None:
    assert delivery.id is not None and delivery.notification_id is not None
    letter = deps.store.letter_for_task(delivery.task_id)
    if letter is None:
        raise RuntimeError(f"delivery {delivery.id} has no letter")
    try:
        answer = await channel.api.notification(delivery.notification_id)
        status = str(answer.get("status", "unknown"))
    except (NotifyNotFound, NotifyRejected) as error:
        # Past Notify's retention, or an id it does not know: there is nothing more to learn.
        log.warning("letter %s: Notify has no status for it (%s)", letter.reference, error)
        status = "unknown"
        final_unknown = True
    else:
        final_unknown = False
    now = deps.now()
    submitted = as_utc(delivery.submitted_at) or now
    final = status in FINAL_LETTER_STATUSES or final_unknown
    gave_up = not final and now - submitted > timedelta(days=deps.poll_days)
    events: list[LetterSent] = []
    changes: dict[str, object] = {}
    if status != delivery.notify_status or delivery.checked_at is None:
        if status in ("accepted", "received"):
            events.append(_letter_event(letter, "LetterSent", status))
        elif status in FAILED_LETTER_STATUSES or status == "cancelled":
            events.append(_letter_event(letter, "DeliveryFailed", status))
            changes = {
                "status": LETTER_CANCELLED if status == "cancelled" else LETTER_FAILED,
                "failure_reason": f"{status}: {plain_status(status)}",
            }
        if status == "received":
            changes = {"status": LETTER_RECEIVED}
    if gave_up:
        log.warning(
            "letter %s: still '%s' after %d days; no longer asking",
            letter.reference,
            status,
            deps.poll_days,
        )
    deps.store.record_status(
        delivery.id,
        notify_status=status,
        final=final or gave_up,
        next_check_at=None if final or gave_up else now + timedelta(seconds=deps.poll_interval_s),
        letter_changes=changes,
        events=events,
    )
    if changes:
        await publish_pending(deps, letter.task_id)
        await tell_officers(_current(letter, deps), deps)


async def handle_optout(event: ResidentOptedOut, deps: Collaborators) -> None:
    """A resident said no: every letter of theirs that has not left yet is cancelled."""
    deps.store.record_optout(event.resident_key, event.event_id, event.scope, event.occurred_at)
    for letter in deps.store.pending_letters_for(event.resident_key):
        delivery = deps.store.delivery_for_task(letter.task_id, LETTER_VERSION)
        if delivery is not None and delivery.send_attempts > 0:
            # Notify may have it already, and its API cannot cancel a letter: the sending
            # handler finds out and records what happened.
            log.warning("opt-out for letter %s came as it was being sent", letter.reference)
            continue
        _cancel(letter, deps)
        await publish_pending(deps, letter.task_id)


def _cancel(letter: LetterRecord, deps: Collaborators) -> LetterRecord:
    log.info("letter %s cancelled: the resident opted out", letter.reference)
    return deps.store.mark_cancelled(
        letter.task_id,
        "opted_out: the resident asked not to be contacted",
        _letter_event(letter, "DeliveryFailed", LETTER_CANCELLED),
    )


def _fail(letter: LetterRecord, deps: Collaborators, code: str, reason: str) -> LetterRecord:
    return deps.store.mark_failed(
        letter.task_id, f"{code}: {reason}", _letter_event(letter, "DeliveryFailed", code)
    )


def _current(letter: LetterRecord, deps: Collaborators) -> LetterRecord:
    return deps.store.letter_for_task(letter.task_id) or letter


def _without(text: str, personal: tuple[str, ...]) -> str:
    """An error message with anything from the address taken out, before it is stored."""
    for value in sorted(personal, key=len, reverse=True):
        if value.strip():
            text = text.replace(value, "[address]")
    return text


async def publish_pending(deps: Collaborators, task_id: uuid.UUID | None = None) -> None:
    """Publish what the outbox holds, oldest first, marking each once the broker has it."""
    for row in deps.store.unpublished_events(task_id):
        await deps.publisher.publish(as_event(row))
        deps.store.mark_event_published(row.event_id)


async def tell_officers(letter: LetterRecord, deps: Collaborators) -> None:
    officers = deps.officers
    if officers is None:
        return
    code = (letter.failure_reason or "").split(":", 1)[0]
    if letter.status in (LETTER_RENDERED, LETTER_SUBMITTED, LETTER_RECEIVED):
        if deps.officer_digest or deps.store.officer_notice(letter.task_id, "letter"):
            return
        notice = letter_notice(
            task_id=letter.task_id,
            team=letter.team,
            due_by=letter.due_by,
            reference=letter.reference,
            letter_status=letter.status,
            task_link=_task_link(letter, deps),
            letter_url=f"{deps.notify_url.rstrip('/')}/v1/letters/{letter.reference}.pdf"
            if letter.channel == "pdf"
            else None,
        )
        await _send_notice(letter, "letter", notice, officers, deps)
    elif letter.status == LETTER_FAILED and code in NEEDS_A_PERSON:
        if deps.store.officer_notice(letter.task_id, "problem"):
            return
        detail = (letter.failure_reason or "").split(":", 1)[-1].strip()
        notice = problem_notice(
            task_id=letter.task_id,
            team=letter.team,
            reference=letter.reference,
            problem=code,
            detail=detail[:1].upper() + detail[1:] + ("." if detail else ""),
            task_link=_task_link(letter, deps),
        )
        await _send_notice(letter, "problem", notice, officers, deps)


async def _send_notice(
    letter: LetterRecord,
    kind: str,
    notice: dict[str, Any],
    officers: OfficerNotifier,
    deps: Collaborators,
) -> None:
    outcome = await officers.notify(notice)
    event_kind: EventKind = "OfficerNotified" if outcome == NOTICE_SENT else "DeliveryFailed"
    status = outcome if kind == "letter" or outcome != NOTICE_SENT else "problem_flagged"
    suffix = "" if kind == "letter" else f"/{kind}"
    deps.store.record_officer_notice(
        letter.task_id,
        kind,
        officers.channel,
        outcome,
        _event(
            letter.task_id,
            letter.resident_key,
            event_kind,
            officers.channel,
            status,
            letter.reference,
            id_suffix=suffix,
        ),
    )
    await publish_pending(deps, letter.task_id)


def _task_link(letter: LetterRecord, deps: Collaborators) -> str:
    return f"{deps.outreach_url.rstrip('/')}/tasks/{letter.task_id}"


async def send_daily_digest(deps: Collaborators, day: date) -> bool:
    """Send the digest of `day` unless it went already; True when it was sent now."""
    if deps.officers is None or deps.store.digest_sent(day):
        return False
    digest = build_digest(
        day, deps.store.digest_rows(day), f"{deps.outreach_url.rstrip('/')}/tasks"
    )
    outcome = await deps.officers.notify(digest)
    deps.store.record_digest(day, outcome)
    log.info("officer digest for %s: %s", day, outcome)
    return True


def _letter_event(letter: LetterRecord, kind: EventKind, status: str) -> LetterSent:
    # A PDF letter or a failure before sending has one event of each kind; Notify reports
    # several statuses, each its own event.
    notify_status = letter.channel == "govuk_notify" and status in (
        FINAL_LETTER_STATUSES | {"accepted"}
    )
    return _event(
        letter.task_id,
        letter.resident_key,
        kind,
        letter.channel,
        status,
        letter.reference,
        id_suffix=f"/{status}" if notify_status else "",
    )


def _event(
    task_id: uuid.UUID,
    resident_key: str,
    kind: EventKind,
    channel: str,
    status: str,
    reference: str,
    *,
    id_suffix: str = "",
) -> LetterSent:
    return LetterSent(
        # The same id on a re-publish, so consumers that dedupe on event_id see one event.
        event_id=uuid.uuid5(_EVENT_IDS, f"{task_id}/{kind}/{channel}{id_suffix}"),
        event_type=kind,
        occurred_at=datetime.now(UTC),
        resident_key=resident_key,
        source="notify",
        task_id=task_id,
        channel=cast(Literal["pdf", "govuk_notify", "webhook"], channel),
        status=status,
        reference=reference,
    )


HANDLERS: dict[str, Callable[[TaskChanged, Collaborators], Awaitable[None]]] = {
    "TaskApproved": send_letter,
}
