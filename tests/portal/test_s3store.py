# ruff: noqa: F401, F811 - pytest fixtures imported from scaleout_fixtures
"""The S3-compatible file store against a real S3 server (moto in server mode)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import os
from typing import Any

import pytest

from portal.app.wiring import build_services
from portal.kernel import s3store
from portal.kernel.s3store import PART_SIZE, S3Config, S3FileStore, make_client
from portal.kernel.services import file_store
from portal.kernel.settings import Settings, SettingsError
from portal.kernel.storage import StoreError, new_storage_key
from tests.portal.scaleout_fixtures import moto_endpoint, s3_bucket

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _store(bucket: dict[str, Any], **kw: Any) -> S3FileStore:
    return S3FileStore(
        S3Config(
            bucket=bucket["s3_bucket"],
            endpoint=bucket["s3_endpoint"],
            access_key="test",
            secret_key="test",
        ),
        **kw,
    )


async def _read_all(store: S3FileStore, key: str) -> bytes:
    return b"".join([c async for c in store.read(key)])


async def test_small_object_round_trip_delete_and_keys(s3_bucket: dict[str, Any]) -> None:
    store = _store(s3_bucket)
    key = new_storage_key()
    w = await store.writer(key)
    await w.write(b"ciphertext-")
    await w.write(b"bytes")
    assert not await store.exists(key)  # invisible before commit
    assert await w.commit() == 16
    assert await store.exists(key)
    assert await _read_all(store, key) == b"ciphertext-bytes"
    assert await store.keys() == [key]
    await store.delete(key)
    assert not await store.exists(key)
    with pytest.raises(StoreError):
        await _read_all(store, key)
    with pytest.raises(StoreError):
        await store.writer("../etc/passwd")


async def test_multipart_upload_streams_in_bounded_memory(s3_bucket: dict[str, Any]) -> None:
    """3.5 parts written in 1 MiB chunks: the writer never holds more than one part."""
    store = _store(s3_bucket)
    key = new_storage_key()
    w = await store.writer(key)
    digest = hashlib.sha256()
    most = 0
    total = int(PART_SIZE * 3.5)
    block = os.urandom(1024 * 1024)
    for i in range(total // len(block)):
        chunk = bytes([i % 256]) + block[1:]
        digest.update(chunk)
        await w.write(chunk)
        most = max(most, len(w._buf))  # type: ignore[attr-defined]
    assert most < PART_SIZE
    assert len(w._parts) == 3  # type: ignore[attr-defined]
    assert await w.commit() == total
    got = hashlib.sha256()
    async for chunk in store.read(key):
        assert len(chunk) <= s3store.READ_SIZE
        got.update(chunk)
    assert got.digest() == digest.digest()
    assert await store.pending_uploads() == []


async def test_abort_leaves_nothing(s3_bucket: dict[str, Any]) -> None:
    store = _store(s3_bucket)
    key = new_storage_key()
    w = await store.writer(key)
    await w.write(os.urandom(PART_SIZE + 10))
    assert len(await store.pending_uploads()) == 1
    await w.abort()
    assert await store.pending_uploads() == []
    assert await store.keys() == []


async def test_failed_part_aborts_the_upload(s3_bucket: dict[str, Any]) -> None:
    store = _store(s3_bucket)
    w = await store.writer(new_storage_key())
    await w.write(os.urandom(PART_SIZE))  # first part uploaded: an upload is open
    assert len(await store.pending_uploads()) == 1
    real = store.client.upload_part

    def broken(**kwargs: Any) -> Any:
        raise OSError("connection reset")

    store.client.upload_part = broken
    with pytest.raises(OSError):
        await w.write(os.urandom(PART_SIZE))
    store.client.upload_part = real
    assert await store.pending_uploads() == []
    assert await store.keys() == []


async def test_cleanup_aborts_stale_uploads_only(s3_bucket: dict[str, Any]) -> None:
    store = _store(s3_bucket)
    w = await store.writer(new_storage_key())
    await w.write(os.urandom(PART_SIZE + 1))  # a crash here leaves an open upload
    [(name, upload_id, initiated)] = await store.pending_uploads()
    # Another instance may be uploading right now: a fresh upload is left alone. (moto reports
    # a fixed 2010 "Initiated" date, so the age is checked on the listing as S3 returns it.)
    now = dt.datetime.now(dt.UTC)
    fresh = [(name, upload_id, now)]
    store.pending_uploads = lambda: _const(fresh)  # type: ignore[method-assign]
    assert await store.cleanup_incoming() == 0
    del store.pending_uploads
    assert len(await store.pending_uploads()) == 1
    assert initiated < now
    stale = _store(s3_bucket, stale_after_s=0)
    assert await stale.cleanup_incoming() == 1
    assert await store.pending_uploads() == []


async def _const(value: Any) -> Any:
    return value


def test_settings_choose_the_store(tmp_path: Any, s3_bucket: dict[str, Any]) -> None:
    base = Settings(
        mode="test",
        argon2_profile="test",
        data_dir=tmp_path,
        database_url=f"sqlite+aiosqlite:///{tmp_path}/p.db",
    )
    assert type(file_store(base)).__name__ == "LocalFileStore"
    chosen = file_store(dataclasses.replace(base, **s3_bucket))
    assert isinstance(chosen, S3FileStore)
    assert chosen.bucket == s3_bucket["s3_bucket"]
    env = {
        "PORTAL_MODE": "test",
        "PORTAL_ARGON2_PROFILE": "test",
        "PORTAL_DATA_DIR": str(tmp_path),
        "PORTAL_S3_BUCKET": "b",
        "PORTAL_S3_ENDPOINT": "https://s3.example.internal",
        "PORTAL_S3_ACCESS_KEY": "ak",
        "PORTAL_S3_SECRET_KEY_FILE": str(tmp_path / "sk"),
        "PORTAL_S3_REGION": "cn-north-1",
    }
    (tmp_path / "sk").write_text("secret\n")
    s = Settings.from_env(env)
    assert (s.s3_bucket, s.s3_secret_key, s.s3_region) == ("b", "secret", "cn-north-1")
    with pytest.raises(SettingsError, match="go together"):
        Settings.from_env({**env, "PORTAL_S3_SECRET_KEY_FILE": ""})
    with pytest.raises(SettingsError, match="PORTAL_S3_ENDPOINT"):
        Settings.from_env({**env, "PORTAL_S3_ENDPOINT": "s3.example"})
    _ = build_services  # the same function build_services uses


def test_evidence_through_the_app_is_ciphertext_in_the_bucket(
    settings: Settings, s3_bucket: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    """A report with a file, submitted through the real app on the S3 store: the bucket holds
    one object per stored stream, none of them contains the plaintext."""
    from litestar.testing import TestClient

    from crypto.keyring import create_keyring
    from portal.app import create_app
    from tests.conftest import BASE_URL, _prepare_database
    from tests.portal.test_reporter_journeys import receipt_of, report_fields, submit

    on_s3 = dataclasses.replace(settings, serve="reporter", **s3_bucket)
    create_keyring(on_s3.keyring_dir)
    _prepare_database(on_s3, request)
    services = build_services(on_s3)
    secret_text = b"PLAINTEXT-EVIDENCE-" + os.urandom(8).hex().encode()
    with TestClient(create_app(on_s3, services), base_url=BASE_URL) as client:
        client.headers["accept-language"] = "en"
        page = submit(
            client,
            report_fields(category="other"),
            [("files", ("note.txt", secret_text * 100, "text/plain"))],
        )
        assert page.status_code == 200, page.text[:500]
        receipt_of(page)
    raw = make_client(
        S3Config(
            bucket=on_s3.s3_bucket or "",
            endpoint=on_s3.s3_endpoint,
            access_key="test",
            secret_key="test",
        )
    )
    listed = raw.list_objects_v2(Bucket=on_s3.s3_bucket).get("Contents", [])
    assert listed, "the evidence went to the bucket"
    assert not list(on_s3.files_dir.rglob("*")) or not any(
        p.is_file() for p in on_s3.files_dir.rglob("*")
    )
    for item in listed:
        assert item["Key"].startswith("objects/")
        body = raw.get_object(Bucket=on_s3.s3_bucket, Key=item["Key"])["Body"].read()
        assert secret_text not in body
        assert b"note.txt" not in body
    _ = dt


async def test_settled_keys_leave_fresh_objects_out(s3_bucket: dict[str, Any]) -> None:
    store = _store(s3_bucket)
    key = new_storage_key()
    w = await store.writer(key)
    await w.write(b"sealed")
    await w.commit()
    assert await store.settled_keys(3600) == []  # another instance may be about to record it
    assert key in await store.settled_keys(0)
