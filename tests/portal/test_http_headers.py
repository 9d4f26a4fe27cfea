"""Security headers on every response: every route, static files, and every error path."""

from __future__ import annotations

import re

import pytest
from litestar import Litestar, get
from litestar.middleware import DefineMiddleware
from litestar.testing import TestClient

from portal.http.headers import CSP, SecurityHeadersMiddleware, security_headers
from portal.kernel.settings import Settings

EXPECTED = {
    "content-security-policy": CSP,
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
}


def assert_secure(response, *, static: bool = False) -> None:
    for name, value in EXPECTED.items():
        assert response.headers.get_list(name) == [value], (name, response.request.url)
    policy = response.headers["permissions-policy"]
    for feature in ("camera", "microphone", "geolocation", "interest-cohort", "payment", "usb"):
        assert f"{feature}=()" in policy
    assert "server" not in response.headers
    expected_cache = "public, max-age=3600" if static else "no-store"
    assert response.headers.get_list("cache-control") == [expected_cache]
    csp = response.headers["content-security-policy"]
    assert "unsafe-inline" not in csp and "http" not in csp


def _concrete(path: str) -> str:
    if path.startswith("/static"):
        return "/static/portal.css"
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_every_method_has_security_headers(app: Litestar, client: TestClient) -> None:
    seen = 0
    for route in app.routes:
        path = _concrete(route.path)
        for method in sorted(getattr(route, "methods", {"GET"})):
            if method in ("OPTIONS",):
                continue
            response = client.request(method, path)
            assert_secure(response, static=path.startswith("/static/"))
            seen += 1
    assert seen >= 4


def test_error_responses_have_security_headers(client: TestClient) -> None:
    assert_secure(client.get("/no/such/page"))  # 404 before routing
    assert_secure(client.delete("/"))  # 405 before routing
    assert_secure(client.post("/lang", data={"lang": "en"}))  # 403 from CSRF
    big = {"lang": "x" * (2 * 1024 * 1024)}
    response = client.post("/lang", data=big)
    assert response.status_code in (403, 413)
    assert_secure(response)
    assert_secure(client.get("/static/missing.css"), static=True)
    assert_secure(client.get("/schema"))


def test_static_is_cacheable_and_pages_are_not(client: TestClient) -> None:
    css = client.get("/static/portal.css")
    assert css.status_code == 200
    assert css.headers["cache-control"] == "public, max-age=3600"
    page = client.get("/")
    assert page.headers["cache-control"] == "no-store"


def test_no_hsts_outside_production(client: TestClient) -> None:
    assert "strict-transport-security" not in client.get("/").headers


def test_html_links_only_own_static_assets(client: TestClient) -> None:
    html = client.get("/").text
    assert "<style" not in html and " style=" not in html
    for match in re.finditer(r'(?:src|href)="([^"]+)"', html):
        url = match.group(1)
        assert url.startswith(("/", "#")) and not url.startswith("//"), url
    scripts = re.findall(r"<script[^>]*>", html)
    assert all('src="/static/' in tag for tag in scripts)


def _tiny_app(settings: Settings) -> Litestar:
    @get("/page", media_type="text/html")
    async def page() -> str:
        return "<p>x</p>"

    @get("/workspace/page", media_type="text/html")
    async def workspace_page() -> str:
        return "<p>x</p>"

    @get("/data")
    async def data() -> dict[str, str]:
        return {"a": "b"}

    @get("/server", media_type="text/plain")
    async def with_server() -> str:
        return "x"

    return Litestar(
        route_handlers=[page, workspace_page, data, with_server],
        middleware=[DefineMiddleware(SecurityHeadersMiddleware, settings=settings)],
        openapi_config=None,
    )


def test_production_hsts_and_onion_location(tmp_path) -> None:
    settings = Settings(
        mode="production",
        data_dir=tmp_path,
        database_url="sqlite+aiosqlite:///x.db",
        onion_address="abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvwx.onion",
    )
    with TestClient(_tiny_app(settings)) as client:
        response = client.get("/page?a=1")
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert response.headers["onion-location"] == (f"http://{settings.onion_address}/page?a=1")
        assert "onion-location" not in client.get("/data").headers
        assert "onion-location" not in client.get("/workspace/page").headers


def test_headers_replace_rather_than_duplicate(tmp_path) -> None:
    settings = Settings(mode="test", data_dir=tmp_path, database_url="sqlite+aiosqlite:///x.db")
    names = [name for name, _ in security_headers(settings, "/", "text/html")]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("path", ["/", "/workspace/"])
def test_pages_render_with_headers(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert_secure(response)
