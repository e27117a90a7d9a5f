"""Who may see a resident's name and address: only a trusted service, only for a task an
officer approved. Pure rules; the audit log is written by the caller either way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class VaultDecision:
    granted: bool
    status_code: int
    reason: str


def decide_vault_access(
    *, token_valid: bool, task_id: str | None, approved_task_ids: set[str], known: bool
) -> VaultDecision:
    if not token_valid:
        return VaultDecision(False, 401, "a valid service token is required")
    if not task_id:
        return VaultDecision(False, 403, "a task_id is required: the vault opens only for a task")
    if task_id not in approved_task_ids:
        return VaultDecision(False, 403, "no approved outreach task for this resident")
    if not known:
        return VaultDecision(False, 404, "no contact details are held for this resident")
    return VaultDecision(True, 200, "approved outreach task")


def display_name(given_name: str | None, family_name: str | None) -> str:
    name = " ".join(part for part in (given_name, family_name) if part)
    return name or "Resident"
