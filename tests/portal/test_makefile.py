"""Issue 14, point 8: `make run` installs the runtime dependencies only; the test tools come
with `make test`; the stamps stay right when switching between them (`make -n`: what make
would run, in a copy of the build files)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _plan(tree: Path, target: str) -> list[str]:
    done = subprocess.run(
        ["make", "-n", "-C", str(tree), target],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return [line for line in done.stdout.splitlines() if "pip install" in line]


def _touch(path: Path, when: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()
    os.utime(path, (when, when))


def test_run_installs_runtime_only_and_stamps_follow_switches(tmp_path: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "setup.py"):
        shutil.copy2(ROOT / name, tmp_path / name)
    now = time.time()
    for name in ("pyproject.toml", "setup.py"):
        os.utime(tmp_path / name, (now - 100, now - 100))
    run_stamp, test_stamp = tmp_path / ".venv/.installed-run", tmp_path / ".venv/.installed-test"

    # a fresh machine
    assert _plan(tmp_path, "run")[-1].endswith("pip install --quiet -e .")
    assert not any("[test]" in line for line in _plan(tmp_path, "run"))
    assert _plan(tmp_path, "test")[-1].endswith("pip install --quiet -e '.[test]'")

    # after `make run`: `make run` does nothing more, `make test` adds the test tools
    _touch(run_stamp, now)
    assert _plan(tmp_path, "run") == []
    assert _plan(tmp_path, "test")[-1].endswith("-e '.[test]'")

    # after `make test` (a superset): neither reinstalls
    _touch(test_stamp, now)
    assert _plan(tmp_path, "run") == []
    assert _plan(tmp_path, "test") == []

    # the build inputs change: both install again, `make run` still without the test extra
    for name in ("pyproject.toml", "setup.py"):
        os.utime(tmp_path / name, (now + 100, now + 100))
        assert _plan(tmp_path, "run")[-1].endswith("pip install --quiet -e .")
        assert _plan(tmp_path, "test")[-1].endswith("-e '.[test]'")
        os.utime(tmp_path / name, (now - 100, now - 100))
