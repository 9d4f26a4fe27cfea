"""Streaming multipart reader for evidence uploads.

Litestar's own form parsing spools file parts larger than 1 MiB to `$TMPDIR` in plaintext
(see the stack notes), so upload routes take only `request`, feed `request.stream()` to
python-multipart's push parser, and hand every file chunk to a sink that encrypts it before
it reaches the file store. Nothing of a file exists in plaintext outside this process's memory,
and at most one network chunk of it at a time.

Rules: the CSRF token field must come before any file part (a file part before a verified
token is refused), text fields are small and strict UTF-8, a file over the per-file limit
answers 413, and on any error (or cancellation) every sink already opened is aborted and every
file already stored is discarded (nothing half-stored). A
full disk (ENOSPC/EDQUOT) leaves as `portal.kernel.outage.StorageFull` (503 with Retry-After).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from litestar import Request
from python_multipart.multipart import MultipartParser, parse_options_header

from portal.kernel.outage import StorageFull, is_disk_full, note_outage

CSRF_FIELD = "_csrf_token"
MAX_FIELD_BYTES = 64 * 1024
MAX_FIELDS_TOTAL = 512 * 1024
MAX_FIELDS = 400


class UploadError(Exception):
    """A refused upload; `message` is a msgid safe to show to the reporter."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class FilePart:
    field: str
    filename: str  # display name only, cleaned; never used as a path
    content_type: str


class FileSink(Protocol):
    async def write(self, data: bytes | memoryview) -> None: ...
    async def close(self) -> Any: ...
    async def abort(self) -> None: ...


SinkFactory = Callable[[FilePart, dict[str, list[str]]], Awaitable[FileSink]]


@dataclass
class UploadResult:
    fields: dict[str, list[str]] = field(default_factory=dict)
    files: list[tuple[FilePart, Any]] = field(default_factory=list)

    def first(self, name: str, default: str = "") -> str:
        values = self.fields.get(name)
        return values[0] if values else default


_BIDI_AND_CONTROLS = {
    "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
    "\u2066", "\u2067", "\u2068", "\u2069", "\u200e", "\u200f",
}  # fmt: skip


def clean_filename(raw: str, limit: int = 200) -> str:
    """A display name: no path parts, no control or bidi-override characters, bounded length."""
    name = raw.replace("\\", "/").rsplit("/", 1)[-1]
    name = unicodedata.normalize("NFC", name)
    name = "".join(
        ch for ch in name if ch not in _BIDI_AND_CONTROLS and unicodedata.category(ch)[0] != "C"
    ).strip(" .")
    if not name:
        name = "file"
    return name[:limit]


def _disposition(headers: dict[str, bytes]) -> tuple[str, str | None]:
    raw = headers.get("content-disposition")
    if raw is None:
        raise UploadError(400, "The form was not sent correctly. Please try again.")
    kind, params = parse_options_header(raw)
    if kind != b"form-data" or b"name" not in params:
        raise UploadError(400, "The form was not sent correctly. Please try again.")
    name = params[b"name"].decode("utf-8", "strict")
    filename = params.get(b"filename")
    return name, (filename.decode("utf-8", "replace") if filename is not None else None)


async def read_multipart(
    request: Request[Any, Any, Any],
    *,
    verify_csrf: Callable[[str], bool],
    open_sink: SinkFactory,
    discard: Callable[[Any], Awaitable[None]],
    max_file_bytes: int,
    max_files: int,
) -> UploadResult:
    """Parse the body as it streams in. Raises UploadError; aborts open sinks on failure."""
    ctype, params = parse_options_header(request.headers.get("content-type", ""))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise UploadError(400, "The form was not sent correctly. Please try again.")

    events: list[tuple[str, Any]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        events.append(("begin", None))

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        events.append(
            ("header", (bytes(header_field).lower().decode("latin-1"), bytes(header_value)))
        )
        header_field.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        events.append(("headers_done", None))

    def on_part_data(data: bytes, start: int, end: int) -> None:
        # a view of the network chunk, not a copy (the chunk is bytes: nothing rewrites it)
        events.append(("data", memoryview(data)[start:end]))

    def on_part_end() -> None:
        events.append(("end", None))

    def on_end() -> None:
        events.append(("finished", None))

    parser = MultipartParser(
        params[b"boundary"],
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
            "on_end": on_end,
        },
    )

    result = UploadResult()
    open_sinks: list[FileSink] = []
    csrf_ok = False
    finished = False
    headers: dict[str, bytes] = {}
    current: FilePart | None = None
    sink: FileSink | None = None
    field_name: str | None = None
    field_buf = bytearray()
    file_size = 0
    fields_total = 0
    field_count = 0
    skip_part = False

    async def process() -> None:
        nonlocal csrf_ok, finished, headers, current, sink, field_name, file_size
        nonlocal fields_total, field_count, skip_part
        for kind, value in events:
            if kind == "begin":
                headers = {}
                current, sink, field_name, skip_part = None, None, None, False
                field_buf.clear()
                file_size = 0
            elif kind == "header":
                headers[value[0]] = value[1]
            elif kind == "headers_done":
                name, filename = _disposition(headers)
                if filename is None:
                    field_count += 1
                    if field_count > MAX_FIELDS:
                        raise UploadError(400, "The form has too many fields.")
                    field_name = name
                elif filename == "":
                    skip_part = True  # an empty file input: nothing chosen
                else:
                    if not csrf_ok:
                        raise UploadError(
                            400, "Your form has expired. Please reload the page and try again."
                        )
                    if len(result.files) >= max_files:
                        raise UploadError(413, "Too many files in one submission.")
                    ctype_raw = headers.get("content-type", b"application/octet-stream")
                    current = FilePart(
                        field=name,
                        filename=clean_filename(filename),
                        content_type=ctype_raw.decode("latin-1")
                        .split(";")[0]
                        .strip()
                        .lower()[:100],
                    )
                    sink = await open_sink(current, result.fields)
                    open_sinks.append(sink)
            elif kind == "data":
                if skip_part:
                    continue
                if sink is not None:
                    file_size += len(value)
                    if file_size > max_file_bytes:
                        raise UploadError(413, "A file is larger than the limit.")
                    await sink.write(value)
                elif field_name is not None:
                    field_buf.extend(value)
                    fields_total += len(value)
                    if len(field_buf) > MAX_FIELD_BYTES or fields_total > MAX_FIELDS_TOTAL:
                        raise UploadError(413, "A text field is too long.")
            elif kind == "end":
                if sink is not None and current is not None:
                    if file_size == 0:
                        await sink.abort()
                        open_sinks.remove(sink)
                    else:
                        info = await sink.close()
                        open_sinks.remove(sink)
                        result.files.append((current, info))
                elif field_name is not None:
                    try:
                        text = bytes(field_buf).decode("utf-8", "strict")
                    except UnicodeDecodeError:
                        raise UploadError(
                            400, "The form contains characters that could not be read."
                        ) from None
                    if field_name == CSRF_FIELD:
                        csrf_ok = verify_csrf(text)
                        if not csrf_ok:
                            raise UploadError(
                                403,
                                "Your form has expired. Please reload the page and try again.",
                            )
                    else:
                        result.fields.setdefault(field_name, []).append(text)
                current, sink, field_name = None, None, None
            elif kind == "finished":
                finished = True
        events.clear()

    try:
        async for chunk in request.stream():
            parser.write(chunk)
            await process()
        parser.finalize()
        await process()
        if not finished or open_sinks:
            raise UploadError(400, "The upload was interrupted. Nothing was saved.")
        if not csrf_ok:
            raise UploadError(403, "Your form has expired. Please reload the page and try again.")
    except UploadError:
        await _abort_all(open_sinks, result, discard)
        raise
    except Exception as exc:
        await _abort_all(open_sinks, result, discard)
        if type(exc).__name__ in {"ClientDisconnect", "InternalClientDisconnect"}:
            raise UploadError(400, "The upload was interrupted. Nothing was saved.") from None
        if exc.__class__.__module__.startswith("python_multipart"):
            raise UploadError(400, "The form was not sent correctly. Please try again.") from None
        if is_disk_full(exc):  # 503 "try again later", logged once per outage
            note_outage(StorageFull.component, type(exc).__name__)
            raise StorageFull(exc) from None
        raise
    except BaseException:  # cancelled (the server shutting down): nothing may stay behind
        await _abort_all(open_sinks, result, discard)
        raise
    return result


async def _abort_all(
    open_sinks: list[FileSink], result: UploadResult, discard: Callable[[Any], Awaitable[None]]
) -> None:
    for s in open_sinks:
        await s.abort()
    open_sinks.clear()
    await discard_files(result, discard)


async def discard_files(result: UploadResult, drop: Callable[[Any], Awaitable[None]]) -> None:
    """Remove every stored file of a submission that will not be committed."""
    for _part, info in result.files:
        await drop(info)
    result.files.clear()
