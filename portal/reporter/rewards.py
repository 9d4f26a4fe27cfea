"""A reporter's claim of an approved reward (W11), from the follow-up page."""

from __future__ import annotations

from sqlalchemy import delete, select

from crypto.envelope import new_case_key
from investigator.policy import deciders
from portal.case.access import NotYours, ReporterAccess, reporter_case_keys
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.sealing import grant_user, reward_claim_aad, seal_json
from portal.kernel import clock
from portal.kernel.db.models import KeyWrap, Reward
from portal.kernel.msgid import _
from portal.kernel.services import Services


async def reporter_claim(
    services: Services,
    access: ReporterAccess,
    case_id: str,
    *,
    name: str,
    contact: str,
    payment: str,
) -> None:
    """An (anonymous) reporter claims an approved reward with the receipt: identity and payment
    details sealed under a fresh key wrapped for the reward officers only."""
    if not name.strip() or not payment.strip():
        raise WorkflowError(_("Give your name and how the reward should be paid."))
    async with services.db.write() as s:
        keys = await reporter_case_keys(s, access)
        if case_id not in keys:
            raise NotYours
        reward = (
            await s.execute(select(Reward).where(Reward.case_id == case_id))
        ).scalar_one_or_none()
        if reward is None or reward.status not in ("approved", "paid"):
            raise NotYours
        officers = await deciders(s, case_id, "reward_officer")
        if not officers:
            raise WorkflowError(_("The claim cannot be received right now; try again later."))
        ckey = new_case_key()
        await s.execute(delete(KeyWrap).where(KeyWrap.case_id == case_id, KeyWrap.scope == "claim"))
        await s.flush()
        reward.sealed_claim = seal_json(
            ckey,
            {"name": name, "contact": contact, "payment": payment},
            reward_claim_aad(case_id, reward.id),
            services,
        )
        reward.claimed_on = clock.today()
        for officer in officers:
            grant_user(s, case_id, "claim", ckey, officer, services.keyring.suite)
        # a case event (dated to the day), not an audit entry: the audit log times its
        # entries to the microsecond, and a reporter's own acts are never timed (R9)
        add_event(s, case_id, "reward_claimed", public=True)
