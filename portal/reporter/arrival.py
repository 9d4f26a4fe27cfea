"""Who receives a new report's keys when it arrives (C7, A2). Framework-free.

* **No report without a reader (C7).** A case key is wrapped only for enabled staff accounts
  holding a key pair. The public portal takes no report until at least one enabled intake
  officer with a key pair exists, and no real-name report (nor a complainant's details) until
  an identity custodian with one exists too (``channel_state``). At commit time the same
  question is asked again on the recipients actually computed: if nobody would hold the case
  key (or the identity key of an identity given), ``NoReader`` is raised and the whole
  submission is rolled back, so no receipt is ever issued for a case nobody can open.
* **Automatic conflict (A2).** When the name of an accused person, normalised as subject
  fingerprints are (``normalise_name``), equals the normalised display name or user name of an
  enabled staff account, that account receives no key at all and an automatic conflict row
  (``conflicts.subject_id`` = that subject) is written: ``investigator.policy`` then excludes
  the account from the case like any declared conflict, and intake sees the proposed link.
* **The independent channel (issue 18).** A report the reporter says concerns the 法审风控中心
  or its staff (``ReportInput.independent``), and a report whose accused names match *every*
  intake officer who could open it, is an independent case: its case key and its identity key
  are wrapped for the independent reviewers only (``investigator.policy.acts_as``: never an
  intake officer), none for the centre. With no independent reviewer who could open it, it is
  refused like any report without a reader (C7): ``channel_state`` says so to the form.
* **Read once, not per report.** The enabled staff are read-mostly data (``STAFF``, a
  ``portal.kernel.readmostly`` cache invalidated by every committed change to ``users`` in this
  process, and at most ``DEFAULT_TTL_S`` behind a change made by another process). A cached
  list may only make a report cheaper, never refuse it: before ``NoReader`` or a closed channel
  is answered, the staff are read again from the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import acts_as
from portal.case.subjects import normalise_name
from portal.kernel.db.engine import Database
from portal.kernel.db.models import Conflict, User
from portal.kernel.readmostly import ReadMostly
from portal.reporter.intake import ReportInput, SubjectInput

_X25519_PUBLIC_KEY_BYTES = 32


class NoReader(Exception):
    """Nobody could open the case (or the identity given with it): nothing may be stored."""


def roles_of(user: User) -> set[str]:
    return {r for r in user.roles.split(",") if r}


def can_open_wraps(user: User) -> bool:
    """An enabled account with an X25519 key pair: a wrap for it can be opened."""
    return not user.disabled and len(user.public_key or b"") == _X25519_PUBLIC_KEY_BYTES


async def _enabled_staff(session: AsyncSession) -> list[User]:
    rows = await session.execute(select(User).where(User.disabled.is_(False)).order_by(User.id))
    return list(rows.scalars())


#: the enabled staff accounts, per database (a snapshot: detached rows, attributes loaded)
STAFF: ReadMostly[list[User]] = ReadMostly("enabled staff", ("users",))


async def enabled_staff(db: Database, *, fresh: bool = False, stale_ok: bool = False) -> list[User]:
    """The enabled staff accounts, from the cache unless ``fresh`` (``stale_ok``: for a page
    that only shows what follows from them; see `portal.kernel.readmostly`)."""

    async def load() -> list[User]:
        async with db.read() as s:
            return await _enabled_staff(s)

    return await STAFF.get(db, load, fresh=fresh, stale_ok=stale_ok)


def needs_custodian(report: ReportInput) -> bool:
    """Does the submission carry an identity (the reporter's, or a complainant's block)?"""
    has_identity = report.identity is not None and not report.identity.is_empty()
    return has_identity or (report.kind == "both" and report.complaint is not None)


@dataclass(frozen=True)
class ChannelState:
    """Whether the portal can take reports: anonymous ones need an intake officer who can open
    wraps; real-name ones also an identity custodian who can."""

    intake_ready: bool
    custodian_ready: bool
    # an independent reviewer could open a report about the centre (issue 18)
    independent_ready: bool = False

    @property
    def open(self) -> bool:
        return self.intake_ready

    def accepts(self, report: ReportInput) -> bool:
        if report.independent:
            return self.independent_ready
        return self.intake_ready and (self.custodian_ready or not needs_custodian(report))


def _acts(user: User, role: str, independent: bool) -> bool:
    return acts_as(frozenset(roles_of(user)), role, independent)


async def channel_state(session: AsyncSession) -> ChannelState:
    return channel_of(await _enabled_staff(session))


async def current_channel(db: Database, report: ReportInput | None = None) -> ChannelState:
    """``channel_state`` from the cached staff; a closed answer (for ``report``, if given) is
    checked against the database before it is believed."""
    state = channel_of(await enabled_staff(db, stale_ok=report is None))  # shown, or decided
    if not (state.accepts(report) if report is not None else state.open):
        state = channel_of(await enabled_staff(db, fresh=True))
    return state


def channel_of(staff_list: Sequence[User]) -> ChannelState:
    staff = [u for u in staff_list if can_open_wraps(u)]
    return ChannelState(
        intake_ready=any(_acts(u, "intake_officer", False) for u in staff),
        custodian_ready=any(_acts(u, "identity_custodian", False) for u in staff),
        independent_ready=any(_acts(u, "intake_officer", True) for u in staff),
    )


@dataclass
class Recipients:
    """The readers of a new report's keys, after automatic conflicts are taken out."""

    case_readers: list[User]
    custodians: list[User]
    # per subject (by its position in the report): the enabled accounts its name matches
    matches: dict[int, list[User]] = field(default_factory=dict)
    # the independent channel: the readers are independent reviewers, never the centre
    independent: bool = False

    def excluded_ids(self) -> set[str]:
        return {u.id for users in self.matches.values() for u in users}

    def check(self, report: ReportInput) -> None:
        """Raise ``NoReader`` unless every key this report needs has at least one reader."""
        if not self.case_readers:
            raise NoReader("no intake officer could open this report")
        if needs_custodian(report) and not self.custodians:
            raise NoReader("no identity custodian could open this identity")


def match_subjects(
    subjects: Sequence[SubjectInput], staff: Sequence[User]
) -> dict[int, list[User]]:
    """The enabled staff accounts whose normalised display name or user name equals an accused
    person's normalised name, per subject position."""
    by_name: dict[str, list[User]] = {}
    for user in staff:
        for name in {normalise_name(user.display_name), normalise_name(user.username)}:
            if name:
                by_name.setdefault(name, []).append(user)
    matches: dict[int, list[User]] = {}
    for i, subject in enumerate(subjects):
        found = by_name.get(normalise_name(subject.name)) if subject.name else None
        if found:
            matches[i] = list({u.id: u for u in found}.values())
    return matches


def all_intake_named(staff: Sequence[User], excluded: set[str]) -> bool:
    """Does the report name every intake officer who could open it (at least one)? Then the
    centre cannot read it impartially: it takes the independent channel."""
    officers = [u for u in staff if can_open_wraps(u) and _acts(u, "intake_officer", False)]
    return bool(officers) and all(u.id in excluded for u in officers)


async def recipients(session: AsyncSession, report: ReportInput) -> Recipients:
    """Who gets the case key (intake officers) and the identity key (identity custodians) of a
    report arriving now: enabled accounts with a key pair, never one its accused names. For
    the independent channel (asked for, or every intake officer named) both keys go to the
    independent reviewers only."""
    return recipients_among(await _enabled_staff(session), report)


async def current_recipients(db: Database, report: ReportInput) -> Recipients:
    """``recipients`` from the cached staff; checked (``Recipients.check``) against a fresh
    read before ``NoReader`` is raised."""
    found = recipients_among(await enabled_staff(db), report)
    try:
        found.check(report)
    except NoReader:
        found = recipients_among(await enabled_staff(db, fresh=True), report)
        found.check(report)
    return found


def recipients_among(staff: Sequence[User], report: ReportInput) -> Recipients:
    """The recipients of ``report`` among the enabled accounts ``staff``."""
    matches = match_subjects(report.subjects, staff)
    excluded = {u.id for users in matches.values() for u in users}
    independent = report.independent or all_intake_named(staff, excluded)
    readers = [u for u in staff if can_open_wraps(u) and u.id not in excluded]
    return Recipients(
        case_readers=[u for u in readers if _acts(u, "intake_officer", independent)],
        custodians=[u for u in readers if _acts(u, "identity_custodian", independent)],
        matches=matches,
        independent=independent,
    )


def arrival_midnight(day: dt.date) -> dt.datetime:
    """An automatic conflict is dated to the day only (R9): midnight UTC of the arrival day,
    which reads back as midnight on SQLite and PostgreSQL alike."""
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=dt.UTC)


def automatic_conflicts(
    case_id: str, subject_ids: Sequence[str], matches: dict[int, list[User]], day: dt.date
) -> list[Conflict]:
    """One conflict row per (case, matched account), naming the subject whose link it proposes."""
    rows: dict[str, Conflict] = {}
    for i, users in sorted(matches.items()):
        for user in users:
            if user.id not in rows:
                rows[user.id] = Conflict(
                    case_id=case_id,
                    user_id=user.id,
                    subject_id=subject_ids[i],
                    declared_at=arrival_midnight(day),
                )
    return list(rows.values())
