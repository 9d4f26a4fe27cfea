"""Message catalogues (R10): zh_CN (default), zh_TW and en. Framework-free.

Source strings are English: `{{ _("...") }}` in templates, `_("...")` / `gettext(...)` in
Python. Catalogues live in portal/locale/<lang>/LC_MESSAGES/messages.po; the compiled .mo
files are build products (gitignored), compiled when the package is built (setup.py: the
wheel, and the checkout at `pip install -e .`), by `make run` / `make test` when a .po
changed, and by the test session. At run time they are only read: `translations()` never
writes, and `create_app` refuses to start without them (`catalog_problems`).

Workflow after adding strings::

    .venv/bin/python -m portal.kernel.i18n update     # extract, merge new msgids into all three .po
    # fill in msgstr for zh_CN and zh_TW (en may stay empty: the English source is used)
    .venv/bin/python -m portal.kernel.i18n check      # what tests/portal/test_i18n.py enforces
    .venv/bin/python -m portal.kernel.i18n compile    # the checkout's .mo (make run/test do it too)
"""

from __future__ import annotations

import gettext
import os
import sys
import tempfile
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

__all__ = [
    "DEFAULT_LOCALE",
    "LOCALES",
    "CatalogError",
    "catalog_problems",
    "check_catalogs",
    "compile_catalogs",
    "extract_messages",
    "require_compiled",
    "translations",
    "update_catalogs",
]

ROOT = Path(__file__).resolve().parents[2]
LOCALE_DIR = Path(__file__).resolve().parents[1] / "locale"
BABEL_CFG = ROOT / "babel.cfg"
DOMAIN = "messages"
LOCALES: tuple[str, ...] = ("zh_CN", "zh_TW", "en")
DEFAULT_LOCALE = "zh_CN"
# Locales whose every msgid must carry a translation.
REQUIRED_LOCALES: tuple[str, ...] = ("zh_CN", "zh_TW")
# Directories (relative to the repository root) that hold translatable sources.
SOURCE_DIRS: tuple[str, ...] = ("templates", "portal", "investigator")

_lock = threading.Lock()
_cache: dict[str, gettext.NullTranslations] = {}


class CatalogError(Exception):
    """The compiled translations are missing or older than their catalogues."""


def _po_path(locale: str, base: Path | None = None) -> Path:
    return (base or LOCALE_DIR) / locale / "LC_MESSAGES" / f"{DOMAIN}.po"


def _mo_path(locale: str, base: Path | None = None) -> Path:
    return _po_path(locale, base).with_suffix(".mo")


def _read_catalog(locale: str) -> Catalog:
    with _po_path(locale).open("rb") as fh:
        return read_po(fh, locale=locale, domain=DOMAIN)


def _atomic_write(path: Path, writer: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            writer(fh)  # type: ignore[operator]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def compile_catalogs(
    force: bool = False, *, source: Path | None = None, target: Path | None = None
) -> list[str]:
    """Compile each .po under ``source`` whose .mo under ``target`` (both: LOCALE_DIR) is
    missing or stale (every one with ``force``); returns the locales compiled. A build step:
    the package build (setup.py), `make`, the test session; never the serving process."""
    done: list[str] = []
    for locale in LOCALES:
        po, mo = _po_path(locale, source), _mo_path(locale, target)
        if not po.exists():
            continue
        if not force and mo.exists() and mo.stat().st_mtime >= po.stat().st_mtime:
            continue
        with po.open("rb") as fh:
            catalog = read_po(fh, locale=locale, domain=DOMAIN)
        _atomic_write(mo, lambda out, c=catalog: write_mo(out, c))
        os.chmod(mo, 0o644)  # public text, read by whichever user serves
        done.append(locale)
    return done


def catalog_problems() -> list[str]:
    """Why the translations cannot be served as they are (empty: fine). A .mo must exist for
    every locale with a catalogue (an installed package ships only the .mo) and, in a
    checkout, be no older than its .po."""
    problems: list[str] = []
    fix = "run `python -m portal.kernel.i18n compile` (or reinstall the package)"
    for locale in REQUIRED_LOCALES:
        po, mo = _po_path(locale), _mo_path(locale)
        if not mo.exists():
            problems.append(f"compiled translations missing: {mo}: {fix}")
        elif po.exists() and mo.stat().st_mtime < po.stat().st_mtime:
            problems.append(f"compiled translations older than {po}: {fix}")
    return problems


def require_compiled() -> None:
    """Raise CatalogError (one line with the fix) unless every catalogue is compiled."""
    problems = catalog_problems()
    if problems:
        raise CatalogError(problems[0])


def translations(locale: str) -> gettext.NullTranslations:
    """The translations for a locale (NullTranslations, i.e. English, if unknown)."""
    if locale not in LOCALES:
        locale = DEFAULT_LOCALE
    cached = _cache.get(locale)
    if cached is not None:
        return cached
    with _lock:
        cached = _cache.get(locale)
        if cached is not None:
            return cached
        mo = _mo_path(locale)  # read only: compiled at build time (see the module docstring)
        result: gettext.NullTranslations
        if mo.exists():
            with mo.open("rb") as fh:
                result = gettext.GNUTranslations(fh)
        else:
            result = gettext.NullTranslations()
        _cache[locale] = result
        return result


def clear_cache() -> None:
    with _lock:
        _cache.clear()


def _method_map() -> tuple[list[tuple[str, str]], dict[str, dict[str, str]]]:
    with BABEL_CFG.open(encoding="utf-8") as fh:
        return parse_mapping_cfg(fh, filename=str(BABEL_CFG))


def extract_messages(root: Path = ROOT) -> Catalog:
    """Every translatable string in templates and Python sources, as a template catalog."""
    method_map, options_map = _method_map()
    template = Catalog(project="whistle-portal", fuzzy=False)
    for directory in SOURCE_DIRS:
        base = root / directory
        if not base.exists():
            continue
        # babel.cfg patterns are relative to the repository root; match them per directory.
        dir_map = [
            (pattern.removeprefix(f"{directory}/"), method)
            for pattern, method in method_map
            if pattern.startswith(f"{directory}/")
        ]
        dir_options = {
            pattern.removeprefix(f"{directory}/"): opts
            for pattern, opts in options_map.items()
            if pattern.startswith(f"{directory}/")
        }
        for filename, lineno, message, comments, context in extract_from_dir(
            str(base), method_map=dir_map, options_map=dir_options, strip_comment_tags=True
        ):
            template.add(
                message,
                None,
                [(f"{directory}/{filename}", lineno)],
                auto_comments=comments,
                context=context,
            )
    return template


def update_catalogs(locales: Sequence[str] = LOCALES, root: Path = ROOT) -> dict[str, int]:
    """Merge newly extracted msgids into each .po, keeping existing translations.

    Returns, per locale, how many messages still lack a translation.
    """
    template = extract_messages(root)
    missing: dict[str, int] = {}
    for locale in locales:
        po = _po_path(locale)
        catalog = _read_catalog(locale) if po.exists() else Catalog(locale=locale, domain=DOMAIN)
        catalog.project, catalog.version, catalog.fuzzy = "whistle-portal", "0.1", False
        catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
        _atomic_write(po, lambda fh, c=catalog: write_po(fh, c, width=100, sort_output=True))
        missing[locale] = sum(1 for m in catalog if m.id and not _translated(m.string))
    clear_cache()
    return missing


def _translated(string: object) -> bool:
    if isinstance(string, tuple | list):
        return bool(string) and all(bool(s) for s in string)
    return bool(string)


def check_catalogs(locales: Iterable[str] = REQUIRED_LOCALES, root: Path = ROOT) -> list[str]:
    """Problems that would make a page show English to a Chinese reader (empty list: ok)."""
    template = extract_messages(root)
    problems: list[str] = []
    for locale in locales:
        if not _po_path(locale).exists():
            problems.append(f"{locale}: {_po_path(locale)} is missing")
            continue
        catalog = _read_catalog(locale)
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, context=message.context)
            if found is None:
                problems.append(f"{locale}: not in catalogue: {message.id!r}")
            elif found.fuzzy:
                problems.append(f"{locale}: fuzzy: {message.id!r}")
            elif not _translated(found.string):
                problems.append(f"{locale}: no translation: {message.id!r}")
        for message, errors in catalog.check():
            problems.extend(f"{locale}: {message.id!r}: {err}" for err in errors)
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command = args[0] if args else ""
    if command == "update":
        for locale, count in update_catalogs().items():
            note = "" if locale in REQUIRED_LOCALES else " (the English source is shown)"
            print(f"{locale}: {count} message(s) without translation{note}")
        return 0
    if command == "compile":
        print("compiled:", ", ".join(compile_catalogs(force=True)) or "nothing")
        return 0
    if command == "check":
        problems = check_catalogs()
        for problem in problems:
            print(problem)
        return 1 if problems else 0
    print("usage: python -m portal.kernel.i18n {update|compile|check}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
