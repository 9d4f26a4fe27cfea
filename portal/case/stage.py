"""The stages of a case and the one way to change them.

``Stage`` names every stage; ``TRANSITIONS`` lists each allowed change as (from, to, action);
``move`` is the only code that assigns ``Case.stage`` (a test greps for any other): it refuses a
change the table lacks, sets the stage, writes the case event and, for staff actions, the audit
entry, all in the caller's transaction. A stage change by the reporter (a re-handling request,
W9) writes its day-dated event but no audit entry: the audit log times its entries to the
microsecond, and a reporter's own acts are never timed (R9).

Deadlines follow stage changes through the pre-commit hook the composition root installs
(``portal.app.wiring``), so ``move`` needs to know nothing of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from portal.case.errors import WorkflowError
from portal.case.events import add_event
from portal.kernel import audit
from portal.kernel.db.models import Case


class Stage(StrEnum):
    RECEIVED = "received"
    TRIAGE = "triage"
    ACCEPTED = "accepted"
    INVESTIGATING = "investigating"
    HANDLING = "handling"
    APPROVAL = "approval"
    IMPLEMENTING = "implementing"
    CONCLUDED = "concluded"
    REJECTED = "rejected"
    TRANSFERRED = "transferred"
    REOPENED = "reopened"
    ARCHIVED = "archived"


# the stages of a case under review at intake (W3), closed ones, and those of the team's work
INTAKE: frozenset[Stage] = frozenset({Stage.RECEIVED, Stage.TRIAGE, Stage.ACCEPTED})
UNDER_REVIEW: frozenset[Stage] = frozenset({Stage.RECEIVED, Stage.TRIAGE})
CLOSED: frozenset[Stage] = frozenset({Stage.CONCLUDED, Stage.ARCHIVED})
ENDED: frozenset[Stage] = frozenset(
    {Stage.CONCLUDED, Stage.REJECTED, Stage.TRANSFERRED, Stage.ARCHIVED}
)
TEAM_WORK: frozenset[Stage] = frozenset({Stage.INVESTIGATING, Stage.HANDLING, Stage.REOPENED})

REPORTER = "reporter"  # the action of a transition made by the reporter (no audit entry, R9)


@dataclass(frozen=True)
class Transition:
    source: Stage
    target: Stage
    action: str  # the audit action of the staff step; REPORTER for the reporter's own
    event: str  # the case event written with it
    public: bool = True  # whether the reporter sees the event on the follow-up page


def _t(sources: tuple[Stage, ...], target: Stage, action: str, event: str, *, public: bool = True):  # type: ignore[no-untyped-def]
    return tuple(Transition(s, target, action, event, public) for s in sources)


TRANSITIONS: tuple[Transition, ...] = (
    *_t((Stage.RECEIVED,), Stage.TRIAGE, "case.classify", "triage_started"),
    *_t((Stage.RECEIVED, Stage.TRIAGE), Stage.ACCEPTED, "case.accept", "accepted"),
    *_t((Stage.RECEIVED, Stage.TRIAGE), Stage.REJECTED, "case.reject", "rejected"),
    *_t(
        (
            Stage.RECEIVED,
            Stage.TRIAGE,
            Stage.ACCEPTED,
            Stage.INVESTIGATING,
            Stage.HANDLING,
            Stage.REOPENED,
        ),
        Stage.TRANSFERRED,
        "case.transfer",
        "transferred",
    ),
    *_t((Stage.ACCEPTED,), Stage.INVESTIGATING, "team.add", "investigation_started"),
    *_t(
        (Stage.INVESTIGATING, Stage.REOPENED),
        Stage.HANDLING,
        "plan.save",
        "handling_started",
    ),
    *_t((Stage.HANDLING,), Stage.APPROVAL, "plan.submit", "plan_submitted"),
    *_t((Stage.APPROVAL,), Stage.IMPLEMENTING, "plan.approve", "plan_approved"),
    *_t((Stage.APPROVAL,), Stage.HANDLING, "plan.return", "plan_returned", public=False),
    *_t(
        (Stage.IMPLEMENTING, Stage.INVESTIGATING, Stage.HANDLING, Stage.REOPENED),
        Stage.CONCLUDED,
        "case.conclude",
        "concluded",
    ),
    *_t(
        (Stage.CONCLUDED, Stage.REJECTED, Stage.TRANSFERRED),
        Stage.ARCHIVED,
        "case.archive",
        "archived",
    ),
    *_t((Stage.CONCLUDED, Stage.ARCHIVED), Stage.REOPENED, REPORTER, "reopened"),
    *_t((Stage.REOPENED,), Stage.INVESTIGATING, "case.rehandle", "rehandling_started"),
)
_BY_KEY: dict[tuple[Stage, Stage, str], Transition] = {
    (t.source, t.target, t.action): t for t in TRANSITIONS
}


def transition(source: str, target: Stage, action: str) -> Transition | None:
    """The table's entry for this change, or None when the table lacks it."""
    try:
        return _BY_KEY.get((Stage(source), target, action))
    except ValueError:
        return None


def sources_of(target: Stage, action: str) -> frozenset[Stage]:
    """The stages from which ``action`` moves a case to ``target`` (what a page may offer)."""
    return frozenset(t.source for t in TRANSITIONS if t.target == target and t.action == action)


def allowed(source: str, target: Stage, action: str) -> bool:
    return transition(source, target, action) is not None


class StageRefused(WorkflowError):
    """A stage change the transition table lacks (a msgid for the staff member)."""


NOT_IN_THIS_STAGE = "This step is not possible in the case's current stage."


async def move(
    session: AsyncSession,
    case: Case,
    target: Stage,
    *,
    action: str,
    actor: str | None,
    event: str | None = None,
    detail: str = "",
    audited: bool = True,
) -> Transition:
    """Move ``case`` to ``target`` by ``action``: the stage, its case event (``event`` overrides
    the table's, e.g. ``concluded:substantiated``) and, unless the reporter moved it, the audit
    entry with ``detail`` (``audited=False`` when the caller writes a richer entry itself in
    the same transaction). Raises StageRefused for a change the table lacks."""
    found = transition(case.stage, target, action)
    if found is None:
        raise StageRefused(NOT_IN_THIS_STAGE)
    case.stage = target.value  # the one assignment of Case.stage in the product
    add_event(session, case.id, event or found.event, public=found.public, actor=actor)
    if action != REPORTER and audited:
        await audit.record(
            session, actor_user_id=actor, action=action, case_id=case.id, detail=detail
        )
    return found


# stages in plain words for the reporter (msgids); the workspace sets Case.stage
PUBLIC_STAGES = {
    "received": "Received",
    "triage": "Being reviewed",
    "accepted": "Accepted for handling",
    "investigating": "Under investigation",
    "handling": "Being decided",
    "approval": "Being decided",
    "implementing": "Measures being carried out",
    "concluded": "Concluded",
    "rejected": "Not accepted",
    "transferred": "Passed to the responsible department",
    "reopened": "Reopened for re-handling",
    "archived": "Closed",
}
