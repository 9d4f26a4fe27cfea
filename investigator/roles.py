"""Staff roles (A1). A user may hold several."""

from __future__ import annotations

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
)

# the roles whose holders may sit on an investigation team (W5): the team candidates are staff
# holding one of these; the administrator, auditor, department liaisons, reward officers (and
# the approvers and identity custodians, who decide on the team's work) are not offered
INVESTIGATIVE_ROLES: frozenset[str] = frozenset({"investigator", "team_lead"})


class RoleError(ValueError):
    pass


def parse_roles(raw: str | list[str]) -> list[str]:
    """Validate and normalise a role list ("a,b" or ["a", "b"]); RoleError names the bad one."""
    items = raw.split(",") if isinstance(raw, str) else list(raw)
    roles: list[str] = []
    for item in items:
        name = item.strip().lower().replace("-", "_")
        if not name:
            continue
        if name not in ROLES:
            raise RoleError(f"unknown role {item.strip()!r}; choose from: {', '.join(ROLES)}")
        if name not in roles:
            roles.append(name)
    if not roles:
        raise RoleError(_("Choose at least one role."))
    return roles


def roles_of(stored: str) -> frozenset[str]:
    return frozenset(r for r in stored.split(",") if r)
