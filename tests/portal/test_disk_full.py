"""A full disk under the file store (issue 14, point 2): an upload answers 503 with Retry-After and
the translated "temporarily unavailable" page (never 500), nothing is half-stored, the outage is
logged once without identifiers, and `/readyz` names the file store.

The disk really fills: the store lives on a 2 MiB tmpfs mounted for the test (root only; the
test is skipped, saying why, where mounting is not permitted)."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from portal.kernel import outage
from portal.kernel.db.engine import RETRY_AFTER_S
from portal.kernel.settings import Settings
from tests.portal.test_reporter_journeys import count_cases, form_tokens, report_fields, submit

SIZE = 2 * 1024 * 1024


def _mount_tmpfs(where: Path) -> None:
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={SIZE},mode=0700", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"mount -t tmpfs is not permitted here: {done.stderr.strip()}")


@pytest.fixture
def settings(settings: Settings) -> Iterator[Settings]:
    _mount_tmpfs(settings.files_dir)
    try:
        yield dataclasses.replace(settings, min_free_bytes=512 * 1024)
    finally:
        subprocess.run(["umount", "-l", str(settings.files_dir)], check=False)


@pytest.fixture(autouse=True)
def _no_outage_left_over() -> Iterator[None]:
    outage.reset()
    yield
    outage.reset()


def _everything_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _assert_unavailable(response: Any) -> None:
    assert response.status_code == 503, response.status_code
    assert response.headers["retry-after"] == str(RETRY_AFTER_S)
    assert response.headers["content-type"].startswith("text/html")
    assert 'class="error-page"' in response.text
    assert "Traceback" not in response.text and "No space" not in response.text


@pytest.mark.parametrize(
    ("lang", "text"),
    [("en", "Temporarily unavailable"), ("zh-CN", "服务暂时不可用"), ("zh-TW", "服務暫時無法使用")],
)
def test_an_upload_on_a_full_disk_answers_503_and_stores_nothing(
    client: TestClient[Litestar],
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    lang: str,
    text: str,
) -> None:
    client.headers["accept-language"] = lang
    assert client.get("/readyz").json()["checks"]["files"] == "ok"
    files = [("evidence", ("big.bin", os.urandom(3 * 1024 * 1024), "application/octet-stream"))]
    with caplog.at_level(logging.INFO):
        first = submit(client, report_fields(), files, tokens=form_tokens(client))
        second = submit(client, report_fields(), files, tokens=form_tokens(client))
    for answer in (first, second):
        _assert_unavailable(answer)
        assert text in answer.text
    assert _everything_under(settings.files_dir) == []  # no object, no .part left behind
    assert count_cases(client) == 0
    lines = [r for r in caplog.records if r.name == "portal.kernel.outage"]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    assert lines[0].getMessage().startswith("file store unavailable (")
    assert not [r for r in caplog.records if r.name == "portal.errors"]  # no 500 traceback
    # a small report still fits: the portal serves again without a restart
    small = [("evidence", ("note.txt", b"a few words", "text/plain"))]
    again = submit(client, report_fields(), small, tokens=form_tokens(client))
    assert again.status_code == 200, again.status_code
    assert count_cases(client) == 1


def test_readiness_reports_the_file_store(client: TestClient[Litestar], settings: Settings) -> None:
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    filler = settings.files_dir / "filler"
    with filler.open("wb") as fh:  # leave less than PORTAL_MIN_FREE_MB (here 512 KiB)
        fh.write(b"\0" * (SIZE - 256 * 1024))
    low = client.get("/readyz")
    assert low.status_code == 503
    assert low.headers["retry-after"] == str(RETRY_AFTER_S)
    assert low.json()["failed"] == ["files"]
    assert low.json()["checks"]["files"] == "low on space"
    with filler.open("ab") as fh, pytest.raises(OSError):  # now entirely full
        fh.write(b"\0" * SIZE)
        fh.flush()
    full = client.get("/readyz").json()
    assert full["checks"]["files"] == "not writable"
    filler.unlink()
    assert client.get("/readyz").status_code == 200
