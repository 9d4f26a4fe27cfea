"""Jinja2 configuration: autoescape everywhere, gettext bound to the request's locale.

Templates use `{{ _("English source") }}`, `{{ _("Hello %(name)s", name=x) }}` (newstyle:
variables are escaped) and `{{ ngettext("%(num)d file", "%(num)d files", n) }}`.
Filters: `code | label("stage")` (any group of `portal.kernel.labels`) and
`code | category_label(categories)` turn internal codes into words; no code is ever shown.
Globals: `html_lang()`, `current_locale_code()`, `locale_choices`, `onion_address`,
`csrf_token()`; forms render `{{ csrf_input | safe }}` (see portal.http.csrf).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from portal.http.i18n import current_locale, locale_of
from portal.kernel import labels
from portal.kernel.assets import templates_dir
from portal.kernel.i18n import DEFAULT_LOCALE, LOCALES, translations
from portal.kernel.settings import Settings

__all__ = ["TEMPLATES_DIR", "build_environment", "template_config"]

TEMPLATES_DIR = templates_dir()  # the package data when installed, else the checkout

HTML_LANG = {"zh_CN": "zh-Hans-CN", "zh_TW": "zh-Hant-TW", "en": "en"}
# Each language named in itself, so a reader finds their own in any UI language.
LOCALE_NAMES = {"zh_CN": "简体中文", "zh_TW": "繁體中文", "en": "English"}


def _locale(context: Mapping[str, Any]) -> str:
    request = context.get("request")
    scope = getattr(request, "scope", None)
    if scope is not None:
        return locale_of(scope)
    locale = current_locale.get()
    return locale if locale in LOCALES else DEFAULT_LOCALE


@pass_context
def _gettext(context: Mapping[str, Any], message: str) -> str:
    return translations(_locale(context)).gettext(message)


@pass_context
def _ngettext(context: Mapping[str, Any], singular: str, plural: str, n: int) -> str:
    return translations(_locale(context)).ngettext(singular, plural, n)


@pass_context
def _pgettext(context: Mapping[str, Any], ctx: str, message: str) -> str:
    return translations(_locale(context)).pgettext(ctx, message)


@pass_context
def _npgettext(context: Mapping[str, Any], ctx: str, singular: str, plural: str, n: int) -> str:
    return translations(_locale(context)).npgettext(ctx, singular, plural, n)


@pass_context
def _label(context: Mapping[str, Any], code: str | None, group: str) -> str:
    """``{{ code | label("stage") }}``: the word for an internal code in the page's language;
    a translated "Other" for a code without one (never the code); "" for no code."""
    if code is None or code == "":
        return ""
    t = translations(_locale(context)).gettext
    msgid = labels.msgid_for(group, code)
    if msgid is None:
        return t(labels.UNKNOWN)
    if group == "event" and code.startswith("concluded:"):
        outcome = labels.msgid_for("outcome", code.partition(":")[2])
        if outcome is not None:
            return f"{t(msgid)} · {t(outcome)}"
    return t(msgid)


@pass_context
def _category_label(context: Mapping[str, Any], code: str | None, categories: Any) -> str:
    """``{{ code | category_label(categories) }}``: the administrator's name of a category in
    the page's language (``categories``: Category rows or a mapping code -> row)."""
    if code is None or code == "":
        return ""
    rows = categories.values() if isinstance(categories, Mapping) else categories or ()
    locale = _locale(context)
    for row in rows:
        if row.code == code:
            name: str = (
                row.name_zh_tw
                if locale == "zh_TW"
                else row.name_en
                if locale == "en"
                else row.name_zh_cn
            )
            return name
    return translations(locale).gettext(labels.UNKNOWN)


@pass_context
def _html_lang(context: Mapping[str, Any]) -> str:
    return HTML_LANG[_locale(context)]


@pass_context
def _current_locale_code(context: Mapping[str, Any]) -> str:
    return _locale(context)


def build_environment(settings: Settings, directory: Path = TEMPLATES_DIR) -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(directory)),
        autoescape=select_autoescape(default=True, default_for_string=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=settings.mode != "production",
    )
    env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_gettext,
        ngettext=_ngettext,
        newstyle=True,
        pgettext=_pgettext,
        npgettext=_npgettext,
    )
    env.filters.update(label=_label, category_label=_category_label)
    env.globals.update(
        html_lang=_html_lang,
        current_locale_code=_current_locale_code,
        locale_choices=[(code, LOCALE_NAMES[code]) for code in LOCALES],
        onion_address=settings.onion_address,
    )
    return env


def template_config(settings: Settings) -> TemplateConfig[JinjaTemplateEngine]:
    env = build_environment(settings)
    return TemplateConfig(instance=JinjaTemplateEngine.from_environment(env))
