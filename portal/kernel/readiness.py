"""Readiness (`/readyz`): can this instance serve every route right now?

`/healthz` only says the process is alive (and the database answers); readiness checks every
helper a request may need and names each one that fails, so a load balancer stops sending
traffic and an operator sees where to look:

* ``database``: a session reaches it (``SELECT 1``);
* ``redis``: when REDIS_URL is set, a PING with the configured password;
* ``files``: the local store's folder is writable (a probe file is created, synced and removed)
  and its file system has at least PORTAL_MIN_FREE_MB free; an S3 store's bucket answers;
* ``keyring``: the installation secrets are still on disk, load, and are the ones this process
  started with (a removed or swapped keyring is noticed before the next restart fails).

Each check answers "ok" or a short reason code, never a path, address, URL or message text.
"""

from __future__ import annotations

import hmac
import os
import secrets
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from portal.kernel.outage import note_outage, note_success

if TYPE_CHECKING:
    from portal.kernel.services import Services

__all__ = ["Readiness", "check_readiness"]

OK = "ok"
CHECK_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Readiness:
    checks: dict[str, str] = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [name for name, state in self.checks.items() if state != OK]

    @property
    def ready(self) -> bool:
        return not self.failed

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "unavailable",
            "checks": dict(self.checks),
            "failed": self.failed,
        }


async def _database(services: Services) -> str:
    return OK if await services.db.ping() else "unreachable"


async def _redis(services: Services) -> str:
    from redis.exceptions import AuthenticationError, RedisError

    from portal.kernel.redis_state import redis_client

    url = services.settings.redis_url
    if not url:
        return OK
    client = redis_client(url)
    try:
        await client.ping()
    except AuthenticationError:
        return "authentication failed"
    except (RedisError, OSError):
        return "unreachable"
    finally:
        await client.aclose()
    return OK


def _local_files(root: os.PathLike[str], min_free: int) -> str:
    try:
        os.makedirs(root, exist_ok=True)
        probe = os.path.join(root, f".ready-{secrets.token_hex(8)}")
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, b"ready")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
        free = shutil.disk_usage(root).free
    except OSError:
        return "not writable"
    if free < min_free:
        return "low on space"
    return OK


async def _files(services: Services) -> str:
    store = services.files
    root = getattr(store, "root", None)
    if root is not None:  # the local store
        state = await anyio.to_thread.run_sync(_local_files, root, services.settings.min_free_bytes)
    else:
        client, bucket = getattr(store, "client", None), getattr(store, "bucket", None)
        if client is None or bucket is None:
            return OK
        try:
            await anyio.to_thread.run_sync(lambda: client.head_bucket(Bucket=bucket))
        except Exception:  # noqa: BLE001 - any failure means "not usable now"
            return "unreachable"
        return OK
    if state == OK:
        note_success("file store")
    elif state == "low on space":
        note_outage("file store", "low on space")
    return state


def _same_keyring(services: Services) -> str:
    from crypto.errors import CryptoError
    from crypto.keyring import load_keyring

    try:
        on_disk = load_keyring(services.settings.keyring_dir)
    except CryptoError:
        return "unreadable"
    loaded = services.keyring
    same = hmac.compare_digest(on_disk.server_key, loaded.server_key) and hmac.compare_digest(
        on_disk.pepper, loaded.pepper
    )
    return OK if same and on_disk.suite == loaded.suite else "changed since start"


async def _keyring(services: Services) -> str:
    return await anyio.to_thread.run_sync(_same_keyring, services)


_CHECKS: dict[str, Callable[[Services], Awaitable[str]]] = {
    "database": _database,
    "redis": _redis,
    "files": _files,
    "keyring": _keyring,
}


async def check_readiness(services: Services) -> Readiness:
    """Run every check (each bounded in time); Redis only when it is configured."""
    checks: dict[str, str] = {}
    for name, check in _CHECKS.items():
        if name == "redis" and not services.settings.redis_url:
            continue
        with anyio.move_on_after(CHECK_TIMEOUT_S) as scope:
            checks[name] = await check(services)
        if scope.cancelled_caught:
            checks[name] = "timed out"
    return Readiness(checks)
