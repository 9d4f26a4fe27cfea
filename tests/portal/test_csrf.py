"""CSRF (A4): token required on every state change; cross-site requests refused early."""

from __future__ import annotations

from litestar import Litestar, Request, post
from litestar.testing import TestClient

from portal.http.csrf import cross_site_refusal, csrf_config, verify_csrf_token
from portal.kernel.settings import Settings

ORIGIN = "https://testserver.local"


class _Keyring:
    server_key = bytes(range(32))


def _lang_cookie(response) -> str | None:
    return response.cookies.get("lang")


def test_valid_token_is_accepted(client: TestClient, csrf_token) -> None:
    token = csrf_token(client, "/")
    response = client.post(
        "/lang",
        data={"_csrf_token": token, "lang": "en", "next": "/"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert _lang_cookie(response) == "en"


def test_missing_token_is_refused(client: TestClient, csrf_token) -> None:
    csrf_token(client, "/")  # the cookie alone is not enough
    response = client.post("/lang", data={"lang": "en", "next": "/"}, follow_redirects=False)
    assert response.status_code == 403
    assert _lang_cookie(response) is None


def test_wrong_token_is_refused(client: TestClient, csrf_token) -> None:
    token = csrf_token(client, "/")
    forged = token[:-4] + ("0000" if not token.endswith("0000") else "1111")
    other_random = "a" * 64 + token[64:]
    for bad in (forged, other_random, "x", "", token + "00"):
        response = client.post(
            "/lang", data={"_csrf_token": bad, "lang": "en"}, follow_redirects=False
        )
        assert response.status_code == 403, bad
        assert _lang_cookie(response) is None


def test_token_from_another_installation_is_refused(
    client: TestClient, csrf_token, settings: Settings
) -> None:
    from litestar.middleware.csrf import generate_csrf_token

    csrf_token(client, "/")
    foreign = generate_csrf_token(csrf_config(settings, _Keyring()).secret)
    response = client.post("/lang", data={"_csrf_token": foreign, "lang": "en"})
    assert response.status_code == 403


def test_get_never_changes_state(app: Litestar, client: TestClient) -> None:
    assert client.get("/lang", params={"lang": "en"}).status_code == 405
    for route in app.routes:
        if "GET" not in getattr(route, "methods", set()) or "{" in route.path:
            continue
        response = client.get(route.path, params={"lang": "en", "next": "/x"})
        assert "lang" not in response.cookies, route.path
        assert "portal_session" not in response.cookies, route.path


def test_cross_site_post_is_refused_even_with_a_valid_token(client: TestClient, csrf_token) -> None:
    token = csrf_token(client, "/")
    form = {"_csrf_token": token, "lang": "en", "next": "/"}
    refused = [
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
        {"origin": "null", "sec-fetch-site": "cross-site"},
        {"origin": "null", "sec-fetch-site": "same-site"},
        {"origin": "https://testserver.local.evil.example"},
        {"origin": ORIGIN, "sec-fetch-site": "cross-site"},
    ]
    for headers in refused:
        response = client.post("/lang", data=form, headers=headers, follow_redirects=False)
        assert response.status_code == 403, headers
        assert _lang_cookie(response) is None
    allowed = [
        {},
        {"sec-fetch-site": "same-origin", "origin": ORIGIN},
        {"origin": ORIGIN},
        # what a real browser sends for our pages (Referrer-Policy: no-referrer)
        {"origin": "null", "sec-fetch-site": "same-origin"},
    ]
    for headers in allowed:
        response = client.post("/lang", data=form, headers=headers, follow_redirects=False)
        assert response.status_code == 303, headers


def test_cross_site_check_ignores_safe_methods() -> None:
    scope = {
        "type": "http",
        "method": "GET",
        "headers": [(b"sec-fetch-site", b"cross-site"), (b"origin", b"https://evil.example")],
    }
    assert cross_site_refusal(scope) is None  # type: ignore[arg-type]
    scope["method"] = "POST"
    assert cross_site_refusal(scope) == "sec-fetch-site"  # type: ignore[arg-type]


def test_cookie_attributes(client: TestClient, settings: Settings) -> None:
    header = client.get("/").headers["set-cookie"].lower()
    assert "csrftoken=" in header and "httponly" in header and "samesite=strict" in header
    production = Settings(
        mode="production", data_dir=settings.data_dir, database_url="sqlite+aiosqlite:///x"
    )
    config = csrf_config(production, _Keyring())
    assert config.cookie_secure and config.cookie_httponly and config.cookie_samesite == "strict"
    assert (
        config.secret
        != csrf_config(production, type("K", (), {"server_key": b"\x01" * 32})()).secret
    )


@post("/test/stream-upload", opt={"exclude_from_csrf": True}, status_code=200)
async def _excluded_route(request: Request) -> dict[str, bool]:
    return {"ok": verify_csrf_token(request, request.headers.get("x-test-token", ""))}


def test_verify_csrf_token_for_excluded_routes(
    app: Litestar, client: TestClient, csrf_token
) -> None:
    app.register(_excluded_route)
    token = csrf_token(client, "/")
    assert client.post("/test/stream-upload", headers={"x-test-token": token}).json() == {
        "ok": True
    }
    for bad in (
        "",
        "0" * 128,
        token[:-1] + ("0" if token[-1] != "0" else "1"),
        ("é" * 64).encode(),
    ):
        response = client.post("/test/stream-upload", headers={"x-test-token": bad})
        assert response.json() == {"ok": False}, bad
    client.cookies.clear()
    assert client.post("/test/stream-upload", headers={"x-test-token": token}).json() == {
        "ok": False
    }


def test_excluded_routes_still_get_the_cross_site_check(app: Litestar, client: TestClient) -> None:
    app.register(_excluded_route)
    response = client.post("/test/stream-upload", headers={"sec-fetch-site": "cross-site"})
    assert response.status_code == 403
