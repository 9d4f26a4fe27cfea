"""An S3-compatible file store (O2): the same contract as `LocalFileStore`, on a bucket.

Only ciphertext reaches this module (the evidence layer encrypts before it writes), so only
ciphertext leaves the process. Objects live under ``objects/KEY`` (random keys, never a file
name). A write is a multipart upload in parts of ``PART_SIZE`` bytes: memory stays bounded by
one part whatever the file size; the object becomes visible only when the upload completes
(``commit``), and a failed or aborted write aborts the upload so no part lingers. An upload
left open by a crash is aborted by ``cleanup_incoming()`` at start-up, once it is older than
``stale_after_s`` (another instance may be uploading right now).

boto3 is synchronous: every call runs in a worker thread (anyio.to_thread).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from portal.kernel.storage import READ_SIZE, StoreError, StoreWriter, _check_key

PART_SIZE = 8 * 1024 * 1024
PREFIX = "objects/"
_T = TypeVar("_T")


@dataclass(frozen=True)
class S3Config:
    bucket: str
    endpoint: str | None = None
    access_key: str | None = None
    secret_key: str | None = None
    region: str = "us-east-1"


def make_client(config: S3Config) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=config.endpoint,
        aws_access_key_id=config.access_key,
        aws_secret_access_key=config.secret_key,
        region_name=config.region,
        config=Config(
            connect_timeout=10,
            read_timeout=60,
            retries={"max_attempts": 3, "mode": "standard"},
            s3={"addressing_style": "path"},
        ),
    )


def _is_missing(exc: Exception) -> bool:
    code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
    return code in {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


class _S3Writer:
    """Buffers at most one part; starts the multipart upload when the first part is full."""

    def __init__(self, store: S3FileStore, key: str) -> None:
        self.key = key
        self._store = store
        self._buf = bytearray()
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._size = 0
        self._done = False

    async def _flush_part(self) -> None:
        body = bytes(self._buf[:PART_SIZE])
        del self._buf[:PART_SIZE]
        s = self._store
        if self._upload_id is None:
            created = await s._call(
                s.client.create_multipart_upload, Bucket=s.bucket, Key=s._name(self.key)
            )
            self._upload_id = str(created["UploadId"])
        number = len(self._parts) + 1
        done = await s._call(
            s.client.upload_part,
            Bucket=s.bucket,
            Key=s._name(self.key),
            UploadId=self._upload_id,
            PartNumber=number,
            Body=body,
        )
        self._parts.append({"PartNumber": number, "ETag": done["ETag"]})

    async def write(self, data: bytes) -> None:
        if self._done:
            raise StoreError("writer is closed")
        if not data:
            return
        self._buf += data
        self._size += len(data)
        try:
            while len(self._buf) >= PART_SIZE:
                await self._flush_part()
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.abort()
            raise

    async def commit(self) -> int:
        s = self._store
        try:
            if self._upload_id is None:
                await s._call(
                    s.client.put_object,
                    Bucket=s.bucket,
                    Key=s._name(self.key),
                    Body=bytes(self._buf),
                )
            else:
                if self._buf:
                    await self._flush_part()
                await s._call(
                    s.client.complete_multipart_upload,
                    Bucket=s.bucket,
                    Key=s._name(self.key),
                    UploadId=self._upload_id,
                    MultipartUpload={"Parts": self._parts},
                )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self.abort()
            raise
        self._done = True
        self._buf = bytearray()
        return self._size

    async def abort(self) -> None:
        self._done = True
        self._buf = bytearray()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        s = self._store
        try:
            await s._call(
                s.client.abort_multipart_upload,
                Bucket=s.bucket,
                Key=s._name(self.key),
                UploadId=upload_id,
            )
        except Exception as exc:  # cleanup_incoming retries at start-up
            if not _is_missing(exc):
                raise


class S3FileStore:
    """`FileStore` on an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, ...)."""

    def __init__(
        self,
        config: S3Config,
        *,
        client: Any = None,
        stale_after_s: float = 3600.0,
    ) -> None:
        self.config = config
        self.bucket = config.bucket
        self.client = client if client is not None else make_client(config)
        self.stale_after_s = stale_after_s
        self._limiter = anyio.CapacityLimiter(16)

    async def _call(self, fn: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        return await anyio.to_thread.run_sync(lambda: fn(*args, **kwargs), limiter=self._limiter)

    @staticmethod
    def _name(key: str) -> str:
        return PREFIX + _check_key(key)

    def ensure(self) -> None:
        """Create the bucket if it does not exist (needs the right to do so; else a no-op)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except Exception as exc:
            if not _is_missing(exc):
                raise StoreError(f"S3 bucket {self.bucket!r} is not reachable: {exc}") from exc
            self.client.create_bucket(Bucket=self.bucket)

    async def writer(self, key: str) -> StoreWriter:
        _check_key(key)
        return _S3Writer(self, key)

    async def read(self, key: str) -> AsyncIterator[bytes]:
        name = self._name(key)
        try:
            obj = await self._call(self.client.get_object, Bucket=self.bucket, Key=name)
        except Exception as exc:
            if _is_missing(exc):
                raise StoreError("no such object") from None
            raise
        body = obj["Body"]
        try:
            while True:
                chunk = await self._call(body.read, READ_SIZE)
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    async def delete(self, key: str) -> None:
        await self._call(self.client.delete_object, Bucket=self.bucket, Key=self._name(key))

    async def exists(self, key: str) -> bool:
        try:
            await self._call(self.client.head_object, Bucket=self.bucket, Key=self._name(key))
        except Exception as exc:
            if _is_missing(exc):
                return False
            raise
        return True

    async def keys(self) -> list[str]:
        def listing() -> list[str]:
            out: list[str] = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=PREFIX
            )
            for page in pages:
                out.extend(item["Key"][len(PREFIX) :] for item in page.get("Contents", []))
            return sorted(out)

        return await self._call(listing)

    async def settled_keys(self, min_age_s: float) -> list[str]:
        """Keys of the objects completed at least ``min_age_s`` seconds ago."""
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=min_age_s)

        def listing() -> list[str]:
            out: list[str] = []
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=PREFIX
            )
            for page in pages:
                out.extend(
                    item["Key"][len(PREFIX) :]
                    for item in page.get("Contents", [])
                    if item["LastModified"] <= cutoff
                )
            return sorted(out)

        return await self._call(listing)

    async def pending_uploads(self) -> list[tuple[str, str, dt.datetime]]:
        """Open multipart uploads under our prefix: (object name, upload id, initiated)."""

        def listing() -> list[tuple[str, str, dt.datetime]]:
            out: list[tuple[str, str, dt.datetime]] = []
            pages = self.client.get_paginator("list_multipart_uploads").paginate(
                Bucket=self.bucket, Prefix=PREFIX
            )
            for page in pages:
                for up in page.get("Uploads", []):
                    out.append((up["Key"], up["UploadId"], up["Initiated"]))
            return out

        return await self._call(listing)

    async def cleanup_incoming(self) -> int:
        """Abort multipart uploads a crash left open (older than ``stale_after_s``)."""
        horizon = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=self.stale_after_s)
        removed = 0
        for name, upload_id, initiated in await self.pending_uploads():
            when = initiated if initiated.tzinfo else initiated.replace(tzinfo=dt.UTC)
            if when > horizon:
                continue
            try:
                await self._call(
                    self.client.abort_multipart_upload,
                    Bucket=self.bucket,
                    Key=name,
                    UploadId=upload_id,
                )
            except Exception as exc:
                if not _is_missing(exc):
                    raise
            removed += 1
        return removed
