"""GOV.UK Notify's rules for a postal address, checked before a letter is sent.

Notify refuses a letter whose address has fewer than 3 or more than 7 lines, whose first
two lines have no letter or digit, whose last line is not a real UK postcode, or with a
line starting with a character its printer cannot take. Checking first means a bad
address reaches an officer as a clear problem instead of a failed letter days later.

The problems are described without quoting the address: they are stored and shown to
staff, and the address itself is personal data.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

MIN_LINES = 3
MAX_LINES = 7
# Notify's list, plus "~", and the curly quote that its documentation prints for '"'.
FORBIDDEN_FIRST_CHARACTERS = frozenset('@()=[]"\u201d\\/,<>~')
_UK_POSTCODE = re.compile(
    r"^(GIR ?0AA|[A-PR-UWYZ]([0-9]{1,2}|[A-HK-Y][0-9]([0-9ABEHMNPRV-Y])?|[0-9][A-HJKPS-UW])"
    r" ?[0-9][ABD-HJLNP-UW-Z]{2})$",
    re.IGNORECASE,
)


def is_uk_postcode(text: str) -> bool:
    return bool(_UK_POSTCODE.match(" ".join(text.split())))


def address_problems(lines: Sequence[str]) -> list[str]:
    """What stops Notify accepting this address, in plain English; empty when it is fine."""
    lines = [line.strip() for line in lines]
    problems: list[str] = []
    if any(not line for line in lines):
        problems.append("the address has an empty line")
    lines = [line for line in lines if line]
    if len(lines) < MIN_LINES:
        problems.append(f"the address has {len(lines)} lines, and a letter needs at least 3")
    if len(lines) > MAX_LINES:
        problems.append(f"the address has {len(lines)} lines, and a letter can have at most 7")
    for number, line in enumerate(lines[:2], start=1):
        if not any(character.isalnum() for character in line):
            problems.append(f"line {number} has no letters or numbers")
    for number, line in enumerate(lines, start=1):
        if line[0] in FORBIDDEN_FIRST_CHARACTERS:
            problems.append(f"line {number} starts with a character the printer cannot take")
    if lines and not is_uk_postcode(lines[-1]):
        problems.append("the last line is not a UK postcode")
    return problems
