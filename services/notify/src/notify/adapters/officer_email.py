"""Tells the approving team about a letter by a GOV.UK Notify email to the team's mailbox.

The email template's placeholders are filled from the notice's fields (`text`, `summary`,
`reference`, `team`, `due_by`, `link`, ...); Notify ignores those a template does not use.
No personal data is in a notice, so none is in the email.
"""

from __future__ import annotations

from typing import Any

from notify.adapters.govuk_notify import GovukNotify, NotifyRejected
from notify.adapters.webhook import NoticeChannel


class NotifyEmailOfficerNotifier:
    channel: NoticeChannel = "govuk_notify"

    def __init__(self, api: GovukNotify, template_id: str, email_address: str) -> None:
        self._api = api
        self._template_id = template_id
        self._email_address = email_address

    async def aclose(self) -> None:
        return None

    async def notify(self, notice: dict[str, Any]) -> str:
        reference = str(notice.get("reference") or f"digest-{notice.get('day', '')}")
        try:
            await self._api.send_email(
                self._email_address, self._template_id, email_fields(notice), reference
            )
        except NotifyRejected as refusal:
            return f"refused ({refusal.status} {refusal.error}: {refusal.message})"
        return "sent"


def email_fields(notice: dict[str, Any]) -> dict[str, Any]:
    """Notify personalisation takes strings and lists of strings: flatten the rest."""
    fields: dict[str, Any] = {}
    for name, value in notice.items():
        if value is None:
            fields[name] = ""
        elif isinstance(value, str | int | float):
            fields[name] = str(value)
        elif isinstance(value, list) and all(isinstance(item, str) for item in value):
            fields[name] = value
        elif isinstance(value, dict):
            fields[name] = [f"{key}: {item}" for key, item in value.items()]
        else:
            fields[name] = str(value)
    return fields
