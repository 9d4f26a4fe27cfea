"""The investigation (W6): a plan of steps with owners and due dates, and investigation records
by method. Framework-free, in the style of ``investigator.domain.casework``.

Each function runs inside the caller's write transaction, assumes the caller asked
``investigator.policy`` (action ``investigate`` for the team, ``message_reporter`` for progress
messages), and records what happened on the timeline and in the audit log.

* A step's title is sealed (aad case+``step:{id}``); its owner, due date and status are plaintext
  because deadlines and the overdue view need them.
* A record is a sealed ``Note`` of kind ``record:{method}`` (aad case+``note:{id}``, JSON
  ``{"text", "method", "file_ids"}``); an interview record needs the signed record attached as
  a file (stored with ``portal.case.evidence.EvidenceSink`` under the case key).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.policy import TEAM_WORK_STAGES
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.evidence import StoredFile
from portal.case.messages import add_message
from portal.case.sealing import open_json, seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import (
    Case,
    EvidenceFile,
    InvestigationStep,
    Note,
    TeamMember,
    User,
    new_id,
)
from portal.kernel.msgid import _
from portal.kernel.services import Services

SUBJECT_STATEMENT = "subject_statement"
METHODS: dict[str, str] = {
    "document_review": _("Document review"),
    "site_inspection": _("Site inspection"),
    "interview": _("Interview"),
    "data_analysis": _("Data analysis"),
    # the accused's side (issue 18): what the person concerned said, a record a handling plan
    # cites as their hearing (investigator.domain.handling)
    SUBJECT_STATEMENT: _("Statement of the person concerned (被举报人陈述)"),
}
STEP_STATUSES: dict[str, str] = {
    "open": _("Open"),
    "done": _("Done"),
    "dropped": _("Dropped"),
}
# stages in which the team works on the investigation
ACTIVE_STAGES = TEAM_WORK_STAGES

CLOSED_CASE = _("This case is not under investigation.")
CHOOSE_OWNER = _("Choose a member of the team as the owner.")
STEP_NEEDS_TITLE = _("Describe the step.")
DUE_IN_PAST = _("The due date cannot be in the past.")
CHOOSE_METHOD = _("Choose the method of the record.")
RECORD_NEEDS_TEXT = _("Write the record.")
INTERVIEW_NEEDS_FILE = _("Attach the signed interview record.")
NO_SUCH_STEP = _("No such step on this case.")
CHOOSE_STATUS = _("Choose a status.")
EMPTY_MESSAGE = _("Write the message first.")


@dataclass
class StepView:
    id: str
    title: str
    owner_id: str
    owner_name: str
    due_on: dt.date
    status: str
    done_on: dt.date | None
    overdue: bool


@dataclass
class RecordView:
    id: str
    method: str
    text: str
    author: str
    created_at: dt.datetime
    file_ids: list[str] = field(default_factory=list)


def _require_active(case: Case) -> None:
    if case.stage not in ACTIVE_STAGES:
        raise WorkflowError(CLOSED_CASE)


async def _is_member(session: AsyncSession, case_id: str, user_id: str) -> bool:
    row = (
        await session.execute(
            select(TeamMember.id).where(
                TeamMember.case_id == case_id, TeamMember.user_id == user_id
            )
        )
    ).first()
    return row is not None


async def add_step(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    title: str,
    owner_id: str,
    due_on: dt.date,
) -> InvestigationStep:
    """A step of the investigation plan, owned by a team member, due on a day."""
    _require_active(case)
    if not title.strip():
        raise WorkflowError(STEP_NEEDS_TITLE)
    if not owner_id or not await _is_member(session, case.id, owner_id):
        raise WorkflowError(CHOOSE_OWNER)
    if due_on < clock.today():
        raise WorkflowError(DUE_IN_PAST)
    sid = new_id()
    step = InvestigationStep(
        id=sid,
        case_id=case.id,
        owner_id=owner_id,
        due_on=due_on,
        status="open",
        sealed=seal_json(key, {"title": title}, field_aad(case.id, f"step:{sid}"), services),
        created_by=actor,
        created_at=clock.now(),
    )
    session.add(step)
    add_event(session, case.id, "step_added", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="investigation.step_add",
        case_id=case.id,
        detail=f"step={sid} owner={owner_id} due={due_on.isoformat()}",
    )
    return step


async def set_step_status(
    session: AsyncSession, case: Case, actor: str, step_id: str, status: str
) -> InvestigationStep:
    """The team marks a step done, dropped, or open again."""
    if status not in STEP_STATUSES:
        raise WorkflowError(CHOOSE_STATUS)
    step = await session.get(InvestigationStep, step_id[:64]) if step_id else None
    if step is None or step.case_id != case.id:
        raise WorkflowError(NO_SUCH_STEP)
    step.status = status
    step.done_on = clock.today() if status == "done" else None
    add_event(session, case.id, "step_status", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="investigation.step_status",
        case_id=case.id,
        detail=f"step={step.id} status={status}",
    )
    return step


def staff_file_rows(stored: list[StoredFile]) -> list[EvidenceFile]:
    """Rows for files a staff member uploaded (a signed interview record, say)."""
    return [
        EvidenceFile(
            id=f.file_id,
            case_id=f.case_id,
            kind=f.kind,
            original_id=f.original_id,
            storage_key=f.storage_key,
            uploaded_by="staff",
            created_on=clock.today(),
        )
        for f in stored
    ]


async def add_record(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    method: str,
    text: str,
    stored: list[StoredFile] | None = None,
) -> Note:
    """An investigation record by method, sealed; its attached files are added with it."""
    _require_active(case)
    if method not in METHODS:
        raise WorkflowError(CHOOSE_METHOD)
    if not text.strip():
        raise WorkflowError(RECORD_NEEDS_TEXT)
    files = list(stored or [])
    if any(f.case_id != case.id for f in files):
        raise WorkflowError(NO_SUCH_STEP)  # pragma: no cover - the caller targets this case
    originals = [f.file_id for f in files if f.kind == "original"]
    if method == "interview" and not originals:
        raise WorkflowError(INTERVIEW_NEEDS_FILE)
    session.add_all(staff_file_rows(files))
    nid = new_id()
    note = Note(
        id=nid,
        case_id=case.id,
        kind=f"record:{method}",
        author_user_id=actor,
        sealed=seal_json(
            key,
            {"text": text, "method": method, "file_ids": originals},
            field_aad(case.id, f"note:{nid}"),
            services,
        ),
        created_at=clock.now(),
    )
    session.add(note)
    add_event(session, case.id, "investigation_record", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="investigation.record",
        case_id=case.id,
        detail=f"note={nid} method={method} files={len(originals)}",
    )
    return note


async def progress_message(
    session: AsyncSession, services: Services, case: Case, key: bytes, actor: str, text: str
) -> None:
    """A progress message to the reporter (seed 001 三(三)3), sealed like every message."""
    if not text.strip():
        raise WorkflowError(EMPTY_MESSAGE)
    await add_message(services, session, case.id, key, text, author="staff", author_user_id=actor)
    add_event(session, case.id, "staff_message", public=False, actor=actor)
    await audit.record(
        session, actor_user_id=actor, action="case.progress_message", case_id=case.id
    )


async def steps(session: AsyncSession, case_id: str, key: bytes) -> list[StepView]:
    today = clock.today()
    rows = (
        await session.execute(
            select(InvestigationStep, User.display_name)
            .join(User, User.id == InvestigationStep.owner_id)
            .where(InvestigationStep.case_id == case_id)
            .order_by(InvestigationStep.due_on, InvestigationStep.created_at)
        )
    ).all()
    out = []
    for step, owner_name in rows:
        doc = open_json(key, step.sealed, field_aad(case_id, f"step:{step.id}"))
        out.append(
            StepView(
                id=step.id,
                title=doc.get("title", ""),
                owner_id=step.owner_id,
                owner_name=owner_name,
                due_on=step.due_on,
                status=step.status,
                done_on=step.done_on,
                overdue=step.status == "open" and step.due_on < today,
            )
        )
    return out


async def records(session: AsyncSession, case_id: str, key: bytes) -> list[RecordView]:
    rows = (
        await session.execute(
            select(Note, User.display_name)
            .join(User, User.id == Note.author_user_id)
            .where(Note.case_id == case_id, Note.kind.like("record:%"))
            .order_by(Note.created_at)
        )
    ).all()
    out = []
    for note, author in rows:
        doc = open_json(key, note.sealed, field_aad(case_id, f"note:{note.id}"))
        out.append(
            RecordView(
                id=note.id,
                method=doc.get("method", note.kind.removeprefix("record:")),
                text=doc.get("text", ""),
                author=author,
                created_at=note.created_at,
                file_ids=list(doc.get("file_ids", [])),
            )
        )
    return out


async def statement_records(session: AsyncSession, case_id: str, key: bytes) -> list[RecordView]:
    """The case's records of the person concerned's statement (被举报人陈述), oldest first."""
    return [r for r in await records(session, case_id, key) if r.method == SUBJECT_STATEMENT]


async def is_statement_record(session: AsyncSession, case_id: str, note_id: str) -> bool:
    """Is ``note_id`` a statement record (被举报人陈述) of this case?"""
    note = await session.get(Note, note_id) if note_id else None
    return (
        note is not None and note.case_id == case_id and note.kind == f"record:{SUBJECT_STATEMENT}"
    )


async def team_choices(session: AsyncSession, case_id: str) -> list[tuple[str, str]]:
    """(user id, display name) of the team, for the owner field."""
    rows = (
        await session.execute(
            select(User.id, User.display_name)
            .join(TeamMember, TeamMember.user_id == User.id)
            .where(TeamMember.case_id == case_id)
            .order_by(User.display_name)
        )
    ).all()
    return [(r[0], r[1]) for r in rows]
