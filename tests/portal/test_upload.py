"""The streaming multipart reader: order rules, limits, hostile input, nothing left behind."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, post
from litestar.testing import TestClient

from portal.http.upload import FilePart, UploadError, clean_filename, read_multipart

BOUNDARY = "----portal-test-boundary"
GOOD_TOKEN = "good-token"


class RecordingSink:
    def __init__(self, part: FilePart, log: list[Any]) -> None:
        self.part = part
        self.data = bytearray()
        self.log = log
        log.append(("open", part.filename))

    async def write(self, data: bytes) -> None:
        self.data.extend(data)

    async def close(self) -> Any:
        self.log.append(("close", self.part.filename, bytes(self.data)))
        return self.part.filename

    async def abort(self) -> None:
        self.log.append(("abort", self.part.filename))


def make_app(log: list[Any], max_file_bytes: int = 1000, max_files: int = 3) -> Litestar:
    @post("/up", opt={"exclude_from_csrf": True}, status_code=200)
    async def up(request: Request[Any, Any, Any]) -> dict[str, Any]:
        async def open_sink(part: FilePart, fields: dict[str, list[str]]) -> RecordingSink:
            return RecordingSink(part, log)

        async def discard(info: Any) -> None:
            log.append(("discard", info))

        try:
            result = await read_multipart(
                request,
                verify_csrf=lambda t: t == GOOD_TOKEN,
                open_sink=open_sink,
                discard=discard,
                max_file_bytes=max_file_bytes,
                max_files=max_files,
            )
        except UploadError as err:
            return {"error": err.status, "message": err.message}
        return {"fields": result.fields, "files": [p.filename for p, _ in result.files]}

    return Litestar([up], request_max_body_size=10_000_000)


def part(name: str, value: bytes, filename: str | None = None, ctype: str | None = None) -> bytes:
    disp = f'form-data; name="{name}"'
    if filename is not None:
        disp += f'; filename="{filename}"'
    head = f"--{BOUNDARY}\r\nContent-Disposition: {disp}\r\n"
    if ctype:
        head += f"Content-Type: {ctype}\r\n"
    return head.encode() + b"\r\n" + value + b"\r\n"


def body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def send(log: list[Any], payload: bytes, **kw: Any) -> dict[str, Any]:
    with TestClient(make_app(log, **kw)) as client:
        r = client.post(
            "/up",
            content=payload,
            headers={"content-type": f"multipart/form-data; boundary={BOUNDARY}"},
        )
        assert r.status_code == 200
        return r.json()


def test_fields_and_files_in_order() -> None:
    log: list[Any] = []
    out = send(
        log,
        body(
            part("_csrf_token", GOOD_TOKEN.encode()),
            part("what", "事实 facts".encode()),
            part("evidence", b"A" * 500, "a.txt", "text/plain"),
            part("evidence", b"B" * 10, "b.bin"),
        ),
    )
    assert out["fields"] == {"what": ["事实 facts"]}
    assert out["files"] == ["a.txt", "b.bin"]
    assert ("close", "a.txt", b"A" * 500) in log


def test_file_before_token_is_refused_and_nothing_opened() -> None:
    log: list[Any] = []
    out = send(log, body(part("evidence", b"x", "a.txt"), part("_csrf_token", GOOD_TOKEN.encode())))
    assert out["error"] == 400
    assert not [e for e in log if e[0] == "open"]


def test_wrong_token_refused() -> None:
    log: list[Any] = []
    out = send(log, body(part("_csrf_token", b"forged"), part("evidence", b"x", "a.txt")))
    assert out["error"] == 403
    assert not log


def test_missing_token_refused() -> None:
    out = send([], body(part("what", b"hello")))
    assert out["error"] == 403


def test_file_over_limit_is_413_and_aborted_and_earlier_files_discarded() -> None:
    log: list[Any] = []
    out = send(
        log,
        body(
            part("_csrf_token", GOOD_TOKEN.encode()),
            part("evidence", b"ok", "first.txt"),
            part("evidence", b"Z" * 1001, "big.bin"),
        ),
        max_file_bytes=1000,
    )
    assert out["error"] == 413
    assert ("abort", "big.bin") in log
    assert ("discard", "first.txt") in log


def test_too_many_files() -> None:
    log: list[Any] = []
    parts = [part("_csrf_token", GOOD_TOKEN.encode())]
    parts += [part("evidence", b"x", f"f{i}.txt") for i in range(4)]
    out = send(log, body(*parts), max_files=3)
    assert out["error"] == 413
    assert len([e for e in log if e[0] == "discard"]) == 3


def test_truncated_body_leaves_nothing() -> None:
    log: list[Any] = []
    payload = body(part("_csrf_token", GOOD_TOKEN.encode()), part("evidence", b"x" * 100, "a.txt"))
    cut = payload[: payload.index(b"x" * 50)]
    out = send(log, cut)
    assert out["error"] == 400
    assert ("abort", "a.txt") in log
    assert not [e for e in log if e[0] == "close"]


def test_malformed_multipart() -> None:
    out = send([], b"this is not multipart at all")
    assert out["error"] == 400


def test_invalid_utf8_in_text_field_is_a_clear_error() -> None:
    out = send([], body(part("_csrf_token", GOOD_TOKEN.encode()), part("what", b"\xff\xfe\xfa")))
    assert out["error"] == 400
    assert "characters" in out["message"]


def test_empty_file_input_is_ignored() -> None:
    log: list[Any] = []
    out = send(log, body(part("_csrf_token", GOOD_TOKEN.encode()), part("evidence", b"", "")))
    assert out["files"] == []
    assert not log


def test_not_multipart_content_type() -> None:
    with TestClient(make_app([])) as client:
        r = client.post(
            "/up", content=b"a=b", headers={"content-type": "application/x-www-form-urlencoded"}
        )
        assert r.json()["error"] == 400


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Windows\\system32\\evil.exe", "evil.exe"),
        ("report\u202egpj.exe", "reportgpj.exe"),
        ("a\x00b\x1fc.txt", "abc.txt"),
        ("..", "file"),
        ("", "file"),
        ("   ", "file"),
        ("照片 1.jpg", "照片 1.jpg"),
    ],
)
def test_clean_filename(raw: str, expected: str) -> None:
    assert clean_filename(raw) == expected


def test_clean_filename_is_bounded() -> None:
    assert len(clean_filename("a" * 1000 + ".txt")) == 200


async def test_a_cancelled_upload_leaves_nothing_behind() -> None:
    """The request is cancelled (say the server shuts down) after one file was stored and while
    the next streams in: the stored file is discarded and the open sink aborted."""
    import asyncio

    log: list[Any] = []
    payload = (
        body(
            part("_csrf_token", GOOD_TOKEN.encode()),
            part("evidence", b"A" * 50, "a.txt"),
        )[: -len(f"--{BOUNDARY}--\r\n")]
        + part("evidence", b"B" * 50, "b.txt")[:120]
    )

    class CancelledRequest:
        def __init__(self) -> None:
            self.headers = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}

        async def stream(self) -> Any:
            yield payload
            raise asyncio.CancelledError

    async def open_sink(p: FilePart, fields: dict[str, list[str]]) -> RecordingSink:
        return RecordingSink(p, log)

    async def discard(info: Any) -> None:
        log.append(("discard", info))

    with pytest.raises(asyncio.CancelledError):
        await read_multipart(
            CancelledRequest(),  # type: ignore[arg-type]
            verify_csrf=lambda t: t == GOOD_TOKEN,
            open_sink=open_sink,
            discard=discard,
            max_file_bytes=1000,
            max_files=3,
        )
    assert ("close", "a.txt", b"A" * 50) in log
    assert ("discard", "a.txt") in log
    assert ("abort", "b.txt") in log
