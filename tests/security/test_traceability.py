"""docs/traceability.md stays honest: every requirement of sections 1, 3 and 4 of the
requirements catalogue has a row, and every test the page names exists.

The catalogue lives outside the repository (CI runs on a clean clone), so its IDs are written
here. Checked:

* every ID of R1-R13, A1-A5, C1-C7 has exactly one row, and no row has an unknown ID;
* every node id (``tests/<path>.py::<test>`` or ``tests/<path>.py::<TestClass>::<test>``)
  names an existing file under tests/ and a test function defined in it (``def`` or
  ``async def``, at module level or in a ``Test*`` class), found by parsing the file with
  ``ast`` - nothing is imported or run;
* a test mentioned by bare name in backticks (e.g. "`test_pdf_stripped`") is defined in some
  file under tests/;
* no row's "enforced by" cell is empty unless it says "gap".
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "traceability.md"

REQUIREMENT_IDS: tuple[str, ...] = (
    *(f"R{i}" for i in range(1, 14)),
    *(f"A{i}" for i in range(1, 6)),
    *(f"C{i}" for i in range(1, 8)),
)

ROW_RE = re.compile(r"^\|\s*([A-Z]\d+)\s*\|(.*)\|\s*$")
NODE_RE = re.compile(r"\b(tests/[\w/]+\.py)((?:::\w+)+)")
BARE_TEST_RE = re.compile(r"`(test_\w+)`")
GAP_RE = re.compile(r"\bgap\b", re.IGNORECASE)


@dataclass
class Row:
    line: int
    ident: str
    cells: list[str]

    @property
    def enforced_by(self) -> str:
        return self.cells[-1] if self.cells else ""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)

    def add(self, problem: str) -> None:
        self.problems.append(problem)


def parse_rows(text: str) -> list[Row]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = ROW_RE.match(line.strip())
        if match:
            cells = [c.strip() for c in match.group(2).split("|")]
            rows.append(Row(number, match.group(1), cells))
    return rows


def _test_names(body: Iterable[ast.stmt]) -> set[str]:
    return {
        node.name
        for node in body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name.startswith("test")
    }


@cache
def definitions(path: Path) -> dict[str, set[str]]:
    """Test functions of a file: key "" for module level, a class name for its methods."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = {"": _test_names(tree.body)}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            found[node.name] = _test_names(node.body)
    return found


def all_test_names(root: Path) -> set[str]:
    names: set[str] = set()
    for path in sorted((root / "tests").rglob("test_*.py")):
        for group in definitions(path).values():
            names |= group
    return names


def check_node(root: Path, file_part: str, parts: list[str]) -> str | None:
    """None when the node id names a defined test, else what is wrong."""
    path = (root / file_part).resolve()
    if not path.is_relative_to((root / "tests").resolve()) or not path.is_file():
        return f"{file_part}: no such test file"
    defs = definitions(path)
    if len(parts) == 1:
        if parts[0] in defs[""]:
            return None
        name = parts[0]
        owners = [cls for cls, names in defs.items() if cls and name in names]
        if owners:
            return f"{file_part}::{name} is a method: write {file_part}::{owners[0]}::{name}"
        return f"{file_part}: no test function {name!r}"
    if len(parts) == 2:
        cls, name = parts
        if cls not in defs:
            return f"{file_part}: no test class {cls!r}"
        if name not in defs[cls]:
            return f"{file_part}::{cls}: no test method {name!r}"
        return None
    return f"{file_part}::{'::'.join(parts)}: not a node id of a test"


def check(text: str, root: Path, expected: Iterable[str] = REQUIREMENT_IDS) -> list[str]:
    report = Report()
    expected = tuple(expected)
    rows = parse_rows(text)
    seen: dict[str, int] = {}
    for row in rows:
        if row.ident in seen:
            report.add(f"{row.ident}: two rows (lines {seen[row.ident]} and {row.line})")
        seen.setdefault(row.ident, row.line)
        if row.ident not in expected:
            report.add(f"line {row.line}: {row.ident} is not a requirement of sections 1, 3, 4")
    for ident in expected:
        if ident not in seen:
            report.add(f"{ident}: no row")

    known_tests: set[str] | None = None
    for row in rows:
        where = f"{row.ident} (line {row.line})"
        if len(row.cells) != 2:
            report.add(f"{where}: expected 3 cells (ID, requirement, enforced by)")
            continue
        cell = row.enforced_by
        nodes = NODE_RE.findall(cell)
        if not nodes and not GAP_RE.search(cell):
            report.add(f"{where}: no test named and no 'gap' stated")
        for file_part, suffix in nodes:
            problem = check_node(root, file_part, suffix.split("::")[1:])
            if problem:
                report.add(f"{where}: {problem}")
        for name in BARE_TEST_RE.findall(NODE_RE.sub("", cell)):
            if known_tests is None:
                known_tests = all_test_names(root)
            if name not in known_tests:
                report.add(f"{where}: `{name}` is not a test defined under tests/")
    return report.problems


CODE_MAP_HEADING = "## Where each requirement lives in the code"
# every ID of the catalogue, for the code map (sections 1 to 5)
ALL_IDS: tuple[str, ...] = (
    *(f"R{i}" for i in range(1, 14)),
    *(f"W{i}" for i in range(1, 16)),
    *(f"A{i}" for i in range(1, 7)),
    *(f"C{i}" for i in range(1, 8)),
    *(f"O{i}" for i in range(1, 6)),
)
CODE_RE = re.compile(
    r"`((?:portal|investigator|crypto|templates|docs)/[\w/.-]+|Makefile)(?:::(\w+))?`"
)


def split_doc(text: str) -> tuple[str, str]:
    """(the tests map, the code map): the code map is the section under CODE_MAP_HEADING."""
    tests_part, _, code_part = text.partition(CODE_MAP_HEADING)
    return tests_part, code_part


def top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def check_code_map(text: str, root: Path, expected: Iterable[str] = ALL_IDS) -> list[str]:
    report = Report()
    rows = parse_rows(text)
    seen = {row.ident for row in rows}
    for ident in expected:
        if ident not in seen:
            report.add(f"{ident}: no row in the code map")
    for row in rows:
        where = f"{row.ident} (code map line {row.line})"
        refs = CODE_RE.findall(row.enforced_by)
        if not refs and not GAP_RE.search(row.enforced_by):
            report.add(f"{where}: no code named and no 'gap' stated")
        for file_part, name in refs:
            path = root / file_part
            if not path.is_file():
                report.add(f"{where}: {file_part}: no such file")
            elif name and name not in top_level_names(path):
                report.add(f"{where}: {file_part} defines no {name!r}")
    return report.problems


def test_every_requirement_has_a_place_in_the_code_and_every_place_exists() -> None:
    _tests, code_map = split_doc(DOC.read_text(encoding="utf-8"))
    assert code_map, f"docs/traceability.md has no section {CODE_MAP_HEADING!r}"
    problems = check_code_map(code_map, ROOT)
    assert not problems, "docs/traceability.md's code map is out of date:\n  " + "\n  ".join(
        problems
    )


def test_the_code_map_checker_reports_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "portal").mkdir()
    (tmp_path / "portal" / "m.py").write_text("X = 1\n\ndef f():\n    pass\n", encoding="utf-8")
    good = "| R1 | a | `portal/m.py::f`, `portal/m.py::X` |\n| R2 | b | **gap:** later |\n"
    assert check_code_map(good, tmp_path, ["R1", "R2"]) == []
    bad = "| R1 | a | `portal/m.py::g` |\n| R2 | b | `portal/n.py` |\n| R3 | c | nothing |\n"
    problems = "\n".join(check_code_map(bad, tmp_path, ["R1", "R2", "R3", "R4"]))
    for expected in ("defines no 'g'", "portal/n.py: no such file", "no code named", "R4: no row"):
        assert expected in problems, (expected, problems)


def test_every_requirement_has_a_row_and_every_named_test_exists() -> None:
    assert DOC.is_file(), f"{DOC.relative_to(ROOT)} is missing"
    problems = check(split_doc(DOC.read_text(encoding="utf-8"))[0], ROOT)
    assert not problems, "docs/traceability.md is out of date:\n  " + "\n  ".join(problems)


def test_the_page_names_real_tests_for_most_rows() -> None:
    """Guards the parser: a format change that hid every node id would pass the check above."""
    rows = parse_rows(split_doc(DOC.read_text(encoding="utf-8"))[0])
    with_tests = [r.ident for r in rows if NODE_RE.search(r.enforced_by)]
    assert len(with_tests) >= len(REQUIREMENT_IDS) - 3, with_tests


def test_the_checker_reports_what_is_wrong(tmp_path: Path) -> None:
    (tmp_path / "tests" / "x").mkdir(parents=True)
    (tmp_path / "tests" / "x" / "test_a.py").write_text(
        "def test_one():\n    pass\n\n"
        "async def test_two():\n    pass\n\n"
        "class TestGroup:\n    def test_three(self):\n        pass\n\n"
        "def helper():\n    pass\n",
        encoding="utf-8",
    )
    good = (
        "| ID | requirement | enforced by |\n|---|---|---|\n"
        "| R1 | a | `tests/x/test_a.py::test_one` — x<br>`tests/x/test_a.py::test_two` — y |\n"
        "| R2 | b | `tests/x/test_a.py::TestGroup::test_three` — z; also `test_one` |\n"
        "| R3 | c | **gap:** nothing checks this |\n"
    )
    assert check(good, tmp_path, ["R1", "R2", "R3"]) == []
    bad = (
        "| R1 | a | `tests/x/test_a.py::test_missing` |\n"
        "| R1 | a | `tests/x/test_b.py::test_one` |\n"
        "| R2 | b | `tests/x/test_a.py::helper`, `tests/x/test_a.py::test_three` |\n"
        "| R4 | d | see `test_nowhere` |\n"
        "| R5 | e |  |\n"
    )
    problems = "\n".join(check(bad, tmp_path, ["R1", "R2", "R3", "R4", "R5"]))
    for expected in (
        "no test function 'test_missing'",
        "R1: two rows",
        "tests/x/test_b.py: no such test file",
        "no test function 'helper'",
        "write tests/x/test_a.py::TestGroup::test_three",
        "R3: no row",
        "R4 (line 4): no test named and no 'gap' stated",
        "`test_nowhere` is not a test defined under tests/",
        "R5 (line 5): no test named and no 'gap' stated",
    ):
        assert expected in problems, (expected, problems)
