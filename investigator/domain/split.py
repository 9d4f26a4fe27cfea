"""Manual split at triage (W3 with R3): one report becomes two linked cases, handled separately.

Framework-free, in the caller's write transaction. An intake officer holding the case key splits a
case still under review (``received`` or ``triage``): the new case gets its own number and its
own case key, the report's content (with the part split out, in the officer's words, and the
number it came from), the same accused persons (re-sealed under the new key) and the same
exclusions (linked subjects and conflicts: A2 holds for both cases), a kind and a category, and
the report's date of receipt (its deadlines run from the day the reporter sent it). Its key is
wrapped for the staff who hold the original's key (the intake officers of that moment) and, for
the reporter, under the original case key (``key_wraps.scope = 'split'``, with the original's
receipt): whoever opens the original with the receipt opens the split case too
(``portal.case.access.reporter_case_keys``), and nobody else. Evidence files and the reporter's
identity stay on the original case, to which the new one links (``cases.linked_case_id``).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, new_case_key, seal
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.numbers import allocate_case_number
from portal.case.sealing import case_suite, grant_user, open_json, seal_json
from portal.case.stage import UNDER_REVIEW
from portal.kernel import audit
from portal.kernel.db.models import Case, Conflict, KeyWrap, Subject, User, new_id
from portal.kernel.msgid import _
from portal.kernel.services import Services

KINDS = ("report", "complaint")
SPLIT_SCOPE = "split"
NOT_UNDER_REVIEW = _("Only a case under review can be split.")
SPLIT_NEEDS_TEXT = _("Describe the part of the report that becomes the new case.")
CHOOSE_KIND = _("Choose whether the new case is a report or a complaint.")


def split_aad(case_id: str, parent_id: str) -> bytes:
    """The AAD of a split case's key sealed under the case key it was split from."""
    return field_aad(case_id, f"split-from:{parent_id}")


async def split_case(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    kind: str,
    category: str,
    part: str,
) -> Case:
    """Split ``case`` (its key is ``key``); returns the new, linked case at stage ``received``."""
    if case.stage not in UNDER_REVIEW:
        raise WorkflowError(NOT_UNDER_REVIEW)
    if kind not in KINDS:
        raise WorkflowError(CHOOSE_KIND)
    if not part.strip():
        raise WorkflowError(SPLIT_NEEDS_TEXT)
    content = open_json(key, case.content, field_aad(case.id, "content"))
    new_key, new_case_id = new_case_key(), new_id()
    suite = case_suite(case)
    new = Case(
        id=new_case_id,
        number=await allocate_case_number(session, case.received_on),
        kind=kind,
        linked_case_id=case.id,
        channel=case.channel,
        category=category,
        reporter_relation=case.reporter_relation,
        anonymous=case.anonymous,
        stage="received",
        independent=case.independent,  # a part of a report about the centre stays so
        urgent=case.urgent,
        received_on=case.received_on,
        content=seal_json(
            new_key,
            {**content, "kind": kind, "split_part": part, "split_from": case.number},
            field_aad(new_case_id, "content"),
            services,
        ),
        suite=case.suite,
    )
    session.add(new)
    await session.flush()
    # the same accused persons, re-sealed; the same exclusions (A2)
    subject_ids: dict[str, str] = {}
    for subject in (
        await session.execute(select(Subject).where(Subject.case_id == case.id))
    ).scalars():
        sid = new_id()
        subject_ids[subject.id] = sid
        fields = open_json(key, subject.sealed, field_aad(case.id, f"subject:{subject.id}"))
        session.add(
            Subject(
                id=sid,
                case_id=new.id,
                sealed=seal_json(new_key, fields, field_aad(new.id, f"subject:{sid}"), services),
                user_id=subject.user_id,
                department_id=subject.department_id,
                fingerprint=subject.fingerprint,
            )
        )
    await session.flush()
    for conflict in (
        await session.execute(select(Conflict).where(Conflict.case_id == case.id))
    ).scalars():
        session.add(
            Conflict(
                case_id=new.id,
                user_id=conflict.user_id,
                declared_at=conflict.declared_at,
                subject_id=subject_ids.get(conflict.subject_id or ""),
            )
        )
    # the staff who hold the original's key, and the reporter's receipt through the original key
    for wrap in (
        await session.execute(
            select(KeyWrap).where(KeyWrap.case_id == case.id, KeyWrap.scope == "case")
        )
    ).scalars():
        if wrap.user_id is not None:
            user = await session.get(User, wrap.user_id)
            if user is not None and not user.disabled:
                grant_user(session, new.id, "case", new_key, user, suite)
        elif wrap.receipt_id is not None:
            session.add(
                KeyWrap(
                    case_id=new.id,
                    scope=SPLIT_SCOPE,
                    receipt_id=wrap.receipt_id,
                    wrapped=seal(key, new_key, split_aad(new.id, case.id), suite=suite),
                )
            )
    add_event(session, new.id, "received", public=True, actor=actor)
    add_event(session, case.id, "split", public=True, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="case.split",
        case_id=case.id,
        detail=f"new={new.id} number={new.number} kind={kind}",
    )
    return new
