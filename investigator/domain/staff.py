"""Staff accounts: creation with a key pair, listing, disabling, resetting a lost
authenticator (framework-free)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.params import Argon2Params
from crypto.passwords import generate_password, hash_password, password_problems
from crypto.pepper import PasswordPepper
from crypto.recipients import generate_staff_keys
from investigator.domain.casework import revoke_user
from investigator.policy import may_hold_independent_keys
from investigator.roles import OWNER_ROLES, RoleError, parse_roles, roles_of
from portal.case.events import add_event
from portal.kernel import audit
from portal.kernel.db.engine import Database
from portal.kernel.db.models import Case, Department, KeyWrap, TeamMember, User
from portal.kernel.msgid import _

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,39}$")


class StaffError(ValueError):
    pass


@dataclass(frozen=True)
class NewUser:
    user: User
    one_time_password: str


def validate_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.match(name):
        raise StaffError(
            "user name: 2 to 40 characters, lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


async def add_user(
    db: Database,
    params: Argon2Params,
    *,
    pepper: PasswordPepper,
    username: str,
    display_name: str,
    roles: str | list[str],
    email: str | None = None,
    department: str | None = None,
    password: str | None = None,
    owner: bool = False,
) -> NewUser:
    """Create an account with a one-time password (or the given one) and an X25519 key pair.

    The private key is sealed under the password and a recovery key; the account must change
    its password at first sign-in, when a fresh recovery key is shown once. The password hash
    and the password seal depend on the keyring's ``pepper`` (C4), in its suite. An owner role
    (``investigator.roles.OWNER_ROLES``) needs ``owner`` (the command line): its appointment is
    audited here, with no acting user.
    """
    name = validate_username(username)
    role_list = parse_roles(roles, owner=owner)
    if "department_liaison" in role_list and not department:
        raise StaffError("a department liaison must be bound to a department (--department)")
    pw = password or generate_password()
    if password is not None and (
        problems := password_problems(password, username=name, display_name=display_name)
    ):
        raise StaffError(" ".join(problems))

    def derive() -> tuple[str, object]:
        pw_hash = hash_password(pw, params, pepper)
        keys, _recovery = generate_staff_keys(pw, params, pepper=pepper)
        return pw_hash, keys

    pw_hash, keys = await anyio.to_thread.run_sync(derive)
    async with db.write() as s:
        if (await s.execute(select(User.id).where(User.username == name))).first():
            raise StaffError(f"user {name!r} already exists")
        dept_id = None
        if department:
            dept = (
                await s.execute(select(Department).where(Department.name == department))
            ).scalar_one_or_none()
            if dept is None:
                dept = Department(name=department)
                s.add(dept)
                await s.flush()
            dept_id = dept.id
        user = User(
            username=name,
            display_name=display_name.strip() or name,
            email=email,
            roles=",".join(role_list),
            department_id=dept_id,
            password_hash=pw_hash,
            must_change_password=True,
            public_key=keys.public_key,  # type: ignore[attr-defined]
            sealed_private_by_password=keys.sealed_private_by_password,  # type: ignore[attr-defined]
            sealed_private_by_recovery=keys.sealed_private_by_recovery,  # type: ignore[attr-defined]
        )
        s.add(user)
        if OWNER_ROLES.intersection(role_list):
            await s.flush()
            await audit.record(
                s,
                actor_user_id=None,
                action="user.appoint_independent",
                detail=f"user={user.id} roles={user.roles}",
            )
    return NewUser(user=user, one_time_password=pw)


async def list_users(db: Database) -> list[User]:
    async with db.read() as s:
        return list((await s.execute(select(User).order_by(User.username))).scalars())


async def count_users(db: Database) -> int:
    async with db.read() as s:
        return int((await s.execute(select(func.count()).select_from(User))).scalar_one())


async def _named(s: AsyncSession, username: str) -> User:
    name = validate_username(username)
    user = (await s.execute(select(User).where(User.username == name))).scalar_one_or_none()
    if user is None:
        raise StaffError(f"no user {name!r}")
    return user


async def set_disabled(db: Database, username: str, disabled: bool = True) -> User:
    async with db.write() as s:
        user = await _named(s, username)
        user.disabled = disabled
        return user


async def set_independent_reviewer(db: Database, username: str, appointed: bool) -> User:
    """The installation owner appoints (or removes) an independent reviewer on the command line
    (`portal user appoint-reviewer` / `revoke-reviewer`); audited with no acting user. The
    workspace administrator cannot: ``investigator.policy.may_manage_account``."""
    async with db.write() as s:
        user = await _named(s, username)
        held = [r for r in user.roles.split(",") if r and r != "independent_reviewer"]
        wanted = [*held, "independent_reviewer"] if appointed else held
        user.roles = ",".join(parse_roles(wanted, owner=True))
        await audit.record(
            s,
            actor_user_id=None,
            action="user.appoint_independent" if appointed else "user.revoke_independent",
            detail=f"user={user.id} roles={user.roles}",
        )
        await leave_independent_cases(s, user, actor_user_id=None)
        return user


async def reset_two_step(s: AsyncSession, user: User, *, actor_user_id: str | None) -> None:
    """A lost or replaced phone: forget the authenticator. The password is still needed; after
    it, the next sign-in enrols a new authenticator (as at the first sign-in). Audited."""
    user.totp_secret_sealed = None
    user.totp_last_step = 0  # a new secret: the old one's replay guard does not apply
    user.failed_signins = 0
    await audit.record(
        s, actor_user_id=actor_user_id, action="user.reset_two_step", detail=f"user={user.id}"
    )


async def reset_two_step_by_name(db: Database, username: str) -> User:
    """The command-line way (`portal user reset-2fa NAME`); audited with no acting user."""
    async with db.write() as s:
        user = await _named(s, username)
        await reset_two_step(s, user, actor_user_id=None)
        return user


async def change_roles(
    s: AsyncSession,
    user: User,
    roles: list[str],
    department_id: str | None,
    *,
    actor_user_id: str,
) -> None:
    """New roles (and department) for an account; they apply from its next request. A
    department liaison must belong to an existing, active department. Audited."""
    role_list = parse_roles(roles)
    if department_id is not None:
        dept = await s.get(Department, department_id)
        if dept is None or not dept.active:
            raise StaffError(_("That department does not exist or is switched off."))
    if "department_liaison" in role_list and department_id is None:
        raise RoleError(_("A department liaison must belong to a department."))
    user.roles = ",".join(role_list)
    user.department_id = department_id
    await audit.record(
        s,
        actor_user_id=actor_user_id,
        action="user.roles",
        detail=f"user={user.id} roles={user.roles} department={department_id or '-'}",
    )
    await leave_independent_cases(s, user, actor_user_id=actor_user_id)


async def leave_independent_cases(
    s: AsyncSession, user: User, *, actor_user_id: str | None
) -> list[str]:
    """After a change of roles: the account gives up its keys and team seats on the
    independent cases it may no longer hold (``investigator.policy.may_hold_independent_keys``:
    e.g. a team member made an intake officer, a reviewer whose role was revoked). Each case it
    leaves is audited; returns their ids."""
    roles = roles_of(user.roles)
    independent = select(Case.id).where(Case.independent.is_(True))
    wrapped = set(
        (
            await s.execute(
                select(KeyWrap.case_id).where(
                    KeyWrap.user_id == user.id, KeyWrap.case_id.in_(independent)
                )
            )
        ).scalars()
    )
    seated = set(
        (
            await s.execute(
                select(TeamMember.case_id).where(
                    TeamMember.user_id == user.id, TeamMember.case_id.in_(independent)
                )
            )
        ).scalars()
    )
    left = sorted(c for c in wrapped | seated if not may_hold_independent_keys(roles, c in seated))
    for case_id in left:
        await revoke_user(s, case_id, user.id)
        if case_id in seated:
            add_event(s, case_id, "team_changed", public=False, actor=actor_user_id)
        await audit.record(
            s,
            actor_user_id=actor_user_id,
            action="team.remove",
            case_id=case_id,
            detail=f"user={user.id} reason=roles",
        )
    return left


# Roles without which a report cannot be read by anyone in the centre: a report's case key is
# wrapped for the intake officers, and a real-name reporter's identity key for the identity
# custodians, present when it arrives.
KEY_ROLES = ("intake_officer", "identity_custodian")
MISSING_ROLE_WARNINGS = {
    "intake_officer": _(
        "There is no active intake officer: the portal refuses every report until one exists. "
        "Create one on the staff accounts page before reporters use the portal."
    ),
    "identity_custodian": _(
        "There is no active identity custodian: the portal refuses reports that carry a name "
        "until one exists (anonymous reports are still taken). Create one on the staff accounts "
        "page."
    ),
    # the reader of reports about the centre itself (the independent channel)
    "independent_reviewer": _(
        "No independent reviewer (audit committee or supervisory board) is appointed: the "
        "portal refuses reports about the 法审风控中心 itself, which only the center could "
        "otherwise read. The installation owner appoints one on the server with "
        "`portal user appoint-reviewer NAME`."
    ),
}
WARNED_ROLES = (*KEY_ROLES, "independent_reviewer")


async def missing_key_roles(db: Database) -> list[str]:
    """The roles of ``WARNED_ROLES`` that no enabled account holds (the administrator is
    told on the workspace home page: ``MISSING_ROLE_WARNINGS``)."""
    async with db.read() as s:
        rows = (await s.execute(select(User.roles).where(User.disabled.is_(False)))).scalars()
        held = {role for stored in rows for role in stored.split(",")}
    return [role for role in WARNED_ROLES if role not in held]
