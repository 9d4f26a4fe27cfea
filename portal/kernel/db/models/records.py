"""The tables around a case: calendar, deadlines, rewards, protection, archive, statistics,
notices and duty roster, reporter contacts, the keyring binding, organisation settings,
reporters' rights."""

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
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.kernel.db.models.base import Base, new_id, utcnow
from portal.kernel.db.models.core import Case  # noqa: F401


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
