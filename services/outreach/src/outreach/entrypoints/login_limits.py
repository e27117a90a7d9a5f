"""Slowing down password guessing and floods of sign-in returns.

Failed password sign-ins are counted per user name and per client address over a moving
window; once either count is used up the next attempt is refused (429) without checking the
password, and the page says when to try again. A correct password clears only that user
name's count: one officer signing in does not unlock an account someone else is guessing,
and does not clear their address's count either. Returns from the identity provider are
counted per address, successful or not.

The counts are kept in this process's memory (the `limits` library's memory storage), so
each replica keeps its own: with N replicas an attacker gets at most N times the limit,
and a restart forgets the counts. That bound is what we accept instead of running a store.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from outreach.settings import OutreachSettings


@dataclass(frozen=True)
class TooManyAttempts:
    retry_after_s: int

    @property
    def message(self) -> str:
        minutes = max(1, math.ceil(self.retry_after_s / 60))
        wait = "1 minute" if minutes == 1 else f"{minutes} minutes"
        return f"There have been too many attempts to sign in. Wait {wait}, then try again."


class LoginLimits:
    def __init__(self, settings: OutreachSettings) -> None:
        self.limiter = MovingWindowRateLimiter(MemoryStorage())
        self.per_account = parse(settings.outreach_login_failures_per_account)
        self.per_address = parse(settings.outreach_login_failures_per_address)
        self.callbacks = parse(settings.oidc_callbacks_per_address)

    def _wait(self, item: RateLimitItem, *identifiers: str) -> TooManyAttempts:
        reset = self.limiter.get_window_stats(item, *identifiers).reset_time
        return TooManyAttempts(max(1, math.ceil(reset - time.time())))

    def password_refused(self, account: str, address: str) -> TooManyAttempts | None:
        """Whether a password attempt for this account from this address must wait."""
        account = _account(account)
        if not self.limiter.test(self.per_account, "account", account):
            return self._wait(self.per_account, "account", account)
        if not self.limiter.test(self.per_address, "address", address):
            return self._wait(self.per_address, "address", address)
        return None

    def password_failed(self, account: str, address: str) -> None:
        self.limiter.hit(self.per_account, "account", _account(account))
        self.limiter.hit(self.per_address, "address", address)

    def password_succeeded(self, account: str) -> None:
        self.limiter.clear(self.per_account, "account", _account(account))

    def callback_refused(self, address: str) -> TooManyAttempts | None:
        """Count a return from the identity provider; refuse it once the address is over."""
        if self.limiter.hit(self.callbacks, "oidc-callback", address):
            return None
        return self._wait(self.callbacks, "oidc-callback", address)


def _account(name: str) -> str:
    # User names are looked up as typed, but guesses at "Officer" and "officer " count
    # against the same account.
    return name.strip().lower()[:128]
