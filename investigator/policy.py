"""Access policy: the ONE place that answers "may this person see or do this?" (A1, A2, A3).

Framework-free. Handlers ask this module and answer 404 when it says no, exactly as for a case
that does not exist, so a refusal never confirms that a case exists.

Principal
    ``Principal(user_id, roles, department_id)``; ``roles`` is a frozenset of names from
    ``investigator.roles.ROLES``. A user may hold several roles; a role only ever *grants*.

The originals rule (A2) comes before everything else
    A person named as a subject of a case (``subjects.user_id``) or who declared a conflict
    (``conflicts``; also written automatically at arrival when an accused person's name matches
    the account, ``portal.reporter.arrival``) is *excluded* from that case: every case-level
    action is
    refused, whatever their roles, team membership or key wraps. ``excluded_case_ids_clause``
    must be ANDed into every case listing, search, count, drill-down, notification and
    assignment query (precomputed statistics subtract ``excluded_case_ids`` instead). Because
    the check reads the tables on every request, adding a subject revokes access at once.
    Destroyed cases (``cases.destroyed_on`` set) allow no case-level action at all.

Role-level actions, ``can(principal, action)``:

    ====================  ==================================================================
    action                granted to
    ====================  ==================================================================
    manage_users          administrator
    manage_settings       administrator
    read_audit            auditor
    view_statistics       auditor, team_lead, approver
    triage                intake_officer, independent_reviewer
    register_case         intake_officer (reports received by phone, letter, visit... W2)
    view_inbox            intake_officer, independent_reviewer
    list_cases            intake_officer, investigator, team_lead, approver,
                          independent_reviewer
    view_transfers        department_liaison (their own department only)
    decide_identity       identity_custodian, independent_reviewer
    manage_rewards        reward_officer
    approve               approver, independent_reviewer
    view_overdue          team_lead, approver, intake_officer, independent_reviewer (the
                          overdue list, W10, W15)
    manage_calendar       administrator (working-day calendar overrides, W10)
    review_rewards        approver, reward_officer, independent_reviewer (the list of reward
                          proposals, W11)
    manage_archive        approver, independent_reviewer (the archive list, legal holds,
                          destruction approvals, W13: ``role_scope_clause``)
    archive_closed        intake_officer, independent_reviewer (the list of cases closed
                          without a team, rejected or transferred, waiting to be archived: W13)
    decide_rights         approver, identity_custodian, independent_reviewer (the list of
                          reporters' withdrawal requests, issue 18; each request is decided
                          per case, below)
    ====================  ==================================================================

Case-level actions, ``may_act_on_case(session, principal, case_id, action)``; every row
assumes the principal is not excluded and the case exists and is not destroyed. "Member"
means a row in ``team_members`` for this case; "lead" a member whose function is ``lead``.

    ================  ==========================================================================
    action            allowed when
    ================  ==========================================================================
    view              member; or intake_officer while the stage is an intake stage
                      (``received``, ``triage``, ``accepted``: an accepted case waits for
                      its team); or approver while the stage is an approval
                      stage (``INTAKE_STAGES`` / ``APPROVAL_STAGES`` below); or, for a
                      retaliation case (``cases.retaliation_of``), a member of the original
                      case (W12)
    view_original     member (original files, unredacted; everybody else gets working copies)
    triage            intake_officer while the stage is an intake stage
    add_note          member; or intake_officer while the stage is an intake stage
    message_reporter  member; or intake_officer while the stage is an intake stage
    manage_team       lead; or intake_officer while the stage is an intake stage (forming
                      the first team on acceptance)
    transfer          lead; or intake_officer while the stage is an intake stage (转办: a
                      transfer package for a department, W3)
    manage_subjects   lead; or intake_officer while the stage is an intake stage (name the
                      accused, link them to a staff account: which excludes that account)
    request_identity  member (the request then needs an identity custodian's decision)
    decide_identity   identity_custodian who is not a member (four eyes)
    decide_withdrawal approver who is not a member, at any stage (a reporter's request to
                      withdraw the report, issue 18; a request to withdraw the identity is
                      ``decide_identity``)
    view_identity     identity_custodian; or a member holding an identity key wrap
                      (``key_wraps.scope = 'identity'``), i.e. whose request was approved
    approve_plan      approver who is not a member (nobody approves their own team's plan),
                      while the stage is an approval stage
    investigate       member (investigation plan steps, investigation records, the
                      implementation note: W6, W8)
    handle            lead (the handling plan, its submission for approval, the result report
                      that concludes the case, resuming a reopened case: W7 to W9)
    manage_reward     reward_officer who is not a member (payment, the reporter's claim)
    propose_reward    lead (W11: the team proposes, others decide)
    approve_reward    approver who is not a member, while the stage is ``concluded`` or
                      ``archived`` (as many different approvers as the amount needs, never
                      the proposer: ``investigator.domain.rewards``)
    manage_protection member; or intake_officer while the stage is an intake stage (risk
                      assessment at triage, protection plan, leniency records, W12)
    archive           while the case is closed (``ARCHIVE_STAGES``: ``concluded``, ``rejected``,
                      ``transferred``): lead; or intake_officer for a case closed without a
                      team (stage ``rejected`` or ``transferred``) (W13). Never for a reopened
                      case, which is being handled again
    legal_hold        approver who is not a member, while the stage is ``archived``
    approve_destruction  approver who is not a member, while the stage is ``archived``
                      (two different ones are needed: ``investigator.domain.retention``)
    manage_deadline   member (stop and restart the clock, ask for the one extension, W10)
    approve_extension approver who is not a member, while the handling clock can run
                      (``EXTENSION_STAGES``: the one extension of a deadline, W10)
    view_transfer     department_liaison whose department is the case's department, while the
                      stage is a transfer stage (``TRANSFER_STAGES``): the transfer package
                      only (a summary and redacted copies), never the case itself
    export_case       lead (the archive ZIP: the decrypted report, records and working
                      copies, never an original file nor the reporter's identity; A2, W13);
                      a liaison's transfer package export is ``view_transfer``
    ================  ==========================================================================

Package-level actions, ``may_act_on_package(session, principal, package_id, action)``; a
package is a transfer package (``transfer_packages``) of a case, and the originals rule and
destroyed cases apply as for the case itself:

    ================  ==========================================================================
    action            allowed when
    ================  ==========================================================================
    prepare_package   the package's creator (``created_by``): its page, adding redacted copies
    receive_package   department_liaison of the package's department who may ``view_transfer``
                      the case: reading it, exporting it, reporting back (反馈)
    ================  ==========================================================================

What a page offers, ``offered(session, principal, case_id)``: the case-level actions above
that the principal may take *and* whose form can succeed in the case's present stage
(``OFFER_STAGES``), plus the page's own form names (``accept``, ``reject``, ``classify``,
``split`` for ``triage``; ``add_step``, ``add_record`` for ``investigate``). A page shows a
button only for an offered action, so nobody meets a button that always fails; the handlers
still ask ``may_act_on_case`` and the workflow modules check the stage again.

Never, whatever the case: the administrator and auditor roles grant no case content; the
department_liaison role never grants ``view``. An unknown action is refused.

The independent channel (issue 18)
    A case with ``cases.independent`` set concerns the 法审风控中心 or its staff (the reporter
    said so, or every intake officer was named in it at arrival). On such a case the roles of
    the centre (``CENTRE_ROLES``: intake_officer, identity_custodian, approver,
    reward_officer) grant nothing, and an ``independent_reviewer`` (who is never an intake
    officer) acts in each of them instead (``acts_as``): triage, the first team, identity
    decisions, plan approval, rewards. The case is left out of every list, search and count
    of the centre (``excluded_case_ids_clause``) unless the principal is an independent
    reviewer or on its team, and statistics show it in the totals only
    (``independent_case_ids``). Its team is formed of people outside the centre: an account
    holding a centre role (and no independent_reviewer role) cannot join it (``may_join_team``).
    The independent reviewer role is granted on the command line only: the workspace
    administrator cannot grant it nor manage such an account (``may_manage_account``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.roles import roles_of
from portal.case.stage import CLOSED, ENDED, INTAKE, TEAM_WORK, UNDER_REVIEW, Stage, sources_of
from portal.kernel.db.models import (
    Case,
    Conflict,
    KeyWrap,
    Subject,
    TeamMember,
    TransferPackage,
    User,
)

# the stage conditions of the rules below, in the case core's own names (portal.case.stage)
INTAKE_STAGES: frozenset[str] = frozenset(INTAKE)
APPROVAL_STAGES: frozenset[str] = frozenset({Stage.APPROVAL})
TRANSFER_STAGES: frozenset[str] = frozenset({Stage.TRANSFERRED})
EXTENSION_STAGES: frozenset[str] = frozenset(
    {
        Stage.ACCEPTED,
        Stage.INVESTIGATING,
        Stage.APPROVAL,
        Stage.HANDLING,
        Stage.IMPLEMENTING,
        Stage.REOPENED,
    }
)
CLOSED_STAGES: frozenset[str] = frozenset(CLOSED)
# the team's working stages: investigation records and handling plans are written only then
TEAM_WORK_STAGES: frozenset[str] = frozenset(TEAM_WORK)
# closed but not yet archived: what ``archive`` needs, the sources of the case core's archive
# transition (a transferred case also needs every transfer package reported back:
# ``investigator.domain.retention.is_closed``)
ARCHIVE_STAGES: frozenset[str] = frozenset(sources_of(Stage.ARCHIVED, "case.archive"))
# the stages in which the case is being worked on (not ended: concluded, rejected,
# transferred, archived)
WORKING_STAGES: frozenset[str] = frozenset(set(Stage) - ENDED)

INDEPENDENT_REVIEWER = "independent_reviewer"
# the roles of the 法审风控中心 that an independent reviewer holds instead on an independent case
CENTRE_ROLES: frozenset[str] = frozenset(
    {"intake_officer", "identity_custodian", "approver", "reward_officer"}
)

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


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    department_id: str | None = None

    def has(self, role: str) -> bool:
        return role in self.roles


def acts_as(roles: frozenset[str], role: str, independent: bool) -> bool:
    """Does a person holding ``roles`` act as ``role`` on a case of the independent channel
    (``independent``) or not? On an independent case a role of the centre (``CENTRE_ROLES``)
    is held by the independent reviewers only, never by an intake officer."""
    if not independent or role not in CENTRE_ROLES:
        return role in roles
    return INDEPENDENT_REVIEWER in roles and "intake_officer" not in roles


def may_join_team(roles: frozenset[str], independent: bool) -> bool:
    """May an account holding ``roles`` be put on the team of a case? On an independent case
    the team is formed of people outside the centre: no holder of a centre role unless an
    independent reviewer (who is never an intake officer)."""
    if not independent:
        return True
    if "intake_officer" in roles:
        return False
    return INDEPENDENT_REVIEWER in roles or roles.isdisjoint(CENTRE_ROLES)


def may_manage_account(principal: Principal, account_roles: frozenset[str]) -> bool:
    """May the principal manage a staff account on the workspace (its roles, disabling,
    enabling, resetting its authenticator)? Administrators only, and never the account of an
    independent reviewer: that role is the installation owner's, on the command line."""
    return can(principal, "manage_users") and INDEPENDENT_REVIEWER not in account_roles


def role_scope_clause(principal: Principal, role: str) -> ColumnElement[bool]:
    """A clause over ``Case``: the cases on which the principal acts as ``role`` (``acts_as``):
    the center's cases when they hold the role, the independent ones when they are an
    independent reviewer. For role-wide lists such as the archive (``manage_archive``)."""
    grants: list[ColumnElement[bool]] = []
    if role in principal.roles:
        grants.append(Case.independent.is_(False))
    if acts_as(principal.roles, role, True):
        grants.append(Case.independent.is_(True))
    return or_(false(), *grants)


def can(principal: Principal, action: str) -> bool:
    """Role-level permission (no case involved). Unknown actions are refused."""
    allowed = ROLE_ACTIONS.get(action)
    return allowed is not None and not allowed.isdisjoint(principal.roles)


async def excluded_case_ids_clause(principal: Principal) -> ColumnElement[bool]:
    """A clause over ``Case`` that is false for every case the principal is excluded from
    (subject or declared conflict). AND it into every query that lists, searches or counts
    cases, e.g. ``select(Case).where(await excluded_case_ids_clause(p), ...)``."""
    subjects = select(Subject.case_id).where(Subject.user_id == principal.user_id)
    conflicts = select(Conflict.case_id).where(Conflict.user_id == principal.user_id)
    clauses: list[ColumnElement[bool]] = [
        Case.id.not_in(subjects),
        Case.id.not_in(conflicts),
    ]
    if not principal.has(INDEPENDENT_REVIEWER) or principal.has("intake_officer"):
        # an independent case is none of the centre's business: only its team sees it
        teams = select(TeamMember.case_id).where(TeamMember.user_id == principal.user_id)
        clauses.append(
            or_(Case.independent.is_(False), Case.id.in_(teams), Case.retaliation_of.in_(teams))
        )
    return and_(*clauses)


async def independent_case_ids(session: AsyncSession, principal: Principal) -> set[str]:
    """The independent cases the principal sees in totals only, never broken down (statistics,
    W14): every independent case unless the principal is an independent reviewer."""
    if acts_as(principal.roles, "intake_officer", True):
        return set()
    rows = await session.execute(select(Case.id).where(Case.independent.is_(True)))
    return {str(r) for r in rows.scalars()}


async def excluded_case_ids(session: AsyncSession, principal: Principal) -> set[str]:
    """The ids of the cases the principal is excluded from (subject or declared conflict): for
    code that subtracts them from precomputed counts (the statistics summaries, W14) instead
    of ANDing ``excluded_case_ids_clause`` into a scan. Same rule, same tables."""
    subjects = select(Subject.case_id).where(Subject.user_id == principal.user_id)
    conflicts = select(Conflict.case_id).where(Conflict.user_id == principal.user_id)
    return {str(r) for (r,) in (await session.execute(subjects.union(conflicts))).all()}


async def visible_cases_clause(principal: Principal) -> ColumnElement[bool]:
    """A clause over ``Case`` selecting exactly the cases ``can_view_case`` allows: use it for
    case lists and searches so they never show a case the principal could not open."""
    grants: list[ColumnElement[bool]] = [
        Case.id.in_(select(TeamMember.case_id).where(TeamMember.user_id == principal.user_id))
    ]
    if principal.has("intake_officer"):
        grants.append(and_(Case.independent.is_(False), Case.stage.in_(sorted(INTAKE_STAGES))))
    if principal.has("approver"):
        grants.append(and_(Case.independent.is_(False), Case.stage.in_(sorted(APPROVAL_STAGES))))
    if acts_as(principal.roles, "intake_officer", True):
        grants.append(
            and_(
                Case.independent.is_(True),
                Case.stage.in_(sorted(INTAKE_STAGES | APPROVAL_STAGES)),
            )
        )
    grants.append(
        Case.retaliation_of.in_(
            select(TeamMember.case_id).where(TeamMember.user_id == principal.user_id)
        )
    )
    return and_(
        await excluded_case_ids_clause(principal),
        Case.destroyed_on.is_(None),
        or_(false(), *grants),
    )


# Case-level actions ``case_action_clause`` can answer in SQL (the lists of the workspace).
CLAUSE_ACTIONS: frozenset[str] = frozenset(
    {
        "view",
        "message_reporter",
        "decide_identity",
        "approve_plan",
        "approve_extension",
        "approve_reward",
        "manage_reward",
        "view_transfer",
    }
)


def _role_clause(principal: Principal, role: str) -> ColumnElement[bool]:
    """``acts_as`` over ``Case``: whether the principal acts as ``role`` on each case, which
    depends on the case being of the independent channel or not."""
    inside = acts_as(principal.roles, role, False)
    outside = acts_as(principal.roles, role, True)
    if inside == outside:
        return true() if inside else false()
    return Case.independent.is_(outside)


async def case_action_clause(principal: Principal, action: str) -> ColumnElement[bool]:
    """A clause over ``Case`` selecting exactly the cases on which ``may_act_on_case`` allows
    ``action`` (one of ``CLAUSE_ACTIONS``; any other action selects nothing): the same rules
    as ``_decide``, for lists that ask one question about many cases in one query (the
    "waiting for me" page). Excluded and destroyed cases are never selected."""
    if action == "view":
        return await visible_cases_clause(principal)
    member = Case.id.in_(select(TeamMember.case_id).where(TeamMember.user_id == principal.user_id))
    outsider = not_(member)
    approver = _role_clause(principal, "approver")
    grant: ColumnElement[bool]
    if action == "message_reporter":
        intake = and_(
            _role_clause(principal, "intake_officer"), Case.stage.in_(sorted(INTAKE_STAGES))
        )
        grant = or_(member, intake)
    elif action == "decide_identity":
        grant = and_(_role_clause(principal, "identity_custodian"), outsider)
    elif action == "approve_plan":
        grant = and_(approver, outsider, Case.stage.in_(sorted(APPROVAL_STAGES)))
    elif action == "approve_extension":
        grant = and_(approver, outsider, Case.stage.in_(sorted(EXTENSION_STAGES)))
    elif action == "approve_reward":
        grant = and_(approver, outsider, Case.stage.in_(sorted(CLOSED_STAGES)))
    elif action == "manage_reward":
        grant = and_(_role_clause(principal, "reward_officer"), outsider)
    elif action == "view_transfer" and principal.department_id is not None:
        grant = and_(
            _role_clause(principal, "department_liaison"),
            Case.department_id == principal.department_id,
            Case.stage.in_(sorted(TRANSFER_STAGES)),
        )
    else:
        grant = false()
    return and_(await excluded_case_ids_clause(principal), Case.destroyed_on.is_(None), grant)


async def is_excluded(session: AsyncSession, principal: Principal, case_id: str) -> bool:
    """True when the principal is a subject of the case or declared a conflict on it."""
    return await is_excluded_user(session, case_id, principal.user_id)


async def is_excluded_user(session: AsyncSession, case_id: str, user_id: str) -> bool:
    """The originals rule for one person and one case: a linked subject or a declared (or
    automatic) conflict is excluded from everything about the case."""
    stmt = select(
        or_(
            exists().where(Subject.case_id == case_id, Subject.user_id == user_id),
            exists().where(Conflict.case_id == case_id, Conflict.user_id == user_id),
        )
    )
    return bool((await session.execute(stmt)).scalar())


def excluded_or_member_ids(case_id: str) -> Select[tuple[str | None]]:
    """The user ids a case's team may not be joined by: its linked subjects, its conflicted
    staff and its present members (a subquery for candidate lists)."""
    return (
        select(Subject.user_id).where(Subject.case_id == case_id, Subject.user_id.is_not(None))
    ).union(
        select(Conflict.user_id).where(Conflict.case_id == case_id),
        select(TeamMember.user_id).where(TeamMember.case_id == case_id),
    )  # type: ignore[return-value]


@dataclass(frozen=True)
class _Facts:
    stage: str
    department_id: str | None
    membership: str | None  # the member's function, or None when not a member
    identity_wrap: bool
    original_member: bool = False  # member of the case this retaliation case is about
    independent: bool = False  # the independent channel: centre roles held by reviewers


async def _facts(session: AsyncSession, principal: Principal, case_id: str) -> _Facts | None:
    """What the rules need about one case, or None when the principal may do nothing at all
    (no such case, destroyed, or excluded)."""
    row = (
        await session.execute(
            select(
                Case.stage,
                Case.department_id,
                Case.destroyed_on,
                Case.retaliation_of,
                Case.independent,
            ).where(Case.id == case_id)
        )
    ).first()
    if row is None or row.destroyed_on is not None:
        return None
    if await is_excluded(session, principal, case_id):
        return None
    function = (
        await session.execute(
            select(TeamMember.function).where(
                TeamMember.case_id == case_id, TeamMember.user_id == principal.user_id
            )
        )
    ).scalar_one_or_none()
    wrap = (
        await session.execute(
            select(
                exists().where(
                    KeyWrap.case_id == case_id,
                    KeyWrap.scope == "identity",
                    KeyWrap.user_id == principal.user_id,
                )
            )
        )
    ).scalar()
    original_member = False
    if row.retaliation_of is not None:
        original_member = bool(
            (
                await session.execute(
                    select(
                        exists().where(
                            TeamMember.case_id == row.retaliation_of,
                            TeamMember.user_id == principal.user_id,
                        )
                    )
                )
            ).scalar()
        )
    return _Facts(
        stage=row.stage,
        department_id=row.department_id,
        membership=function,
        identity_wrap=bool(wrap),
        original_member=original_member,
        independent=bool(row.independent),
    )


def _decide(principal: Principal, facts: _Facts, action: str) -> bool:
    member = facts.membership is not None
    lead = facts.membership == "lead"

    def has(role: str) -> bool:
        return acts_as(principal.roles, role, facts.independent)

    intake = has("intake_officer") and facts.stage in INTAKE_STAGES
    approving = has("approver") and facts.stage in APPROVAL_STAGES
    if action == "view":
        return member or intake or approving or facts.original_member
    if action == "view_original":
        return member
    if action == "triage":
        return intake
    if action in ("add_note", "message_reporter"):
        return member or intake
    if action in ("manage_team", "transfer", "manage_subjects"):
        return lead or intake
    if action == "request_identity":
        return member
    if action == "decide_identity":
        return has("identity_custodian") and not member
    if action == "decide_withdrawal":
        return has("approver") and not member
    if action == "view_identity":
        return has("identity_custodian") or (member and facts.identity_wrap)
    if action == "approve_plan":
        return approving and not member
    if action == "investigate":
        return member
    if action == "handle":
        return lead
    if action == "manage_reward":
        return has("reward_officer") and not member
    if action == "propose_reward":
        return lead
    if action == "approve_reward":
        return has("approver") and not member and facts.stage in CLOSED_STAGES
    if action in ("legal_hold", "approve_destruction"):
        return has("approver") and not member and facts.stage == "archived"
    if action == "manage_protection":
        return member or intake
    if action == "archive":
        if facts.stage not in ARCHIVE_STAGES:
            return False
        return lead or (has("intake_officer") and facts.stage in ("rejected", "transferred"))
    if action == "manage_deadline":
        return member
    if action == "export_case":
        return lead
    if action == "approve_extension":
        return has("approver") and not member and facts.stage in EXTENSION_STAGES
    if action == "view_transfer":
        return (
            has("department_liaison")
            and principal.department_id is not None
            and facts.department_id == principal.department_id
            and facts.stage in TRANSFER_STAGES
        )
    return False


async def may_act_on_case(
    session: AsyncSession, principal: Principal, case_id: str, action: str
) -> bool:
    """Case-level permission; see the table in the module docstring. False for an unknown
    action, a missing or destroyed case, and always for a subject or a conflicted user."""
    if action not in CASE_ACTIONS:
        return False
    facts = await _facts(session, principal, case_id)
    return facts is not None and _decide(principal, facts, action)


async def permissions(
    session: AsyncSession, principal: Principal, case_id: str, actions: Iterable[str]
) -> dict[str, bool]:
    """Several case-level permissions at once: the same answers as ``may_act_on_case`` for
    each action, from one reading of the facts (a page asking ten questions costs one)."""
    facts = await _facts(session, principal, case_id)
    return {
        action: facts is not None and action in CASE_ACTIONS and _decide(principal, facts, action)
        for action in actions
    }


# the page forms of one policy action (a form name -> the action that grants it)
FORM_ACTIONS: dict[str, str] = {
    "accept": "triage",
    "reject": "triage",
    "classify": "triage",
    "split": "triage",
    "add_step": "investigate",
    "add_record": "investigate",
}

# the stages in which an offered form can succeed; an action not listed is offered in every
# stage the policy allows it
OFFER_STAGES: dict[str, frozenset[str]] = {
    # the forms that change the stage: the sources of their transition (portal.case.stage)
    "accept": frozenset(sources_of(Stage.ACCEPTED, "case.accept")),
    "reject": frozenset(sources_of(Stage.REJECTED, "case.reject")),
    "transfer": frozenset(sources_of(Stage.TRANSFERRED, "case.transfer")),
    "archive": ARCHIVE_STAGES,
    "classify": INTAKE_STAGES,
    "split": frozenset(UNDER_REVIEW),
    # investigation steps and records are written while the team works on the case
    "add_step": TEAM_WORK_STAGES,
    "add_record": TEAM_WORK_STAGES,
    "manage_team": WORKING_STAGES,
    "manage_subjects": WORKING_STAGES,
    "add_note": WORKING_STAGES | ARCHIVE_STAGES,
    "message_reporter": WORKING_STAGES | ARCHIVE_STAGES,
    "request_identity": WORKING_STAGES | ARCHIVE_STAGES,
}


async def _open_packages(session: AsyncSession, case_id: str) -> bool:
    stmt = select(
        exists().where(TransferPackage.case_id == case_id, TransferPackage.reported_on.is_(None))
    )
    return bool((await session.execute(stmt)).scalar())


async def offered(session: AsyncSession, principal: Principal, case_id: str) -> frozenset[str]:
    """The case-level actions (and page forms) the principal may use on the case *now*: the
    policy allows them and the case's stage lets them succeed. Pages show exactly these."""
    facts = await _facts(session, principal, case_id)
    if facts is None:
        return frozenset()
    out: set[str] = set()
    for name in (*CASE_ACTIONS, *FORM_ACTIONS):
        action = FORM_ACTIONS.get(name, name)
        if not _decide(principal, facts, action):
            continue
        stages = OFFER_STAGES.get(name)
        if stages is not None and facts.stage not in stages:
            continue
        out.add(name)
    # a transferred case is closed only once every department has reported back
    if "archive" in out and facts.stage == "transferred" and await _open_packages(session, case_id):
        out.discard("archive")
    return frozenset(out)


async def may_act_on_package(
    session: AsyncSession, principal: Principal, package_id: str, action: str
) -> bool:
    """Package-level permission; see the table in the module docstring. False for an unknown
    action, a missing package, a missing or destroyed case, and always for a subject or a
    conflicted user of the package's case."""
    if action not in PACKAGE_ACTIONS:
        return False
    row = (
        await session.execute(
            select(
                TransferPackage.created_by,
                TransferPackage.department_id,
                Case.id,
                Case.destroyed_on,
            )
            .join(Case, Case.id == TransferPackage.case_id)
            .where(TransferPackage.id == package_id)
        )
    ).first()
    if row is None or row.destroyed_on is not None:
        return False
    if await is_excluded(session, principal, row.id):
        return False
    if action == "receive_package":
        return (
            principal.department_id is not None
            and row.department_id == principal.department_id
            and await may_act_on_case(session, principal, row.id, "view_transfer")
        )
    return bool(row.created_by == principal.user_id)


async def can_view_case(session: AsyncSession, principal: Principal, case_id: str) -> bool:
    """May the principal open the case (its content)? Same as ``may_act_on_case(..., "view")``."""
    return await may_act_on_case(session, principal, case_id, "view")


async def excluded_user_ids(session: AsyncSession, case_id: str) -> set[str]:
    """Everyone the originals rule excludes from one case (its linked subjects and declared
    conflicts): the same facts as ``is_excluded``, for one case and many people at once
    (notification fan-out)."""
    subjects = select(Subject.user_id).where(
        Subject.case_id == case_id, Subject.user_id.is_not(None)
    )
    conflicts = select(Conflict.user_id).where(Conflict.case_id == case_id)
    rows = (await session.execute(subjects.union(conflicts))).scalars()
    return {str(u) for u in rows if u}


async def _is_member(session: AsyncSession, case_id: str, user_id: str) -> bool:
    stmt = select(exists().where(TeamMember.case_id == case_id, TeamMember.user_id == user_id))
    return bool((await session.execute(stmt)).scalar())


async def deciders(session: AsyncSession, case_id: str, role: str) -> list[User]:
    """Enabled staff with ``role`` who may decide on the case (a reward's approval or payment,
    W11): not on its team, not a subject of it, not conflicted."""
    excluded = await excluded_user_ids(session, case_id)
    independent = bool(
        (await session.execute(select(Case.independent).where(Case.id == case_id))).scalar()
    )
    users = (await session.execute(select(User).where(User.disabled.is_(False)))).scalars()
    out = []
    for user in users:
        if not acts_as(roles_of(user.roles), role, independent) or user.id in excluded:
            continue
        if await _is_member(session, case_id, user.id):
            continue
        out.append(user)
    return out


async def may_decide(session: AsyncSession, case_id: str, user_id: str) -> bool:
    """Whether ``user_id`` may take a decision on the case that its team must not take itself
    (a reward, W11): not on the team, not a subject, not conflicted."""
    if user_id in await excluded_user_ids(session, case_id):
        return False
    return not await _is_member(session, case_id, user_id)


async def may_approve_extension(session: AsyncSession, case_id: str, user: User) -> bool:
    """The one extension of a deadline (W10) is decided by an enabled approver who is not on
    the case's team, not a subject and not conflicted, while the case is in a stage that
    allows it (``EXTENSION_STAGES``, as ``approve_extension`` in ``_decide``); on an
    independent case, an independent reviewer (``acts_as``)."""
    row = (
        await session.execute(select(Case.stage, Case.independent).where(Case.id == case_id))
    ).first()
    if row is None or user.disabled:
        return False
    if not acts_as(roles_of(user.roles), "approver", bool(row.independent)):
        return False
    if row.stage not in EXTENSION_STAGES:
        return False
    return await may_decide(session, case_id, user.id)
