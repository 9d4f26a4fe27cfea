"""An installation on PostgreSQL and Redis served by several instances (not a benchmark).

Built on bench/common.py: the database is `common.private_database` (created for this run,
dropped at the end, nothing else touched) and the Redis keys live under
`common.private_redis_prefix` (PORTAL_REDIS_PREFIX; only they are deleted at the end). An
intake officer is appointed (`common.appoint_reader`): the portal takes no report without one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from common import (
    REDIS_URL,
    ROOT,
    ServerError,
    ServerProcess,
    appoint_reader,
    free_port,
    private_database,
    private_redis_prefix,
)


def portal_init(env: Mapping[str, str]) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "portal.app.cli", "init"],
        cwd=ROOT,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=180,
        check=False,
    )
    if done.returncode != 0:
        raise ServerError(f"portal init failed: {done.stderr.decode()[-2000:]}")


class PgRedis:
    """`with PgRedis(label, env) as inst: servers = inst.serve(2)`."""

    def __init__(self, label: str, extra_env: Mapping[str, str] | None = None) -> None:
        self.label = label
        self.extra_env = dict(extra_env or {})
        self.dir = Path(tempfile.mkdtemp(prefix="portal-bench-pg-"))
        self.servers: list[ServerProcess] = []
        self._names = contextlib.ExitStack()
        self.env: dict[str, str] = {}

    def __enter__(self) -> PgRedis:
        try:
            url = self._names.enter_context(private_database(self.label))
            prefix = self._names.enter_context(private_redis_prefix(self.label))
            self.env = {
                **{
                    k: v
                    for k, v in os.environ.items()
                    if not (k.startswith("PORTAL_") or k in ("DATABASE_URL", "REDIS_URL"))
                },
                "PORTAL_DATA_DIR": str(self.dir / "data"),
                "PORTAL_HOST": "127.0.0.1",
                "PORTAL_MODE": "development",
                "DATABASE_URL": url,
                "REDIS_URL": REDIS_URL,
                "PORTAL_REDIS_PREFIX": prefix,
                "TMPDIR": str(self.dir),
                **self.extra_env,
            }
            portal_init(self.env)
            appoint_reader(self.env)
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
        self._names.close()
        shutil.rmtree(self.dir, ignore_errors=True)
