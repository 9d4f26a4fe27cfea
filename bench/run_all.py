"""Run every benchmark of the project and print one combined table (`make bench`).

    .venv/bin/python bench/run_all.py [--small] [--timeout SECONDS] [--strict] [--save]
        [--only NAME ...]

Each `bench/*_bench.py` runs as a subprocess with a time limit: bench/crypto_bench.py with
`--size-mib 64` under --small, every other script with `--small`; `--save` is passed on (each
script then writes its table under bench/results/; without it nothing is written there).
Their tables (bench/table.py: metric | value | target | met?) are collected into one:
benchmark | metric | value | target | met?. Every row with a target counts: its value is
compared with the target again (bench/table.verdict), so a row that says "yes" while its
value misses, or a target without a verdict, is a miss; output that is not of the shared shape
is a failure of that script. A script that fails or runs out of time gets a row saying so.
Exit status: 1 if a script failed or, with --strict, if any target was missed; else 0.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import stop_on_sigterm
from table import Row, TableError, count, parse, render, verdict

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent

# Arguments per script in --small mode; scripts not listed get ["--small"].
SMALL_ARGS: dict[str, list[str]] = {"crypto_bench.py": ["--size-mib", "64"]}


def scripts() -> list[Path]:
    return sorted(BENCH_DIR.glob("*_bench.py"))


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM to the script's process group (scripts stop their own servers on it), then
    SIGKILL if it is still there after a grace period."""
    for sig, grace in ((signal.SIGTERM, 20.0), (signal.SIGKILL, 5.0)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(grace)


def _rows(out: str) -> tuple[list[Row], str | None]:
    try:
        return parse(out), None
    except TableError as exc:
        return [], f"output not of the shared table shape ({exc})"


def run_one(
    script: Path, small: bool, timeout: float, save: bool = False
) -> tuple[list[Row], str | None, float]:
    """(table rows, failure or None, seconds). The script's stderr passes through."""
    args = (SMALL_ARGS.get(script.name, ["--small"])) if small else []
    if save:
        args = [*args, "--save"]
    cmd = [sys.executable, str(script), *args]
    print(f"== {' '.join([Path(cmd[0]).name, *cmd[1:]])}", file=sys.stderr, flush=True)
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        out, _ = proc.communicate()
        return _rows(out or "")[0], f"timed out after {timeout:.0f} s", timeout
    except BaseException:  # Ctrl-C or SIGTERM: stop the script (and so its servers) first
        _stop(proc)
        raise
    seconds = time.monotonic() - start
    rows, bad_shape = _rows(out)
    if proc.returncode != 0:
        return rows, f"exit status {proc.returncode}", seconds
    if bad_shape:
        return rows, bad_shape, seconds
    if not rows:
        return rows, "no table in its output", seconds
    return rows, None, seconds


def combine(
    results: list[tuple[str, list[Row], str | None]],
) -> tuple[list[tuple[str, ...]], str, int]:
    """(combined table rows, summary line, targets missed) of every script's (name, rows,
    failure). A failed script counts as one missed target ("runs")."""
    combined: list[tuple[str, ...]] = []
    all_rows: list[Row] = []
    failures = 0
    for name, rows, failure in results:
        for r in rows:
            v = verdict(r)
            met = r.met if not v.why else f"NO ({v.why})"
            combined.append((name, r.metric, r.value, r.target, met))
            all_rows.append(r)
        if failure:
            failures += 1
            combined.append((name, "(the script itself)", failure, "runs", "NO"))
    with_target, missed = count(all_rows)
    summary = (
        f"{with_target - missed} of {with_target} targets met, {missed} missed; "
        f"{failures} script(s) failed."
    )
    return combined, summary, missed + failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="the quick variant of each script")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script (600)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument(
        "--save", action="store_true", help="let each script write bench/results/ (passed on)"
    )
    parser.add_argument(
        "--only", nargs="+", metavar="NAME", help="only these scripts (e.g. intake_bench)"
    )
    args = parser.parse_args(argv)
    stop_on_sigterm()

    results: list[tuple[str, list[Row], str | None]] = []
    for script in scripts():
        if args.only and script.stem not in args.only and script.name not in args.only:
            continue
        rows, failure, seconds = run_one(script, args.small, args.timeout, args.save)
        results.append((script.stem, rows, failure))
        print(
            f"== {script.name}: {seconds:.0f} s{', ' + failure if failure else ''}",
            file=sys.stderr,
            flush=True,
        )
    combined, summary, missed = combine(results)
    print(render(combined, header=("benchmark", "metric", "value", "target", "met?")))
    print()
    print(summary)
    failed = any(failure for _, _, failure in results)
    if failed or (args.strict and missed):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
