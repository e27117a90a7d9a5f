"""A task's lifecycle: which moves are allowed, and how each status reads to people.

    held_for_capacity → proposed → approved → letter_sent → contacted
    proposed → rejected (with a reason)
    letter_sent | contacted → support_offered | declined | no_response → closed
    any open status → closed (with a reason, e.g. the resident opted out)

`approved` is reached only through an officer's review, and `letter_sent` only when notify
reports the letter: no letter is ever sent for a task nobody reviewed.
"""

from __future__ import annotations

from typing import Final

OUTCOMES: Final = ("support_offered", "declined", "no_response")

TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "held_for_capacity": frozenset({"proposed", "closed"}),
    "proposed": frozenset({"approved", "rejected", "closed"}),
    "approved": frozenset({"letter_sent", "closed"}),
    # No reply to the letter is an outcome too, so it can follow the letter directly.
    "letter_sent": frozenset({"contacted", "no_response", "closed"}),
    "contacted": frozenset({*OUTCOMES, "closed"}),
    "support_offered": frozenset({"closed"}),
    "declined": frozenset({"closed"}),
    "no_response": frozenset({"closed"}),
    "rejected": frozenset(),
    "closed": frozenset(),
}

LABELS: Final[dict[str, str]] = {
    "held_for_capacity": "Waiting for team capacity",
    "proposed": "Waiting for review",
    "approved": "Approved, letter being prepared",
    "letter_sent": "Letter sent",
    "contacted": "Contacted",
    "support_offered": "Support offered",
    "declined": "Declined",
    "no_response": "No response",
    "rejected": "Rejected",
    "closed": "Closed",
}


class TransitionNotAllowed(ValueError):
    pass


def check_move(current: str, wanted: str) -> None:
    if wanted not in TRANSITIONS.get(current, frozenset()):
        raise TransitionNotAllowed(
            f"A task that is '{LABELS.get(current, current)}' cannot become "
            f"'{LABELS.get(wanted, wanted)}'."
        )
