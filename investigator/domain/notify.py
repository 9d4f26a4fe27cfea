"""Staff notifications and reporters' "there is news" mails (issue 7). Framework-free.

``run(services, mailer)`` is what ``portal notify run`` does every few minutes (with or without
a mail server: without one, only the mail is skipped, and the notices are listed in the
workspace all the same, ``investigator.domain.notices``):

1. ``deadline_notices.due_notices`` records the 50% / 80% / overdue (督办) notices now due.
2. ``collect`` reads what happened since the last run (``case_events`` and ``audit_log``, each
   behind a cursor in ``notify_cursors``) and queues one ``notify_notices`` row per recipient:
   a kind and a case id, never anything the reporter wrote.
3. ``send_pending`` groups the queue into ONE mail per person, with counts per kind only: no
   case number, no category, no content, no time. The queue rows stay as the sent log.

Kinds and recipients (every recipient passes ``investigator.policy``; a subject of the case or
a person who declared a conflict is never notified about it (A2), checked when queuing and
again when sending, so a subject added in between is still left out):

    ==================  ===================================  ================================
    kind                from                                 to
    ==================  ===================================  ================================
    new_cases           a ``received`` event                 intake officers; BATCHED: a
                                                             notice queued in one slot of
                                                             ``PORTAL_NOTIFY_BATCH_HOURS`` (default
                                                             4, Asia/Shanghai, from midnight)
                                                             goes out in a later slot, so the
                                                             mail never tells when a report
                                                             came in (R9)
    urgent              a case received urgent (retaliation  the people on duty (值班,
                        W12), or classified urgent (W3)      ``duty_roster``; every intake
                                                             officer until a roster is saved),
                                                             at once; not a preference
    assigned            ``team.add``                         the person added
    reporter_message    a ``reporter_message`` event         who may ``message_reporter``
    deadline_warning_50 ``deadline.warning`` /               the handler and their superior
    deadline_warning_80 ``deadline.overdue_notice``          as recorded by ``deadline_notices``;
    deadline_overdue                                         overdue and never opened: also
                                                             every intake officer and approver
                                                             (the mail preference: ``deadline``)
    approval            ``plan.submit``,                     approvers whom policy lets
                        ``deadline.extension_requested``,    ``approve_plan`` /
                        ``reward.propose``                   ``approve_extension`` /
                                                             ``approve_reward``
    identity_request    ``identity.request``                 identity custodians who may
                                                             ``decide_identity``
    rights_request      a ``rights_asked:withdraw_report``   approvers who may
                        / ``rights_asked:withdraw_identity`` ``decide_withdrawal`` / identity
                        event (a reporter's request,         custodians who may
                        issue 18)                            ``decide_identity``
    ==================  ===================================  ================================

Preferences: ``users.notify_prefs``, comma-separated kinds; empty means "every kind my roles
are offered" (``offered_kinds``), ``none`` means nothing. Staff without an e-mail address or
disabled get nothing (their notices are marked ``skipped``).

Reporters: a public event written by staff (``NEWS_EVENTS`` excluded: what the reporter did
themselves) marks the case's receipt as having news; if the reporter left an address
(``portal.case.reporter_contact``) they get "there is news, sign in with your code", at most once a
day, in the same run.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.errors import CryptoError
from investigator.domain import deadline_notices
from investigator.domain.duty_roster import on_duty
from investigator.domain.notify_kinds import DEADLINE_KINDS, URGENT, parse_prefs, pref_kind
from investigator.domain.notify_mail import REPORTER_BODY, REPORTER_SUBJECT, staff_mail
from investigator.policy import (
    INDEPENDENT_REVIEWER,
    Principal,
    acts_as,
    excluded_case_ids_clause,
    excluded_user_ids,
    may_act_on_case,
)
from investigator.roles import roles_of
from portal.case.reporter_contact import open_address
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    AuditEntry,
    Case,
    CaseEvent,
    KeyWrap,
    NotifyCursor,
    PendingNotice,
    ReporterContact,
    TeamMember,
    User,
)
from portal.kernel.mailer import Mail, Mailer, MailError
from portal.kernel.services import Services

# a reporter's withdrawal request: who decides it (investigator.domain.rights.DECIDING_ACTION)
RIGHTS_DECIDERS: dict[str, tuple[str, str]] = {
    "rights_asked:withdraw_report": ("approver", "decide_withdrawal"),
    "rights_asked:withdraw_identity": ("identity_custodian", "decide_identity"),
}
# events the reporter caused: no "news" for them
REPORTER_EVENTS = frozenset(
    {
        "received",
        "reporter_added_evidence",
        "identity_added",
        "satisfied",
        "dissatisfied",
        "rehandling_requested",
        "retaliation_reported",
        "reward_claimed",
        "identity_corrected",
        "rights_asked:withdraw_report",
        "rights_asked:withdraw_identity",
    }
)
APPROVAL_ACTIONS = {
    "plan.submit": "approve_plan",
    "deadline.extension_requested": "approve_extension",
    "reward.propose": "approve_reward",
}
DEFAULT_BATCH_HOURS = 4
BATCH_SIZE = 500


# --- collecting ------------------------------------------------------------------------------


def batch_hours(services: Services) -> int:
    """``PORTAL_NOTIFY_BATCH_HOURS`` (default 4), between 1 and 24."""
    hours = services.settings.notify_batch_hours
    return min(max(int(hours), 1), 24)


def current_slot(now: dt.datetime, hours: int) -> int:
    """The batching slot of ``now``: slots of ``hours`` counted from midnight, Asia/Shanghai."""
    local = now.astimezone(clock.SHANGHAI)
    per_day = -(-24 // hours)
    return local.date().toordinal() * per_day + local.hour // hours


def _principal(user: User) -> Principal:
    return Principal(user.id, roles_of(user.roles), user.department_id)


@dataclass
class _Queue:
    session: AsyncSession
    slot: int
    today: dt.date
    users: dict[str, User] = field(default_factory=dict)
    excluded: dict[str, set[str]] = field(default_factory=dict)  # per case (policy)
    added: int = 0

    async def user(self, user_id: str | None) -> User | None:
        if not user_id:
            return None
        if user_id not in self.users:
            found = await self.session.get(User, user_id)
            if found is None:
                return None
            self.users[user_id] = found
        u = self.users[user_id]
        return None if u.disabled else u

    async def add(self, user: User | None, kind: str, case_id: str | None) -> None:
        if user is None:
            return
        if case_id is not None:
            if case_id not in self.excluded:
                self.excluded[case_id] = await excluded_user_ids(self.session, case_id)
            if user.id in self.excluded[case_id]:
                return  # the originals rule (A2): never told about a case they are excluded from
        self.session.add(
            PendingNotice(
                user_id=user.id,
                kind=kind,
                case_id=case_id,
                created_on=self.today,
                batch=self.slot if kind == "new_cases" else None,
            )
        )
        self.added += 1


async def _active_with(session: AsyncSession, role: str) -> list[User]:
    cache: dict[str, list[User]] = session.info.setdefault("notify_active_with", {})
    if role not in cache:
        users = (await session.execute(select(User).where(User.disabled.is_(False)))).scalars()
        cache[role] = [u for u in users if role in roles_of(u.roles)]
    return cache[role]


async def _cursor(session: AsyncSession, name: str) -> NotifyCursor:
    row = await session.get(NotifyCursor, name)
    if row is None:
        row = NotifyCursor(name=name, last_id=0)
        session.add(row)
    return row


async def _urgent_once(q: _Queue, case_id: str) -> None:
    already = set(
        (
            await q.session.execute(
                select(PendingNotice.user_id).where(
                    PendingNotice.case_id == case_id, PendingNotice.kind == URGENT
                )
            )
        ).scalars()
    )
    for person in await on_duty(q.session):
        if person.id not in already:
            await q.add(person, URGENT, case_id)


async def _may(q: _Queue, user: User, case_id: str, action: str) -> bool:
    return await may_act_on_case(q.session, _principal(user), case_id, action)


def _detail_value(detail: str, key: str) -> str | None:
    for part in detail.split():
        name, _, value = part.partition("=")
        if name == key and value and value != "-":
            return value
    return None


async def _from_events(q: _Queue) -> None:
    s = q.session
    cursor = await _cursor(s, "events")
    events = list(
        (
            await s.execute(
                select(CaseEvent)
                .where(CaseEvent.id > cursor.last_id)
                .order_by(CaseEvent.id)
                .limit(BATCH_SIZE * 10)
            )
        ).scalars()
    )
    news_cases: set[str] = set()
    for ev in events:
        cursor.last_id = max(cursor.last_id, ev.id)
        case = await s.get(Case, ev.case_id)
        if case is None or case.destroyed_on is not None:
            continue
        if ev.kind == "received":
            for officer in await _active_with(s, "intake_officer"):
                # an independent case: the independent reviewers hear of it, never the centre
                if acts_as(roles_of(officer.roles), "intake_officer", case.independent):
                    await q.add(officer, "new_cases", case.id)
            if case.independent:
                for reviewer in await _active_with(s, INDEPENDENT_REVIEWER):
                    await q.add(reviewer, "new_cases", case.id)
            if case.urgent:
                await _urgent_once(q, case.id)
        elif ev.kind == "reporter_message":
            members = set(
                (
                    await s.execute(select(TeamMember.user_id).where(TeamMember.case_id == case.id))
                ).scalars()
            )
            role = INDEPENDENT_REVIEWER if case.independent else "intake_officer"
            candidates = {u.id: u for u in await _active_with(s, role)}
            for uid in members:
                found = await q.user(uid)
                if found is not None:
                    candidates[uid] = found
            for person in candidates.values():
                if await _may(q, person, case.id, "message_reporter"):
                    await q.add(person, "reporter_message", case.id)
        elif ev.kind in RIGHTS_DECIDERS:
            role, action = RIGHTS_DECIDERS[ev.kind]
            if case.independent:  # the independent reviewers decide, never the centre
                role = INDEPENDENT_REVIEWER
            for person in await _active_with(s, role):
                if await _may(q, person, case.id, action):
                    await q.add(person, "rights_request", case.id)
        if ev.public and ev.kind not in REPORTER_EVENTS:
            news_cases.add(case.id)
    if news_cases:
        receipts = set(
            (
                await s.execute(
                    select(KeyWrap.receipt_id).where(
                        KeyWrap.case_id.in_(sorted(news_cases)),
                        KeyWrap.scope == "case",
                        KeyWrap.receipt_id.is_not(None),
                    )
                )
            ).scalars()
        )
        for rid in receipts:
            contact = await s.get(ReporterContact, rid)
            if contact is not None and contact.news_on is None:
                contact.news_on = q.today


async def _deadline_notice(q: _Queue, case_id: str, detail: str) -> None:
    """A 50% / 80% warning or an overdue notice (督办) to the handler and their superior; an
    overdue case nobody opened also to every intake officer and approver, by name."""
    lvl = _detail_value(detail, "level")
    kind = "deadline_overdue" if lvl == "100" else f"deadline_warning_{lvl}"
    if kind not in DEADLINE_KINDS:
        kind = "deadline_overdue"
    people: dict[str, User] = {}
    for key in ("handler", "superior"):
        found = await q.user(_detail_value(detail, key))
        if found is not None:
            people[found.id] = found
    if kind == "deadline_overdue" and _detail_value(detail, "unopened") == "yes":
        for role in ("intake_officer", "approver"):
            for person in await _active_with(q.session, role):
                people.setdefault(person.id, person)
    for person in people.values():
        await q.add(person, kind, case_id)


async def _from_audit(q: _Queue) -> None:
    s = q.session
    cursor = await _cursor(s, "audit")
    entries = list(
        (
            await s.execute(
                select(AuditEntry)
                .where(AuditEntry.id > cursor.last_id)
                .order_by(AuditEntry.id)
                .limit(BATCH_SIZE * 10)
            )
        ).scalars()
    )
    for entry in entries:
        cursor.last_id = max(cursor.last_id, entry.id)
        case_id = entry.case_id
        if case_id is None:
            continue
        case = await s.get(Case, case_id)
        if case is None or case.destroyed_on is not None:
            continue
        action = entry.action
        if action == "case.classify" and "urgent=True" in entry.detail.split():
            await _urgent_once(q, case_id)
        elif action == "team.add":
            await q.add(await q.user(_detail_value(entry.detail, "user")), "assigned", case_id)
        elif action in ("deadline.warning", "deadline.overdue_notice"):
            await _deadline_notice(q, case_id, entry.detail)
        elif action in APPROVAL_ACTIONS:
            role = INDEPENDENT_REVIEWER if case.independent else "approver"
            for approver in await _active_with(s, role):
                if await _may(q, approver, case_id, APPROVAL_ACTIONS[action]):
                    await q.add(approver, "approval", case_id)
        elif action == "identity.request":
            role = INDEPENDENT_REVIEWER if case.independent else "identity_custodian"
            for custodian in await _active_with(s, role):
                if await _may(q, custodian, case_id, "decide_identity"):
                    await q.add(custodian, "identity_request", case_id)


async def collect(services: Services, now: dt.datetime | None = None) -> int:
    """Queue the notices for what happened since the last run; returns how many."""
    now = now or clock.now()
    async with services.db.write() as s:
        q = _Queue(s, current_slot(now, batch_hours(services)), now.date())
        await _from_events(q)
        await s.flush()
        await _from_audit(q)
        return q.added


# --- sending ---------------------------------------------------------------------------------


@dataclass
class RunReport:
    notices: int = 0
    deadline_notices: int = 0
    staff_mails: int = 0
    reporter_mails: int = 0
    held: int = 0
    skipped: int = 0
    mail_configured: bool = True  # False: no SMTP server, the mail was skipped (not an error)
    error: str | None = None


async def _plan(
    s: AsyncSession, now: dt.datetime, hours: int, report: RunReport
) -> tuple[list[Mail], dict[str, list[int]], list[int]]:
    """Decide per pending notice: send (grouped by address), hold, or skip."""
    slot = current_slot(now, hours)
    pending = list(
        (
            await s.execute(
                select(PendingNotice)
                .where(PendingNotice.status == "pending")
                .order_by(PendingNotice.user_id, PendingNotice.id)
                .limit(BATCH_SIZE * 10)
            )
        ).scalars()
    )
    by_user: dict[str, list[PendingNotice]] = {}
    for n in pending:
        by_user.setdefault(n.user_id, []).append(n)
    mails: list[Mail] = []
    ids_by_address: dict[str, list[int]] = {}
    skip: list[int] = []
    for user_id, notices in by_user.items():
        user = await s.get(User, user_id)
        if user is None or user.disabled or not user.email:
            skip.extend(n.id for n in notices)
            continue
        roles = roles_of(user.roles)
        wanted = parse_prefs(user.notify_prefs, roles)
        principal = _principal(user)
        counts: Counter[str] = Counter()
        ids: list[int] = []
        seen: set[tuple[str, str | None]] = set()
        # the cases this person may still hear about: not excluded (policy), not destroyed
        case_ids = sorted({n.case_id for n in notices if n.case_id is not None})
        open_ids: set[str] = set()
        for start in range(0, len(case_ids), 500):
            open_ids |= set(
                (
                    await s.execute(
                        select(Case.id).where(
                            Case.id.in_(case_ids[start : start + 500]),
                            Case.destroyed_on.is_(None),
                            await excluded_case_ids_clause(principal),
                        )
                    )
                ).scalars()
            )
        for n in notices:
            if n.kind != URGENT and pref_kind(n.kind) not in wanted:
                skip.append(n.id)
                continue
            if n.case_id is not None and n.case_id not in open_ids:
                skip.append(n.id)
                continue
            if n.kind == "new_cases" and (n.batch is None or n.batch >= slot):
                report.held += 1
                continue
            ids.append(n.id)
            if (n.kind, n.case_id) in seen:
                continue
            seen.add((n.kind, n.case_id))
            counts[pref_kind(n.kind)] += 1
        if ids:
            mails.append(staff_mail(user.email, counts))
            ids_by_address.setdefault(user.email, []).extend(ids)
    return mails, ids_by_address, skip


async def _mark(s: AsyncSession, ids: Iterable[int], status: str, today: dt.date) -> None:
    todo = sorted(set(ids))
    for start in range(0, len(todo), 500):
        await s.execute(
            update(PendingNotice)
            .where(
                PendingNotice.id.in_(todo[start : start + 500]), PendingNotice.status == "pending"
            )
            .values(status=status, sent_on=today)
        )


async def send_pending(
    services: Services, mailer: Mailer, report: RunReport, now: dt.datetime | None = None
) -> None:
    now = now or clock.now()
    today = now.date()
    if not mailer.configured:
        await _skip_mail(services, report, today)
        return
    async with services.db.read() as s:
        mails, ids_by_address, skip = await _plan(s, now, batch_hours(services), report)
        contacts = list(
            (
                await s.execute(
                    select(ReporterContact).where(
                        ReporterContact.news_on.is_not(None),
                        (ReporterContact.notified_on.is_(None))
                        | (ReporterContact.notified_on < today),
                    )
                )
            ).scalars()
        )
        reporter_mails: list[tuple[str, Mail]] = []
        for c in contacts:
            try:
                address = open_address(services, c)
            except CryptoError:
                continue
            reporter_mails.append(
                (c.receipt_id, Mail(to=address, subject=REPORTER_SUBJECT, body=REPORTER_BODY))
            )
    refused: set[str] = set()
    sent_ok = True
    if mails or reporter_mails:
        try:
            refused = set(await mailer.send([*mails, *(m for _, m in reporter_mails)]))
        except MailError as exc:
            sent_ok = False
            report.error = str(exc)
    async with services.db.write() as s:
        await _mark(s, skip, "skipped", today)
        report.skipped += len(skip)
        if sent_ok:
            for address, ids in ids_by_address.items():
                await _mark(s, ids, "skipped" if address in refused else "sent", today)
            report.staff_mails += sum(1 for m in mails if m.to not in refused)
            for rid, mail in reporter_mails:
                row = await s.get(ReporterContact, rid)
                if row is not None:
                    row.news_on = None
                    row.notified_on = today
                if mail.to not in refused:
                    report.reporter_mails += 1
        await audit.record(
            s,
            actor_user_id=None,
            action="notify.run",
            detail=f"notices={report.notices} deadline_notices={report.deadline_notices} "
            f"staff_mails={report.staff_mails} reporter_mails={report.reporter_mails} "
            f"held={report.held} skipped={report.skipped} "
            f"error={'yes' if report.error else 'no'}",
        )


async def _skip_mail(services: Services, report: RunReport, today: dt.date) -> None:
    """No mail server: the staff notices stay listed in the workspace and are marked as not
    mailed; reporters' "there is news" marks wait for a mail server."""
    report.mail_configured = False
    async with services.db.write() as s:
        ids = list(
            (
                await s.execute(select(PendingNotice.id).where(PendingNotice.status == "pending"))
            ).scalars()
        )
        await _mark(s, ids, "skipped", today)
        report.skipped += len(ids)
        await audit.record(
            s,
            actor_user_id=None,
            action="notify.run",
            detail=f"notices={report.notices} deadline_notices={report.deadline_notices} "
            f"mail=not_configured skipped={report.skipped}",
        )


async def run(services: Services, mailer: Mailer | None = None) -> RunReport:
    """One scheduler tick: record due deadline notices, queue, send."""
    report = RunReport()
    now = clock.now()
    async with services.db.write() as s:
        report.deadline_notices = len(await deadline_notices.due_notices(s, now.date()))
    report.notices = await collect(services, now)
    await send_pending(services, mailer or Mailer(services.settings), report, now)
    return report


async def sent_log(services: Services, user_id: str, limit: int = 50) -> list[tuple[str, int]]:
    """Counts per kind of what was sent to one person (for their settings page)."""
    async with services.db.read() as s:
        rows = await s.execute(
            select(PendingNotice.kind, func.count())
            .where(PendingNotice.user_id == user_id, PendingNotice.status == "sent")
            .group_by(PendingNotice.kind)
            .limit(limit)
        )
        return [(str(k), int(n)) for k, n in rows.all()]
