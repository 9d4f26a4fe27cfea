"""A reporter's rights over their personal information, from the follow-up page (issue 18;
PIPL Art. 15, 45, 46, 47). Framework-free.

* **Access.** Since issue 18 an identity is also wrapped for the reporter's receipt
  (``key_wraps`` scope ``identity`` with ``receipt_id``;
  ``portal.reporter.submission.store_identity``), so a signed-in reporter opens it in their own
  session exactly like their case key. An identity
  stored before that has no such wrap: it cannot be shown; entering it again replaces it.
* **Correction.** The reporter's new values replace theirs in the sealed identity (under the
  same identity key: the custodians' wraps stay valid) and an ``identity_corrections`` row,
  sealed under that key, keeps the values before and after for the identity custodians.
* **Withdrawal.** A request to withdraw the report (an approver decides) or the identity (an
  identity custodian decides): ``rights_requests``. The decision's reason is sealed to an
  X25519 key derived from the receipt (``crypto.receipts.receipt_reply_private_key``), so a
  decider who holds no key of the case can answer, and only the reporter reads the answer.

Reporter acts are dated to the day and write case events, never audit entries (R9: an entry's
clock time would date them); the staff decisions are audited (``investigator.domain.rights``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from crypto.errors import CryptoError
from crypto.receipts import receipt_reply_private_key, unwrap_with_receipt
from crypto.recipients import public_key_of, unwrap_for_recipient
from portal.case.access import NotYours, ReporterAccess, reporter_case_keys
from portal.case.events import add_event
from portal.case.rights import REQUEST_KINDS, correction_aad, decision_aad, reply_key_aad
from portal.case.sealing import open_json, seal_json, wrap_aad
from portal.kernel import clock
from portal.kernel.db.models import (
    Case,
    Identity,
    IdentityCorrection,
    KeyWrap,
    RightsRequest,
    new_id,
)
from portal.kernel.services import Services
from portal.reporter.intake import IdentityInput

# the reporter's own fields of the identity document (a 举报+投诉 adds the complainant's)
OWN_FIELDS = ("name", "phone", "email", "employee_id", "contact_preference")


class NoIdentity(Exception):
    """The case holds no identity the reporter can open (none, or stored before issue 18)."""


class NothingChanged(Exception):
    """The corrected values are the ones already held."""


class AlreadyAsked(Exception):
    """A request of this kind is already waiting for a decision on this case."""


@dataclass
class IdentityView:
    held: bool  # an identity is stored for the case
    readable: bool  # ... and this receipt opens it
    values: dict[str, str] = field(default_factory=dict)
    corrected_on: list[dt.date] = field(default_factory=list)


@dataclass
class RequestView:
    id: str
    case_id: str
    kind: str
    status: str
    asked_on: dt.date
    decided_on: dt.date | None
    reason: str | None


async def _identity_key(
    session: AsyncSession, access: ReporterAccess, case_id: str
) -> bytes | None:
    wrap = (
        await session.execute(
            select(KeyWrap).where(
                KeyWrap.case_id == case_id,
                KeyWrap.scope == "identity",
                KeyWrap.receipt_id == access.receipt_id,
            )
        )
    ).scalar_one_or_none()
    if wrap is None:
        return None
    try:
        return unwrap_with_receipt(
            access.secrets(), wrap.wrapped, wrap_aad(case_id, "identity", access.receipt_id)
        )
    except CryptoError:
        return None


async def my_identities(
    services: Services, access: ReporterAccess, *, open_values: bool = False
) -> dict[str, IdentityView]:
    """For each case the receipt opens: whether an identity is held and the receipt opens it,
    and, with ``open_values`` (the reporter asked to see them), its values, decrypted for this
    request only, like the rest of the follow-up page."""
    out: dict[str, IdentityView] = {}
    async with services.db.read() as s:
        for case_id in await reporter_case_keys(s, access):
            identity = await s.get(Identity, case_id)
            if identity is None:
                out[case_id] = IdentityView(held=False, readable=False)
                continue
            ikey = await _identity_key(s, access, case_id)
            if ikey is None:
                out[case_id] = IdentityView(held=True, readable=False)
                continue
            if not open_values:
                out[case_id] = IdentityView(held=True, readable=True)
                continue
            doc = open_json(ikey, identity.sealed, field_aad(case_id, "identity"))
            days = (
                await s.execute(
                    select(IdentityCorrection.corrected_on)
                    .where(IdentityCorrection.case_id == case_id)
                    .order_by(IdentityCorrection.corrected_on)
                )
            ).scalars()
            out[case_id] = IdentityView(
                held=True,
                readable=True,
                values={k: str(v) for k, v in doc.items()},
                corrected_on=list(days),
            )
    return out


def _own(identity: IdentityInput) -> dict[str, str]:
    return {
        "name": identity.name,
        "phone": identity.phone,
        "email": identity.email,
        "employee_id": identity.employee_id,
        "contact_preference": identity.contact_preference,
    }


async def correct_identity(
    services: Services, access: ReporterAccess, case_id: str, identity: IdentityInput
) -> None:
    """Replace the reporter's own fields of the identity and keep a record of the change for
    the identity custodians. ``NotYours``, ``NoIdentity``, ``NothingChanged``."""
    async with services.db.write() as s:
        if case_id not in await reporter_case_keys(s, access):
            raise NotYours
        row = await s.get(Identity, case_id)
        ikey = await _identity_key(s, access, case_id) if row is not None else None
        if row is None or ikey is None:
            raise NoIdentity
        doc: dict[str, str] = open_json(ikey, row.sealed, field_aad(case_id, "identity"))
        new = _own(identity)
        before = {k: str(doc.get(k, "")) for k in OWN_FIELDS}
        if before == new:
            raise NothingChanged
        row.sealed = seal_json(ikey, {**doc, **new}, field_aad(case_id, "identity"), services)
        cid = new_id()
        s.add(
            IdentityCorrection(
                id=cid,
                case_id=case_id,
                corrected_on=clock.today(),
                sealed=seal_json(
                    ikey, {"before": before, "after": new}, correction_aad(case_id, cid), services
                ),
            )
        )
        add_event(s, case_id, "identity_corrected", public=True)


async def ask(services: Services, access: ReporterAccess, case_id: str, kind: str) -> str:
    """File a withdrawal request; returns its id. ``NotYours``, ``NoIdentity`` (withdrawing an
    identity that is not held), ``AlreadyAsked``, ``ValueError`` for an unknown kind."""
    if kind not in REQUEST_KINDS:
        raise ValueError(kind)
    async with services.db.write() as s:
        if case_id not in await reporter_case_keys(s, access):
            raise NotYours
        case = await s.get(Case, case_id)
        if case is None or case.destroyed_on is not None:
            raise NotYours
        if kind == "withdraw_identity" and await s.get(Identity, case_id) is None:
            raise NoIdentity
        waiting = (
            await s.execute(
                select(RightsRequest.id).where(
                    RightsRequest.case_id == case_id,
                    RightsRequest.kind == kind,
                    RightsRequest.status == "pending",
                )
            )
        ).first()
        if waiting is not None:
            raise AlreadyAsked
        rid = new_id()
        private = receipt_reply_private_key(access.wrap_key, rid, suite=services.keyring.suite)
        s.add(
            RightsRequest(
                id=rid,
                case_id=case_id,
                receipt_id=access.receipt_id,
                kind=kind,
                status="pending",
                asked_on=clock.today(),
                reply_public_key=public_key_of(private),
            )
        )
        add_event(s, case_id, f"rights_asked:{kind}", public=True)
        return rid


async def my_requests(services: Services, access: ReporterAccess) -> list[RequestView]:
    """The receipt's requests, newest first, with each decision's reason opened for it."""
    out: list[RequestView] = []
    async with services.db.read() as s:
        rows = (
            await s.execute(
                select(RightsRequest)
                .where(RightsRequest.receipt_id == access.receipt_id)
                .order_by(RightsRequest.asked_on.desc(), RightsRequest.id)
            )
        ).scalars()
        for req in rows:
            reason: str | None = None
            if req.sealed_reply_key and req.sealed_decision:
                private = receipt_reply_private_key(
                    access.wrap_key, req.id, suite=services.keyring.suite
                )
                try:
                    reply_key = unwrap_for_recipient(
                        private, req.sealed_reply_key, reply_key_aad(req.case_id, req.id)
                    )
                    doc = open_json(
                        reply_key, req.sealed_decision, decision_aad(req.case_id, req.id)
                    )
                    reason = str(doc.get("reason", ""))
                except CryptoError:
                    reason = None
            out.append(
                RequestView(
                    id=req.id,
                    case_id=req.case_id,
                    kind=req.kind,
                    status=req.status,
                    asked_on=req.asked_on,
                    decided_on=req.decided_at.date() if req.decided_at else None,
                    reason=reason,
                )
            )
    return out
