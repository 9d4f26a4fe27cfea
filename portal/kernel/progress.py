"""Progress of the long operator commands (backup, restore, migrate-data, retention).

Written to stderr, so stdout keeps only the result lines a script may read; shown when stderr
is a terminal, or everywhere with `--progress`. On a terminal a count rewrites its own line;
elsewhere it prints a line at every tenth of the way (and at the end).
"""

from __future__ import annotations

import sys
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.tty = enabled and self.stream.isatty()
        self._open_line = False
        self._last_tenth: dict[str, int] = {}

    @classmethod
    def for_cli(cls, forced: bool = False) -> Progress:
        """Shown with ``--progress``, or when stderr is a terminal."""
        return cls(forced or sys.stderr.isatty())

    @classmethod
    def off(cls) -> Progress:
        return cls(False)

    def note(self, message: str) -> None:
        """One line (e.g. a phase that finished)."""
        if not self.enabled:
            return
        self._end_line()
        print(message, file=self.stream, flush=True)

    def step(self, label: str, done: int, total: int) -> None:
        """``done`` of ``total`` items of ``label`` (objects, rows, cases) are through."""
        if not self.enabled:
            return
        percent = 100 if total <= 0 else min(100, done * 100 // total)
        text = f"{label}: {done}/{total} ({percent}%)"
        if self.tty:
            self.stream.write(f"\r{text}")
            self._open_line = True
            if done >= total:
                self._end_line()
            self.stream.flush()
            return
        tenth = 11 if done >= total else percent // 10  # 11: the end, printed once
        if tenth > self._last_tenth.get(label, -1):
            self._last_tenth[label] = tenth
            print(text, file=self.stream, flush=True)

    def _end_line(self) -> None:
        if self._open_line:
            self.stream.write("\n")
            self._open_line = False
