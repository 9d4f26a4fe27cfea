"""Cases from the reporter's side: committing a submission, the receipt door, follow-up.

Framework-free. Every text a reporter writes is sealed under the case key before it reaches
a session; the case key is wrapped for the receipt (the reporter) and for each intake officer
(their X25519 public key); the identity has its own key, wrapped for identity custodians only.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import functools
import hashlib
import hmac
import json
import os
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, new_case_key, open_sealed, seal
from crypto.errors import CryptoError, MalformedReceiptError
from crypto.receipts import (
    RECEIPT_MAX_INPUT,
    ReceiptSecrets,
    derive_receipt_secrets,
    generate_receipt,
    normalize_receipt,
    unwrap_with_receipt,
    wrap_with_receipt,
)
from crypto.recipients import wrap_for_recipient
from crypto.suites import Suite, hkdf, keyed_hash, suite_by_id
from portal import clock
from portal.arrival import (
    NoReader,
    Recipients,
    arrival_midnight,
    automatic_conflicts,
    can_open_wraps,
    normalise_name,
    recipients,
)
from portal.db.models import (
    Case,
    CaseCounter,
    CaseEvent,
    Conflict,
    EvidenceFile,
    Identity,
    KeyWrap,
    Message,
    Receipt,
    Subject,
    SubmissionNonce,
    User,
    new_id,
)
from portal.evidence import StoredFile, Target
from portal.intake import IdentityInput, ReportInput
from portal.services import Services

NONCE_TTL = dt.timedelta(minutes=15)
# the expiry a nonce keeps once its window has passed: no time at all
NONCE_FORGOTTEN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
# A receipt code that does not parse still costs one derivation, so that malformed, unknown
# and wrong codes take the same time (R8). This fixed, well-formed value is never issued
# (its check digit is computed like any other, but it is all zeros apart from that).
_DUMMY_CODE = "0" * 28


class DuplicateSubmission(Exception):
    """The form token was used already; `receipt` is the code to show again, if still kept."""

    def __init__(self, receipt: str | None) -> None:
        super().__init__("duplicate submission")
        self.receipt = receipt


# --- small helpers ------------------------------------------------------------------------


def seal_json(key: bytes, obj: Any, aad: bytes, services: Services) -> bytes:
    data = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
    return seal(key, data, aad, suite=services.keyring.suite)


def open_json(key: bytes, blob: bytes, aad: bytes) -> Any:
    return json.loads(open_sealed(key, blob, aad))


def _server_subkey(services: Services, label: str) -> bytes:
    return hmac.new(services.keyring.server_key, label.encode(), hashlib.sha256).digest()


def token_hash(services: Services, token: str) -> bytes:
    return hmac.new(_server_subkey(services, "submission-token"), token.encode(), "sha256").digest()


def _token_key(services: Services, token: str) -> bytes:
    """Key of the short-lived receipt copy of one form submission. On a 国密 installation
    HKDF-SM3 and HMAC-SM3 (crypto.suites); HMAC-SHA256 otherwise, as before."""
    suite = services.keyring.suite
    if suite is Suite.AES256GCM:
        return hmac.new(
            _server_subkey(services, "submission-receipt"), token.encode(), "sha256"
        ).digest()
    subkey = hkdf(
        suite,
        services.keyring.server_key,
        salt=None,
        info=b"whistle-portal/v1/server/submission-receipt",
    )
    return keyed_hash(suite, subkey, token.encode())


def subject_fingerprint(services: Services, name: str) -> bytes | None:
    """Keyed fingerprint of a normalised name for the repeat-subject ledger (W14)."""
    norm = normalise_name(name)
    if not norm:
        return None
    return hmac.new(
        _server_subkey(services, "subject-fingerprint"), norm.encode(), "sha256"
    ).digest()


async def allocate_case_number(session: AsyncSession, day: dt.date) -> str:
    """YYMM + a 4-digit monthly sequence (W1); an atomic upsert, safe under concurrency."""
    month = day.strftime("%y%m")
    dialect = session.bind.dialect.name if session.bind is not None else "sqlite"
    ins = postgresql.insert(CaseCounter) if dialect == "postgresql" else sqlite.insert(CaseCounter)
    stmt = (
        ins.values(month=month, last=1)
        .on_conflict_do_update(index_elements=["month"], set_={"last": CaseCounter.last + 1})
        .returning(CaseCounter.last)
    )
    seq = (await session.execute(stmt)).scalar_one()
    return f"{month}{seq:04d}"


def wrap_aad(case_id: str, scope: str, reader: str) -> bytes:
    return field_aad(case_id, f"wrap:{scope}:{reader}")


async def intake_readers(session: AsyncSession) -> list[User]:
    users = (await session.execute(select(User).where(User.disabled.is_(False)))).scalars()
    return [u for u in users if "intake_officer" in u.roles.split(",")]


async def identity_custodians(session: AsyncSession) -> list[User]:
    users = (await session.execute(select(User).where(User.disabled.is_(False)))).scalars()
    return [u for u in users if "identity_custodian" in u.roles.split(",")]


def case_suite(case: Case) -> Suite:
    """The suite a case was sealed under (the installation's at arrival): its wraps follow it."""
    return suite_by_id(case.suite)


async def case_suite_of(session: AsyncSession, case_id: str) -> Suite:
    suite_id = (await session.execute(select(Case.suite).where(Case.id == case_id))).scalar_one()
    return suite_by_id(suite_id)


def grant_user(
    session: AsyncSession, case_id: str, scope: str, key: bytes, user: User, suite: Suite
) -> None:
    """Add ``user``'s wrap of ``key`` (``suite``: the installation's, ``keyring.suite``)."""
    session.add(
        KeyWrap(
            case_id=case_id,
            scope=scope,
            user_id=user.id,
            wrapped=wrap_for_recipient(
                user.public_key, key, wrap_aad(case_id, scope, user.id), suite=suite
            ),
        )
    )


def _identity_doc(identity: IdentityInput | None) -> dict[str, str]:
    if identity is None or identity.is_empty():
        return {}
    return {
        "name": identity.name,
        "phone": identity.phone,
        "email": identity.email,
        "employee_id": identity.employee_id,
        "contact_preference": identity.contact_preference,
    }


# the complainant's block of a 投诉 is identity (A3): on the 举报 case of a combined submission
# it is sealed with the reporter's identity, never in the case content
COMPLAINANT_FIELDS = ("complainant_name", "complainant_phone", "complainant_address")


def case_documents(report: ReportInput, kind: str) -> tuple[dict[str, Any], dict[str, str]]:
    """(content sealed under the case key, identity sealed under the identity key) of the case
    of this kind made from the submission. The 举报 case of a 举报+投诉 submission holds no
    complainant identity in its content: name, phone and address join the identity document,
    read like the reporter's identity (custodians, or an approved request). The 投诉 case keeps
    its complaint whole: a complaint is handled in the complainant's name (R4)."""
    content = report.content()
    identity = _identity_doc(report.identity)
    complaint = content.get("complaint")
    if kind == "report" and report.kind == "both" and isinstance(complaint, dict):
        for name in COMPLAINANT_FIELDS:
            value = complaint.pop(name, "")
            if value:
                identity[name] = value
    return content, identity


async def _store_identity(
    session: AsyncSession,
    services: Services,
    case_id: str,
    doc: dict[str, str],
    custodians: list[User],
) -> None:
    """Seal ``doc`` under a fresh identity key wrapped for ``custodians`` (never empty: C7)."""
    if not custodians:
        raise NoReader("no identity custodian could open this identity")
    ikey = new_case_key()
    session.add(
        Identity(
            case_id=case_id,
            sealed=seal_json(ikey, doc, field_aad(case_id, "identity"), services),
            added_on=clock.today(),
        )
    )
    for custodian in custodians:
        grant_user(session, case_id, "identity", ikey, custodian, services.keyring.suite)


def add_event(
    session: AsyncSession,
    case_id: str,
    kind: str,
    *,
    public: bool,
    actor: str | None = None,
    detail: bytes | None = None,
) -> None:
    session.add(
        CaseEvent(
            case_id=case_id,
            kind=kind,
            public=public,
            actor_user_id=actor,
            on=clock.today(),
            sealed=detail,
        )
    )


def _file_rows(stored: list[StoredFile], uploaded_by: str) -> list[EvidenceFile]:
    return [
        EvidenceFile(
            id=f.file_id,
            case_id=f.case_id,
            kind=f.kind,
            original_id=f.original_id,
            storage_key=f.storage_key,
            uploaded_by=uploaded_by,
            created_on=clock.today(),
        )
        for f in stored
    ]


# --- submission ---------------------------------------------------------------------------


def new_targets(report_kinds: list[str]) -> list[Target]:
    return [Target(case_id=new_id(), case_key=new_case_key()) for _ in report_kinds]


_derive_limiters: dict[int, anyio.CapacityLimiter] = {}
_derive_pool: concurrent.futures.ThreadPoolExecutor | None = None
_derive_pool_lock = threading.Lock()
#: How much nicer than the serving thread a derivation thread runs (Linux nice levels): when
#: the cores are busy with derivations, the event loop still answers pages at once.
DERIVATION_NICENESS = 10


def derivation_limiter() -> anyio.CapacityLimiter:
    """At most one Argon2id derivation per core at a time (per event loop): each takes the
    pinned memory (32 MiB, or 128 MiB on an installation set up before issue 17), so an
    unbounded pool would let a burst of requests exhaust memory, and queueing here keeps the
    threads from starving the loop."""
    import asyncio

    loop_id = id(asyncio.get_running_loop())
    limiter = _derive_limiters.get(loop_id)
    if limiter is None:
        limiter = anyio.CapacityLimiter(max(1, os.cpu_count() or 1))
        _derive_limiters.clear()  # one loop per process in production; tests make new loops
        _derive_limiters[loop_id] = limiter
    return limiter


def _nicer_thread() -> None:
    """Run in each derivation thread once: lower its own scheduling priority (Linux applies
    setpriority to the calling thread's id alone). Not possible elsewhere: derivations then
    run at normal priority, as before."""
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + DERIVATION_NICENESS))
    except (AttributeError, OSError):  # pragma: no cover - not Linux, or refused
        pass


def derivation_pool() -> concurrent.futures.ThreadPoolExecutor:
    """The threads receipt derivations run in: one per core, at a lower priority than the
    threads serving requests (landing page p99 under a submission burst, issue 17)."""
    global _derive_pool
    with _derive_pool_lock:
        if _derive_pool is None:
            _derive_pool = concurrent.futures.ThreadPoolExecutor(
                max_workers=max(1, os.cpu_count() or 1),
                thread_name_prefix="receipt-argon2",
                initializer=_nicer_thread,
            )
        return _derive_pool


async def derive(services: Services, normalized: str) -> ReceiptSecrets:
    """One Argon2id evaluation in `derivation_pool`, bounded by `derivation_limiter`."""
    import asyncio

    async with derivation_limiter():
        return await asyncio.get_running_loop().run_in_executor(
            derivation_pool(),
            functools.partial(
                derive_receipt_secrets,
                normalized,
                services.keyring.pepper,
                services.receipt_argon2,
                suite=services.keyring.suite,
            ),
        )


async def submit(
    services: Services,
    report: ReportInput,
    targets: list[Target],
    stored: list[StoredFile],
    token: str,
    *,
    channel: str = "web",
) -> tuple[str, list[str]]:
    """Commit the case(s), files and wraps in one transaction; return (receipt code, numbers).

    Raises DuplicateSubmission if this form token was already used, and ``NoReader`` (nothing
    stored) when the case key or the identity key would be wrapped for nobody (C7): the
    recipients are the enabled intake officers and identity custodians with a key pair, less
    every account an accused person's name matches (an automatic conflict, A2).
    """
    code = generate_receipt()
    secrets_ = await derive(services, normalize_receipt(code))
    today = clock.today()
    numbers: list[str] = []
    try:
        async with services.db.write() as s:
            s.add(
                SubmissionNonce(
                    token_hash=token_hash(services, token),
                    sealed_receipt=seal(
                        _token_key(services, token),
                        code.encode(),
                        b"receipt",
                        suite=services.keyring.suite,
                    ),
                    expires_at=nonce_expiry(clock.now()),
                )
            )
            await s.flush()
            await forget_expired_nonces(s)
            receipt = Receipt(id=new_id(), lookup_token=secrets_.lookup_token, created_on=today)
            s.add(receipt)
            arrival = await recipients(s, report)
            arrival.check(report)
            first_id: str | None = None
            for kind, target in zip(report.case_kinds, targets, strict=True):
                number = await allocate_case_number(s, today)
                numbers.append(number)
                content, identity_doc = case_documents(report, kind)
                case = Case(
                    id=target.case_id,
                    number=number,
                    kind=kind,
                    linked_case_id=first_id,
                    channel=channel,
                    category=report.category,
                    reporter_relation=report.relation,
                    anonymous=report.anonymous,
                    stage="received",
                    received_on=today,
                    content=seal_json(
                        target.case_key, content, field_aad(target.case_id, "content"), services
                    ),
                    suite=services.keyring.suite.value,
                )
                s.add(case)
                await s.flush()
                first_id = first_id or target.case_id
                subject_ids: list[str] = []
                for subj in report.subjects:
                    sid = new_id()
                    subject_ids.append(sid)
                    s.add(
                        Subject(
                            id=sid,
                            case_id=target.case_id,
                            sealed=seal_json(
                                target.case_key,
                                {
                                    "name": subj.name,
                                    "department": subj.department,
                                    "position": subj.position,
                                },
                                field_aad(target.case_id, f"subject:{sid}"),
                                services,
                            ),
                            fingerprint=subject_fingerprint(services, subj.name),
                        )
                    )
                await s.flush()
                s.add_all(automatic_conflicts(target.case_id, subject_ids, arrival.matches, today))
                if identity_doc:
                    await _store_identity(
                        s, services, target.case_id, identity_doc, arrival.custodians
                    )
                s.add(
                    KeyWrap(
                        case_id=target.case_id,
                        scope="case",
                        receipt_id=receipt.id,
                        wrapped=wrap_with_receipt(
                            secrets_,
                            target.case_key,
                            wrap_aad(target.case_id, "case", receipt.id),
                            suite=services.keyring.suite,
                        ),
                    )
                )
                _wrap_for_readers(
                    s, target.case_id, target.case_key, arrival, services.keyring.suite
                )
                add_event(s, target.case_id, "received", public=True)
            s.add_all(_file_rows(stored, "reporter"))
    except IntegrityError:
        raise DuplicateSubmission(await replay_receipt(services, token)) from None
    return code, numbers


def _wrap_for_readers(
    session: AsyncSession, case_id: str, key: bytes, arrival: Recipients, suite: Suite
) -> None:
    if not arrival.case_readers:  # checked before anything was added; kept next to the wraps
        raise NoReader("no intake officer could open this report")
    for reader in arrival.case_readers:
        grant_user(session, case_id, "case", key, reader, suite)


async def replay_receipt(services: Services, token: str) -> str | None:
    """The receipt of an earlier POST of the same form, while its short window lasts."""
    async with services.db.read() as s:
        row = await s.get(SubmissionNonce, token_hash(services, token))
    if row is None or row.sealed_receipt is None:
        return None
    # SQLite gives back the wall time it was written in (clock.now(): Asia/Shanghai), naive
    expires = (
        row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=clock.SHANGHAI)
    )
    if expires < clock.now():
        return None
    try:
        return open_sealed(_token_key(services, token), row.sealed_receipt, b"receipt").decode()
    except CryptoError:
        return None


def nonce_expiry(now: dt.datetime) -> dt.datetime:
    """The end of a form's replay window, to the minute (never finer: R9)."""
    return (now + NONCE_TTL).replace(second=0, microsecond=0) + dt.timedelta(minutes=1)


async def forget_expired_nonces(session: AsyncSession) -> int:
    """After its window a nonce keeps only its token hash, so a repeated POST of that form
    still makes no second case, but neither the receipt copy nor any time: a submission's
    time finer than the day is never kept (R9; rows in the order of arrival, with times,
    would date the cases of the day one by one). Runs with every submission and at start."""
    # rows another submission is forgetting right now are skipped, not waited for: concurrent
    # submissions never block (or deadlock) on each other here (PostgreSQL; SQLite serialises)
    expired = (
        select(SubmissionNonce.token_hash)
        .where(
            SubmissionNonce.expires_at > NONCE_FORGOTTEN,
            SubmissionNonce.expires_at < clock.now(),
        )
        .with_for_update(skip_locked=True)
    )
    result = await session.execute(
        update(SubmissionNonce)
        .where(SubmissionNonce.token_hash.in_(expired))
        .values(sealed_receipt=None, expires_at=NONCE_FORGOTTEN)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def purge_expired_nonces(services: Services) -> int:
    """``forget_expired_nonces`` in a transaction of its own (start-up)."""
    async with services.db.write() as s:
        return await forget_expired_nonces(s)


# --- the receipt door -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReporterAccess:
    """What a signed-in reporter holds: the receipt row and the key its code derives."""

    receipt_id: str
    wrap_key: bytes
    lookup_token: bytes

    def secrets(self) -> ReceiptSecrets:
        return ReceiptSecrets(lookup_token=self.lookup_token, wrap_key=self.wrap_key)


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


async def reporter_case_keys(session: AsyncSession, access: ReporterAccess) -> dict[str, bytes]:
    wraps = (
        await session.execute(
            select(KeyWrap).where(KeyWrap.receipt_id == access.receipt_id, KeyWrap.scope == "case")
        )
    ).scalars()
    keys: dict[str, bytes] = {}
    for w in wraps:
        try:
            keys[w.case_id] = unwrap_with_receipt(
                access.secrets(), w.wrapped, wrap_aad(w.case_id, "case", access.receipt_id)
            )
        except CryptoError:
            continue
    return keys


# --- follow-up ------------------------------------------------------------------------------

# stages in plain words for the reporter (msgids); the workspace sets Case.stage
PUBLIC_STAGES = {
    "received": "Received",
    "triage": "Being reviewed",
    "accepted": "Accepted for handling",
    "investigating": "Under investigation",
    "handling": "Being decided",
    "approval": "Being decided",
    "implementing": "Measures being carried out",
    "concluded": "Concluded",
    "rejected": "Not accepted",
    "transferred": "Passed to the responsible department",
    "reopened": "Reopened for re-handling",
    "archived": "Closed",
}


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
                        .where(EvidenceFile.case_id == case.id, EvidenceFile.kind == "original")
                    )
                ).scalar_one()
            )
            views.append(view)
    return views


async def add_message(
    services: Services,
    session: AsyncSession,
    case_id: str,
    key: bytes,
    text: str,
    *,
    author: str,
    author_user_id: str | None = None,
) -> Message:
    seq = (
        await session.execute(
            select(func.coalesce(func.max(Message.seq), 0)).where(Message.case_id == case_id)
        )
    ).scalar_one()
    mid = new_id()
    msg = Message(
        id=mid,
        case_id=case_id,
        author=author,
        author_user_id=author_user_id,
        sealed=seal_json(key, {"text": text}, field_aad(case_id, f"message:{mid}"), services),
        created_on=clock.today(),
        seq=int(seq) + 1,
    )
    session.add(msg)
    return msg


class NotYours(Exception):
    """The reporter's receipt does not open this case."""


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
        s.add_all(_file_rows(stored, "reporter"))
        for case_id in {f.case_id for f in stored}:
            add_event(s, case_id, "reporter_added_evidence", public=True)


async def reporter_add_identity(
    services: Services, access: ReporterAccess, identity: IdentityInput
) -> None:
    from investigator.policy import excluded_user_ids

    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        custodians = [u for u in await identity_custodians(s) if can_open_wraps(u)]
        for case_id in keys:
            excluded = await excluded_user_ids(s, case_id)
            readers = [u for u in custodians if u.id not in excluded]
            if not readers:  # an identity nobody could open is not taken (C7)
                raise NoReader("no identity custodian could open this identity")
            existing = await s.get(Identity, case_id)
            if existing is not None:
                await s.execute(
                    delete(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.scope == "identity")
                )
                await s.delete(existing)
                await s.flush()
            await _store_identity(s, services, case_id, _identity_doc(identity), readers)
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
        if kind in ("dissatisfied", "rehandling_requested") and case.stage in (
            "concluded",
            "archived",
        ):
            case.stage = "reopened"
            add_event(s, case_id, "reopened", public=True)


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
        readers = {u.id: u for u in await intake_readers(s)}
        if reader_ids:
            for u in (await s.execute(select(User).where(User.id.in_(reader_ids)))).scalars():
                readers[u.id] = u
        # whoever the original excludes (its accused, its conflicts) is excluded from the
        # retaliation case too, from its first moment, and gets no key (A2)
        from investigator.policy import excluded_user_ids

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


async def active_categories(services: Services) -> list[Any]:
    from portal.db.models import Category

    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(Category).where(Category.active.is_(True)).order_by(Category.position)
            )
        ).scalars()
        return list(rows)


# --- start-up repair ----------------------------------------------------------------------------


# An object is written (committed) before the transaction that records it, and a submission
# may upload several files over a slow link before that transaction: with other instances
# running, only objects this old can be orphans.
ORPHAN_MIN_AGE_S = 24 * 3600.0


async def sweep_orphans(services: Services) -> int:
    """Delete stored objects that no `files` row references; returns how many.

    An upload commits its object before the database transaction that records it; a crash in
    between leaves an object nobody can reach (sealed, but clutter, and not covered by
    crypto-shredding bookkeeping). Called at start-up by the app. On the embedded SQLite one
    process serves, so nothing can be mid-upload at start: every unreferenced object goes.
    With PostgreSQL other instances may be between the two steps, so only objects older than
    ``ORPHAN_MIN_AGE_S`` are considered (listed before the references are read, so an object
    recorded meanwhile is seen as referenced).
    """
    if services.settings.is_sqlite:
        stored = set(await services.files.keys())
    else:
        stored = set(await services.files.settled_keys(ORPHAN_MIN_AGE_S))
    if not stored:
        return 0
    async with services.db.read() as s:
        referenced = set((await s.execute(select(EvidenceFile.storage_key))).scalars())
    removed = 0
    for key in sorted(stored - referenced):
        await services.files.delete(key)
        removed += 1
    return removed
