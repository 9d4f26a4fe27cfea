"""Translations (R10): every extracted string is translated; locale choice; the switch."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from litestar.testing import TestClient

from portal.http.i18n import negotiate_locale, safe_next
from portal.kernel import i18n
from portal.kernel.i18n import LOCALES, check_catalogs, extract_messages, translations


def test_every_string_has_a_chinese_translation() -> None:
    template = extract_messages()
    ids = [m.id for m in template if m.id]
    assert len(ids) >= 20  # the extractor really ran over templates and Python
    for locale in ("zh_CN", "zh_TW"):
        with (i18n.LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po").open("rb") as fh:
            catalog = read_po(fh, locale=locale)
        for message in template:
            if not message.id:
                continue
            found = catalog.get(message.id, context=message.context)
            assert found is not None, (
                f"{locale}: missing {message.id!r} (run python -m portal.kernel.i18n update)"
            )
            strings = found.string if isinstance(found.string, tuple | list) else [found.string]
            assert all(strings), f"{locale}: no translation for {message.id!r}"
            assert not found.fuzzy, f"{locale}: fuzzy {message.id!r}"
    assert check_catalogs() == []


def test_translations_and_fallback() -> None:
    assert translations("zh_CN").gettext("Page not found") == "页面不存在"
    assert translations("zh_TW").gettext("Page not found") == "頁面不存在"
    assert translations("en").gettext("Page not found") == "Page not found"
    assert translations("xx").gettext("Page not found") == "页面不存在"  # default locale


def test_compile_when_po_is_newer(monkeypatch, tmp_path: Path) -> None:
    locale_dir = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale_dir, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale_dir)
    assert sorted(i18n.compile_catalogs()) == sorted(LOCALES)
    assert i18n.compile_catalogs() == []  # up to date
    po = locale_dir / "zh_TW" / "LC_MESSAGES" / "messages.po"
    future = time.time() + 100
    os.utime(po, (future, future))
    assert i18n.compile_catalogs() == ["zh_TW"]


def test_update_merges_new_strings_and_keeps_translations(monkeypatch, tmp_path: Path) -> None:
    locale_dir = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale_dir, ignore=shutil.ignore_patterns("*.mo"))
    root = tmp_path / "repo"
    (root / "templates").mkdir(parents=True)
    (root / "templates" / "new.html").write_text(
        '{{ _("Page not found") }} {{ _("A brand new sentence") }}', encoding="utf-8"
    )
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale_dir)
    missing = i18n.update_catalogs(root=root)
    assert missing["zh_CN"] == missing["zh_TW"] == 1
    with (locale_dir / "zh_CN" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        catalog = read_po(fh)
    assert catalog.get("A brand new sentence") is not None
    assert catalog.get("Page not found").string == "页面不存在"
    problems = i18n.check_catalogs(root=root)
    assert any("A brand new sentence" in p for p in problems)
    i18n.clear_cache()


@pytest.mark.parametrize(
    ("accept", "cookie", "expected"),
    [
        ("zh-TW,zh;q=0.9", None, "zh_TW"),
        ("zh-HK", None, "zh_TW"),
        ("zh-Hant", None, "zh_TW"),
        ("zh-CN,en;q=0.5", None, "zh_CN"),
        ("en-US,en;q=0.9,zh;q=0.8", None, "en"),
        ("fr-FR,de;q=0.9", None, "zh_CN"),
        ("fr;q=1,zh-TW;q=0.4,en;q=0.6", None, "en"),
        ("en;q=0", None, "zh_CN"),
        ("en", "zh_TW", "zh_TW"),
        ("en", "klingon", "en"),
        (None, None, "zh_CN"),
        ("x" * 5000, None, "zh_CN"),
    ],
)
def test_negotiation(accept: str | None, cookie: str | None, expected: str) -> None:
    headers = []
    if accept is not None:
        headers.append((b"accept-language", accept.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"a=b; lang={cookie}".encode()))
    assert negotiate_locale({"type": "http", "headers": headers}) == expected  # type: ignore[arg-type]


def test_pages_follow_accept_language_and_cookie(client: TestClient, csrf_token) -> None:
    assert 'lang="zh-Hans-CN"' in client.get("/").text
    assert 'lang="zh-Hant-TW"' in client.get("/", headers={"accept-language": "zh-TW"}).text
    token = csrf_token(client, "/")
    response = client.post(
        "/lang", data={"_csrf_token": token, "lang": "en", "next": "/?x=1"}, follow_redirects=False
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/?x=1"
    cookie = response.headers["set-cookie"].lower()
    assert "lang=en" in cookie and "samesite=strict" in cookie and "httponly" in cookie
    assert "max-age=31536000" in cookie and "path=/" in cookie
    page = client.get("/", headers={"accept-language": "zh-TW"}).text
    assert 'lang="en"' in page and "Change language" in page


def test_switch_form_works_without_javascript(client: TestClient) -> None:
    html = client.get("/").text
    assert '<form class="lang-switch" method="post" action="/lang">' in html
    assert 'name="_csrf_token"' in html and 'name="lang"' in html and 'type="submit"' in html
    assert '<label for="lang-select">' in html


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
        "/ok\r\nSet-Cookie: x=y",
        "",
        "relative/path",
        "/" + "a" * 5000,
    ],
)
def test_open_redirects_are_refused(client: TestClient, csrf_token, target: str) -> None:
    assert safe_next(target) == "/"
    token = csrf_token(client, "/")
    response = client.post(
        "/lang",
        data={"_csrf_token": token, "lang": "zh_TW", "next": target},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/"


def test_unknown_language_sets_no_cookie(client: TestClient, csrf_token) -> None:
    token = csrf_token(client, "/")
    response = client.post(
        "/lang",
        data={"_csrf_token": token, "lang": "<script>", "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "lang=" not in response.headers.get("set-cookie", "")


def test_serving_never_compiles_and_refuses_stale_catalogues(monkeypatch, tmp_path: Path) -> None:
    """Issue 14: translations are compiled at build time; the serving process only reads them
    (an installed package may be read-only) and refuses to start on missing or stale ones."""
    locale_dir = tmp_path / "locale"
    shutil.copytree(i18n.LOCALE_DIR, locale_dir, ignore=shutil.ignore_patterns("*.mo"))
    monkeypatch.setattr(i18n, "LOCALE_DIR", locale_dir)
    i18n.clear_cache()
    try:
        with pytest.raises(i18n.CatalogError, match=r"portal\.kernel\.i18n compile"):
            i18n.require_compiled()
        translations("zh_CN")
        assert not list(locale_dir.rglob("*.mo"))  # nothing compiled at run time
        i18n.clear_cache()
        i18n.compile_catalogs()
        i18n.require_compiled()
        assert translations("zh_CN").gettext("Page not found") == "页面不存在"
        po = locale_dir / "zh_CN" / "LC_MESSAGES" / "messages.po"
        future = time.time() + 100
        os.utime(po, (future, future))
        with pytest.raises(i18n.CatalogError, match="older than"):
            i18n.require_compiled()
    finally:
        i18n.clear_cache()
