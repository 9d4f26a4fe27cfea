"""The one table every benchmark prints, and the rule that says whether a row met its target
(not a benchmark itself; bench/run_all.py and every `*_bench.py` use it).

    | metric | value | target | met? |

* a row **with a target** is made by `check()`: the value is a number with an optional unit
  (`0.73`, `63 ms`, `3.1x`), the target an operator and a number in the same unit
  (`>= 0.7`, `< 100 ms`, `<= 3x`), `met?` is `yes` or `NO`;
* a row **without one** has `(measured)`, `(info)` or nothing as its target and an empty
  `met?` (`measured()`, `info()`, `row()`).

`verdict()` re-reads a row as run_all sees it: the value is compared with the target again, so
a row that says `yes` while its value misses the target, or that has a target and no verdict,
counts as a miss. `save()` writes a table under bench/results/ only when asked (`--save`).
"""

from __future__ import annotations

import argparse
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

HEADER = ("metric", "value", "target", "met?")
RESULTS_DIR = Path(__file__).resolve().parent / "results"
NO_TARGET = ("", "(measured)", "(info)")

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "=": operator.eq,
}
_TARGET = re.compile(r"(>=|<=|>|<|=)\s*(-?[\d,]*\.?\d+)\s*(\S*)")
_NUMBER = re.compile(r"(-?[\d,]*\.?\d+)\s*([A-Za-z%/]*)")


class TableError(ValueError):
    """Output that holds no table of the shared shape."""


@dataclass(frozen=True)
class Row:
    metric: str
    value: str
    target: str = ""
    met: str = ""

    def cells(self) -> tuple[str, str, str, str]:
        return (self.metric, self.value, self.target, self.met)


def row(metric: str, value: str) -> Row:
    """A row without a target (a figure a ratio below is made of)."""
    return Row(metric, value)


def measured(metric: str, value: str) -> Row:
    """A baseline: measured, no target."""
    return Row(metric, value, "(measured)")


def info(metric: str, value: str) -> Row:
    """An explanation next to a target; no target itself."""
    return Row(metric, value, "(info)")


def check(metric: str, value: float, op: str, limit: float, unit: str = "", digits: int = 2) -> Row:
    """A row with a target: `value` compared with `limit` by `op` (`>=`, `<=`, `>`, `<`, `=`),
    both shown with `digits` decimals and `unit` (`" ms"`, `"x"`, `" MiB"`)."""
    if op not in _OPS:
        raise ValueError(f"unknown operator {op!r}")
    shown = f"{value:.{digits}f}{unit}"
    ok = _OPS[op](float(shown.removesuffix(unit) if unit else shown), limit)
    return Row(metric, shown, f"{op} {limit:g}{unit}", "yes" if ok else "NO")


# --- reading a row back -----------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    has_target: bool
    met: bool
    why: str = ""  # for a miss the bench itself did not report


def _number(text: str) -> tuple[float, str] | None:
    match = _NUMBER.match(text.strip())
    if match is None:
        return None
    try:
        return float(match.group(1).replace(",", "")), match.group(2)
    except ValueError:
        return None


def verdict(r: Row) -> Verdict:
    """Whether a row has a target and met it, judged from its cells (see the module doc)."""
    target = r.target.strip()
    claim = r.met.strip().lower()
    if target in NO_TARGET:
        if claim:
            return Verdict(True, False, f"a verdict ({r.met}) without a target")
        return Verdict(False, True)
    said_yes = claim.startswith("yes")
    said_no = claim.startswith("no")
    if not (said_yes or said_no):
        return Verdict(True, False, "a target without a verdict")
    parsed = _TARGET.fullmatch(target)
    value = _number(r.value)
    if parsed is None or value is None or (parsed.group(3) or "") != value[1]:
        return Verdict(True, said_yes)  # a target no number can be read from: the bench's word
    ok = _OPS[parsed.group(1)](value[0], float(parsed.group(2).replace(",", "")))
    if ok != said_yes:
        return Verdict(True, False, f"says {r.met!r} but {r.value} against {target} is {ok}")
    return Verdict(True, ok)


def count(rows: Iterable[Row]) -> tuple[int, int]:
    """(rows with a target, rows that missed it)."""
    verdicts = [verdict(r) for r in rows]
    with_target = sum(1 for v in verdicts if v.has_target)
    return with_target, sum(1 for v in verdicts if v.has_target and not v.met)


# --- text -------------------------------------------------------------------------------------


def render(rows: Iterable[Row | Sequence[str]], header: Sequence[str] = HEADER) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = r.cells() if isinstance(r, Row) else tuple(r)
        lines.append("| " + " | ".join(c.replace("|", "/") for c in cells) + " |")
    return "\n".join(lines)


def _cells(line: str) -> list[str] | None:
    stripped = line.strip()
    if stripped.startswith("|") and stripped.endswith("|") and len(stripped) > 1:
        return [c.strip() for c in stripped[1:-1].split("|")]
    return None


def parse(text: str) -> list[Row]:
    """Every body row of every table in `text`; TableError if a table is not of the shared
    shape (another header, or a row with another number of cells)."""
    rows: list[Row] = []
    in_table = False
    for line in text.splitlines():
        cells = _cells(line)
        if cells is None:
            in_table = False
            continue
        if not in_table:
            if tuple(cells) != HEADER:
                raise TableError(f"a table whose header is not {' | '.join(HEADER)}: {line}")
            in_table = True
            continue
        if all(set(c) <= set("-: ") for c in cells):
            continue
        if len(cells) != len(HEADER):
            raise TableError(f"a row with {len(cells)} cells instead of {len(HEADER)}: {line}")
        rows.append(Row(*cells))
    return rows


# --- results ----------------------------------------------------------------------------------


def add_save_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--save", action="store_true", help="also write the table under bench/results/"
    )


def save(name: str, text: str, enabled: bool) -> Path | None:
    """Write `text` to bench/results/`name` when `enabled` (the --save option), else nothing."""
    if not enabled:
        return None
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / name
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    return path
