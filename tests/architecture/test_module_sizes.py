"""Sizes a newcomer can read (issue 15): no product module over 600 lines."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 600


def test_no_product_module_is_over_600_lines() -> None:
    big = {}
    for base in ("crypto", "portal", "investigator"):
        for path in (ROOT / base).rglob("*.py"):
            if "migrations" in path.parts or "_data" in path.parts:
                continue
            lines = len(path.read_text(encoding="utf-8").splitlines())
            if lines > LIMIT:
                big[str(path.relative_to(ROOT))] = lines
    assert big == {}, f"split these by concern: {big}"
