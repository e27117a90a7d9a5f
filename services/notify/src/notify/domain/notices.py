"""What officers are told, and the daily digest: enough to act on, nothing that identifies anyone.

A notice is a JSON object that a Microsoft Teams or Slack incoming webhook shows as it is:
a `text` (and `summary`) in plain English, plus structured fields for anything that reads
them. The same fields fill in a GOV.UK Notify email template. No name, address or
postcode ever appears: only the task, the team, our reference and links.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import date
from typing import Any, Protocol
from uuid import UUID

_PLAIN_STATUS = {
    "rendered": "ready to print",
    "submitted": "sent to GOV.UK Notify",
    "accepted": "accepted for printing by GOV.UK Notify",
    "received": "printed and posted",
    "cancelled": "cancelled",
    "address_invalid": "not sent: the address cannot be posted to",
    "technical-failure": "not sent: GOV.UK Notify had a technical failure",
    "permanent-failure": "not sent: the printer could not print it",
    "validation-failed": "not sent: GOV.UK Notify found a layout or address problem",
    "virus-scan-failed": "not sent: GOV.UK Notify's virus scan failed",
}


def plain_status(status: str) -> str:
    return _PLAIN_STATUS.get(status, status.replace("_", " ").replace("-", " "))


def letter_notice(
    *,
    task_id: UUID,
    team: str,
    due_by: date | None,
    reference: str,
    letter_status: str,
    task_link: str,
    letter_url: str | None,
) -> dict[str, Any]:
    """A letter is on its way: the team should call or visit by the due date."""
    by = f" by {due_by:%-d %B %Y}" if due_by else ""
    text = (
        f"Letter {reference} is {plain_status(letter_status)}. "
        f"Please call or visit{by}. Task: {task_link}"
    )
    return {
        "event_type": "OfficerNotified",
        "kind": "letter",
        "summary": f"Letter {reference}: {plain_status(letter_status)}",
        "text": text,
        "task_id": str(task_id),
        "team": team,
        "due_by": due_by.isoformat() if due_by else None,
        "reference": reference,
        "letter_status": letter_status,
        "link": task_link,
        "letter_url": letter_url,
    }


def problem_notice(
    *, task_id: UUID, team: str, reference: str, problem: str, detail: str, task_link: str
) -> dict[str, Any]:
    """A letter could not go: a person has to look, so the team hears at once."""
    why = plain_status(problem).removeprefix("not sent: ")
    text = (
        f"Letter {reference} was not sent: {why}. {detail} "
        f"Please check the resident's details and get in touch another way. Task: {task_link}"
    )
    return {
        "event_type": "OfficerNotified",
        "kind": "problem",
        "summary": f"Letter {reference} needs attention",
        "text": " ".join(text.split()),
        "task_id": str(task_id),
        "team": team,
        "reference": reference,
        "problem": problem,
        "detail": detail,
        "link": task_link,
    }


class DigestEntry(Protocol):
    @property
    def reference(self) -> str: ...
    @property
    def team(self) -> str: ...
    @property
    def event_type(self) -> str: ...
    @property
    def status(self) -> str: ...


def build_digest(day: date, rows: Iterable[DigestEntry], tasks_url: str) -> dict[str, Any]:
    """One day's letters for the team in one message: how many went, and which need a person."""
    rows = list(rows)
    # A letter can report several steps in a day (submitted, accepted, received): count each
    # letter once, by the last thing we heard about it.
    latest: dict[str, DigestEntry] = {}
    for row in rows:
        latest[row.reference] = row
    sent = [row for row in latest.values() if row.event_type == "LetterSent"]
    problems = [row for row in latest.values() if row.event_type == "DeliveryFailed"]
    by_team = Counter(row.team for row in sent)
    by_status = Counter(row.status for row in latest.values())

    when = f"{day:%A} {day.day} {day:%B %Y}"
    lines = [f"Proactive Support letters on {when}: {len(sent)} sent, {len(problems)} not sent."]
    lines += [f"- {team}: {count} sent" for team, count in sorted(by_team.items())]
    if problems:
        lines.append("Need a person to look:")
        lines += [f"- {row.reference}: {plain_status(row.status)}" for row in problems]
    lines.append(f"Tasks: {tasks_url}")
    return {
        "event_type": "OfficerDigest",
        "kind": "digest",
        "summary": f"Letters on {when}: {len(sent)} sent, {len(problems)} not sent",
        "text": "\n".join(lines),
        "day": day.isoformat(),
        "letters_sent": len(sent),
        "letters_not_sent": len(problems),
        "by_team": dict(sorted(by_team.items())),
        "by_status": dict(sorted(by_status.items())),
        "needs_attention": [
            {"reference": row.reference, "team": row.team, "status": row.status} for row in problems
        ],
        "link": tasks_url,
    }
