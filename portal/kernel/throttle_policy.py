"""Slowing down password and TOTP guessing without letting a stranger lock anyone out (A4).

Policy
------
* Per account name: the first ``free_failures`` recent failures cost nothing; after that
  every attempt on that name waits ``base_delay * 2**(n - free_failures)`` seconds, capped at
  ``max_delay``. Failures are forgotten ``forget_after_s`` seconds after the last one, and a
  full sign-in (password and TOTP) clears them.
* Globally: when more than ``global_budget`` failures (any account, known or not) happened in
  the last ``global_window_s`` seconds, every attempt waits an extra ``global_delay`` seconds,
  which slows a spread-out guessing campaign.
* Nothing is ever refused: there is no hard lock keyed on the user name, so the rightful user
  with the right password and TOTP code always gets in after the delay. The second factor,
  the Argon2id cost and the bounded Argon2 concurrency (``investigator.domain.auth``) bound what an
  attacker gains from parallel requests; the audit log shows the failures.

The key is chosen by the caller and should not reveal whether an account exists: use the
normalised name that was typed, for known and unknown names alike.

``SigninThrottle`` is the interface; ``MemorySigninThrottle`` keeps state per process (one
worker). A Redis implementation with the same three methods can share state between instances.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


class SigninThrottle(Protocol):
    async def delay_for(self, key: str) -> float:
        """Seconds the caller must wait before evaluating an attempt on ``key``."""
        ...

    async def record_failure(self, key: str) -> None: ...

    async def record_success(self, key: str) -> None: ...


@dataclass(frozen=True)
class ThrottlePolicy:
    free_failures: int = 3
    base_delay: float = 1.0
    max_delay: float = 15.0
    forget_after_s: float = 15 * 60
    global_budget: int = 60
    global_window_s: float = 60.0
    global_delay: float = 2.0
    max_tracked_keys: int = 50_000

    def account_delay(self, failures: int) -> float:
        over = failures - self.free_failures
        if over < 0:
            return 0.0
        return min(self.max_delay, self.base_delay * (2.0 ** min(over, 30)))


@dataclass
class _Account:
    failures: int
    last_failure: float


class MemorySigninThrottle:
    """In-process implementation of ``SigninThrottle``. State is bounded: at most
    ``max_tracked_keys`` names are remembered (the oldest are dropped first)."""

    def __init__(
        self,
        policy: ThrottlePolicy | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or ThrottlePolicy()
        self._clock = clock
        self._accounts: OrderedDict[str, _Account] = OrderedDict()
        self._global: deque[float] = deque()

    @staticmethod
    def _key(key: str) -> str:
        # Names typed by strangers are not kept verbatim in memory.
        return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()

    def _prune_global(self, now: float) -> None:
        horizon = now - self.policy.global_window_s
        while self._global and self._global[0] < horizon:
            self._global.popleft()

    def _account(self, key: str, now: float) -> _Account | None:
        entry = self._accounts.get(self._key(key))
        if entry is not None and now - entry.last_failure > self.policy.forget_after_s:
            del self._accounts[self._key(key)]
            return None
        return entry

    async def delay_for(self, key: str) -> float:
        now = self._clock()
        self._prune_global(now)
        entry = self._account(key, now)
        delay = self.policy.account_delay(entry.failures if entry else 0)
        if len(self._global) > self.policy.global_budget:
            delay += self.policy.global_delay
        return delay

    async def record_failure(self, key: str) -> None:
        now = self._clock()
        self._prune_global(now)
        self._global.append(now)
        # Bound the memory: keep at most global_budget * window worth of timestamps.
        while len(self._global) > max(1000, self.policy.global_budget * 10):
            self._global.popleft()
        entry = self._account(key, now)
        hashed = self._key(key)
        if entry is None:
            while len(self._accounts) >= self.policy.max_tracked_keys:
                self._accounts.popitem(last=False)  # least recently failed
            self._accounts[hashed] = _Account(failures=1, last_failure=now)
        else:
            entry.failures += 1
            entry.last_failure = now
            self._accounts.move_to_end(hashed)

    async def record_success(self, key: str) -> None:
        self._accounts.pop(self._key(key), None)

    def failures(self, key: str) -> int:
        """Recent failures on ``key`` (for tests and diagnostics)."""
        entry = self._account(key, self._clock())
        return entry.failures if entry else 0
