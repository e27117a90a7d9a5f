"""The letter reference: a short code printed on the letter, for replies and opt-outs.
Notify prints it; outreach finds the task from it when a resident opts out.

It is derived from the task id alone (never from anything about the resident), is the
same every time for the same task, and reads easily over the phone: base32 has no 0 or
1, so an O or an I cannot be taken for a digit.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid

REFERENCE_PATTERN = re.compile(r"^PS-[A-Z2-7]{8}$")
_DOMAIN_SEPARATOR = b"proactive-support/letter-reference/v1:"


def reference_for(task_id: uuid.UUID) -> str:
    digest = hashlib.sha256(_DOMAIN_SEPARATOR + task_id.bytes).digest()
    return "PS-" + base64.b32encode(digest).decode()[:8]


def is_reference(text: str) -> bool:
    return bool(REFERENCE_PATTERN.match(text))
