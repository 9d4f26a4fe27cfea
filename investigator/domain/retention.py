"""Archive, retention and destruction (档案, W13, C5). Framework-free.

* ``archive``: a closed case (``concluded``, ``rejected``, or ``transferred`` with every
  transfer package reported back) moves to stage ``archived`` with all its records. Its record
  class fixes its retention date from ``closed_on``: substantiated cases
  ``PORTAL_RETENTION_SUBSTANTIATED_YEARS`` (10), the others
  ``PORTAL_RETENTION_UNSUBSTANTIATED_YEARS`` (3; neither below 3, the legal floor); the
  reporter's identity is kept ``PORTAL_RETENTION_IDENTITY_YEARS`` (3) after closure
  (``identities.retain_until``). Once an administrator saves the periods on
  /workspace/privacy (``portal.kernel.org_settings``), those apply to every case archived after.
  The audit log is never pruned here (``PORTAL_RETENTION_AUDIT_YEARS`` is at least 3).
* A legal hold (set or cleared by an approver, audited) stops every destruction of the case,
  its identity included, until it is cleared.
* Destruction needs two approvals from two different approvers, neither on the team nor a
  subject nor conflicted, and happens once the retention date has passed. It is crypto-shredding
  and irreversible: every key wrap of the case (all scopes), the wraps of its transfer
  packages and the sealed identity are deleted, the ciphertext files are deleted from the file
  store, messages and notes are deleted, every other sealed column of the case's rows is
  emptied, and a tombstone is left for statistics (number, dates, category, outcome).
* ``run`` is the daily job (``portal retention run [--dry-run]``): it performs the destructions
  that are due and approved and the identity expiries, and logs each in the audit log.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import LargeBinary, delete, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import may_decide
from portal.case.errors import WorkflowError
from portal.case.stage import Stage, move
from portal.kernel import audit, clock, org_settings
from portal.kernel.db.models import (
    ArchiveRecord,
    Base,
    Case,
    DestructionApproval,
    EvidenceFile,
    Identity,
    IdentityCorrection,
    KeyWrap,
    Message,
    Note,
    PackageWrap,
    Receipt,
    Reward,
    RightsRequest,
    TransferPackage,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services
from portal.kernel.settings import Settings

SUBSTANTIATED_OUTCOMES = frozenset({"substantiated", "partly_substantiated"})
APPROVALS_NEEDED = 2


def add_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def record_class(case: Case) -> str:
    return "substantiated" if case.outcome in SUBSTANTIATED_OUTCOMES else "unsubstantiated"


def retention_years(settings: Settings, klass: str) -> int:
    if klass == "substantiated":
        return settings.retention_substantiated_years
    return settings.retention_unsubstantiated_years


def period_years(periods: org_settings.OrgValues, klass: str) -> int:
    """The retention of a record class as the administrator set it on /workspace/privacy
    (``portal.kernel.org_settings``; the ``PORTAL_RETENTION_*`` settings until they do)."""
    if klass == "substantiated":
        return periods.retention_substantiated_years
    return periods.retention_unsubstantiated_years


async def is_closed(session: AsyncSession, case: Case) -> bool:
    """Concluded, rejected, or transferred with every package reported back."""
    if case.stage in ("concluded", "rejected"):
        return True
    if case.stage != "transferred":
        return False
    open_packages = (
        await session.execute(
            select(func.count())
            .select_from(TransferPackage)
            .where(TransferPackage.case_id == case.id, TransferPackage.reported_on.is_(None))
        )
    ).scalar_one()
    return int(open_packages) == 0


async def archive(
    session: AsyncSession, settings: Settings, case: Case, actor: str | None
) -> ArchiveRecord:
    if not await is_closed(session, case):
        raise WorkflowError(_("Only a closed case can be archived."))
    today = clock.today()
    if case.closed_on is None:
        case.closed_on = today
    klass = record_class(case)
    periods = await org_settings.load(session, settings)  # the administrator's, if saved
    retain_until = add_years(case.closed_on, period_years(periods, klass))
    record = await session.get(ArchiveRecord, case.id)
    if record is None:
        record = ArchiveRecord(case_id=case.id, legal_hold=False)
        session.add(record)
    record.archived_on, record.archived_by = today, actor
    record.record_class, record.retain_until = klass, retain_until
    identity = await session.get(Identity, case.id)
    if identity is not None:
        identity.retain_until = add_years(case.closed_on, periods.retention_identity_years)
    await move(
        session,
        case,
        Stage.ARCHIVED,
        action="case.archive",
        actor=actor,
        detail=f"class={klass} retain_until={retain_until.isoformat()}",
    )
    return record


async def set_legal_hold(session: AsyncSession, case_id: str, actor: str, *, hold: bool) -> None:
    record = await session.get(ArchiveRecord, case_id)
    if record is None:
        raise WorkflowError(_("The case is not archived."))
    record.legal_hold = hold
    record.hold_set_by = actor if hold else None
    record.hold_since = clock.today() if hold else None
    await audit.record(
        session,
        actor_user_id=actor,
        action="retention.hold_set" if hold else "retention.hold_cleared",
        case_id=case_id,
    )


async def approvals(session: AsyncSession, case_id: str) -> list[DestructionApproval]:
    return list(
        (
            await session.execute(
                select(DestructionApproval).where(DestructionApproval.case_id == case_id)
            )
        ).scalars()
    )


async def approve_destruction(session: AsyncSession, case: Case, actor: str) -> int:
    """One approver's approval; returns how many distinct approvals the case now has."""
    if case.stage != "archived" or case.destroyed_on is not None:
        raise WorkflowError(_("Only an archived case can be destroyed."))
    if not await may_decide(session, case.id, actor):
        raise WorkflowError(_("You cannot approve the destruction of this case."))
    existing = await approvals(session, case.id)
    if any(a.approver_id == actor for a in existing):
        raise WorkflowError(_("The two approvals must come from two different people."))
    session.add(DestructionApproval(case_id=case.id, approver_id=actor, approved_on=clock.today()))
    await audit.record(
        session, actor_user_id=actor, action="retention.destruction_approved", case_id=case.id
    )
    return len(existing) + 1


@dataclass
class Due:
    case_id: str
    number: str
    retain_until: dt.date
    approvals: int
    legal_hold: bool

    @property
    def ready(self) -> bool:
        return self.approvals >= APPROVALS_NEEDED and not self.legal_hold


async def due_destructions(session: AsyncSession, today: dt.date) -> list[Due]:
    """Archived cases whose retention date has passed (held ones included, marked)."""
    rows = (
        await session.execute(
            select(ArchiveRecord, Case.number)
            .join(Case, Case.id == ArchiveRecord.case_id)
            .where(
                ArchiveRecord.retain_until <= today,
                Case.destroyed_on.is_(None),
                Case.stage == "archived",
            )
            .order_by(ArchiveRecord.retain_until, Case.number)
        )
    ).all()
    out = []
    for record, number in rows:
        approved = {a.approver_id for a in await approvals(session, record.case_id)}
        out.append(
            Due(record.case_id, number, record.retain_until, len(approved), record.legal_hold)
        )
    return out


async def _check_destroyable(session: AsyncSession, case: Case) -> None:
    record = await session.get(ArchiveRecord, case.id)
    if case.destroyed_on is not None or case.stage != "archived" or record is None:
        raise WorkflowError(_("Only an archived case can be destroyed."))
    if record.legal_hold:
        raise WorkflowError(_("The case is under legal hold."))
    if record.retain_until > clock.today():
        raise WorkflowError(_("The retention period has not ended yet."))
    approvers = set()
    for a in await approvals(session, case.id):
        # an approver who has since joined the team or been named no longer counts
        if await may_decide(session, case.id, a.approver_id):
            approvers.add(a.approver_id)
    if len(approvers) < APPROVALS_NEEDED:
        raise WorkflowError(_("The destruction needs the approval of two different approvers."))


def _sealed_columns() -> list[tuple[str, dict[str, bytes | None]]]:
    """Every table with a ``case_id`` and its sealed columns, emptied (b"" or NULL)."""
    out = []
    for table in Base.metadata.sorted_tables:
        if "case_id" not in table.c or table.name in ("cases",):
            continue
        values: dict[str, bytes | None] = {}
        for col in table.c:
            if isinstance(col.type, LargeBinary) and col.name.startswith("sealed"):
                values[col.name] = None if col.nullable else b""
        if values:
            out.append((table.name, values))
    return out


async def shred(session: AsyncSession, case: Case, actor: str | None) -> list[str]:
    """Destroy the case's keys and content (C5); returns the file-store keys to delete once the
    transaction has committed. The caller has checked ``_check_destroyable``."""
    cid = case.id
    receipt_ids = {
        r
        for r in (
            await session.execute(
                select(KeyWrap.receipt_id).where(
                    KeyWrap.case_id == cid, KeyWrap.receipt_id.is_not(None)
                )
            )
        ).scalars()
        if r is not None
    }
    wraps = await session.execute(delete(KeyWrap).where(KeyWrap.case_id == cid))
    packages = select(TransferPackage.id).where(TransferPackage.case_id == cid)
    await session.execute(delete(PackageWrap).where(PackageWrap.package_id.in_(packages)))
    await session.execute(delete(Identity).where(Identity.case_id == cid))
    await session.execute(delete(IdentityCorrection).where(IdentityCorrection.case_id == cid))
    await session.execute(delete(RightsRequest).where(RightsRequest.case_id == cid))
    storage_keys = list(
        (
            await session.execute(
                select(EvidenceFile.storage_key).where(EvidenceFile.case_id == cid)
            )
        ).scalars()
    )
    await session.execute(
        update(EvidenceFile).where(EvidenceFile.case_id == cid).values(original_id=None)
    )
    await session.execute(delete(EvidenceFile).where(EvidenceFile.case_id == cid))
    await session.execute(delete(Message).where(Message.case_id == cid))
    await session.execute(delete(Note).where(Note.case_id == cid))
    for name, values in _sealed_columns():
        table = Base.metadata.tables[name]
        await session.execute(update(table).where(table.c.case_id == cid).values(**values))
    await session.execute(update(Reward).where(Reward.case_id == cid).values(claimed_on=None))
    # a receipt that opens nothing any more is forgotten too
    for rid in receipt_ids:
        left = (await session.execute(select(exists().where(KeyWrap.receipt_id == rid)))).scalar()
        if not left:
            await session.execute(delete(Receipt).where(Receipt.id == rid))
    case.content = b""
    case.destroyed_on = clock.today()
    await audit.record(
        session,
        actor_user_id=actor,
        action="case.destroy",
        case_id=cid,
        detail=f"wraps={int(getattr(wraps, 'rowcount', 0) or 0)} files={len(storage_keys)}",
    )
    return storage_keys


async def destroy_case(services: Services, case_id: str, actor: str | None = None) -> None:
    """Check and perform one destruction, then delete its ciphertext files."""
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        if case is None:
            raise WorkflowError(_("Only an archived case can be destroyed."))
        await _check_destroyable(s, case)
        keys = await shred(s, case, actor)
    # SQLite: no older copy of the shredded pages stays in the WAL (C5)
    await services.db.checkpoint()
    for key in keys:
        await services.files.delete(key)


async def expire_identity(session: AsyncSession, case_id: str) -> None:
    """The reporter's identity (and any reward claim) reached its retention date."""
    await session.execute(
        delete(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.scope.in_(("identity", "claim")))
    )
    await session.execute(delete(Identity).where(Identity.case_id == case_id))
    await session.execute(delete(IdentityCorrection).where(IdentityCorrection.case_id == case_id))
    await session.execute(update(Reward).where(Reward.case_id == case_id).values(sealed_claim=None))
    await audit.record(
        session, actor_user_id=None, action="retention.identity_destroyed", case_id=case_id
    )


@dataclass
class RunReport:
    destroyed: list[str] = field(default_factory=list)  # case numbers
    waiting: list[str] = field(default_factory=list)  # due, but approvals missing or held
    identities: list[str] = field(default_factory=list)  # case numbers


async def run(
    services: Services,
    *,
    dry_run: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> RunReport:
    """The daily job: what is due, and (unless ``dry_run``) do it. ``progress(label, done,
    total)`` hears of each case gone through."""
    report = RunReport()
    step = progress or (lambda _label, _done, _total: None)
    today = clock.today()
    async with services.db.read() as s:
        due = await due_destructions(s, today)
        ids = (
            await s.execute(
                select(Identity.case_id, Case.number)
                .join(Case, Case.id == Identity.case_id)
                .outerjoin(ArchiveRecord, ArchiveRecord.case_id == Identity.case_id)
                .where(
                    Identity.retain_until.is_not(None),
                    Identity.retain_until <= today,
                    Case.stage == "archived",  # a reopened case keeps its reporter's identity
                    func.coalesce(ArchiveRecord.legal_hold, False).is_(False),
                )
            )
        ).all()
    for done, item in enumerate(due):
        step("cases due for destruction", done, len(due))
        if not item.ready:
            report.waiting.append(item.number)
            continue
        if not dry_run:
            try:
                await destroy_case(services, item.case_id)
            except WorkflowError:
                report.waiting.append(item.number)
                continue
        report.destroyed.append(item.number)
    step("cases due for destruction", len(due), len(due))
    destroyed = set(report.destroyed)
    for done, (case_id, number) in enumerate(ids):
        step("identities due to expire", done, len(ids))
        if number in destroyed:
            continue
        if not dry_run:
            async with services.db.write() as s:
                await expire_identity(s, case_id)
        report.identities.append(number)
    if report.identities and not dry_run:
        await services.db.checkpoint()  # the expired identities' pages leave the WAL too

    step("identities due to expire", len(ids), len(ids))
    if not dry_run:
        async with services.db.write() as s:
            await audit.record(
                s,
                actor_user_id=None,
                action="retention.run",
                detail=(
                    f"destroyed={len(report.destroyed)} waiting={len(report.waiting)} "
                    f"identities={len(report.identities)}"
                ),
            )
    return report
