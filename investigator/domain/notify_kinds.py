"""Notice kinds and each person's mail preferences (issue 7). Framework-free.

Kinds are what ``notify_notices.kind`` holds; the three deadline kinds share one preference,
``deadline``. Preferences: ``users.notify_prefs``, comma-separated kinds; empty means "every
kind my roles are offered" (``offered_kinds``), ``none`` means nothing. Preferences choose the
mails only: the workspace lists every notice (``investigator.domain.notices``).
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncSession

from investigator.policy import INDEPENDENT_REVIEWER
from investigator.roles import roles_of
from portal.kernel import audit
from portal.kernel.db.models import User

KINDS: tuple[str, ...] = (
    "new_cases",
    "assigned",
    "reporter_message",
    "deadline",
    "approval",
    "identity_request",
    "rights_request",
)
URGENT = "urgent"
DEADLINE_KINDS = ("deadline_warning_50", "deadline_warning_80", "deadline_overdue")
_CASE_ROLES = frozenset(
    {"intake_officer", "investigator", "team_lead", "approver", INDEPENDENT_REVIEWER}
)
KIND_ROLES: dict[str, frozenset[str]] = {
    "new_cases": frozenset({"intake_officer", INDEPENDENT_REVIEWER}),
    "assigned": _CASE_ROLES,
    "reporter_message": frozenset(
        {"intake_officer", "investigator", "team_lead", INDEPENDENT_REVIEWER}
    ),
    "deadline": _CASE_ROLES,
    "approval": frozenset({"approver", INDEPENDENT_REVIEWER}),
    "identity_request": frozenset({"identity_custodian", INDEPENDENT_REVIEWER}),
    "rights_request": frozenset({"approver", "identity_custodian", INDEPENDENT_REVIEWER}),
}


def pref_kind(kind: str) -> str:
    """The preference (and mail line) a notice kind belongs to: the three deadline notices
    are the one preference ``deadline``."""
    return "deadline" if kind in DEADLINE_KINDS else kind


# --- preferences ---------------------------------------------------------


def offered_kinds(roles: Iterable[str]) -> list[str]:
    have = frozenset(roles)
    return [k for k in KINDS if not KIND_ROLES[k].isdisjoint(have)]


def parse_prefs(stored: str, roles: Iterable[str]) -> frozenset[str]:
    """The kinds this person receives: empty = every offered kind; ``none`` = nothing."""
    offered = offered_kinds(roles)
    raw = (stored or "").strip()
    if not raw:
        return frozenset(offered)
    return frozenset(k for k in raw.split(",") if k in offered)


def format_prefs(chosen: Iterable[str], roles: Iterable[str]) -> str:
    offered = offered_kinds(roles)
    kept = [k for k in offered if k in set(chosen)]
    return ",".join(kept) if kept else "none"


async def set_prefs(session: AsyncSession, user: User, chosen: Iterable[str]) -> str:
    user.notify_prefs = format_prefs(chosen, roles_of(user.roles))
    await audit.record(
        session, actor_user_id=user.id, action="notify.prefs", detail=f"kinds={user.notify_prefs}"
    )
    return user.notify_prefs
