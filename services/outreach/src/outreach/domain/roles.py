"""Who may do what. Officers work tasks; team leads also assign them and see their team's
figures; admins also set residents' flags and run retention. `service` is a machine
caller holding the service token: it may list tasks and, in dev only, approve them as the
demo's simulated officer."""

from __future__ import annotations

from typing import Final

HUMAN_ROLES: Final = ("officer", "team_lead", "admin")
SERVICE_ROLE: Final = "service"
STAFF: Final = frozenset(HUMAN_ROLES)
LEADS: Final = frozenset({"team_lead", "admin"})

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "tasks:list": STAFF | {SERVICE_ROLE},
    "tasks:view": STAFF,
    "tasks:approve": STAFF | {SERVICE_ROLE},
    "tasks:reject": STAFF,
    "tasks:contact": STAFF,
    "tasks:outcome": STAFF,
    "tasks:close": STAFF,
    "tasks:note": STAFF,
    "tasks:assign": LEADS,
    "team:summary": LEADS,
    "residents:export": STAFF,
    "residents:flag": frozenset({"admin"}),
    "retention:run": frozenset({"admin"}),
}


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]
