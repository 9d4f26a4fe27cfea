"""Portals a benchmark can submit reports to (not a benchmark itself).

Since C7 a portal takes no report until an intake officer (and, for real-name reports, an
identity custodian) with a key pair exists. `StaffedPortal` is `common.PortalServer` with both
appointed by `portal user add` between `portal init` and `portal serve`. `PgRedis` is an
installation on PostgreSQL and Redis with names of its own: a database created for this run
(`bench_<random>`, dropped at the end, nothing else touched) and a Redis database that must be
empty when the run starts (another run using it is refused, not disturbed); the portal's keys
in it are deleted at the end.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from common import ROOT, PortalServer, ServerError, ServerProcess, free_port

READERS = (("reader-intake", "intake_officer"), ("reader-custodian", "identity_custodian"))
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_PREFIXES = ("portal:*", "portal_sessions*")


def _portal(args: list[str], env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", *args],
        cwd=ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise ServerError(f"portal {args[0]} failed: {done.stderr.decode()[-2000:]}")


def appoint_readers(env: Mapping[str, str]) -> None:
    """An intake officer and an identity custodian, each with a key pair."""
    for username, role in READERS:
        _portal(["user", "add", username, "--roles", role], env)


class StaffedPortal(PortalServer):
    """`portal init`, the two readers, then `portal serve` (SQLite in a temporary directory)."""

    def start(self, timeout_s: float = 60.0) -> StaffedPortal:
        try:
            _portal(["init"], self.env)
            appoint_readers(self.env)
            ServerProcess.start(self, timeout_s)
        except BaseException:
            self.stop()
            raise
        return self


class PgRedis:
    """One installation on PostgreSQL + Redis, served by ``n`` instances (`serve(n)`)."""

    def __init__(self, redis_url: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="portal-bench-pg-"))
        self.dbname = f"bench_{secrets.token_hex(6)}"
        self.redis_url = redis_url
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        self.env = {
            **{
                k: v
                for k, v in os.environ.items()
                if not (k.startswith("PORTAL_") or k in ("DATABASE_URL", "REDIS_URL"))
            },
            "PORTAL_DATA_DIR": str(self.dir / "data"),
            "PORTAL_HOST": "127.0.0.1",
            "PORTAL_MODE": "development",
            "DATABASE_URL": f"{base}/{self.dbname}",
            "REDIS_URL": redis_url,
            "TMPDIR": str(self.dir),
            **(extra_env or {}),
        }
        self.servers: list[ServerProcess] = []
        self._created = False

    def _psql(self, sql: str) -> None:
        subprocess.run(["psql", PG_ADMIN, "-qc", sql], check=True, capture_output=True)

    def _redis(self) -> object:
        import redis

        return redis.Redis.from_url(self.redis_url)

    def __enter__(self) -> PgRedis:
        client = self._redis()
        if client.dbsize():  # type: ignore[attr-defined]
            raise ServerError(
                f"{self.redis_url} is not empty: another run may be using it (use --redis-url)"
            )
        self._psql(f"CREATE DATABASE {self.dbname}")
        self._created = True
        try:
            _portal(["init"], self.env)
            appoint_readers(self.env)
        except BaseException:
            self.__exit__()
            raise
        return self

    def serve(self, n: int) -> list[ServerProcess]:
        for i in range(n):
            port = free_port()
            server = ServerProcess(
                [sys.executable, "-m", "portal.app.cli", "serve"],
                port=port,
                env={**self.env, "PORTAL_PORT": str(port)},
                ready_path="/healthz",
                log_path=self.dir / f"server-{i}.log",
            )
            self.servers.append(server)
            server.start()
        return self.servers

    def __exit__(self, *exc: object) -> None:
        for server in self.servers:
            server.stop()
        if self._created:
            self._psql(f"DROP DATABASE IF EXISTS {self.dbname} WITH (FORCE)")
            self._created = False
        with contextlib.suppress(Exception):  # Redis gone: nothing to clean
            client = self._redis()
            for pattern in REDIS_PREFIXES:
                for key in client.scan_iter(match=pattern):  # type: ignore[attr-defined]
                    client.delete(key)  # type: ignore[attr-defined]
        shutil.rmtree(self.dir, ignore_errors=True)
