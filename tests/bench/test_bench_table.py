"""bench/table.py and bench/run_all.py: every row's target counts, a miss is never reported as
met, and output of another shape is a failure (issue 17, point 6). Tiny fake benchmarks; no
server is started."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import run_all  # noqa: E402
import table  # noqa: E402
from table import Row, TableError, check, count, parse, verdict  # noqa: E402


def test_check_rows_carry_a_target_the_verdict_agrees_with() -> None:
    met = check("ratio", 0.73, ">=", 0.7)
    assert met.cells() == ("ratio", "0.73", ">= 0.7", "yes")
    missed = check("p95", 226.0, "<", 100, " ms", digits=0)
    assert missed.cells() == ("p95", "226 ms", "< 100 ms", "NO")
    assert verdict(met) == table.Verdict(True, True)
    assert verdict(missed).has_target and not verdict(missed).met
    assert not verdict(table.info("why", "12 ms")).has_target
    assert not verdict(table.measured("baseline", "3 ms")).has_target


def test_a_row_saying_yes_while_its_value_misses_counts_as_a_miss() -> None:
    liar = Row("workspace case page p95", "226 ms", "< 100 ms", "yes")
    v = verdict(liar)
    assert v.has_target and not v.met and "226 ms" in v.why
    # a target without a verdict, or a verdict without a target, is a miss too
    assert not verdict(Row("x", "1.0", ">= 0.7", "")).met
    assert not verdict(Row("x", "1.0", "(info)", "yes")).met
    assert count([liar, check("ok", 1.0, "<=", 1.2), table.info("i", "1")]) == (2, 1)


def test_tables_of_another_shape_are_refused() -> None:
    seven = textwrap.dedent(
        """\
        | database | cases | request | median ms | max ms | target | met? |
        |---|---|---|---|---|---|---|
        | postgresql | 50,000 | page | 63 | 80 | < 1000 ms | yes |
        """
    )
    with pytest.raises(TableError):
        parse(seven)
    ragged = (
        "| metric | value | target | met? |\n|---|---|---|---|\n| a | 1 | >= 2 | NO | extra |\n"
    )
    with pytest.raises(TableError):
        parse(ragged)
    good = table.render([check("a", 3.0, ">=", 2), table.info("b", "x")])
    assert parse("title line\n\n" + good + "\n\nnotes") == [
        Row("a", "3.00", ">= 2", "yes"),
        Row("b", "x", "(info)", ""),
    ]


FAKE = """\
import sys
print("fake bench")
print()
print("| metric | value | target | met? |")
print("|---|---|---|---|")
print("| throughput ratio | 0.50 | >= 0.7 | NO |")
print("| p95 | 226 ms | < 100 ms | yes |")
print("| landing p99 ratio | 1.5x | <= 3x | yes |")
print("| baseline | 3 ms | (measured) |  |")
print("SAVE" if "--save" in sys.argv else "NOSAVE", file=sys.stderr)
"""

SEVEN_COLUMNS = """\
print("| database | cases | request | median ms | max ms | target | met? |")
print("|---|---|---|---|---|---|---|")
print("| sqlite | 1 | page | 5 | 9 | < 1000 ms | yes |")
"""


@pytest.fixture
def fake_benches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "fake_bench.py").write_text(FAKE)
    (tmp_path / "columns_bench.py").write_text(SEVEN_COLUMNS)
    monkeypatch.setattr(run_all, "BENCH_DIR", tmp_path)
    return tmp_path


def test_run_all_counts_every_miss_and_strict_fails(
    fake_benches: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_all.main(["--only", "fake_bench"]) == 0
    out = capsys.readouterr().out
    # the NO, and the "yes" whose 226 ms misses < 100 ms: two of three targets missed
    assert "1 of 3 targets met, 2 missed; 0 script(s) failed." in out
    assert "| fake_bench | p95 | 226 ms | < 100 ms | NO (says 'yes'" in out
    assert run_all.main(["--only", "fake_bench", "--strict"]) == 1


def test_run_all_fails_on_a_table_of_another_shape(
    fake_benches: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_all.main(["--only", "columns_bench"]) == 1
    out = capsys.readouterr().out
    assert "output not of the shared table shape" in out
    assert "1 script(s) failed." in out


def test_run_all_passes_save_on_only_when_asked(
    fake_benches: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    run_all.main(["--only", "fake_bench"])
    assert "NOSAVE" in capfd.readouterr().err
    run_all.main(["--only", "fake_bench", "--save"])
    err = capfd.readouterr().err
    assert "SAVE" in err and "NOSAVE" not in err


def test_save_writes_only_when_enabled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "RESULTS_DIR", tmp_path / "results")
    assert table.save("x.md", "| t |", enabled=False) is None
    assert not (tmp_path / "results").exists()
    path = table.save("x.md", "| t |", enabled=True)
    assert path is not None and path.read_text() == "| t |\n"
