"""Server-side sessions: no cookie without sign-in, real id rotation, timeouts, sealing."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta

import pytest
from litestar import Litestar, Request, get, post
from litestar.params import FromPath
from litestar.testing import TestClient

from portal.http import sessions
from portal.http.sessions import (
    SESSION_COOKIE,
    ExpiringMemoryStore,
    SealedStore,
    current_session,
    end_session,
    session_stores,
    start_session,
)
from portal.kernel.settings import Settings

NO_CSRF = {"exclude_from_csrf": True}


@post("/test/signin/{kind:str}", opt=NO_CSRF, status_code=200)
async def _signin(request: Request, kind: FromPath[str]) -> dict[str, str]:
    start_session(request, kind, {"user": "u1", "secret_marker": "PLAINTEXT-MARKER"})  # type: ignore[arg-type]
    return {"ok": "yes"}


@get("/test/me/{kind:str}")
async def _me(request: Request, kind: FromPath[str]) -> dict[str, object]:
    data = current_session(request, kind)  # type: ignore[arg-type]
    return {"user": None if data is None else data["user"]}


@post("/test/signout", opt=NO_CSRF, status_code=200)
async def _signout(request: Request) -> dict[str, str]:
    end_session(request)
    return {"ok": "yes"}


@pytest.fixture
def sclient(app: Litestar, client: TestClient) -> TestClient:
    for handler in (_signin, _me, _signout):
        app.register(handler)
    return client


def _sid(response) -> str | None:
    return response.cookies.get(SESSION_COOKIE)


def _me_with(client: TestClient, sid: str, kind: str = "staff") -> object:
    client.cookies.clear()
    return client.get(f"/test/me/{kind}", headers={"cookie": f"{SESSION_COOKIE}={sid}"}).json()[
        "user"
    ]


def test_visitors_get_no_session_cookie(sclient: TestClient, csrf_token) -> None:
    for path in ("/", "/healthz", "/static/portal.css", "/nope", "/test/me/staff"):
        response = sclient.get(path)
        assert SESSION_COOKIE not in response.headers.get("set-cookie", ""), path
    token = csrf_token(sclient, "/")
    response = sclient.post(
        "/lang", data={"_csrf_token": token, "lang": "en"}, follow_redirects=False
    )
    assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
    # A made-up cookie is not adopted and not answered with a session either.
    response = sclient.get("/", headers={"cookie": f"{SESSION_COOKIE}={secrets.token_hex(32)}"})
    assert "max-age=0" in response.headers.get(
        "set-cookie", ""
    ).lower() or SESSION_COOKIE not in response.headers.get("set-cookie", "")


def test_sign_in_sets_a_strict_cookie_and_session_works(sclient: TestClient) -> None:
    response = sclient.post("/test/signin/staff")
    header = response.headers["set-cookie"].lower()
    assert f"{SESSION_COOKIE}=" in header
    assert "httponly" in header and "samesite=strict" in header and "path=/" in header
    assert sclient.get("/test/me/staff").json() == {"user": "u1"}
    assert sclient.get("/test/me/reporter").json() == {"user": None}  # other kind


def test_fixation_a_planted_id_is_never_adopted(sclient: TestClient) -> None:
    planted = secrets.token_hex(32)
    sclient.cookies.set(SESSION_COOKIE, planted, domain="testserver.local")
    response = sclient.post("/test/signin/staff")
    issued = _sid(response)
    assert issued and issued != planted
    assert _me_with(sclient, planted) is None
    assert _me_with(sclient, issued) == "u1"


def test_rotation_an_id_from_before_sign_in_is_dead_after(sclient: TestClient) -> None:
    first = _sid(sclient.post("/test/signin/reporter"))
    assert first
    assert _me_with(sclient, first, "reporter") == "u1"
    sclient.cookies.clear()
    sclient.cookies.set(SESSION_COOKIE, first, domain="testserver.local")
    second = _sid(sclient.post("/test/signin/staff"))
    assert second and second != first
    assert _me_with(sclient, first, "reporter") is None
    assert _me_with(sclient, first, "staff") is None
    assert _me_with(sclient, second, "staff") == "u1"


def test_sign_out_expires_cookie_and_deletes_entry(sclient: TestClient) -> None:
    sid = _sid(sclient.post("/test/signin/staff"))
    response = sclient.post("/test/signout")
    header = response.headers["set-cookie"].lower()
    assert f"{SESSION_COOKIE}=" in header and ("max-age=0" in header or "expires=" in header)
    assert _me_with(sclient, sid) is None


def test_idle_timeout(sclient: TestClient, settings: Settings, monkeypatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(sessions, "_now", lambda: clock[0])
    sid = _sid(sclient.post("/test/signin/staff"))
    clock[0] += settings.staff_idle_timeout_s - 5
    assert _me_with(sclient, sid) == "u1"  # refreshes last_seen
    clock[0] += settings.staff_idle_timeout_s - 5
    assert _me_with(sclient, sid) == "u1"
    clock[0] += settings.staff_idle_timeout_s + 1
    assert _me_with(sclient, sid) is None
    assert _me_with(sclient, sid) is None  # ended, not merely refused


def test_absolute_timeout(sclient: TestClient, settings: Settings, monkeypatch) -> None:
    clock = [1_000_000.0]
    monkeypatch.setattr(sessions, "_now", lambda: clock[0])
    sid = _sid(sclient.post("/test/signin/staff"))
    step = settings.staff_idle_timeout_s - 1
    elapsed = 0
    while elapsed + step <= settings.staff_absolute_timeout_s:
        clock[0] += step
        elapsed += step
        assert _me_with(sclient, sid) == "u1"
    clock[0] += step
    assert _me_with(sclient, sid) is None


def test_reserved_keys_and_kinds_are_checked() -> None:
    class _Req:
        def __init__(self) -> None:
            self.scope: dict = {}

    with pytest.raises(ValueError):
        start_session(_Req(), "staff", {"kind": "reporter"})  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        start_session(_Req(), "admin", {})  # type: ignore[arg-type]


def test_store_holds_only_sealed_data_under_derived_keys(
    app: Litestar, sclient: TestClient
) -> None:
    sid = _sid(sclient.post("/test/signin/staff"))
    store = app.stores.get("sessions")
    assert isinstance(store, SealedStore)
    inner = store.inner
    assert isinstance(inner, ExpiringMemoryStore)
    raw = inner._store  # the plain memory store behind the seal
    assert raw and sid not in raw
    for obj in raw.values():
        assert b"PLAINTEXT-MARKER" not in obj.data and b"u1" not in obj.data
    # Tampering with a sealed entry makes it no session at all.
    key = next(iter(raw))
    data = bytearray(raw[key].data)
    data[-1] ^= 1
    raw[key] = raw[key].__class__(data=bytes(data), expires_at=raw[key].expires_at)
    assert _me_with(sclient, sid) is None


async def test_sealed_store_binds_entries_to_their_key() -> None:
    store = SealedStore(ExpiringMemoryStore(), seal_key=b"k" * 32, id_key=b"i" * 32)
    await store.set("a", b"alpha", expires_in=60)
    await store.set("b", b"beta", expires_in=60)
    assert await store.get("a") == b"alpha"
    inner = store.inner._store  # type: ignore[attr-defined]
    key_a, key_b = store._file_key("a"), store._file_key("b")
    inner[key_a] = inner[key_b]  # swap b's sealed entry under a's key
    assert await store.get("a") is None
    await store.delete("b")
    assert await store.get("b") is None


async def test_memory_store_purges_expired_entries() -> None:
    store = ExpiringMemoryStore(purge_interval_s=0)
    await store.set("old", b"x", expires_in=timedelta(milliseconds=1))
    await asyncio.sleep(0.01)
    await store.set("new", b"y", expires_in=60)
    assert "old" not in store._store
    assert not await store.exists("old")
    assert await store.exists("new")


def test_redis_store_when_configured(settings: Settings) -> None:
    from litestar.stores.redis import RedisStore

    with_redis = settings.with_overrides(redis_url="redis://127.0.0.1:6390/0")
    stores = session_stores(with_redis, type("K", (), {"server_key": b"s" * 32})())
    store = stores["sessions"]
    assert isinstance(store, SealedStore) and isinstance(store.inner, RedisStore)
    pool = store.inner._redis.connection_pool
    assert pool.connection_kwargs["socket_timeout"] == 5
    assert pool.connection_kwargs["socket_connect_timeout"] == 5
