"""The receipt door and follow-up: what a signed-in reporter sees and may do."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import delete, func, select

from crypto.envelope import field_aad, new_case_key
from crypto.errors import MalformedReceiptError
from crypto.receipts import (
    RECEIPT_MAX_INPUT,
    normalize_receipt,
    wrap_with_receipt,
)
from investigator.roles import roles_of
from portal.case.access import NotYours, ReporterAccess, reporter_case_keys
from portal.case.events import add_event
from portal.case.evidence import StoredFile, Target
from portal.case.messages import add_message
from portal.case.numbers import allocate_case_number
from portal.case.readers import enabled_staff
from portal.case.sealing import grant_user, open_json, seal_json, wrap_aad
from portal.case.stage import CLOSED, REPORTER, Stage, move
from portal.kernel import clock
from portal.kernel.db.models import (
    Case,
    CaseEvent,
    Conflict,
    EvidenceFile,
    Identity,
    KeyWrap,
    Message,
    Receipt,
    User,
    new_id,
)
from portal.kernel.services import Services
from portal.reporter.arrival import (
    NoReader,
    arrival_midnight,
    can_open_wraps,
)
from portal.reporter.intake import IdentityInput
from portal.reporter.submission import derive, file_rows, identity_doc, store_identity

# A receipt code that does not parse still costs one derivation, so that malformed, unknown
# and wrong codes take the same time (R8). This fixed, well-formed value is never issued
# (its check digit is computed like any other, but it is all zeros apart from that).
_DUMMY_CODE = "0" * 28


async def sign_in_with_receipt(services: Services, raw: str) -> ReporterAccess | None:
    """One derivation whatever the input (unless over-long: refused before any work).

    Malformed, unknown and wrong codes all return None after the same amount of work.
    """
    if len(raw) > RECEIPT_MAX_INPUT:
        return None
    try:
        normalized = normalize_receipt(raw)
        valid = True
    except MalformedReceiptError:
        normalized, valid = _DUMMY_CODE, False
    secrets_ = await derive(services, normalized)
    async with services.db.read() as s:
        receipt = (
            await s.execute(
                select(Receipt).where(Receipt.lookup_token.in_(secrets_.lookup_tokens()))
            )
        ).scalar_one_or_none()
    if receipt is None or not valid:
        return None
    found = secrets_.matching(receipt.lookup_token)
    return ReporterAccess(receipt.id, found.wrap_key, found.lookup_token)


@dataclass
class MessageView:
    author: str
    body: str
    on: dt.date


@dataclass
class EventView:
    kind: str
    on: dt.date


@dataclass
class ReporterCaseView:
    case_id: str
    kind: str
    stage: str
    received_on: dt.date
    anonymous: bool
    is_retaliation: bool
    events: list[EventView] = field(default_factory=list)
    messages: list[MessageView] = field(default_factory=list)
    file_count: int = 0


async def reporter_view(services: Services, access: ReporterAccess) -> list[ReporterCaseView]:
    views: list[ReporterCaseView] = []
    async with services.db.read() as s:
        keys = await reporter_case_keys(s, access)
        if not keys:
            return []
        cases = (
            await s.execute(
                select(Case)
                .where(Case.id.in_(keys), Case.destroyed_on.is_(None))
                .order_by(Case.number)
            )
        ).scalars()
        for case in cases:
            key = keys[case.id]
            view = ReporterCaseView(
                case_id=case.id,
                kind=case.kind,
                stage=case.stage,
                received_on=case.received_on,
                anonymous=case.anonymous,
                is_retaliation=case.retaliation_of is not None,
            )
            events = (
                await s.execute(
                    select(CaseEvent)
                    .where(CaseEvent.case_id == case.id, CaseEvent.public.is_(True))
                    .order_by(CaseEvent.id)
                )
            ).scalars()
            view.events = [EventView(kind=e.kind, on=e.on) for e in events]
            msgs = (
                await s.execute(
                    select(Message).where(Message.case_id == case.id).order_by(Message.seq)
                )
            ).scalars()
            for m in msgs:
                body = open_json(key, m.sealed, field_aad(case.id, f"message:{m.id}"))
                view.messages.append(
                    MessageView(author=m.author, body=body["text"], on=m.created_on)
                )
            view.file_count = int(
                (
                    await s.execute(
                        select(func.count())
                        .select_from(EvidenceFile)
                        .where(
                            EvidenceFile.case_id == case.id,
                            EvidenceFile.kind == "original",
                            # the reporter's own files only: never a staff upload (a signed
                            # interview record) nor a transfer package's copy
                            EvidenceFile.uploaded_by == "reporter",
                            EvidenceFile.package_id.is_(None),
                        )
                    )
                ).scalar_one()
            )
            views.append(view)
    return views


async def reporter_reply(
    services: Services, access: ReporterAccess, case_id: str, text: str
) -> None:
    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        if case_id not in keys:
            raise NotYours
        await add_message(services, s, case_id, keys[case_id], text, author="reporter")
        add_event(s, case_id, "reporter_message", public=False)


async def reporter_add_files(
    services: Services, access: ReporterAccess, stored: list[StoredFile]
) -> None:
    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        if any(f.case_id not in keys for f in stored):
            raise NotYours
        s.add_all(file_rows(stored, "reporter"))
        for case_id in {f.case_id for f in stored}:
            add_event(s, case_id, "reporter_added_evidence", public=True)


async def reporter_add_identity(
    services: Services, access: ReporterAccess, identity: IdentityInput
) -> None:
    from investigator.policy import acts_as, excluded_user_ids

    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        staff = [u for u in await enabled_staff(s) if can_open_wraps(u)]
        for case_id in keys:
            excluded = await excluded_user_ids(s, case_id)
            independent = bool(
                (await s.execute(select(Case.independent).where(Case.id == case_id))).scalar()
            )
            # the identity custodians; on an independent case the independent reviewers
            readers = [
                u
                for u in staff
                if u.id not in excluded
                and acts_as(roles_of(u.roles), "identity_custodian", independent)
            ]
            if not readers:  # an identity nobody could open is not taken (C7)
                raise NoReader("no identity custodian could open this identity")
            existing = await s.get(Identity, case_id)
            if existing is not None:
                await s.execute(
                    delete(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.scope == "identity")
                )
                await s.delete(existing)
                await s.flush()
            await store_identity(
                s,
                services,
                case_id,
                identity_doc(identity),
                readers,
                reporter=(access.receipt_id, access.secrets()),
            )
            case = await s.get(Case, case_id)
            if case is not None:
                case.anonymous = False
            add_event(s, case_id, "identity_added", public=True)


async def reporter_feedback(
    services: Services, access: ReporterAccess, case_id: str, kind: str, text: str
) -> None:
    """Satisfaction survey answer or a re-handling request (W9), sealed on the case."""
    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        if case_id not in keys:
            raise NotYours
        case = await s.get(Case, case_id)
        assert case is not None
        sealed = seal_json(
            keys[case_id], {"text": text}, field_aad(case_id, f"event:{kind}"), services
        )
        add_event(s, case_id, kind, public=True, detail=sealed)
        if kind in ("dissatisfied", "rehandling_requested") and case.stage in CLOSED:
            await move(s, case, Stage.REOPENED, action=REPORTER, actor=None)


async def report_retaliation(
    services: Services, access: ReporterAccess, case_id: str, text: str
) -> str:
    """A retaliation report becomes an urgent case linked to the original (W12)."""
    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        if case_id not in keys:
            raise NotYours
        original = await s.get(Case, case_id)
        assert original is not None
        new = Target(case_id=new_id(), case_key=new_case_key())
        today = clock.today()
        number = await allocate_case_number(s, today)
        s.add(
            Case(
                id=new.case_id,
                number=number,
                kind="report",
                linked_case_id=original.id,
                retaliation_of=original.id,
                channel=original.channel,
                category="retaliation",
                reporter_relation=original.reporter_relation,
                anonymous=original.anonymous,
                stage="received",
                independent=original.independent,
                urgent=True,
                received_on=today,
                content=seal_json(
                    new.case_key,
                    {"retaliation": text, "kind": "retaliation"},
                    field_aad(new.case_id, "content"),
                    services,
                ),
                suite=services.keyring.suite.value,
            )
        )
        await s.flush()
        s.add(
            KeyWrap(
                case_id=new.case_id,
                scope="case",
                receipt_id=access.receipt_id,
                wrapped=wrap_with_receipt(
                    access.secrets(),
                    new.case_key,
                    wrap_aad(new.case_id, "case", access.receipt_id),
                    suite=services.keyring.suite,
                ),
            )
        )
        # the original's readers (its team and intake) can read the retaliation case too
        reader_ids = {
            w.user_id
            for w in (
                await s.execute(
                    select(KeyWrap).where(
                        KeyWrap.case_id == original.id,
                        KeyWrap.scope == "case",
                        KeyWrap.user_id.is_not(None),
                    )
                )
            ).scalars()
        }
        from investigator.policy import acts_as, excluded_user_ids

        # the intake officers; for an independent original the independent reviewers only
        readers = {
            u.id: u
            for u in await enabled_staff(s)
            if acts_as(roles_of(u.roles), "intake_officer", original.independent)
        }
        if reader_ids:
            for u in (await s.execute(select(User).where(User.id.in_(reader_ids)))).scalars():
                if acts_as(roles_of(u.roles), "intake_officer", False) and original.independent:
                    continue  # never the centre's intake officers on an independent case
                readers[u.id] = u
        # whoever the original excludes (its accused, its conflicts) is excluded from the
        # retaliation case too, from its first moment, and gets no key (A2)

        excluded = await excluded_user_ids(s, original.id)
        s.add_all(
            Conflict(case_id=new.case_id, user_id=uid, declared_at=arrival_midnight(today))
            for uid in sorted(excluded)
        )
        readable = [u for u in readers.values() if can_open_wraps(u) and u.id not in excluded]
        if not readable:  # a case nobody could open is not taken (C7)
            raise NoReader("no staff member could open this retaliation report")
        for user in readable:
            grant_user(s, new.case_id, "case", new.case_key, user, services.keyring.suite)
        add_event(s, new.case_id, "received", public=True)
        add_event(s, original.id, "retaliation_reported", public=True)
        return new.case_id
