"""Server-side sessions for signed-in staff and (later) reporters (A4, R9).

Rules this module enforces
--------------------------
* No session, no cookie: a visitor who never signs in gets no `portal_session` cookie.
* Session ids are never chosen by the client: an id is adopted only when the store holds an
  entry for it, and `start_session` always issues a fresh random id and deletes the old
  entry (session fixation). Litestar's stock backend keeps whatever id the cookie names and
  sets a cookie on every response; `PortalSessionBackend` replaces both behaviours.
* Store entries are sealed (the installation suite's AEAD) under a key derived from the
  session id, which only the client's cookie carries, bound to their store key, and filed
  under HMAC(session id): a dump of the store (Redis), even with the keyring, holds neither
  readable data (staff private keys, reporters' wrap keys) nor usable session ids.
* Idle and absolute timeouts per kind (`current_session`).

Handler API
-----------
    start_session(request, "staff", {"user_id": ..., ...})   # at sign-in: rotates the id
    data = current_session(request, "staff")                 # None if absent/expired/other kind
    data["x"] = "y"                                          # the live dict: changes persist
    end_session(request)                                     # at sign-out

Values must be JSON-serialisable (store bytes as base64 or hex strings). The keys `kind`,
`created_at` and `last_seen` are reserved.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.middleware import DefineMiddleware
from litestar.middleware.session.server_side import (
    ServerSideSessionBackend,
    ServerSideSessionConfig,
)
from litestar.stores.base import Store
from litestar.stores.memory import MemoryStore
from litestar.types import Empty
from litestar.utils.dataclass import extract_dataclass_items

from crypto.session_seal import file_key_for, open_entry, seal_entry
from crypto.suites import Suite
from portal.http.csrf import HasServerKey, derive_secret

if TYPE_CHECKING:
    from types import TracebackType

    from litestar import Request
    from litestar.connection import ASGIConnection
    from litestar.types import Message, ScopeSession

    from portal.kernel.settings import Settings

__all__ = [
    "SESSION_COOKIE",
    "ExpiringMemoryStore",
    "PortalSessionBackend",
    "SealedStore",
    "SessionKind",
    "current_session",
    "end_session",
    "session_middleware",
    "session_stores",
    "start_session",
]

SessionKind = Literal["reporter", "staff"]
SESSION_COOKIE = "portal_session"
SESSION_STORE = "sessions"
SESSION_ID_BYTES = 32
RESERVED_KEYS = frozenset({"kind", "created_at", "last_seen"})

_ID_FORMAT = re.compile(rf"[0-9a-f]{{{SESSION_ID_BYTES * 2}}}")
_LOADED_ID = "portal_session_loaded_id"
_ROTATE = "portal_session_rotate"


def _now() -> float:
    """The clock (tests monkeypatch it)."""
    return time.time()


# --- stores ---------------------------------------------------------------------------------


class ExpiringMemoryStore(MemoryStore):
    """MemoryStore that also purges expired entries nobody asks for again (litestar#5085).

    Per process: with several workers, configure Redis (REDIS_URL).
    """

    def __init__(self, purge_interval_s: float = 60.0) -> None:
        super().__init__()
        self._purge_interval = purge_interval_s
        self._next_purge = _now() + purge_interval_s

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        if _now() >= self._next_purge:
            self._next_purge = _now() + self._purge_interval
            await self.delete_expired()
        await super().set(key, value, expires_in)

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None


class SealedStore(Store):
    """Wraps a store: each entry sealed under a key derived from its session id (which only
    the client's cookie carries) and filed under HMAC(session id), so the store's holder,
    even with the keyring, can neither open an entry nor name its session (C4,
    ``crypto.session_seal``)."""

    def __init__(
        self, inner: Store, seal_key: bytes, id_key: bytes, suite: Suite = Suite.AES256GCM
    ) -> None:
        self.inner = inner
        self._seal_key = seal_key
        self._id_key = id_key
        self._suite = suite

    def _file_key(self, key: str) -> str:
        return file_key_for(self._id_key, key)

    async def set(
        self, key: str, value: str | bytes, expires_in: int | timedelta | None = None
    ) -> None:
        data = value.encode() if isinstance(value, str) else value
        file_key = self._file_key(key)
        blob = seal_entry(self._suite, self._seal_key, key, file_key, data)
        await self.inner.set(file_key, blob, expires_in=expires_in)

    async def get(self, key: str, renew_for: int | timedelta | None = None) -> bytes | None:
        file_key = self._file_key(key)
        blob = await self.inner.get(file_key, renew_for=renew_for)
        return None if blob is None else open_entry(self._seal_key, key, file_key, blob)

    async def delete(self, key: str) -> None:
        await self.inner.delete(self._file_key(key))

    async def delete_all(self) -> None:
        await self.inner.delete_all()

    async def exists(self, key: str) -> bool:
        return await self.inner.exists(self._file_key(key))

    async def expires_in(self, key: str) -> int | None:
        return await self.inner.expires_in(self._file_key(key))

    async def __aenter__(self) -> None:
        await self.inner.__aenter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.inner.__aexit__(exc_type, exc_val, exc_tb)


def _redis_store(url: str, prefix: str = "portal") -> Store:
    from litestar.stores.redis import RedisStore
    from redis.asyncio import Redis

    client = Redis.from_url(
        url,
        socket_timeout=5,
        socket_connect_timeout=5,
        health_check_interval=30,
        retry_on_timeout=False,
        decode_responses=False,
    )
    return RedisStore(client, namespace=f"{prefix}_sessions", handle_client_shutdown=True)


def session_stores(settings: Settings, keyring: HasServerKey) -> dict[str, Store]:
    """The app's stores: {"sessions": sealed Redis store if REDIS_URL, else sealed memory}."""
    inner = (
        _redis_store(settings.redis_url, settings.redis_prefix)
        if settings.redis_url
        else ExpiringMemoryStore()
    )
    sealed = SealedStore(
        inner,
        seal_key=derive_secret(keyring.server_key, "session-seal/v1"),
        id_key=derive_secret(keyring.server_key, "session-id/v1"),
        suite=getattr(keyring, "suite", Suite.AES256GCM),
    )
    return {SESSION_STORE: sealed}


# --- backend --------------------------------------------------------------------------------


def _state(scope: Any) -> dict[str, Any]:
    state: dict[str, Any] = scope.setdefault("state", {})
    return state


class PortalSessionBackend(ServerSideSessionBackend):
    """Adopts only ids the store knows, rotates on demand, and sets no cookie for nobody."""

    async def load_from_connection(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> dict[str, Any]:
        session_id = connection.cookies.get(self.config.key)
        if not session_id or not _ID_FORMAT.fullmatch(session_id):
            return {}
        store = self.config.get_store_from_app(connection.scope["app"])
        data = await self.get(session_id, store=store)
        if data is None:
            return {}
        try:
            session = self.deserialize_data(data)
        except Exception:  # noqa: BLE001 - a damaged entry is no session
            return {}
        if not isinstance(session, dict):
            return {}
        _state(connection.scope)[_LOADED_ID] = session_id
        return session

    def get_session_id(self, connection: ASGIConnection[Any, Any, Any, Any]) -> str:
        loaded: str | None = _state(connection.scope).get(_LOADED_ID)
        return loaded or self.generate_session_id()

    def _cookie(self, value: str, *, expire: bool = False) -> str:
        params = dict(
            extract_dataclass_items(
                self.config, exclude_none=True, include=set(Cookie.__dict__.keys())
            )
        )
        if expire:
            params["max_age"] = 0
            params["expires"] = 0
        return Cookie(key=self.config.key, value=value, **params).to_header(header="")

    async def store_in_message(
        self,
        scope_session: ScopeSession,
        message: Message,
        connection: ASGIConnection[Any, Any, Any, Any],
    ) -> None:
        scope = connection.scope
        state = _state(scope)
        store = self.config.get_store_from_app(scope["app"])
        headers = MutableScopeHeaders.from_message(message)
        loaded: str | None = state.get(_LOADED_ID)
        presented = connection.cookies.get(self.config.key) is not None

        if scope_session is Empty or not scope_session:
            if loaded:
                await self.delete(loaded, store=store)
            if presented:
                headers.add("Set-Cookie", self._cookie("", expire=True))
            return

        session_id = loaded
        if session_id is None or state.get(_ROTATE):
            if loaded:
                await self.delete(loaded, store=store)
            session_id = self.generate_session_id()
            state[_LOADED_ID] = session_id
            state.pop(_ROTATE, None)
        await self.set(session_id, self.serialize_data(scope_session, scope), store=store)
        headers.add("Set-Cookie", self._cookie(session_id))


@dataclass
class PortalSessionConfig(ServerSideSessionConfig):
    _backend_class = PortalSessionBackend


def session_middleware(settings: Settings) -> DefineMiddleware:
    """The session middleware; its store is the "sessions" entry of `session_stores`."""
    absolute = max(settings.staff_absolute_timeout_s, settings.reporter_absolute_timeout_s)
    config = PortalSessionConfig(
        key=SESSION_COOKIE,
        store=SESSION_STORE,
        max_age=absolute,
        renew_on_access=True,
        session_id_bytes=SESSION_ID_BYTES,
        path="/",
        httponly=True,
        samesite="strict",
        secure=settings.secure_cookies,
    )
    return config.middleware


# --- handler helpers ------------------------------------------------------------------------


def _timeouts(request: Request[Any, Any, Any], kind: SessionKind) -> tuple[int, int]:
    settings: Settings = request.app.state["settings"]
    if kind == "staff":
        return settings.staff_idle_timeout_s, settings.staff_absolute_timeout_s
    return settings.reporter_idle_timeout_s, settings.reporter_absolute_timeout_s


def start_session(request: Request[Any, Any, Any], kind: SessionKind, data: dict[str, Any]) -> None:
    """Begin a fresh session (sign-in): previous contents dropped, a new id issued at the
    response and the old id's store entry deleted."""
    if kind not in ("reporter", "staff"):
        raise ValueError("kind must be 'reporter' or 'staff'")
    clash = RESERVED_KEYS.intersection(data)
    if clash:
        raise ValueError(f"reserved session keys: {sorted(clash)}")
    now = int(_now())
    request.set_session({**data, "kind": kind, "created_at": now, "last_seen": now})
    _state(request.scope)[_ROTATE] = True


def end_session(request: Request[Any, Any, Any]) -> None:
    """Sign-out: the data is cleared now; the store entry is deleted and the cookie expired
    when the response starts."""
    request.clear_session()
    _state(request.scope).pop(_ROTATE, None)


def current_session(request: Request[Any, Any, Any], kind: SessionKind) -> dict[str, Any] | None:
    """The live session of this kind, or None. Ends it when the idle or absolute timeout has
    passed; otherwise records the access (`last_seen`)."""
    session = request.scope.get("session")
    if not isinstance(session, dict) or session.get("kind") != kind:
        return None
    created, seen = session.get("created_at"), session.get("last_seen")
    if not isinstance(created, int) or not isinstance(seen, int):
        end_session(request)
        return None
    idle, absolute = _timeouts(request, kind)
    now = int(_now())
    if now - seen > idle or now - created > absolute or now < created:
        end_session(request)
        return None
    session["last_seen"] = now
    return session
