"""Staff roles (A1). A user may hold several."""

from __future__ import annotations

from portal.kernel.labels import ROLES as ROLE_WORDS
from portal.kernel.msgid import _

ROLES: tuple[str, ...] = (
    "administrator",
    "intake_officer",
    "investigator",
    "team_lead",
    "approver",
    "identity_custodian",
    "reward_officer",
    "department_liaison",
    "auditor",
    "independent_reviewer",
)

# Roles only the installation's owner grants, on the command line (`portal user add --roles`,
# `portal user appoint-reviewer`), audited: the workspace administrator can neither grant nor
# take them, nor manage such an account (issue 18: a member of the audit committee or the
# supervisory board who reads the reports about the 法审风控中心 itself).
OWNER_ROLES: frozenset[str] = frozenset({"independent_reviewer"})
WORKSPACE_ROLES: tuple[str, ...] = tuple(r for r in ROLES if r not in OWNER_ROLES)
# an independent reviewer is outside the centre: never also one of its intake officers
EXCLUSIVE: tuple[tuple[str, str], ...] = (("independent_reviewer", "intake_officer"),)

# the words for each role, one table for every page (portal.kernel.labels)
ROLE_LABELS: dict[str, str] = ROLE_WORDS

# the roles whose holders may sit on an investigation team (W5): the team candidates are staff
# holding one of these; the administrator, auditor, department liaisons, reward officers (and
# the approvers and identity custodians, who decide on the team's work) are not offered
INVESTIGATIVE_ROLES: frozenset[str] = frozenset({"investigator", "team_lead"})


class RoleError(ValueError):
    pass


def parse_roles(raw: str | list[str], *, owner: bool = False) -> list[str]:
    """Validate and normalise a role list ("a,b" or ["a", "b"]); RoleError names the bad one.
    An owner role (``OWNER_ROLES``) is accepted only when ``owner`` (the command line)."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    roles: list[str] = []
    for item in items:
        name = item.strip().lower().replace("-", "_")
        if not name:
            continue
        if name not in ROLES:
            raise RoleError(f"unknown role {item.strip()!r}; choose from: {', '.join(ROLES)}")
        if name in OWNER_ROLES and not owner:
            raise RoleError(_("Only the installation's owner appoints an independent reviewer."))
        if name not in roles:
            roles.append(name)
    if not roles:
        raise RoleError(_("Choose at least one role."))
    for a, b in EXCLUSIVE:
        if a in roles and b in roles:
            raise RoleError(_("An independent reviewer cannot also be an intake officer."))
    return roles


def roles_of(stored: str) -> frozenset[str]:
    return frozenset(r for r in stored.split(",") if r)
