"""Staff sign-in (A4, C4), framework-free: password, TOTP, enrolment and password change.

Flow
----
1. ``check_password``: Argon2id verification in a worker thread. An unknown name, a wrong
   password, a disabled account and an over-long input all end in the same ``SigninFailed``
   after the same work: an unknown name is verified against a dummy hash made once at start-up
   with the installation's parameters, and every failure writes one audit entry. On success the
   private key is unlocked with the password (C4). Hash and seal both depend on the keyring's
   password pepper (crypto.pepper): an account still in the older, unpeppered form (or in
   another suite) is re-hashed and re-sealed in the same transaction as the success entry.
2. ``check_totp`` (enrolled users) or ``finish_enrolment`` (first sign-in): a code is accepted
   once only; the step update is a conditional UPDATE so concurrent replays lose.
3. ``change_password``: forced at first sign-in (``users.must_change_password``): checks the
   strength, re-seals the private key under the new password and under a fresh recovery key,
   which the caller shows once.

Forgotten passwords: ``recover`` takes the user name, the recovery key shown at the last
password change and a new password; the recovery key unlocks the private key
(``crypto.recipients.unlock_with_recovery``), which is re-sealed under the new password and a
new recovery key. The TOTP factor is unchanged: signing in afterwards still needs it. Nobody
else can reset a password without the account losing access to its case keys (C4).

Argon2 runs only in worker threads, at most ``kdf_slots`` at a time (each evaluation takes
128 MiB with the production parameters), never on the event loop.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio
import anyio.to_thread
from sqlalchemy import select, update

from crypto.errors import CryptoError
from crypto.params import Argon2Params
from crypto.passwords import (
    MAX_LENGTH,
    hash_is_current,
    hash_password,
    password_problems,
    verify_password,
)
from crypto.pepper import PasswordPepper
from crypto.recipients import (
    password_seal_is_current,
    reseal_private_key,
    seal_with_new_recovery_key,
    unlock_with_password,
    unlock_with_recovery,
)
from crypto.suites import Suite
from investigator.domain import totp
from portal.kernel import audit
from portal.kernel.db.engine import Database
from portal.kernel.db.models import User
from portal.kernel.throttle_policy import MemorySigninThrottle, SigninThrottle

MAX_USERNAME = 80
_T = TypeVar("_T")
# A second factor attempt is bounded per password step: after this many wrong codes the
# password must be entered again (the web layer enforces it on the pending session).
MAX_TOTP_FAILURES = 5


class SigninFailed(Exception):
    """Wrong user name or password (deliberately not saying which), or a wrong code."""


class PasswordRejected(ValueError):
    """The new password is refused; ``problems`` are msgids to translate and show."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__(" ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class PasswordStep:
    """A correct password: what the second step needs."""

    user_id: str
    username: str
    enrolled: bool
    private_key: bytes


@dataclass(frozen=True)
class SignedIn:
    user_id: str
    username: str
    must_change_password: bool


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


class StaffAuth:
    """Sign-in logic for one installation. Build one per process (the dummy hash costs one
    Argon2 evaluation)."""

    def __init__(
        self,
        params: Argon2Params,
        *,
        throttle: SigninThrottle | None = None,
        kdf_slots: int = 2,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.params = params
        self.throttle: SigninThrottle = throttle or MemorySigninThrottle()
        self._limiter = anyio.CapacityLimiter(kdf_slots)
        self._sleep = sleep
        # peppered like every stored hash (with a throw-away pepper), so the work is alike
        self._dummy_hash = hash_password(
            secrets.token_urlsafe(32), params, PasswordPepper(os.urandom(32), Suite.AES256GCM)
        )

    async def _kdf(self, fn: Callable[..., _T], *args: object) -> _T:
        return await anyio.to_thread.run_sync(fn, *args, limiter=self._limiter)

    async def _wait(self, key: str) -> None:
        delay = await self.throttle.delay_for(key)
        if delay > 0:
            await self._sleep(delay)

    # --- step 1 -------------------------------------------------------------------------

    async def check_password(
        self, db: Database, username: str, password: str, *, pepper: PasswordPepper
    ) -> PasswordStep:
        """The password step; ``SigninFailed`` for every kind of failure, alike.

        An account whose hash or password seal is not yet in the peppered form of the
        installation's suite moves over now: re-hashed and re-sealed (same private key) in
        the transaction that records the success.
        """
        name = normalise_username(username)
        oversize = len(name) > MAX_USERNAME or len(password) > MAX_LENGTH
        key = name[:MAX_USERNAME]
        await self._wait(key)
        user: User | None = None
        if not oversize:
            async with db.read() as s:
                user = (
                    await s.execute(select(User).where(User.username == name))
                ).scalar_one_or_none()
        stored = user.password_hash if user is not None else self._dummy_hash
        ok = False
        if not oversize:
            ok = await self._kdf(verify_password, stored, password, self.params, pepper)
        if user is None or not ok or user.disabled:
            await self._failure(db, key, user, "password")
            raise SigninFailed
        # The sealed key carries its own Argon2 parameters.
        private_key = await self._kdf(
            unlock_with_password, user.sealed_private_by_password, password, pepper
        )
        upgrade: tuple[str, bytes] | None = None
        if not (
            hash_is_current(user.password_hash, pepper)
            and password_seal_is_current(user.sealed_private_by_password, pepper)
        ):

            def rederive() -> tuple[str, bytes]:
                return (
                    hash_password(password, self.params, pepper),
                    reseal_private_key(private_key, password, self.params, pepper=pepper),
                )

            upgrade = await self._kdf(rederive)
        async with db.write() as s:
            if upgrade is not None:
                # only if nobody changed the password meanwhile (a conditional UPDATE)
                result = await s.execute(
                    update(User)
                    .where(
                        User.id == user.id,
                        User.password_hash == user.password_hash,
                        User.sealed_private_by_password == user.sealed_private_by_password,
                    )
                    .values(password_hash=upgrade[0], sealed_private_by_password=upgrade[1])
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    await audit.record(s, actor_user_id=user.id, action="password.upgrade")
            await audit.record(s, actor_user_id=user.id, action="signin.password_ok")
        return PasswordStep(
            user_id=user.id,
            username=user.username,
            enrolled=user.totp_secret_sealed is not None,
            private_key=private_key,
        )

    async def _failure(self, db: Database, key: str, user: User | None, step: str) -> None:
        await self.throttle.record_failure(key)
        async with db.write() as s:
            # The same statement for unknown names (matching no row) keeps the work alike.
            await s.execute(
                update(User)
                .where(User.id == (user.id if user is not None else ""))
                .values(failed_signins=User.failed_signins + 1)
            )
            if user is not None:
                detail = f"step={step}" + (" disabled" if user.disabled else "")
            else:
                detail = f"step={step} unknown_account"
            await audit.record(
                s,
                actor_user_id=user.id if user else None,
                action="signin.failure",
                detail=detail,
            )

    # --- step 2 -------------------------------------------------------------------------

    async def check_totp(
        self, db: Database, server_key: bytes, user_id: str, code: str, *, now: float | None = None
    ) -> SignedIn:
        """The second step for an enrolled user; ``SigninFailed`` on a wrong or reused code."""
        async with db.read() as s:
            user = (await s.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
        if user is None or user.disabled or user.totp_secret_sealed is None:
            raise SigninFailed
        key = user.username
        await self._wait(key)
        secret = totp.open_secret(server_key, user.id, user.totp_secret_sealed)
        step = totp.matching_step(secret, code, last_step=user.totp_last_step, now=now)
        if step is not None:
            async with db.write() as s:
                result = await s.execute(
                    update(User)
                    .where(User.id == user.id, User.totp_last_step < step, User.disabled.is_(False))
                    .values(totp_last_step=step, failed_signins=0)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    await audit.record(s, actor_user_id=user.id, action="signin.success")
                else:
                    step = None
        if step is None:
            await self._failure(db, key, user, "totp")
            raise SigninFailed
        await self.throttle.record_success(key)
        return SignedIn(user.id, user.username, user.must_change_password)

    async def finish_enrolment(
        self,
        db: Database,
        server_key: bytes,
        user_id: str,
        secret: str,
        code: str,
        *,
        suite: Suite,
        now: float | None = None,
    ) -> SignedIn:
        """First TOTP code from a new authenticator: stores the sealed secret and completes the
        sign-in. ``SigninFailed`` on a wrong code or when the account enrolled meanwhile."""
        async with db.read() as s:
            user = (await s.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
        if user is None or user.disabled:
            raise SigninFailed
        key = user.username
        await self._wait(key)
        step = totp.matching_step(secret, code, last_step=user.totp_last_step, now=now)
        if step is not None:
            sealed = totp.seal_secret(server_key, user.id, secret, suite=suite)
            async with db.write() as s:
                result = await s.execute(
                    update(User)
                    .where(
                        User.id == user.id,
                        User.totp_secret_sealed.is_(None),
                        User.totp_last_step < step,
                        User.disabled.is_(False),
                    )
                    .values(totp_secret_sealed=sealed, totp_last_step=step, failed_signins=0)
                )
                if result.rowcount == 1:  # type: ignore[attr-defined]
                    await audit.record(s, actor_user_id=user.id, action="totp.enrol")
                    await audit.record(s, actor_user_id=user.id, action="signin.success")
                else:
                    step = None
        if step is None:
            await self._failure(db, key, user, "totp_enrolment")
            raise SigninFailed
        await self.throttle.record_success(key)
        return SignedIn(user.id, user.username, user.must_change_password)

    # --- password change ----------------------------------------------------------------

    async def change_password(
        self,
        db: Database,
        *,
        user_id: str,
        private_key: bytes,
        new_password: str,
        pepper: PasswordPepper,
        current_password: str | None = None,
    ) -> str:
        """Set a new password and a new recovery key; returns the recovery key (show it once).

        ``current_password`` is required unless the account must change its password (first
        sign-in, right after the password step). ``PasswordRejected`` lists the problems;
        ``SigninFailed`` means the current password was wrong.
        """
        async with db.read() as s:
            user = (await s.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
        if user is None or user.disabled:
            raise SigninFailed
        problems = password_problems(
            new_password, username=user.username, display_name=user.display_name
        )
        if problems:
            raise PasswordRejected(problems)
        if not user.must_change_password:
            if current_password is None or len(current_password) > MAX_LENGTH:
                raise SigninFailed
            await self._wait(user.username)
            if not await self._kdf(
                verify_password, user.password_hash, current_password, self.params, pepper
            ):
                await self._failure(db, user.username, user, "password_change")
                raise SigninFailed
        if await self._kdf(verify_password, user.password_hash, new_password, self.params, pepper):
            raise PasswordRejected(["Choose a password different from the current one."])

        def derive() -> tuple[str, bytes, bytes, str]:
            pw_hash = hash_password(new_password, self.params, pepper)
            by_password = reseal_private_key(private_key, new_password, self.params, pepper=pepper)
            by_recovery, recovery_key = seal_with_new_recovery_key(private_key, suite=pepper.suite)
            return pw_hash, by_password, by_recovery, recovery_key

        pw_hash, by_password, by_recovery, recovery_key = await self._kdf(derive)
        async with db.write() as s:
            await s.execute(
                update(User)
                .where(User.id == user.id)
                .values(
                    password_hash=pw_hash,
                    sealed_private_by_password=by_password,
                    sealed_private_by_recovery=by_recovery,
                    must_change_password=False,
                )
            )
            await audit.record(s, actor_user_id=user.id, action="password.change")
        return recovery_key

    # --- forgotten password ----------------------------------------------------------------

    async def recover(
        self,
        db: Database,
        *,
        username: str,
        recovery_key: str,
        new_password: str,
        pepper: PasswordPepper,
    ) -> str:
        """New password from the recovery key; returns the next recovery key (show it once).

        ``PasswordRejected`` for a weak password (checked first, from what was typed);
        ``SigninFailed`` for an unknown or disabled account or a wrong recovery key, alike.
        """
        name = normalise_username(username)
        problems = password_problems(new_password, username=name)
        if problems:
            raise PasswordRejected(problems)
        key = name[:MAX_USERNAME]
        await self._wait(key)
        user: User | None = None
        if len(name) <= MAX_USERNAME:
            async with db.read() as s:
                user = (
                    await s.execute(select(User).where(User.username == name))
                ).scalar_one_or_none()
        private_key: bytes | None = None
        if user is not None and not user.disabled:
            try:
                private_key = unlock_with_recovery(user.sealed_private_by_recovery, recovery_key)
            except (CryptoError, ValueError):
                private_key = None
        if user is None or private_key is None:
            await self._failure(db, key, user, "recovery")
            raise SigninFailed
        # the display name is checked only now, for the verified holder of the recovery key:
        # checked earlier, the answer would tell a stranger what an account's name contains
        if problems := password_problems(
            new_password, username=user.username, display_name=user.display_name
        ):
            raise PasswordRejected(problems)

        def derive() -> tuple[str, bytes, bytes, str]:
            pw_hash = hash_password(new_password, self.params, pepper)
            by_password = reseal_private_key(private_key, new_password, self.params, pepper=pepper)
            by_recovery, next_key = seal_with_new_recovery_key(private_key, suite=pepper.suite)
            return pw_hash, by_password, by_recovery, next_key

        pw_hash, by_password, by_recovery, next_key = await self._kdf(derive)
        async with db.write() as s:
            await s.execute(
                update(User)
                .where(User.id == user.id)
                .values(
                    password_hash=pw_hash,
                    sealed_private_by_password=by_password,
                    sealed_private_by_recovery=by_recovery,
                    must_change_password=False,
                )
            )
            await audit.record(s, actor_user_id=user.id, action="password.recover")
        await self.throttle.record_success(key)
        return next_key


async def load_active_user(db: Database, user_id: str) -> User | None:
    """The account if it exists and is not disabled."""
    async with db.read() as s:
        user = (await s.execute(select(User).where(User.id == user_id))).scalar_one_or_none()
    return None if user is None or user.disabled else user


__all__ = [
    "MAX_TOTP_FAILURES",
    "PasswordRejected",
    "PasswordStep",
    "SignedIn",
    "SigninFailed",
    "StaffAuth",
    "load_active_user",
    "normalise_username",
]
