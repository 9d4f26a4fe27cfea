"""Run every benchmark of the project and print one combined table (`make bench`).

    .venv/bin/python bench/run_all.py [--small] [--timeout SECONDS] [--strict]

Each `bench/*_bench.py` runs as a subprocess with a time limit: bench/crypto_bench.py with
`--size-mib 64` under --small, every other script with `--small`. Their markdown tables
(metric | value | target | met?) are collected into one: benchmark | metric | value | target |
met?. A script that fails or runs out of time gets a row saying so. Exit status: 1 if a script
failed (or, with --strict, if a target was not met), else 0.
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

from common import parse_table, render_table, stop_on_sigterm

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


def run_one(script: Path, small: bool, timeout: float) -> tuple[list[list[str]], str | None, float]:
    """(table rows, failure or None, seconds). The script's stderr passes through."""
    args = (SMALL_ARGS.get(script.name, ["--small"])) if small else []
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
        return parse_table(out or ""), f"timed out after {timeout:.0f} s", timeout
    except BaseException:  # Ctrl-C or SIGTERM: stop the script (and so its servers) first
        _stop(proc)
        raise
    seconds = time.monotonic() - start
    rows = parse_table(out)
    if proc.returncode != 0:
        return rows, f"exit status {proc.returncode}", seconds
    if not rows:
        return rows, "no table in its output", seconds
    return rows, None, seconds


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--small", action="store_true", help="the quick variant of each script")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per script (600)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args()
    stop_on_sigterm()

    combined: list[tuple[str, str, str, str, str]] = []
    failures = 0
    for script in scripts():
        rows, failure, seconds = run_one(script, args.small, args.timeout)
        name = script.stem
        for cells in rows:
            cells = (cells + [""] * 4)[:4]
            combined.append((name, cells[0], cells[1], cells[2], cells[3]))
        if failure:
            failures += 1
            combined.append((name, "(the script itself)", failure, "runs", "NO"))
        print(
            f"== {script.name}: {seconds:.0f} s{', ' + failure if failure else ''}",
            file=sys.stderr,
            flush=True,
        )

    unmet = sum(1 for row in combined if row[4].strip().lower().startswith("no"))
    with_target = sum(1 for row in combined if row[4].strip())
    print(render_table(combined, header=("benchmark", "metric", "value", "target", "met?")))
    print()
    print(f"{with_target - unmet} of {with_target} targets met; {failures} script(s) failed.")
    if failures or (args.strict and unmet):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
