"""A case as staff see it: unwrap the case key with the staff member's private key and open
what the case holds. Framework-free; callers have asked `investigator.policy` first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from crypto.errors import CryptoError
from crypto.recipients import unwrap_for_recipient
from portal.case.evidence import read_header
from portal.case.sealing import open_json, wrap_aad
from portal.kernel.db.models import (
    Case,
    CaseEvent,
    EvidenceFile,
    Identity,
    KeyWrap,
    Message,
    Note,
    Subject,
    TeamMember,
    User,
)
from portal.kernel.services import Services


class NoKey(Exception):
    """This staff member holds no wrap of the case key (never granted, or revoked)."""


async def staff_key(
    session: AsyncSession, case_id: str, user_id: str, private_key: bytes, scope: str = "case"
) -> bytes:
    wrap = (
        await session.execute(
            select(KeyWrap).where(
                KeyWrap.case_id == case_id, KeyWrap.scope == scope, KeyWrap.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    if wrap is None:
        raise NoKey
    try:
        return unwrap_for_recipient(private_key, wrap.wrapped, wrap_aad(case_id, scope, user_id))
    except CryptoError:
        raise NoKey from None


@dataclass
class SubjectView:
    id: str
    name: str
    department: str
    position: str
    user_id: str | None


@dataclass
class FileView:
    id: str
    kind: str
    name: str
    content_type: str
    original_id: str | None
    uploaded_by: str
    created_on: dt.date


@dataclass
class CaseDetail:
    case: Case
    content: dict[str, Any]
    subjects: list[SubjectView] = field(default_factory=list)
    messages: list[tuple[str, str, dt.date]] = field(default_factory=list)
    notes: list[tuple[str, str, str, dt.datetime]] = field(default_factory=list)
    files: list[FileView] = field(default_factory=list)
    events: list[CaseEvent] = field(default_factory=list)
    team: list[tuple[User, str]] = field(default_factory=list)
    has_identity: bool = False


async def open_subjects(session: AsyncSession, case_id: str, key: bytes) -> list[SubjectView]:
    rows = (await session.execute(select(Subject).where(Subject.case_id == case_id))).scalars()
    out = []
    for s in rows:
        doc = open_json(key, s.sealed, field_aad(case_id, f"subject:{s.id}"))
        out.append(
            SubjectView(
                s.id,
                doc.get("name", ""),
                doc.get("department", ""),
                doc.get("position", ""),
                s.user_id,
            )
        )
    return out


async def case_detail(
    services: Services,
    session: AsyncSession,
    case: Case,
    key: bytes,
    *,
    originals: bool,
    with_identity_flag: bool,
) -> CaseDetail:
    """Everything on the case page. Original files are listed only when `originals` is True
    (team members); everyone else sees working copies (or nothing, for files without one)."""
    detail = CaseDetail(
        case=case, content=open_json(key, case.content, field_aad(case.id, "content"))
    )
    detail.subjects = await open_subjects(session, case.id, key)
    for m in (
        await session.execute(
            select(Message).where(Message.case_id == case.id).order_by(Message.seq)
        )
    ).scalars():
        body = open_json(key, m.sealed, field_aad(case.id, f"message:{m.id}"))
        detail.messages.append((m.author, body["text"], m.created_on))
    for n in (
        await session.execute(select(Note).where(Note.case_id == case.id).order_by(Note.created_at))
    ).scalars():
        body = open_json(key, n.sealed, field_aad(case.id, f"note:{n.id}"))
        author = await session.get(User, n.author_user_id)
        detail.notes.append(
            (n.kind, body["text"], author.display_name if author else "?", n.created_at)
        )
    files = (
        (
            await session.execute(
                select(EvidenceFile)
                .where(EvidenceFile.case_id == case.id, EvidenceFile.package_id.is_(None))
                .order_by(EvidenceFile.created_on)
            )
        )
        .scalars()
        .all()
    )
    for f in files:
        if f.kind == "original" and not originals:
            continue
        header = await read_header(services.files, case.id, f.id, f.storage_key, key)
        detail.files.append(
            FileView(
                f.id,
                f.kind,
                header.name,
                header.content_type,
                f.original_id,
                f.uploaded_by,
                f.created_on,
            )
        )
    detail.events = list(
        (
            await session.execute(
                select(CaseEvent).where(CaseEvent.case_id == case.id).order_by(CaseEvent.id)
            )
        ).scalars()
    )
    for member in (
        await session.execute(select(TeamMember).where(TeamMember.case_id == case.id))
    ).scalars():
        user = await session.get(User, member.user_id)
        if user is not None:
            detail.team.append((user, member.function))
    if with_identity_flag:
        detail.has_identity = (await session.get(Identity, case.id)) is not None
    return detail


async def open_identity(
    session: AsyncSession, case_id: str, user_id: str, private_key: bytes
) -> dict[str, str] | None:
    identity = await session.get(Identity, case_id)
    if identity is None:
        return None
    ikey = await staff_key(session, case_id, user_id, private_key, scope="identity")
    doc: dict[str, str] = open_json(ikey, identity.sealed, field_aad(case_id, "identity"))
    return doc
