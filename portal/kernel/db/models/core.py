"""The tables of a case: staff, cases, receipts, key wraps, identities, subjects, conflicts, teams,
messages, notes, files, events, nonces, the audit log, transfers, identity requests, plans;
and the stage changes noted on a session."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import Mapped, Session, mapped_column, object_session

from portal.kernel.db.models.base import Base, new_id, utcnow


class Department(Base):
    __tablename__ = "departments"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Category(Base):
    __tablename__ = "categories"
    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh_cn: Mapped[str] = mapped_column(String(200))
    name_zh_tw: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    in_scope: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)


class User(Base):
    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    username: Mapped[str] = mapped_column(String(80), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    # comma-separated role names from investigator.roles.ROLES
    roles: Mapped[str] = mapped_column(String(400), default="")
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), nullable=True)
    superior_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private_by_password: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_private_by_recovery: Mapped[bytes] = mapped_column(LargeBinary)
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    totp_last_step: Mapped[int] = mapped_column(BigInteger, default=0)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_signins: Mapped[int] = mapped_column(Integer, default=0)
    notify_prefs: Mapped[str] = mapped_column(String(400), default="")
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseCounter(Base):
    """Monthly sequence for case numbers (W1): YYMM + 4-digit sequence."""

    __tablename__ = "case_counters"
    month: Mapped[str] = mapped_column(String(4), primary_key=True)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    number: Mapped[str] = mapped_column(String(12), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # report | complaint
    linked_case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(16))  # web, phone, wechat, official_account, ...
    category: Mapped[str] = mapped_column(String(40))
    reporter_relation: Mapped[str] = mapped_column(String(16))
    anonymous: Mapped[bool] = mapped_column(Boolean)
    stage: Mapped[str] = mapped_column(String(24), default="received")
    severity: Mapped[str | None] = mapped_column(String(16), nullable=True)
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    risk: Mapped[str | None] = mapped_column(String(16), nullable=True)  # detriment risk
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(24), nullable=True)
    retaliation_of: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), nullable=True)
    # the independent channel (issue 18): the report concerns the 法审风控中心 or its staff, so
    # only independent reviewers (and the team they form) read it; investigator.policy
    independent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    received_on: Mapped[dt.date] = mapped_column(Date)  # reporter-originated: day only (R9)
    closed_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # the report body, facts, accused persons, complaint fields: one sealed JSON document
    content: Mapped[bytes] = mapped_column(LargeBinary)
    suite: Mapped[int] = mapped_column(Integer, default=1)
    destroyed_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    __table_args__ = (
        Index("ix_cases_stage_received", "stage", "received_on"),
        # statistics (W14): every count is over a range of received_on (migration 0007)
        Index("ix_cases_received_on", "received_on"),
        # the workspace lists: ORDER BY urgent, received_on, number LIMIT 50 walks this index
        Index("ix_cases_list_order", "urgent", "received_on", "number"),
    )


class Receipt(Base):
    """The reporter's door: an indexed lookup token derived from the receipt code (C3)."""

    __tablename__ = "receipts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    lookup_token: Mapped[bytes] = mapped_column(LargeBinary(32), unique=True)
    created_on: Mapped[dt.date] = mapped_column(Date)


class KeyWrap(Base):
    """A case key (scope=case) or identity key (scope=identity) wrapped for one reader.

    Exactly one of receipt_id / user_id is set. Deleting every wrap of a case destroys it (C5).
    """

    __tablename__ = "key_wraps"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    scope: Mapped[str] = mapped_column(String(10), default="case")
    receipt_id: Mapped[str | None] = mapped_column(
        ForeignKey("receipts.id"), nullable=True, index=True
    )
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (UniqueConstraint("case_id", "scope", "receipt_id", "user_id"),)


class Identity(Base):
    """The reporter's identity, sealed under its own identity key (A3)."""

    __tablename__ = "identities"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    added_on: Mapped[dt.date] = mapped_column(Date)
    retain_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class Subject(Base):
    """An accused person or unit. Name and position are sealed; the staff link is plaintext
    because access control (the originals rule, A2) must read it without a case key."""

    __tablename__ = "subjects"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True, index=True)
    department_id: Mapped[str | None] = mapped_column(ForeignKey("departments.id"), nullable=True)
    # keyed fingerprint of the normalised name, for the repeat-subject ledger without plaintext
    fingerprint: Mapped[bytes | None] = mapped_column(LargeBinary(32), nullable=True, index=True)


class Conflict(Base):
    """A conflict of interest (回避): the user never sees the case.

    Declared by the user, or found automatically at arrival (``subject_id`` set): an accused
    person's name matched this staff account, which got no key; the link of that subject to
    the account is proposed to intake until someone confirms it (``subject_id`` then cleared).
    An automatic one is dated to the day of arrival (midnight UTC: R9)."""

    __tablename__ = "conflicts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    declared_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    subject_id: Mapped[str | None] = mapped_column(ForeignKey("subjects.id"), nullable=True)
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)


class TeamMember(Base):
    __tablename__ = "team_members"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    function: Mapped[str] = mapped_column(
        String(24)
    )  # lead, department_head, expert, legal, member
    no_conflict_declared_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    __table_args__ = (UniqueConstraint("case_id", "user_id"),)


class Message(Base):
    __tablename__ = "messages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    author: Mapped[str] = mapped_column(String(10))  # reporter | staff
    author_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_on: Mapped[dt.date] = mapped_column(Date)
    seq: Mapped[int] = mapped_column(Integer)  # order within the case (dates are day-only)


class Note(Base):
    """Internal notes and investigation records: staff-only, sealed."""

    __tablename__ = "notes"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24), default="note")
    author_user_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvidenceFile(Base):
    """A stored ciphertext stream. Name, type, size and SHA-256 live inside the stream."""

    __tablename__ = "files"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))  # original | working | redacted
    original_id: Mapped[str | None] = mapped_column(ForeignKey("files.id"), nullable=True)
    # redacted copies of a transfer package are sealed under the package key, not the case key
    package_id: Mapped[str | None] = mapped_column(
        ForeignKey("transfer_packages.id"), nullable=True, index=True
    )
    storage_key: Mapped[str] = mapped_column(String(80), unique=True)
    uploaded_by: Mapped[str] = mapped_column(String(10))  # reporter | staff
    created_on: Mapped[dt.date] = mapped_column(Date)


class CaseEvent(Base):
    """Timeline entry. `public` events appear on the reporter's follow-up page, dated to the day."""

    __tablename__ = "case_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    public: Mapped[bool] = mapped_column(Boolean, default=False)
    actor_user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    on: Mapped[dt.date] = mapped_column(Date)
    # optional sealed detail (reason text etc.)
    sealed: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class SubmissionNonce(Base):
    """Makes a double submit create one case: the form's one-time token, hashed with the
    server key; the receipt code sealed under a key only the browser's token opens, kept
    for a few minutes so a repeated POST can show the same receipt page."""

    __tablename__ = "submission_nonces"
    token_hash: Mapped[bytes] = mapped_column(LargeBinary(32), primary_key=True)
    sealed_receipt: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), index=True)


class AuditEntry(Base):
    """Append-only, hash-chained (A5). No code path updates or deletes these rows."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    actor_user_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    action: Mapped[str] = mapped_column(String(60))
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    detail: Mapped[str] = mapped_column(String(1000), default="")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class TransferPackage(Base):
    """转办: what a department receives. Its own key, wrapped for the department's liaisons;
    it holds an investigator-written summary and redacted copies, never an original file nor
    the reporter's identity (A2)."""

    __tablename__ = "transfer_packages"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    department_id: Mapped[str] = mapped_column(ForeignKey("departments.id"), index=True)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    sealed_summary: Mapped[bytes] = mapped_column(LargeBinary)
    sealed_report_back: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    reported_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class PackageWrap(Base):
    __tablename__ = "package_wraps"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    package_id: Mapped[str] = mapped_column(ForeignKey("transfer_packages.id"), index=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    __table_args__ = (UniqueConstraint("package_id", "user_id"),)


class IdentityRequest(Base):
    """An investigator's justified request to see the reporter's identity (A3)."""

    __tablename__ = "identity_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    requester_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    sealed_reason: Mapped[bytes] = mapped_column(LargeBinary)  # under the case key
    status: Mapped[str] = mapped_column(String(12), default="pending")  # approved | refused
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    tell_reporter: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class InvestigationStep(Base):
    """A step of the investigation plan (W6): owner and due date are plaintext for deadlines
    and the overdue view; what the step is stays sealed (aad case+``step:{id}``)."""

    __tablename__ = "investigation_steps"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    due_on: Mapped[dt.date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(12), default="open")  # open | done | dropped
    done_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class HandlingPlan(Base):
    """处理方案 (W7): every saved version is kept. The analysis, responsibilities, measures and
    timeline are one sealed JSON document (aad case+``plan:{id}``); the approver's comments
    are sealed too (aad case+``plan-decision:{id}``)."""

    __tablename__ = "handling_plans"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    # draft | submitted | approved | returned
    status: Mapped[str] = mapped_column(String(12), default="draft")
    author_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    submitted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sealed_decision: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    __table_args__ = (UniqueConstraint("case_id", "version"),)


# --- stage changes --------------------------------------------------------------------------
# Every change of Case.stage is noted on its session as (case, old, new); a pre-commit hook of
# Database.write() (installed by portal.kernel.services) turns them into deadline transitions, so no
# workflow module has to remember to do it.
STAGE_CHANGES = "stage_changes"


# ids of the cases inserted by a write session (their rows exist only in its transaction)
CREATED_CASES = "created_cases"


@event.listens_for(Case.stage, "set", active_history=True)
def _note_stage_change(target: Case, value: str, old: object, _initiator: object) -> None:
    session = object_session(target)
    if session is None or value == old or not isinstance(old, str):
        return
    session.info.setdefault(STAGE_CHANGES, []).append((target, old, value))


@event.listens_for(Session, "before_flush")
def _note_new_cases(session: Session, _context: object, _instances: object) -> None:
    for obj in session.new:
        if isinstance(obj, Case):
            session.info.setdefault(STAGE_CHANGES, []).append((obj, None, obj.stage or "received"))
            session.info.setdefault(CREATED_CASES, set()).add(obj.id)
