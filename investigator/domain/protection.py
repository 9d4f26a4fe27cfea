"""Protections (免责与保护, W12). Framework-free, in the caller's write transaction.

* Every case carries a detriment-risk assessment and a protection plan: the risk level is the
  plaintext ``cases.risk`` (triage and deadlines need it); the assessment, the contact person,
  the monitoring period and the measures are sealed under the case key (aad ``protection``).
* Leniency records for cooperating participants: a supplier or partner may be granted reduced
  liability or a business guarantee; an employee lighter, reduced or no punishment. The record
  states that it covers internal discipline only (it cannot bind the authorities).
* A retaliation report from the reporter becomes an urgent case linked to the original
  (``portal.reporter.followup.report_retaliation``); ``investigator.policy`` lets the original's
  team
  members view it, and ``retaliation_cases`` lists them for the original's page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crypto.envelope import field_aad
from investigator.domain.casework import RISKS
from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.case.sealing import open_json, seal_json
from portal.kernel import audit, clock
from portal.kernel.db.models import Case, LeniencyRecord, ProtectionPlan, new_id
from portal.kernel.msgid import _
from portal.kernel.services import Services

INTERNAL_ONLY = _(
    "This leniency covers internal discipline only. It does not bind the authorities and does "
    "not exempt anyone from liability under the law."
)
PARTIES = ("supplier", "partner", "employee")
MEASURES: dict[str, tuple[str, ...]] = {
    "supplier": ("reduced_liability", "business_guarantee"),
    "partner": ("reduced_liability", "business_guarantee"),
    "employee": ("lighter_punishment", "reduced_punishment", "no_punishment"),
}
MAX_MONITORING_DAYS = 5 * 366


@dataclass
class LeniencyView:
    id: str
    party: str
    measure: str
    person: str
    reason: str
    statement: str
    granted_on: dt.date


async def save_plan(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    risk: str,
    assessment: str,
    contact: str,
    monitor_until: dt.date | None,
    measures: str,
) -> ProtectionPlan:
    """Record (or update) the detriment-risk assessment and the protection plan."""
    if risk not in RISKS:
        raise WorkflowError(_("Choose a risk level."))
    if not assessment.strip():
        raise WorkflowError(_("Describe the risk of detriment to the reporter."))
    today = clock.today()
    if monitor_until is not None and not (
        today <= monitor_until <= today + dt.timedelta(days=MAX_MONITORING_DAYS)
    ):
        raise WorkflowError(_("The monitoring period must end in the future, within five years."))
    case.risk = risk
    doc = {
        "assessment": assessment,
        "contact": contact,
        "measures": measures,
        "monitor_until": monitor_until.isoformat() if monitor_until else "",
    }
    sealed = seal_json(key, doc, field_aad(case.id, "protection"), services)
    plan = await session.get(ProtectionPlan, case.id)
    if plan is None:
        plan = ProtectionPlan(case_id=case.id, sealed=sealed, updated_by=actor, updated_on=today)
        session.add(plan)
    plan.sealed, plan.monitor_until, plan.updated_by, plan.updated_on = (
        sealed,
        monitor_until,
        actor,
        today,
    )
    add_event(session, case.id, "protection_plan", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="protection.plan",
        case_id=case.id,
        detail=f"risk={risk} monitor_until={monitor_until.isoformat() if monitor_until else '-'}",
    )
    return plan


async def open_plan(session: AsyncSession, case_id: str, key: bytes) -> dict[str, Any] | None:
    plan = await session.get(ProtectionPlan, case_id)
    if plan is None or not plan.sealed:
        return None
    doc: dict[str, Any] = open_json(key, plan.sealed, field_aad(case_id, "protection"))
    return doc


async def add_leniency(
    session: AsyncSession,
    services: Services,
    case: Case,
    key: bytes,
    actor: str,
    *,
    party: str,
    measure: str,
    person: str,
    reason: str,
) -> LeniencyRecord:
    """A leniency record for a cooperating participant; internal discipline only."""
    if party not in PARTIES or measure not in MEASURES[party]:
        raise WorkflowError(_("Choose the kind of participant and a measure that applies to it."))
    if not person.strip() or not reason.strip():
        raise WorkflowError(_("Name the participant and give the reason."))
    rid = new_id()
    record = LeniencyRecord(
        id=rid,
        case_id=case.id,
        party=party,
        measure=measure,
        granted_by=actor,
        granted_on=clock.today(),
        sealed=seal_json(
            key,
            {"person": person, "reason": reason, "statement": INTERNAL_ONLY},
            field_aad(case.id, f"leniency:{rid}"),
            services,
        ),
    )
    session.add(record)
    add_event(session, case.id, "leniency_granted", public=False, actor=actor)
    await audit.record(
        session,
        actor_user_id=actor,
        action="protection.leniency",
        case_id=case.id,
        detail=f"record={rid} party={party} measure={measure}",
    )
    return record


async def list_leniency(session: AsyncSession, case_id: str, key: bytes) -> list[LeniencyView]:
    rows = (
        await session.execute(
            select(LeniencyRecord)
            .where(LeniencyRecord.case_id == case_id)
            .order_by(LeniencyRecord.granted_on, LeniencyRecord.id)
        )
    ).scalars()
    out = []
    for r in rows:
        if not r.sealed:
            continue
        doc = open_json(key, r.sealed, field_aad(case_id, f"leniency:{r.id}"))
        out.append(
            LeniencyView(
                r.id,
                r.party,
                r.measure,
                str(doc.get("person", "")),
                str(doc.get("reason", "")),
                str(doc.get("statement", INTERNAL_ONLY)),
                r.granted_on,
            )
        )
    return out


async def retaliation_cases(session: AsyncSession, case_id: str) -> list[Case]:
    """Urgent retaliation cases linked to this one (reported from the follow-up page)."""
    return list(
        (
            await session.execute(
                select(Case)
                .where(Case.retaliation_of == case_id, Case.destroyed_on.is_(None))
                .order_by(Case.number)
            )
        ).scalars()
    )
