"""Who may do what. Officers work tasks; team leads also assign them and see their team's
figures; admins also set residents' flags and run retention. Ops staff watch the pipeline
(health, throughput, rejected events, traces) and replay refused changes; they see no
tasks. `service` is a machine caller holding the service token: it may list tasks and, in
dev only, approve them as the demo's simulated officer."""

from __future__ import annotations

from typing import Final

HUMAN_ROLES: Final = ("officer", "team_lead", "admin", "ops")
SERVICE_ROLE: Final = "service"
STAFF: Final = frozenset({"officer", "team_lead", "admin"})
LEADS: Final = frozenset({"team_lead", "admin"})
OPS: Final = frozenset({"ops", "admin"})

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
    "fairness:view": LEADS,
    "fairness:alarms": LEADS | OPS | {SERVICE_ROLE},
    "residents:export": STAFF,
    "residents:flag": frozenset({"admin"}),
    "retention:run": frozenset({"admin"}),
    "ops:view": OPS,
    "ops:replay": OPS,
}


def allowed(role: str, permission: str) -> bool:
    return role in PERMISSIONS[permission]
