"""Access policy: the ONE place that answers "may this person see or do this?" (A1, A2, A3).

Framework-free. Handlers ask this module and answer 404 when it says no, exactly as for a case
that does not exist, so a refusal never confirms that a case exists. The originals rule (A2)
comes before everything else: a linked subject or a conflicted person is excluded from every
case-level action and from every list, search, count and notification of the case; a
destroyed case allows nothing. Reports about the centre (A6) are the independent reviewers'.

The action tables, what each action means and who holds it: docs/access-policy.md.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, and_, exists, false, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from investigator.roles import CASE_ACTIONS as CASE_ACTIONS
from investigator.roles import INDEPENDENT_REVIEWER as INDEPENDENT_REVIEWER
from investigator.roles import PACKAGE_ACTIONS as PACKAGE_ACTIONS
from investigator.roles import ROLE_ACTIONS as ROLE_ACTIONS
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

# the roles of the 法审风控中心 that an independent reviewer holds instead on an independent case
CENTRE_ROLES: frozenset[str] = frozenset(
    {"intake_officer", "identity_custodian", "approver", "reward_officer"}
)


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


def may_hold_independent_keys(roles: frozenset[str], on_team: bool) -> bool:
    """May ``roles`` keep keys to an independent case (``on_team``: seated on its team)? Its
    readers (reviewers) may; a team member only while outside the centre (``may_join_team``)."""
    return acts_as(roles, "intake_officer", True) or (on_team and may_join_team(roles, True))


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
    if not may_join_team(principal.roles, True):
        # an independent case is none of the centre's business, team seat or not
        clauses.append(Case.independent.is_(False))
    elif not principal.has(INDEPENDENT_REVIEWER):
        # people outside the centre see the independent cases whose team they are on
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
    # a seat on an independent case's team holds only while its holder stays outside the centre
    seated = not facts.independent or may_join_team(principal.roles, True)
    member = seated and facts.membership is not None
    lead = member and facts.membership == "lead"
    original_member = seated and facts.original_member

    def has(role: str) -> bool:
        return acts_as(principal.roles, role, facts.independent)

    intake = has("intake_officer") and facts.stage in INTAKE_STAGES
    approving = has("approver") and facts.stage in APPROVAL_STAGES
    if action == "view":
        return member or intake or approving or original_member
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
