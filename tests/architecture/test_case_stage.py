"""The case core's state machine: one table, one function that changes a stage (issue 15)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from sqlalchemy import select

from portal.case.stage import (
    REPORTER,
    TRANSITIONS,
    Stage,
    StageRefused,
    allowed,
    move,
)
from portal.kernel.db.models import AuditEntry, Case, CaseEvent
from portal.kernel.services import Services

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = [ROOT / "portal", ROOT / "investigator"]


def _stage_assignments() -> list[str]:
    """Every `<x>.stage = ...` (also in tuple targets and augmented forms) in product code."""
    found = []
    for base in PRODUCT:
        for path in base.rglob("*.py"):
            if "migrations" in path.parts:
                continue
            tree = ast.parse(path.read_text(), filename=str(path))
            for node in ast.walk(tree):
                targets: list[ast.expr] = []
                if isinstance(node, ast.Assign):
                    targets = list(node.targets)
                elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
                    targets = [node.target]
                for target in targets:
                    elts = target.elts if isinstance(target, ast.Tuple) else [target]
                    for elt in elts:
                        if isinstance(elt, ast.Attribute) and elt.attr == "stage":
                            found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
            for node in ast.walk(tree):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id == "setattr"
                    and len(node.args) > 1
                    and isinstance(node.args[1], ast.Constant)
                    and node.args[1].value == "stage"
                ):
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno} (setattr)")
    return found


def test_only_move_assigns_a_stage() -> None:
    assert _stage_assignments() == ["portal/case/stage.py:" + _move_line()]


def _move_line() -> str:
    source = (ROOT / "portal/case/stage.py").read_text().splitlines()
    return str(next(i for i, line in enumerate(source, 1) if "case.stage = target.value" in line))


def test_the_table_is_closed_over_stages_and_has_no_duplicates() -> None:
    keys = [(t.source, t.target, t.action) for t in TRANSITIONS]
    assert len(keys) == len(set(keys))
    for t in TRANSITIONS:
        assert isinstance(t.source, Stage) and isinstance(t.target, Stage)
        assert t.source != t.target
    # every stage but the first is reachable, and only archived has no way onward but reopening
    assert {t.target for t in TRANSITIONS} == set(Stage) - {Stage.RECEIVED}
    assert not allowed("archived", Stage.INVESTIGATING, "case.rehandle")
    assert allowed("rejected", Stage.ARCHIVED, "case.archive")
    assert not allowed("reopened", Stage.ARCHIVED, "case.archive")
    assert not allowed("no-such-stage", Stage.TRIAGE, "case.classify")


async def _case(services: Services, stage: str) -> str:
    from tests.investigator.ws_helpers import submit_case  # the real submission path

    case_id, _code = await submit_case(services, with_files=False, token=f"stage-{stage}")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        # set up the starting stage the way the product does: through the table
        path = {
            "received": [],
            "concluded": [
                (Stage.ACCEPTED, "case.accept"),
                (Stage.INVESTIGATING, "team.add"),
                (Stage.CONCLUDED, "case.conclude"),
            ],
        }[stage]
        for target, action in path:
            await move(s, case, target, action=action, actor=None)
    return case_id


async def test_move_writes_event_and_audit_together_and_refuses_what_the_table_lacks(
    services: Services,
) -> None:
    case_id = await _case(services, "received")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        with pytest.raises(StageRefused):
            await move(s, case, Stage.ARCHIVED, action="case.archive", actor=None)
        assert case.stage == "received"
        await move(s, case, Stage.ACCEPTED, action="case.accept", actor=None, detail="why=test")
    async with services.db.read() as s:
        events = (
            (await s.execute(select(CaseEvent.kind).where(CaseEvent.case_id == case_id)))
            .scalars()
            .all()
        )
        audits = (
            await s.execute(
                select(AuditEntry.action, AuditEntry.detail).where(AuditEntry.case_id == case_id)
            )
        ).all()
    assert "accepted" in events and "archived" not in events
    assert ("case.accept", "why=test") in audits


async def test_the_reporters_reopening_writes_no_audit_entry(services: Services) -> None:
    case_id = await _case(services, "concluded")
    async with services.db.write() as s:
        case = await s.get(Case, case_id)
        assert case is not None
        before = len((await s.execute(select(AuditEntry.id))).scalars().all())
        await move(s, case, Stage.REOPENED, action=REPORTER, actor=None)
        after = len((await s.execute(select(AuditEntry.id))).scalars().all())
    assert case.stage == "reopened" and after == before
