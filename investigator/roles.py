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


INDEPENDENT_REVIEWER = "independent_reviewer"

# --- the actions of the access policy (investigator.policy decides them) ---------------------
# Global actions and the roles that hold them; case-level and package-level action names. What
# each action means and when it is allowed: docs/access-policy.md.
ROLE_ACTIONS: dict[str, frozenset[str]] = {
    "manage_users": frozenset({"administrator"}),
    "manage_settings": frozenset({"administrator"}),
    "read_audit": frozenset({"auditor"}),
    "view_statistics": frozenset({"auditor", "team_lead", "approver"}),
    "triage": frozenset({"intake_officer", INDEPENDENT_REVIEWER}),
    "register_case": frozenset({"intake_officer"}),
    "view_inbox": frozenset({"intake_officer", INDEPENDENT_REVIEWER}),
    "list_cases": frozenset(
        {"intake_officer", "investigator", "team_lead", "approver", INDEPENDENT_REVIEWER}
    ),
    "view_transfers": frozenset({"department_liaison"}),
    "decide_identity": frozenset({"identity_custodian", INDEPENDENT_REVIEWER}),
    "manage_rewards": frozenset({"reward_officer"}),
    "approve": frozenset({"approver", INDEPENDENT_REVIEWER}),
    "view_overdue": frozenset({"team_lead", "approver", "intake_officer", INDEPENDENT_REVIEWER}),
    "manage_calendar": frozenset({"administrator"}),
    "review_rewards": frozenset({"approver", "reward_officer", INDEPENDENT_REVIEWER}),
    "manage_archive": frozenset({"approver", INDEPENDENT_REVIEWER}),
    "archive_closed": frozenset({"intake_officer", INDEPENDENT_REVIEWER}),
    "decide_rights": frozenset({"approver", "identity_custodian", INDEPENDENT_REVIEWER}),
}

CASE_ACTIONS: frozenset[str] = frozenset(
    {
        "view",
        "view_original",
        "triage",
        "add_note",
        "message_reporter",
        "manage_team",
        "transfer",
        "manage_subjects",
        "request_identity",
        "decide_identity",
        "decide_withdrawal",
        "view_identity",
        "approve_plan",
        "investigate",
        "handle",
        "manage_reward",
        "view_transfer",
        "manage_deadline",
        "approve_extension",
        "propose_reward",
        "approve_reward",
        "manage_protection",
        "archive",
        "legal_hold",
        "approve_destruction",
        "export_case",
    }
)

PACKAGE_ACTIONS: frozenset[str] = frozenset({"prepare_package", "receive_package"})
