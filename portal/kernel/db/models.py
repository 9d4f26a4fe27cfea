"""The data model.

Rule of thumb (requirement C1): a column holds plaintext only when triage, deadlines,
access control or statistics need it; everything a reporter wrote is a sealed blob
(`LargeBinary`) opened with the case key (or the identity key). docs/security.md keeps the
table of every column, plaintext or sealed, and why.
"""

from __future__ import annotations

import datetime as dt
import uuid

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
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, object_session


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    pass


# --- reference data ---------------------------------------------------------------------


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


# --- staff ------------------------------------------------------------------------------


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


# --- cases ------------------------------------------------------------------------------


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


# --- deadlines (W10, W15) ---------------------------------------------------------------------


class CalendarDay(Base):
    """An administrator's override of the working-day calendar (a holiday or a 调休 day the
    `chinesecalendar` package does not know, or corrects)."""

    __tablename__ = "calendar_days"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    is_workday: Mapped[bool] = mapped_column(Boolean)
    note: Mapped[str] = mapped_column(String(200), default="")
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    set_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CalendarYear(Base):
    """A year whose complete holiday schedule (holiday ranges and 调休 working days) an
    administrator entered and confirmed: only then does the calendar count the year as covered
    (years the ``chinesecalendar`` package knows are covered without a row)."""

    __tablename__ = "calendar_years"
    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    confirmed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    confirmed_on: Mapped[dt.date] = mapped_column(Date)


class CaseDeadline(Base):
    """One stage deadline of a case. ``unit`` is working_days, calendar_days, months or
    minutes; ``paused_days`` counts paused days in that unit (minutes: never paused)."""

    __tablename__ = "case_deadlines"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    stage: Mapped[str] = mapped_column(String(24))
    unit: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer)
    starts_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    paused_since: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    paused_days: Mapped[int] = mapped_column(Integer, default=0)
    extended: Mapped[bool] = mapped_column(Boolean, default=False)
    extension_days: Mapped[int] = mapped_column(Integer, default=0)
    # requested | approved | refused
    extension_status: Mapped[str | None] = mapped_column(String(12), nullable=True)
    extension_requested_by: Mapped[str | None] = mapped_column(
        ForeignKey("users.id"), nullable=True
    )
    extension_decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    # the reason, sealed as the reporter message it becomes once approved
    extension_message_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    sealed_extension_reason: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    met_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    handler_id: Mapped[str | None] = mapped_column(
        ForeignKey("users.id"), nullable=True, index=True
    )
    notice_level: Mapped[int] = mapped_column(Integer, default=0)  # 0, 50, 80, 100 (overdue)
    # computed on Monday-to-Friday because a year it spans has no confirmed calendar yet
    provisional: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    __table_args__ = (Index("ix_case_deadlines_open", "met_on", "due_on"),)


class DeadlinePause(Base):
    """The clock stopped (awaiting the reporter, external appraisal); the note is sealed."""

    __tablename__ = "deadline_pauses"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    deadline_id: Mapped[str] = mapped_column(ForeignKey("case_deadlines.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    reason: Mapped[str] = mapped_column(String(24))
    sealed_note: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    started_on: Mapped[dt.date] = mapped_column(Date)
    ended_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    paused_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    resumed_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)


# --- rewards, protections, archive and destruction (W11-W13, C5) -------------------------------


class Reward(Base):
    """奖励 (W11): one per case. Amounts are plaintext for statistics (W14); the contribution
    basis and the payment record are sealed under the case's reward key (``key_wraps.scope =
    'reward'``: the team, approvers and reward officers); the reporter's claim (identity and
    payment details) under a claim key wrapped for reward officers only (scope ``claim``)."""

    __tablename__ = "rewards"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), unique=True)
    # proposed | approved | refused | paid
    status: Mapped[str] = mapped_column(String(12), default="proposed")
    amount: Mapped[int] = mapped_column(Integer)
    recovered_amount: Mapped[int] = mapped_column(BigInteger)
    sealed_basis: Mapped[bytes] = mapped_column(LargeBinary)
    proposed_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    proposed_on: Mapped[dt.date] = mapped_column(Date)
    approver_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    approver_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    officer_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    officer_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    refused_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    paid_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sealed_payment: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    claimed_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    sealed_claim: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # statistics (W14): rewards are counted by proposal date (migration 0007)
    __table_args__ = (Index("ix_rewards_proposed_on", "proposed_on"),)


class RewardDecision(Base):
    """One approver's decision on a reward proposal (W11): who, when (to the day) and their
    opinion, sealed under the case's reward key (aad case+``reward-decision:{id}``). How many
    approvals a reward needs depends on its amount (``PORTAL_REWARD_APPROVALS``)."""

    __tablename__ = "reward_decisions"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    reward_id: Mapped[str] = mapped_column(ForeignKey("rewards.id"), index=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    decider_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    approve: Mapped[bool] = mapped_column(Boolean)
    decided_on: Mapped[dt.date] = mapped_column(Date)
    # a proposal made again after a refusal starts a new round: older decisions stay as history
    proposal_round: Mapped[int] = mapped_column(Integer, default=1)
    sealed_opinion: Mapped[bytes] = mapped_column(LargeBinary)


class ProtectionPlan(Base):
    """免责与保护 (W12): detriment-risk assessment and protection plan, sealed under the case
    key (aad case+``protection``); the end of monitoring is plaintext for reminders."""

    __tablename__ = "protection_plans"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    monitor_until: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    updated_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    updated_on: Mapped[dt.date] = mapped_column(Date)


class LeniencyRecord(Base):
    """Leniency for a cooperating participant (W12): party kind and measure are plaintext for
    statistics; who and why are sealed (aad case+``leniency:{id}``)."""

    __tablename__ = "leniency_records"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    party: Mapped[str] = mapped_column(String(12))  # supplier | partner | employee
    measure: Mapped[str] = mapped_column(String(24))
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    granted_by: Mapped[str] = mapped_column(ForeignKey("users.id"))
    granted_on: Mapped[dt.date] = mapped_column(Date)


class ArchiveRecord(Base):
    """档案 (W13): when a closed case was archived, its record class and retention date, and
    the legal hold that overrides destruction."""

    __tablename__ = "archive_records"
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    archived_on: Mapped[dt.date] = mapped_column(Date)
    archived_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    record_class: Mapped[str] = mapped_column(String(16))  # substantiated | unsubstantiated
    retain_until: Mapped[dt.date] = mapped_column(Date, index=True)
    legal_hold: Mapped[bool] = mapped_column(Boolean, default=False)
    hold_set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    hold_since: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class DestructionApproval(Base):
    """One of the two approvals a destruction needs (W13, C5)."""

    __tablename__ = "destruction_approvals"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    approver_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    approved_on: Mapped[dt.date] = mapped_column(Date)
    __table_args__ = (UniqueConstraint("case_id", "approver_id"),)


# --- statistics summaries (W14, W15) --------------------------------------------------------------
# Kept by database triggers (migration 0007) so the statistics never scan a million cases; they
# hold counts only (no case id), and ``investigator.domain.statistics`` subtracts the viewer's
# excluded
# cases (A2) from them on every request.


class StatsCaseDay(Base):
    """Cases received on ``day`` per dimension value (kind, category, channel, department,
    stage, identity, outcome); ``value`` is ``''`` for a missing department or outcome."""

    __tablename__ = "stats_case_days"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    dimension: Mapped[str] = mapped_column(String(16), primary_key=True)
    value: Mapped[str] = mapped_column(String(40), primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class StatsDeadlineDay(Base):
    """Deadlines met on ``day`` per stage, calendar days taken and lateness."""

    __tablename__ = "stats_deadline_days"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    stage: Mapped[str] = mapped_column(String(24), primary_key=True)
    days_taken: Mapped[int] = mapped_column(Integer, primary_key=True)
    late: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class StatsHandlerDay(Base):
    """Deadlines met on ``day`` per handler (``''``: none) and lateness (W15)."""

    __tablename__ = "stats_handler_days"
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    handler_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    late: Mapped[int] = mapped_column(Integer, primary_key=True)
    n: Mapped[int] = mapped_column(Integer, default=0)


class StatsSubjectKey(Base):
    """不良记录台账 as counts: in how many cases a subject key is named; ``kind`` is
    ``subject`` (hex of the keyed name fingerprint), ``staff_subject`` (user id) or
    ``department`` (department id)."""

    __tablename__ = "stats_subject_keys"
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    cases: Mapped[int] = mapped_column(Integer, default=0)
    __table_args__ = (Index("ix_stats_subject_keys_cases", "kind", "cases"),)


# --- notifications (issue 7) -------------------------------------------------------------------


class NotifyCursor(Base):
    """How far the notifier has read a source (``events``: case_events.id, ``audit``:
    audit_log.id); ``at`` is unused so far (kept for a future per-source timestamp)."""

    __tablename__ = "notify_cursors"
    name: Mapped[str] = mapped_column(String(16), primary_key=True)
    last_id: Mapped[int] = mapped_column(BigInteger, default=0)
    at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PendingNotice(Base):
    """One thing to tell one staff member in the next batch: a kind and a case, nothing the
    reporter wrote. Kept after sending (``status`` sent | skipped) as the sent log, day only."""

    __tablename__ = "notify_notices"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    case_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    created_on: Mapped[dt.date] = mapped_column(Date)
    # new-case counts: the batching slot the notice was collected in (sent in a later slot)
    batch: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # sent | skipped
    sent_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    # the day the recipient saw it in the workspace (None: unread)
    read_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    __table_args__ = (Index("ix_notify_notices_status_user", "status", "user_id"),)


class DutyRoster(Base):
    """值班: the staff members told at once about urgent cases (W3); set by an administrator."""

    __tablename__ = "duty_roster"
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id"), primary_key=True)
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    set_on: Mapped[dt.date] = mapped_column(Date)


class DutyRosterSet(Base):
    """One row once an administrator has saved a duty roster; until then every active intake
    officer is on duty."""

    __tablename__ = "duty_roster_set"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    set_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    set_on: Mapped[dt.date] = mapped_column(Date)


class ReporterContact(Base):
    """An address a reporter gave for "there is news" mails: sealed under a key derived from
    the installation's server key (not a case key: the notifier sends without one)."""

    __tablename__ = "reporter_contacts"
    receipt_id: Mapped[str] = mapped_column(ForeignKey("receipts.id"), primary_key=True)
    sealed_address: Mapped[bytes] = mapped_column(LargeBinary)
    added_on: Mapped[dt.date] = mapped_column(Date)
    news_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
    notified_on: Mapped[dt.date | None] = mapped_column(Date, nullable=True)


class KeyringBinding(Base):
    """Which keyring this database belongs to (C7): one row, a one-way keyed fingerprint of
    the keyring (``crypto.keyring.keyring_fingerprint``), recorded at ``portal init``."""

    __tablename__ = "keyring_binding"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    fingerprint: Mapped[str] = mapped_column(String(64))
    recorded_on: Mapped[dt.date] = mapped_column(Date)


class OrgSetting(Base):
    """One organisation-specific value of the privacy notice and the poster (issue 18): the
    personal-information handler, the contact for questions, the portal address, the retention
    periods. Kept by an administrator on /workspace/privacy (validated, audited); plaintext,
    because the public pages show them and none of them is about a reporter."""

    __tablename__ = "org_settings"
    key: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(2000))
    updated_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    updated_on: Mapped[dt.date] = mapped_column(Date)


class RightsRequest(Base):
    """A real-name reporter's request from the follow-up page (PIPL Art. 15, 47): withdraw the
    report (decided by an approver) or the identity (decided by an identity custodian).

    The request is dated to the day (R9). The decision's reason is sealed for the reporter
    alone: a random reply key sealed under ``reply_public_key`` (an X25519 key derived from the
    reporter's receipt, ``portal.reporter.rights``) and the text sealed under that reply key, so
    a decider who holds no case key can still answer, and nobody else can read the answer."""

    __tablename__ = "rights_requests"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    receipt_id: Mapped[str] = mapped_column(ForeignKey("receipts.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # withdraw_report | withdraw_identity
    status: Mapped[str] = mapped_column(String(12), default="pending")  # granted | refused
    asked_on: Mapped[dt.date] = mapped_column(Date)
    reply_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    decided_by: Mapped[str | None] = mapped_column(ForeignKey("users.id"), nullable=True)
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    sealed_reply_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    sealed_decision: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class IdentityCorrection(Base):
    """A reporter's correction of their identity (PIPL Art. 46): the values before and after,
    sealed under the identity key (aad case+``identity-correction:{id}``), so the identity
    custodians see what changed; dated to the day (R9)."""

    __tablename__ = "identity_corrections"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    corrected_on: Mapped[dt.date] = mapped_column(Date)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)


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
