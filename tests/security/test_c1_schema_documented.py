"""C1: docs/security.md section 8 lists every column of every table, plaintext or sealed.

The table's first cell names columns as ```table.column``` followed by bare ```column``` names
of the same table, or a whole table as ```table.*``` (a row such as "```users.*``` except the
sealed ones below" covers every column of ``users``; the exceptions have rows of their own).
Checked against ``Base.metadata`` (what the migrations build, see test_migrations):

* every column of every table is named, explicitly or by a ``table.*`` row, so a column added
  without documenting it fails here;
* every column the section names exists (no stale rows);
* a column holding ciphertext by name (``sealed``, ``sealed_*``, ``*_sealed``, ``wrapped``,
  ``cases.content``) is named explicitly in a row marked **sealed**.
"""

from __future__ import annotations

import re
from pathlib import Path

from portal.kernel.db.models import Base

ROOT = Path(__file__).resolve().parents[2]
SECURITY = ROOT / "docs" / "security.md"
SECTION = "## 8. What a stolen database reveals"

_ROW = re.compile(r"^\|(.*)\|\s*$")
_NAME = re.compile(r"`([a-z_][a-z0-9_]*)(?:\.([a-z_][a-z0-9_]*|\*))?`")


def _section_rows(text: str) -> list[tuple[str, str]]:
    """(first cell, second cell) of every row of section 8's column table."""
    start = text.index(SECTION)
    end = text.index("\n## ", start + len(SECTION))
    rows = []
    for line in text[start:end].splitlines():
        match = _ROW.match(line.strip())
        if not match:
            continue
        cells = [c.strip() for c in match.group(1).split("|")]
        if len(cells) != 3 or cells[0] in ("table.column", "") or set(cells[0]) <= {"-"}:
            continue
        rows.append((cells[0], cells[1]))
    return rows


def documented(text: str) -> tuple[set[str], dict[str, bool]]:
    """(tables documented as ``table.*``, {``table.column``: whether its row says sealed})."""
    whole: set[str] = set()
    columns: dict[str, bool] = {}
    for first, kind in _section_rows(text):
        sealed = "**sealed**" in kind
        table: str | None = None
        for name, member in _NAME.findall(first):
            if member == "*":
                table = name
                whole.add(name)
            elif member:
                table = name
                columns[f"{name}.{member}"] = sealed
            elif table is not None:
                columns[f"{table}.{name}"] = sealed
    return whole, columns


def _holds_ciphertext(table: str, column: str) -> bool:
    return (
        column == "sealed"
        or column.startswith("sealed_")
        or column.endswith("_sealed")
        or column == "wrapped"
        or (table, column) == ("cases", "content")
    )


def test_C1_every_column_is_documented_plaintext_or_sealed() -> None:
    whole, columns = documented(SECURITY.read_text(encoding="utf-8"))
    schema = {
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
    }
    tables = {table.name for table in Base.metadata.sorted_tables}
    assert len(schema) > 200 and len(columns) > 100, "parser or schema lost its rows"

    missing = sorted(c for c in schema if c not in columns and c.split(".")[0] not in whole)
    assert not missing, "columns not listed in docs/security.md section 8: " + ", ".join(missing)

    stale = sorted(c for c in columns if c not in schema) + sorted(whole - tables)
    assert not stale, "docs/security.md section 8 names columns that do not exist: " + ", ".join(
        stale
    )

    not_sealed = sorted(
        c for c in schema if _holds_ciphertext(*c.split(".")) and not columns.get(c, False)
    )
    assert not not_sealed, "ciphertext columns not listed in a **sealed** row: " + ", ".join(
        not_sealed
    )


def test_C1_the_parser_reads_the_row_forms_the_section_uses() -> None:
    sample = (
        f"{SECTION}\n\n| table.column | | why |\n|---|---|---|\n"
        "| `cases.id`, `number` | plaintext | x |\n"
        "| `users.*` except the sealed ones below | plaintext | y |\n"
        "| `users.sealed_private_by_password`, `sealed_private_by_recovery` | **sealed** | z |\n"
        "| `stats_a.*` (`day`, `n`), `stats_b.*` (`day`) | plaintext | w |\n"
        "| file store objects | **sealed** | v |\n"
        "\n## 9. next\n| `ignored.column` | plaintext | after the section |\n"
    )
    whole, columns = documented(sample)
    assert whole == {"users", "stats_a", "stats_b"}
    assert columns == {
        "cases.id": False,
        "cases.number": False,
        "users.sealed_private_by_password": True,
        "users.sealed_private_by_recovery": True,
        "stats_a.day": False,
        "stats_a.n": False,
        "stats_b.day": False,
    }
