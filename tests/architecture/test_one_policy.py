"""One policy (issue 15): who is excluded from a case (a linked subject, a conflicted person) is
asked of investigator/policy.py only. Any other module that reads who a subject or a conflict
*is* (``Subject.user_id`` / ``Conflict.user_id``) is either listed here with the reason it is
not an access decision, or fails this test."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICY = "investigator/policy.py"
# (module, function): reads that are not access decisions
NOT_ACCESS = {
    # confirming the link intake was offered at arrival: writes the subject, clears the notice
    ("investigator/domain/casework.py", "link_subject"),
    # answering that proposal "not the same person": deletes that automatic row (whether the
    # account may then read is asked of the policy: is_excluded_user, acts_as)
    ("investigator/domain/casework.py", "dismiss_proposed_link"),
    # the links proposed at arrival, shown to intake to confirm (the accused has no key)
    ("investigator/web/case_page.py", "proposed_links"),
    # statistics count persons named (keyed fingerprints), never decide who sees a case
    ("investigator/domain/statistics.py", "_repeats"),
}


def _reads() -> set[tuple[str, str]]:
    hits: set[tuple[str, str]] = set()
    for base in ("portal", "investigator"):
        for path in (ROOT / base).rglob("*.py"):
            rel = str(path.relative_to(ROOT))
            if rel == POLICY or "migrations" in path.parts or rel.endswith("db/models.py"):
                continue
            tree = ast.parse(path.read_text(), filename=rel)
            for func in ast.walk(tree):
                if not isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(func):
                    if (
                        isinstance(node, ast.Attribute)
                        and node.attr == "user_id"
                        and isinstance(node.value, ast.Name)
                        and node.value.id in ("Subject", "Conflict")
                    ):
                        hits.add((rel, func.name))
    return hits


def test_subjects_and_conflicts_are_asked_of_the_policy_only() -> None:
    assert _reads() - NOT_ACCESS == set()


def test_the_exceptions_are_still_real() -> None:
    # an exception that no longer reads anything is removed from the list, not kept for later
    assert _reads() >= NOT_ACCESS
