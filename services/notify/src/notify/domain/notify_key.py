"""A GOV.UK Notify API key, `{key_name}-{service_id}-{secret}`, taken apart and checked.

The service id is the JWT's `iss`; the secret signs the token and is never logged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_KEY = re.compile(rf"^(?P<name>.+)-(?P<service_id>{_UUID})-(?P<secret>{_UUID})$", re.IGNORECASE)


@dataclass(frozen=True)
class NotifyKey:
    name: str
    service_id: str
    secret: str = field(repr=False)

    @property
    def full(self) -> str:
        return f"{self.name}-{self.service_id}-{self.secret}"


def parse_notify_key(key: str) -> NotifyKey:
    match = _KEY.match(key.strip())
    if match is None:
        raise ValueError(
            "PROACTIVE_NOTIFY_API_KEY is not a GOV.UK Notify API key: it should look like "
            "'{key_name}-{service_id}-{secret}', where the last two parts are UUIDs."
        )
    return NotifyKey(match["name"], match["service_id"].lower(), match["secret"].lower())
