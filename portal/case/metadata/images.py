"""JPEG and PNG: streaming metadata removal in constant memory."""

from __future__ import annotations

import zlib

from portal.case.metadata.kinds import ImageKind, MetadataError

# ---------------------------------------------------------------------------
# Streaming image strippers
# ---------------------------------------------------------------------------


class _Parser:
    """Common push-parser plumbing: a small carry-over buffer between chunks."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self.removed: set[str] = set()

    def feed(self, data: bytes) -> bytes:
        buf = self._buf
        buf += data
        out = bytearray()
        pos = self._run(buf, out)
        del buf[:pos]
        return bytes(out)

    def _run(self, buf: bytearray, out: bytearray) -> int:  # pragma: no cover
        raise NotImplementedError

    def close(self) -> None:  # pragma: no cover
        raise NotImplementedError


# JPEG parser states
_J_START, _J_MARKER, _J_COPY, _J_SKIP, _J_SCAN, _J_DONE = range(6)
_JPEG_IDENT_LEN = 14  # enough for "JFIF\0" + header and "ICC_PROFILE\0"
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_APP_LABELS: tuple[tuple[int, bytes, str], ...] = (
    (0xE0, b"JFXX\x00", "JPEG JFXX thumbnail (APP0)"),
    (0xE1, b"Exif\x00", "JPEG EXIF incl. GPS (APP1)"),
    (0xE1, b"http://ns.ado", "JPEG XMP (APP1)"),
    (0xE2, b"MPF\x00", "JPEG multi-picture index (APP2)"),
    (0xE2, b"FPXR\x00", "JPEG FlashPix (APP2)"),
    (0xEC, b"Ducky", "JPEG Ducky (APP12)"),
    (0xED, b"Photoshop 3.0", "JPEG IPTC/Photoshop (APP13)"),
)


def _jpeg_app_label(marker: int, ident: bytes) -> str:
    for m, prefix, label in _JPEG_APP_LABELS:
        if m == marker and ident.startswith(prefix):
            return label
    return f"JPEG APP{marker - 0xE0} segment"


class _JpegParser(_Parser):
    def __init__(self) -> None:
        super().__init__()
        self._state = _J_START
        self._remaining = 0
        self._after = _J_MARKER
        self._seen_sof = False
        self._seen_sos = False
        self._trailing = 0

    def feed(self, data: bytes) -> bytes:
        if self._state == _J_DONE:
            self._trailing += len(data)
            return b""
        return super().feed(data)

    def _run(self, buf: bytearray, out: bytearray) -> int:
        pos, n = 0, len(buf)
        while pos < n:
            state = self._state
            if state in (_J_COPY, _J_SKIP):
                take = min(self._remaining, n - pos)
                if state == _J_COPY:
                    out += buf[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = self._after
            elif state == _J_SCAN:
                i = buf.find(0xFF, pos)
                if i < 0:
                    out += buf[pos:n]
                    return n
                out += buf[pos:i]
                if i + 1 >= n:
                    return i  # need the byte after 0xFF
                nxt = buf[i + 1]
                if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:  # stuffed byte or restart marker
                    out += buf[i : i + 2]
                    pos = i + 2
                else:
                    pos = i
                    self._state = _J_MARKER
            elif state == _J_START:
                if n - pos < 2:
                    return pos
                if buf[pos : pos + 2] != b"\xff\xd8":
                    raise MetadataError("not a JPEG file (missing SOI)")
                out += b"\xff\xd8"
                pos += 2
                self._state = _J_MARKER
            elif state == _J_MARKER:
                if buf[pos] != 0xFF:
                    raise MetadataError("JPEG: garbage between segments")
                j = pos + 1
                while j < n and buf[j] == 0xFF:  # fill bytes
                    j += 1
                if j >= n:
                    return j - 1
                pos = j - 1
                marker = buf[j]
                if marker == 0xD9:  # EOI
                    out += b"\xff\xd9"
                    self._state = _J_DONE
                    self._trailing += n - (j + 1)
                    return n
                if 0xD0 <= marker <= 0xD7:
                    if not self._seen_sos:
                        raise MetadataError("JPEG: restart marker outside a scan")
                    out += buf[pos : j + 1]
                    pos = j + 1
                    self._state = _J_SCAN
                    continue
                if marker in (0x00, 0xD8):
                    raise MetadataError("JPEG: unexpected marker")
                if marker == 0x01:  # TEM, no length
                    out += b"\xff\x01"
                    pos = j + 1
                    continue
                if n - pos < 4:
                    return pos
                length = (buf[pos + 2] << 8) | buf[pos + 3]
                if length < 2:
                    raise MetadataError("JPEG: bad segment length")
                ident_len = min(length - 2, _JPEG_IDENT_LEN)
                if n - pos < 4 + ident_len:
                    return pos
                ident = bytes(buf[pos + 4 : pos + 4 + ident_len])
                self._remaining = length + 2
                self._after = _J_MARKER
                self._state = _J_COPY
                if marker == 0xDA:
                    if not self._seen_sof:
                        raise MetadataError("JPEG: scan before frame header")
                    self._seen_sos = True
                    self._after = _J_SCAN
                elif marker in _SOF_MARKERS:
                    self._seen_sof = True
                elif marker == 0xFE:
                    self.removed.add("JPEG comment (COM)")
                    self._state = _J_SKIP
                elif 0xE0 <= marker <= 0xEF:
                    self._app_segment(marker, ident, out)
            else:  # pragma: no cover - _J_DONE is handled in feed()
                self._trailing += n - pos
                return n
        return pos

    def _app_segment(self, marker: int, ident: bytes, out: bytearray) -> None:
        if marker == 0xE0 and ident.startswith(b"JFIF\x00") and len(ident) == 14:
            # Keep JFIF (version, density) but never its embedded thumbnail.
            if ident[12] or ident[13] or self._remaining > 18:
                self.removed.add("JPEG JFIF thumbnail (APP0)")
            out += b"\xff\xe0\x00\x10" + ident[:12] + b"\x00\x00"
            self._state = _J_SKIP
        elif (marker == 0xE2 and ident.startswith(b"ICC_PROFILE\x00")) or (
            marker == 0xEE and ident.startswith(b"Adobe")
        ):
            pass  # colour information needed for decoding: copy
        else:
            self.removed.add(_jpeg_app_label(marker, ident))
            self._state = _J_SKIP

    def close(self) -> None:
        if self._state != _J_DONE:
            raise MetadataError("truncated or malformed JPEG (no end of image)")
        if not self._seen_sos:
            raise MetadataError("JPEG without image data")
        if self._trailing:
            self.removed.add("JPEG data after end of image")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_KEPT_ANCILLARY = frozenset(
    {
        b"tRNS",
        b"cHRM",
        b"gAMA",
        b"iCCP",
        b"sBIT",
        b"sRGB",
        b"cICP",
        b"mDCv",
        b"cLLi",
        b"bKGD",
        b"hIST",
        b"pHYs",
        b"acTL",
        b"fcTL",
        b"fdAT",
    }
)
_PNG_LABELS = {
    b"tEXt": "PNG text (tEXt)",
    b"zTXt": "PNG compressed text (zTXt)",
    b"iTXt": "PNG international text/XMP (iTXt)",
    b"eXIf": "PNG EXIF (eXIf)",
    b"tIME": "PNG modification time (tIME)",
}
_P_SIG, _P_HEAD, _P_BODY, _P_CRC, _P_DONE = range(5)
_MAX_PNG_CHUNK = 2**31 - 1


class _PngParser(_Parser):
    def __init__(self) -> None:
        super().__init__()
        self._state = _P_SIG
        self._type = b""
        self._keep = False
        self._remaining = 0
        self._crc = 0
        self._chunks = 0
        self._seen_idat = False
        self._trailing = 0

    def feed(self, data: bytes) -> bytes:
        if self._state == _P_DONE:
            self._trailing += len(data)
            return b""
        return super().feed(data)

    def _run(self, buf: bytearray, out: bytearray) -> int:
        pos, n = 0, len(buf)
        while pos < n:
            state = self._state
            if state == _P_BODY:
                take = min(self._remaining, n - pos)
                piece = buf[pos : pos + take]
                self._crc = zlib.crc32(piece, self._crc)
                if self._keep:
                    out += piece
                pos += take
                self._remaining -= take
                if self._remaining == 0:
                    self._state = _P_CRC
            elif state == _P_HEAD:
                if n - pos < 8:
                    return pos
                self._start_chunk(bytes(buf[pos : pos + 8]), out)
                pos += 8
            elif state == _P_CRC:
                if n - pos < 4:
                    return pos
                crc = bytes(buf[pos : pos + 4])
                if int.from_bytes(crc, "big") != self._crc:
                    raise MetadataError("PNG: CRC mismatch")
                if self._keep:
                    out += crc
                pos += 4
                self._state = _P_HEAD
                if self._type == b"IEND":
                    self._state = _P_DONE
                    self._trailing += n - pos
                    return n
            elif state == _P_SIG:
                if n - pos < 8:
                    if bytes(buf[pos:n]) != _PNG_SIGNATURE[: n - pos]:
                        raise MetadataError("not a PNG file (bad signature)")
                    return pos
                if bytes(buf[pos : pos + 8]) != _PNG_SIGNATURE:
                    raise MetadataError("not a PNG file (bad signature)")
                out += _PNG_SIGNATURE
                pos += 8
                self._state = _P_HEAD
            else:  # pragma: no cover - _P_DONE is handled in feed()
                self._trailing += n - pos
                return n
        return pos

    def _start_chunk(self, head: bytes, out: bytearray) -> None:
        length = int.from_bytes(head[:4], "big")
        ctype = head[4:]
        if length > _MAX_PNG_CHUNK or not ctype.isalpha() or not ctype.isascii():
            raise MetadataError("PNG: malformed chunk header")
        if self._chunks == 0 and (ctype != b"IHDR" or length != 13):
            raise MetadataError("PNG: first chunk is not IHDR")
        if ctype == b"IDAT":
            self._seen_idat = True
        if ctype == b"IEND" and not self._seen_idat:
            raise MetadataError("PNG: no image data")
        self._chunks += 1
        self._type = ctype
        critical = ctype[0:1].isupper()
        self._keep = critical or ctype in _PNG_KEPT_ANCILLARY
        if not self._keep:
            self.removed.add(_PNG_LABELS.get(ctype, f"PNG {ctype.decode('ascii')} chunk"))
        if self._keep:
            out += head
        self._crc = zlib.crc32(ctype)
        self._remaining = length
        self._state = _P_BODY if length else _P_CRC

    def close(self) -> None:
        if self._state != _P_DONE:
            raise MetadataError("truncated or malformed PNG (no IEND)")
        if self._trailing:
            self.removed.add("PNG data after end of image")


class StreamingStripper:
    """Push-style, constant-memory metadata stripper for JPEG and PNG.

    ``update()`` returns the cleaned bytes available so far; ``finalize()``
    returns the rest and raises :class:`MetadataError` if the whole input was
    not a well-formed file of that kind (then discard everything returned).
    Memory use is bounded by the size of the chunk passed to ``update()`` plus
    a few bytes carried over between chunks.
    """

    def __init__(self, kind: ImageKind) -> None:
        if kind == "jpeg":
            self._parser: _Parser = _JpegParser()
        elif kind == "png":
            self._parser = _PngParser()
        else:
            raise ValueError(f"no streaming stripper for {kind!r}")
        self.kind: ImageKind = kind
        self._error: MetadataError | None = None
        self._finalized = False

    @property
    def failed(self) -> bool:
        """True once the input is known to be malformed (callers may stop early)."""
        return self._error is not None

    @property
    def removed(self) -> tuple[str, ...]:
        """Names (never values) of the metadata removed so far, sorted."""
        return tuple(sorted(self._parser.removed))

    def update(self, data: bytes) -> bytes:
        if self._finalized:
            raise RuntimeError("update() after finalize()")
        if self._error is not None or not data:
            return b""
        try:
            return self._parser.feed(bytes(data))
        except MetadataError as exc:
            self._error = exc
            return b""

    def finalize(self) -> bytes:
        if self._finalized:
            raise RuntimeError("finalize() called twice")
        self._finalized = True
        if self._error is not None:
            raise self._error
        self._parser.close()
        return b""


def _strip_image_bytes(kind: ImageKind, data: bytes) -> tuple[bytes, tuple[str, ...]]:
    stripper = StreamingStripper(kind)
    out = stripper.update(data)
    out += stripper.finalize()
    return out, stripper.removed
