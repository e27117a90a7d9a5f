"""Officers who sign in with a password (development only) and their argon2 hashes."""

from __future__ import annotations

import secrets

from pwdlib import PasswordHash
from sqlalchemy.engine import Engine
from sqlmodel import Session

from outreach.adapters.store import User
from outreach.domain.roles import HUMAN_ROLES

hasher = PasswordHash.recommended()  # argon2id
# Verified against when the user does not exist, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = hasher.hash(secrets.token_urlsafe(16))
DEV_TEAMS = {
    "officer": "Community independence team",
    "team_lead": "Community independence team",
    "admin": None,
    "ops": None,
}


def add_user(engine: Engine, username: str, password: str, role: str, team: str | None) -> None:
    if role not in HUMAN_ROLES:
        raise ValueError(f"role must be one of {HUMAN_ROLES}")
    with Session(engine) as session:
        user = session.get(User, username) or User(username=username, password_hash="", role=role)
        user.password_hash = hasher.hash(password)
        user.role = role
        user.team = team
        session.add(user)
        session.commit()


def seed_dev_users(engine: Engine) -> dict[str, str]:
    """One user per role with a fresh random password each; returns name → password, to be
    shown once (only the hashes are kept)."""
    passwords = {}
    for role in HUMAN_ROLES:
        password = secrets.token_urlsafe(12)
        add_user(engine, role.replace("_", "-"), password, role, DEV_TEAMS[role])
        passwords[role.replace("_", "-")] = password
    return passwords


def authenticate(engine: Engine, username: str, password: str) -> User | None:
    with Session(engine) as session:
        user = session.get(User, username.strip())
        if user is None:
            hasher.verify(password, _DUMMY_HASH)
            return None
        return user if hasher.verify(password, user.password_hash) else None
