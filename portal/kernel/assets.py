"""Where the pages and static files are: inside the installed package, or in the checkout.

A wheel carries them as package data under `portal/_data/` (copied there by the build hook in
setup.py); a checkout (editable install, tests) keeps them at the top level, `templates/` and
`static/`. Both are read only.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["AssetError", "static_dir", "templates_dir"]

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "_data"
CHECKOUT = Path(__file__).resolve().parents[2]


class AssetError(Exception):
    pass


def _find(name: str) -> Path:
    for candidate in (PACKAGE_DATA / name, CHECKOUT / name):
        if candidate.is_dir():
            return candidate
    raise AssetError(
        f"the portal's {name}/ folder is neither in the package ({PACKAGE_DATA / name}) nor "
        f"in a checkout ({CHECKOUT / name}): reinstall the package"
    )


def templates_dir() -> Path:
    return _find("templates")


def static_dir() -> Path:
    return _find("static")
