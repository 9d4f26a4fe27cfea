"""The case page's context: what the principal may see and which forms they may use.

Built inside the caller's (write) transaction, after ``case_for`` granted ``view``. Content is
opened with the staff member's own key wrap; original files are listed only for
``view_original``; the reporter's identity (and even whether there is one) only for
``view_identity`` (A3), and each page that shows it writes an ``identity.view`` audit entry
and shares the identity key with the custodians who lack it (``share_with_custodians``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from crypto.errors import CryptoError
from crypto.recipients import unwrap_for_recipient
from investigator.domain.casefile import CaseDetail, NoKey, case_detail, open_identity
from investigator.domain.casework import FUNCTIONS, REJECT_REASONS, RISKS, SEVERITIES
from investigator.domain.rights import CorrectionView, corrections_for
from investigator.domain.split import KINDS as SPLIT_KINDS
from investigator.policy import (
    CASE_ACTIONS,
    FORM_ACTIONS,
    excluded_or_member_ids,
    may_act_on_package,
    may_join_team,
    offered,
)
from investigator.roles import INVESTIGATIVE_ROLES, roles_of
from investigator.web.case_common import key_or_none, share_with_custodians
from investigator.web.guards import StaffPrincipal
from portal.case.sealing import open_json
from portal.case.stage import PUBLIC_STAGES
from portal.kernel import audit
from portal.kernel.db.models import (
    Case,
    Category,
    Conflict,
    Department,
    IdentityRequest,
    PackageWrap,
    TransferPackage,
    User,
)
from portal.kernel.services import Services


@dataclass
class PackageView:
    id: str
    department: str
    created_on: Any
    due_on: Any
    reported_on: Any
    summary: str | None
    report_back: str | None
    mine: bool


async def package_key(
    session: AsyncSession, package_id: str, staff: StaffPrincipal
) -> bytes | None:
    """The transfer package key, when a wrap for this staff member exists and opens."""
    wrap = (
        await session.execute(
            select(PackageWrap).where(
                PackageWrap.package_id == package_id, PackageWrap.user_id == staff.user_id
            )
        )
    ).scalar_one_or_none()
    if wrap is None:
        return None
    try:
        return unwrap_for_recipient(
            staff.private_key, wrap.wrapped, field_aad(package_id, f"package-wrap:{staff.user_id}")
        )
    except CryptoError:
        return None


def open_package(package: TransferPackage, pkey: bytes) -> tuple[str, str | None]:
    summary = open_json(pkey, package.sealed_summary, field_aad(package.id, "package-summary"))
    report: str | None = None
    if package.sealed_report_back is not None:
        report = open_json(
            pkey, package.sealed_report_back, field_aad(package.id, "package-report")
        )["text"]
    return str(summary["summary"]), report


async def team_candidates(session: AsyncSession, case_id: str) -> list[User]:
    """Active staff with an investigative role (``INVESTIGATIVE_ROLES``) who may join: not on
    the team, not a subject, not conflicted. The page never says why someone is missing from
    the list; ``team/add`` refuses anyone else."""
    excluded = excluded_or_member_ids(case_id)
    stmt = (
        select(User)
        .where(User.disabled.is_(False), User.id.not_in(excluded))
        .order_by(User.display_name)
    )
    independent = bool(
        (await session.execute(select(Case.independent).where(Case.id == case_id))).scalar()
    )
    users = (await session.execute(stmt)).scalars()
    # an independent case's team is formed outside the centre (policy.may_join_team)
    return [
        u
        for u in users
        if not INVESTIGATIVE_ROLES.isdisjoint(roles_of(u.roles))
        and may_join_team(roles_of(u.roles), independent)
    ]


@dataclass
class ProposedLink:
    """An automatic conflict found at arrival: an accused person's name matched this staff
    account, which got no key; linking the subject to it is proposed to intake."""

    subject_id: str
    user: User


async def proposed_links(session: AsyncSession, case_id: str) -> list[ProposedLink]:
    rows = await session.execute(
        select(Conflict.subject_id, User)
        .join(User, User.id == Conflict.user_id)
        .where(Conflict.case_id == case_id, Conflict.subject_id.is_not(None))
        .order_by(User.display_name)
    )
    return [ProposedLink(str(subject_id), user) for subject_id, user in rows.all()]


async def _active_staff(session: AsyncSession) -> list[User]:
    stmt = select(User).where(User.disabled.is_(False)).order_by(User.display_name)
    return list((await session.execute(stmt)).scalars())


async def _packages(
    session: AsyncSession, case_id: str, staff: StaffPrincipal
) -> list[PackageView]:
    out: list[PackageView] = []
    rows = (
        await session.execute(
            select(TransferPackage, Department.name)
            .join(Department, Department.id == TransferPackage.department_id)
            .where(TransferPackage.case_id == case_id)
            .order_by(TransferPackage.created_on)
        )
    ).all()
    principal = staff.policy()
    for package, dept_name in rows:
        pkey = await package_key(session, package.id, staff)
        summary, report = open_package(package, pkey) if pkey else (None, None)
        out.append(
            PackageView(
                package.id,
                dept_name,
                package.created_on,
                package.due_on,
                package.reported_on,
                summary,
                report,
                pkey is not None
                and await may_act_on_package(session, principal, package.id, "prepare_package"),
            )
        )
    return out


async def case_page_context(
    services: Services, session: AsyncSession, staff: StaffPrincipal, case: Case
) -> dict[str, Any]:
    # what the page offers comes from the policy alone (``offered``): a form is shown only for
    # an action this person may take in this stage
    offers = await offered(session, staff.policy(), case.id)
    may = {name: name in offers for name in (*CASE_ACTIONS, *FORM_ACTIONS)}
    may["subjects"] = may["manage_subjects"]
    may["triage"] = may["accept"] or may["reject"] or may["classify"] or may["split"]
    key = await key_or_none(session, staff, case.id)
    detail: CaseDetail | None = None
    identity: dict[str, str] | None = None
    corrections: list[CorrectionView] = []
    if key is not None:
        detail = await case_detail(
            services,
            session,
            case,
            key,
            originals=may["view_original"],
            with_identity_flag=may["view_identity"],
        )
        if may["view_identity"] and detail.has_identity:
            try:
                identity = await open_identity(session, case.id, staff.user_id, staff.private_key)
            except NoKey:
                identity = None
            if identity is not None:
                corrections = await corrections_for(
                    session, case.id, staff.user_id, staff.private_key
                )
                # every reading of the identity is logged on its own (A3), not only as case.view
                await audit.record(
                    session, actor_user_id=staff.user_id, action="identity.view", case_id=case.id
                )
                # a holder who reads it shares it with the custodians appointed since
                await share_with_custodians(session, staff, case)
    my_requests = list(
        (
            await session.execute(
                select(IdentityRequest)
                .where(
                    IdentityRequest.case_id == case.id,
                    IdentityRequest.requester_id == staff.user_id,
                )
                .order_by(IdentityRequest.created_at)
            )
        ).scalars()
    )
    departments = list(
        (
            await session.execute(
                select(Department)
                .where(Department.active.is_(True) | (Department.id == case.department_id))
                .order_by(Department.name)
            )
        ).scalars()
    )
    # a switched-off category or department leaves the triage choices but stays in the case
    # that has it (a classification sent again keeps it)
    categories = list(
        (
            await session.execute(
                select(Category)
                .where(Category.active.is_(True) | (Category.code == case.category))
                .order_by(Category.position)
            )
        ).scalars()
    )
    return {
        "staff": staff,
        "case": case,
        "detail": detail,
        "sealed": key is None,
        "identity": identity,
        "identity_corrections": corrections,
        "may": may,
        "stages": PUBLIC_STAGES,
        "severities": SEVERITIES,
        "risks": RISKS,
        "functions": FUNCTIONS,
        "reject_reasons": REJECT_REASONS,
        "departments": departments,
        "categories": categories,
        "candidates": await team_candidates(session, case.id) if may["manage_team"] else [],
        "link_choices": await _active_staff(session) if may["subjects"] else [],
        # the flag for intake: shown to whoever may name and link the accused
        "proposals": await proposed_links(session, case.id) if may["subjects"] else [],
        "packages": await _packages(session, case.id, staff),
        "my_requests": my_requests,
        "error": None,
        "saved_notice": None,
        "kinds": SPLIT_KINDS,
        # the case this one was split from (W3) or belongs with (R3), by number only
        "linked_number": (
            await session.execute(select(Case.number).where(Case.id == case.linked_case_id))
        ).scalar_one_or_none()
        if case.linked_case_id
        else None,
    }
