"""Receipt-code throttling (R8) without any network identifier.

Two budgets:
* a global token bucket shared by every receipt sign-in (default 120 per minute). When it is
  empty a request waits its turn (up to `max_wait_s`) instead of being refused, so the holder
  of a right code is slowed, never locked out; when its turn would come later than that it gets
  the "busy, try again" page at once, which says nothing about the code. The queue is bounded
  by that maximum wait, and input that is not a well-formed receipt code (wrong length,
  other characters, a failed check digit) is refused before any token is taken, so cheap
  junk cannot make the rightful holder wait;
* a per-form budget: the follow-up form carries a signed attempt counter; after
  `free_attempts` failures each further attempt waits 2^(n - free) seconds (capped). Dropping
  the counter only lands the guesser back on the global budget.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time


class Busy(Exception):
    """The global budget is exhausted beyond the wait we accept."""


class TokenBucket:
    """The global budget in one process. A caller that must wait *reserves* its token (the
    level goes negative) and sleeps outside the lock, so the wait each caller is told already
    counts everyone queued before it: no caller ever waits longer than ``max_wait_s``, and one
    whose turn would come later is refused at once (``Busy``) without joining the queue."""

    def __init__(
        self, per_minute: int, *, burst: int | None = None, max_wait_s: float = 20.0
    ) -> None:
        self.rate = per_minute / 60.0
        self.capacity = float(burst if burst is not None else max(1, per_minute // 4))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self.max_wait_s = max_wait_s

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def reserve(self) -> float:
        """Reserve a token now; the seconds to wait before using it. Busy if that wait would
        exceed ``max_wait_s`` (nothing is reserved then)."""
        self._refill()
        wait = max(0.0, (1 - self.tokens) / self.rate)
        if wait > self.max_wait_s:
            raise Busy
        self.tokens -= 1
        return wait

    async def take(self) -> None:
        """Wait for a reserved token (served in order); Busy at once if the wait is too long."""
        wait = self.reserve()  # no await before this: atomic on the event loop
        if wait > 0:
            await asyncio.sleep(wait)


class AttemptCounter:
    """A tamper-proof attempt counter carried in the sign-in form (no cookie, no address)."""

    def __init__(self, key: bytes, *, free_attempts: int, cap_s: float = 30.0) -> None:
        self.key = key
        self.free = free_attempts
        self.cap_s = cap_s

    def encode(self, attempts: int) -> str:
        body = f"{attempts}.{int(time.time())}"
        mac = hmac.new(self.key, body.encode(), hashlib.sha256).digest()[:16]
        return base64.urlsafe_b64encode(body.encode() + b"." + mac).decode()

    def decode(self, token: str) -> int:
        """Attempts so far (0 for a missing or forged token)."""
        try:
            raw = base64.urlsafe_b64decode(token.encode()[:200])
        except (ValueError, TypeError):
            return 0
        # The MAC is 16 raw bytes and may itself contain b".": split by length, not on a dot.
        if len(raw) < 18 or raw[-17:-16] != b".":
            return 0
        body, mac = raw[:-17], raw[-16:]
        good = hmac.new(self.key, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, good):
            return 0
        attempts, issued = body.decode().split(".")
        if time.time() - int(issued) > 3600:
            return 0
        return max(0, min(int(attempts), 1000))

    def delay_for(self, attempts: int) -> float:
        extra = attempts - self.free
        if extra < 0:
            return 0.0
        return float(min(self.cap_s, 2**extra))
