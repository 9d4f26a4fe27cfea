"""Build hook: ship the pages, static files and compiled translations inside the package.

The sources stay where the project keeps them (`templates/`, `static/` at the top level and
`portal/locale/*/LC_MESSAGES/messages.po`). When a wheel is built they are copied into
`portal/_data/templates`, `portal/_data/static`, and the catalogues are compiled into
`portal/locale/*/LC_MESSAGES/messages.mo` next to them, so an installed package serves
without the checkout and never writes into its own folder (`portal.kernel.assets` finds them).
An editable install (`make run`, `make test`) compiles the catalogues in the checkout.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
ASSET_DIRS = ("templates", "static")


def _compile_catalogs(locale_dir: Path, out_dir: Path) -> list[str]:
    """portal.kernel.i18n.compile_catalogs, loaded from its file (the package is not installed
    yet)."""
    spec = importlib.util.spec_from_file_location(
        "_portal_i18n_build", ROOT / "portal/kernel/i18n.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    compiled: list[str] = module.compile_catalogs(force=True, source=locale_dir, target=out_dir)
    return compiled


class BuildWithAssets(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            _compile_catalogs(ROOT / "portal/locale", ROOT / "portal/locale")
            return
        package = Path(self.build_lib) / "portal"
        for name in ASSET_DIRS:
            target = package / "_data" / name
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(
                ROOT / name, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
            )
        _compile_catalogs(ROOT / "portal/locale", package / "locale")


setup(cmdclass={"build_py": BuildWithAssets})
