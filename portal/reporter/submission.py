"""Committing a reporter's submission: cases, wraps, identity, receipt, replay window.

Framework-free. Every text a reporter writes is sealed under the case key before it reaches
a session; the case key is wrapped for the receipt (the reporter) and for each intake officer
(their X25519 public key); the identity has its own key, wrapped for identity custodians only.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import functools
import hmac
import logging
import os
import threading
from typing import Any

import anyio
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad, new_case_key, open_sealed, seal
from crypto.errors import CryptoError
from crypto.receipts import (
    ReceiptSecrets,
    derive_receipt_secrets,
    generate_receipt,
    normalize_receipt,
    wrap_with_receipt,
)
from crypto.suites import Suite, hkdf, keyed_hash
from portal.case.events import add_event
from portal.case.evidence import StoredFile, Target
from portal.case.numbers import allocate_case_number
from portal.case.sealing import grant_user, seal_json, server_subkey, wrap_aad
from portal.case.subjects import subject_fingerprint
from portal.kernel import clock, readmostly
from portal.kernel.db.models import (
    Case,
    EvidenceFile,
    Identity,
    KeyWrap,
    Receipt,
    Subject,
    SubmissionNonce,
    User,
    new_id,
)
from portal.kernel.readmostly import ReadMostly
from portal.kernel.services import Services
from portal.reporter.arrival import (
    NoReader,
    Recipients,
    automatic_conflicts,
    current_recipients,
)
from portal.reporter.intake import IdentityInput, ReportInput

NONCE_TTL = dt.timedelta(minutes=15)

logger = logging.getLogger(__name__)


# the expiry a nonce keeps once its window has passed: no time at all
NONCE_FORGOTTEN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


class DuplicateSubmission(Exception):
    """The form token was used already; `receipt` is the code to show again, if still kept."""

    def __init__(self, receipt: str | None) -> None:
        super().__init__("duplicate submission")
        self.receipt = receipt


def token_hash(services: Services, token: str) -> bytes:
    return hmac.new(server_subkey(services, "submission-token"), token.encode(), "sha256").digest()


def _token_key(services: Services, token: str) -> bytes:
    """Key of the short-lived receipt copy of one form submission. On a 国密 installation
    HKDF-SM3 and HMAC-SM3 (crypto.suites); HMAC-SHA256 otherwise, as before."""
    suite = services.keyring.suite
    if suite is Suite.AES256GCM:
        return hmac.new(
            server_subkey(services, "submission-receipt"), token.encode(), "sha256"
        ).digest()
    subkey = hkdf(
        suite,
        services.keyring.server_key,
        salt=None,
        info=b"whistle-portal/v1/server/submission-receipt",
    )
    return keyed_hash(suite, subkey, token.encode())


def identity_doc(identity: IdentityInput | None) -> dict[str, str]:
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
    identity = identity_doc(report.identity)
    complaint = content.get("complaint")
    if kind == "report" and report.kind == "both" and isinstance(complaint, dict):
        for name in COMPLAINANT_FIELDS:
            value = complaint.pop(name, "")
            if value:
                identity[name] = value
    return content, identity


async def store_identity(
    session: AsyncSession,
    services: Services,
    case_id: str,
    doc: dict[str, str],
    custodians: list[User],
    reporter: tuple[str, ReceiptSecrets] | None = None,
) -> None:
    """Seal ``doc`` under a fresh identity key wrapped for ``custodians`` (never empty: C7)
    and, when ``reporter`` (receipt id, its secrets) is given, for the reporter's receipt too,
    so that they can read and correct what is held about them (issue 18; docs/security.md)."""
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
    if reporter is not None:
        receipt_id, secrets_ = reporter
        session.add(
            KeyWrap(
                case_id=case_id,
                scope="identity",
                receipt_id=receipt_id,
                wrapped=wrap_with_receipt(
                    secrets_,
                    ikey,
                    wrap_aad(case_id, "identity", receipt_id),
                    suite=services.keyring.suite,
                ),
            )
        )


def file_rows(stored: list[StoredFile], uploaded_by: str) -> list[EvidenceFile]:
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


class PendingReceipt:
    """A new receipt code whose Argon2id derivation starts now, in the background: started
    when a submission starts (its form token verified), it runs while the body streams in,
    so the reporter does not wait for it after the last byte. When the submission fails the
    derivation is not cancelled (its thread would run on outside the limiter's count): it
    finishes and its result is dropped."""

    def __init__(self, services: Services) -> None:
        self.code = generate_receipt()
        self._task: asyncio.Future[ReceiptSecrets] = asyncio.ensure_future(
            derive(services, normalize_receipt(self.code))
        )
        self._task.add_done_callback(_retrieve)

    async def secrets(self) -> ReceiptSecrets:
        return await self._task


def _retrieve(task: asyncio.Future[ReceiptSecrets]) -> None:
    """A derivation nobody awaits (a failed submission): its error is retrieved, so asyncio
    does not complain, and logged by its kind (never a code or a reporter's data)."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        logger.error("receipt derivation failed (%s)", type(error).__name__)


async def submit(
    services: Services,
    report: ReportInput,
    targets: list[Target],
    stored: list[StoredFile],
    token: str,
    *,
    channel: str = "web",
    pending: PendingReceipt | None = None,
) -> tuple[str, list[str]]:
    """Commit the case(s), files and wraps in one transaction; return (receipt code, numbers).

    Raises DuplicateSubmission if this form token was already used, and ``NoReader`` (nothing
    stored) when the case key or the identity key would be wrapped for nobody (C7): the
    recipients are the enabled intake officers and identity custodians with a key pair, less
    every account an accused person's name matches (an automatic conflict, A2).

    ``pending``: the receipt whose derivation started with the request (else one starts
    here). The write transaction only inserts: the recipients come from the read-mostly staff
    list (``arrival.current_recipients``), expired nonces are swept by a timer
    (``sweep_nonces_forever``), the calendar is cached; at most 8 statements for a report with
    one case (tests/portal/test_submission_statements.py).
    """
    pending = pending or PendingReceipt(services)
    code = pending.code
    arrival = await current_recipients(services.db, report)
    secrets_ = await pending.secrets()
    await readmostly.warm(services.db)  # what the write transaction reads (the calendar)
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
            receipt = Receipt(id=new_id(), lookup_token=secrets_.lookup_token, created_on=today)
            s.add(receipt)
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
                    independent=arrival.independent,
                    received_on=today,
                    content=seal_json(
                        target.case_key, content, field_aad(target.case_id, "content"), services
                    ),
                    suite=services.keyring.suite.value,
                )
                s.add(case)
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
                if arrival.matches:  # conflict rows name subjects: those rows go in first
                    await s.flush()
                s.add_all(automatic_conflicts(target.case_id, subject_ids, arrival.matches, today))
                if identity_doc:
                    await store_identity(
                        s,
                        services,
                        target.case_id,
                        identity_doc,
                        arrival.custodians,
                        reporter=(receipt.id, secrets_),
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
            s.add_all(file_rows(stored, "reporter"))
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
    would date the cases of the day one by one). Runs at start and on a timer
    (``sweep_nonces_forever``), never in a submission's transaction."""
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
    """``forget_expired_nonces`` in a transaction of its own (start-up, and the timer)."""
    async with services.db.write() as s:
        return await forget_expired_nonces(s)


#: how often expired nonces are forgotten: a nonce keeps its minute-rounded expiry at most
#: this long after its window (never finer than the minute, R9)
NONCE_SWEEP_INTERVAL_S = 60.0


async def sweep_nonces_forever(
    services: Services, interval_s: float = NONCE_SWEEP_INTERVAL_S
) -> None:
    """The nonce timer: ``purge_expired_nonces`` every ``interval_s`` seconds, until
    cancelled (the app starts it at start-up and cancels it at shutdown). A failed sweep (the
    database away) is tried again at the next tick."""
    while True:
        await anyio.sleep(interval_s)
        try:
            await purge_expired_nonces(services)
        except Exception as exc:  # noqa: BLE001 - the timer outlives a failed sweep
            logger.warning("expired nonces not swept: %s", type(exc).__name__)


#: the active categories, per database (read by every form and every submission)
CATEGORIES: ReadMostly[list[Any]] = ReadMostly("categories", ("categories",))


async def active_categories(
    services: Services, *, fresh: bool = False, stale_ok: bool = False
) -> list[Any]:
    """The active categories in their order, from the cache unless ``fresh`` (``stale_ok``:
    for a form that only shows them; see `portal.kernel.readmostly`)."""
    from portal.kernel.db.models import Category

    async def load() -> list[Any]:
        async with services.db.read() as s:
            rows = (
                await s.execute(
                    select(Category).where(Category.active.is_(True)).order_by(Category.position)
                )
            ).scalars()
            return list(rows)

    return await CATEGORIES.get(services.db, load, fresh=fresh, stale_ok=stale_ok)


async def category_codes(services: Services, chosen: str) -> list[str]:
    """The codes a submission may choose; read again before ``chosen`` is refused."""
    codes = [c.code for c in await active_categories(services)]
    if chosen not in codes:
        codes = [c.code for c in await active_categories(services, fresh=True)]
    return codes


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
