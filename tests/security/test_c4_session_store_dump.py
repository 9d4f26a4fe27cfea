"""C4: unwrapped keys never rest in a session store in a form the store's holder can open.

A staff member and a reporter are signed in on an app whose sessions live in the real Redis.
The attacker then takes a dump of every session entry in Redis and the installation keyring
(pepper, server key), and tries every key those let them derive, the former scheme included.
They open nothing, and the staff private key and the reporter's wrap key appear nowhere in the
dump; the same entries do open with the session id that only the cookies carry (the control
that shows the search would find the keys if they were there).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
from collections.abc import Iterator

import httpx
import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from litestar import Litestar
from litestar.testing import TestClient

from crypto.keyring import load_keyring
from crypto.session_seal import file_key_for, open_entry
from portal.http.csrf import derive_secret
from portal.http.sessions import SESSION_COOKIE
from portal.kernel.services import Services
from portal.kernel.settings import Settings
from tests.portal.scaleout_fixtures import redis_available
from tests.security.conftest import make_world

REDIS_DB_URL = "redis://127.0.0.1:6379/11"
NAMESPACE = b"portal_sessions"


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    if not redis_available():
        pytest.skip("no Redis on 127.0.0.1:6379")
    yield dataclasses.replace(settings, redis_url=REDIS_DB_URL)


def _redis_dump() -> dict[bytes, bytes]:
    import redis

    client = redis.Redis.from_url(REDIS_DB_URL)
    try:
        return {key: client.get(key) or b"" for key in client.scan_iter(match=NAMESPACE + b"*")}
    finally:
        client.close()


def _clear_redis() -> None:
    import redis

    client = redis.Redis.from_url(REDIS_DB_URL)
    try:
        for key in client.scan_iter(match=NAMESPACE + b"*"):
            client.delete(key)
    finally:
        client.close()


def _attacker_opens(blob: bytes, stored_key: bytes, server_key: bytes) -> bytes | None:
    """Everything the holder of the dump and the keyring can try on one entry."""
    file_key = stored_key.decode().split(":", 1)[-1]
    seal_secret = derive_secret(server_key, "session-seal/v1")
    # the former scheme: one AES-GCM key for every entry, derived from the server key
    for offset in (1, 0):
        try:
            return AESGCM(seal_secret).decrypt(
                blob[offset : offset + 12], blob[offset + 12 :], b"\x01" + file_key.encode()
            )
        except (InvalidTag, ValueError):
            pass
    # the current scheme, with every identifier the attacker has in place of the session id
    for guess in (file_key, stored_key.decode(), "", server_key.hex()):
        opened = open_entry(seal_secret, guess, file_key, blob)
        if opened is not None:
            return opened
    return None


@pytest.mark.usefixtures("with_categories")
def test_a_redis_dump_and_the_keyring_open_no_session(
    reporter: TestClient[Litestar], services: Services, settings: Settings
) -> None:
    _clear_redis()
    try:
        world = make_world(reporter, services)
        world.desk.use("intake")  # staff signed in: the session holds the private key
        staff_jar = httpx.Cookies(reporter.cookies)
        staff_sid = staff_jar.get(SESSION_COOKIE)
        reporter_sid = world.reporter_jar.get(SESSION_COOKIE)
        assert staff_sid and reporter_sid
        assert reporter.get("/workspace/").status_code == 200  # the session works over Redis

        dump = _redis_dump()
        assert len(dump) >= 2, "the sessions must be in Redis for this test to mean anything"
        keyring = load_keyring(settings.keyring_dir)

        # Control: with the ids the cookies carry, the entries open and hold the keys.
        seal_secret = derive_secret(keyring.server_key, "session-seal/v1")
        id_secret = derive_secret(keyring.server_key, "session-id/v1")
        secrets_found: list[str] = []
        for sid, field in ((staff_sid, "private_key"), (reporter_sid, "wrap_key")):
            file_key = file_key_for(id_secret, sid)
            stored = next(k for k in dump if k.decode().endswith(file_key))
            opened = open_entry(seal_secret, sid, file_key, dump[stored])
            assert opened is not None
            value = json.loads(opened)[field]
            assert len(bytes.fromhex(value)) == 32
            secrets_found.append(value)

        # The attacker: dump + keyring, no cookie.
        for stored_key, blob in dump.items():
            assert _attacker_opens(blob, stored_key, keyring.server_key) is None
            for key_hex in secrets_found:
                raw = bytes.fromhex(key_hex)
                assert raw not in blob and key_hex.encode() not in blob
            assert staff_sid.encode() not in stored_key and reporter_sid.encode() not in stored_key
    finally:
        _clear_redis()


async def test_an_entry_opens_only_with_its_own_session_id() -> None:
    from portal.http.sessions import ExpiringMemoryStore, SealedStore

    store = SealedStore(ExpiringMemoryStore(), seal_key=b"k" * 32, id_key=b"i" * 32)
    sid = secrets.token_hex(32)
    await store.set(sid, b'{"private_key": "00"}', expires_in=60)
    inner = store.inner._store  # type: ignore[attr-defined]
    (file_key,) = inner
    blob = inner[file_key].data
    assert await store.get(sid) == b'{"private_key": "00"}'
    assert open_entry(b"k" * 32, sid, file_key, blob) is not None
    other = secrets.token_hex(32)
    assert open_entry(b"k" * 32, other, file_key, blob) is None
    assert open_entry(b"x" * 32, sid, file_key, blob) is None
