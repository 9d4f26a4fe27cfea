"""Identifying-metadata removal for evidence working copies (requirement R11).

Reporters' original files stay sealed; investigators open by default a *working
copy* produced here.  Everything happens in memory or streaming: no function in
this module ever writes plaintext to disk.

Supported kinds and what is removed
-----------------------------------
* ``jpeg`` (streaming, constant memory): every APPn segment except APP0 JFIF
  (rewritten without its embedded thumbnail), APP2 ``ICC_PROFILE`` and APP14
  ``Adobe`` (both needed to render colours correctly); so EXIF/GPS and XMP
  (APP1), FlashPix/MPF (APP2), Ducky (APP12), IPTC/Photoshop (APP13), JFXX
  thumbnails (APP0) and all other APPn are dropped, as are COM comments and any
  bytes after EOI (camera trailers, appended images).
* ``png`` (streaming, constant memory): critical chunks are copied as is (CRC
  included); ancillary chunks are kept only if they are needed for correct
  rendering (tRNS, cHRM, gAMA, iCCP, sBIT, sRGB, cICP, mDCv, cLLi, bKGD, hIST,
  pHYs and the APNG chunks acTL/fcTL/fdAT).  tEXt, zTXt, iTXt, eXIf, tIME,
  sPLT and all private/unknown ancillary chunks are dropped, as is anything
  after IEND.  CRCs of all chunks are verified.
* ``pdf`` (in memory, pypdf): the document information dictionary keeps only
  ``/Title`` (Author, Creator, Producer, Subject, Keywords, dates and custom
  keys go: Subject/Keywords are free text authoring tools often fill with
  names); every ``/Metadata`` XMP stream (catalog, pages, images…) and every
  ``/PieceInfo`` (application private data) is removed; markup annotations
  (comments) lose their author ``/T`` and dates; JPEG images (DCTDecode) are run
  through the JPEG stripper; the file identifier ``/ID`` is regenerated at
  random.  Encrypted PDFs are handled only if they open with an empty password.
* ``ooxml`` (docx/xlsx/pptx and macro/template variants, in memory, zipfile):
  core properties keep only ``dc:title`` and ``dc:language`` (creator,
  lastModifiedBy, revision, created/modified/lastPrinted dates, subject,
  keywords, description, category… removed); extended properties lose Company,
  Manager, Template, TotalTime and HyperlinkBase; the custom properties part
  is dropped together with its relationship and content-type override; comment
  and tracked-change authors (Word), comment authors and persons (Excel),
  comment authors (PowerPoint) are replaced by stable pseudonyms
  ("Author 1", …); embedded JPEG/PNG media and thumbnails are stripped; zip
  entry timestamps, extra fields (which can carry uid/gid) and the archive
  comment are reset.  Every other part is copied with identical content.

Known limits (documented for the case file): Word rsid session identifiers,
``customXml`` data-binding parts and VBA projects are left untouched, as are
fonts and images inside PDFs other than JPEG.

Errors: :class:`StreamingStripper` never raises from :meth:`~StreamingStripper.update`
on bad input; it stops producing output and :meth:`~StreamingStripper.finalize`
raises :class:`MetadataError`.  Bytes already returned by ``update`` must then be
discarded by the caller, which keeps only the original.
"""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal
from xml.etree import ElementTree as ET

__all__ = [
    "MAX_IN_MEMORY_DOCUMENT",
    "DocumentKind",
    "ImageKind",
    "MetadataError",
    "StreamingStripper",
    "StripResult",
    "removed_fields_summary",
    "strip_document",
    "strip_document_report",
    "working_copy_kind",
]

Kind = Literal["jpeg", "png", "pdf", "ooxml"]
ImageKind = Literal["jpeg", "png"]
DocumentKind = Literal["pdf", "ooxml"]

MAX_IN_MEMORY_DOCUMENT: int = 64 * 1024 * 1024
"""Documents above this size keep only the original (the caller checks)."""

# Zip-bomb guard for OOXML: total declared uncompressed size and entry count.
_MAX_OOXML_UNCOMPRESSED = 4 * MAX_IN_MEMORY_DOCUMENT
_MAX_OOXML_ENTRIES = 20_000


class MetadataError(Exception):
    """The input is not a well-formed file of the announced kind."""


# ---------------------------------------------------------------------------
# Kind detection
# ---------------------------------------------------------------------------

_CONTENT_TYPES: dict[str, Kind] = {
    "image/jpeg": "jpeg",
    "image/jpg": "jpeg",
    "image/pjpeg": "jpeg",
    "image/png": "png",
    "image/x-png": "png",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
}
_OOXML_CONTENT_TYPE_PREFIXES = (
    "application/vnd.openxmlformats-officedocument.wordprocessingml.",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.",
    "application/vnd.openxmlformats-officedocument.presentationml.",
    "application/vnd.ms-word.document.macroenabled.",
    "application/vnd.ms-word.template.macroenabled.",
    "application/vnd.ms-excel.sheet.macroenabled.",
    "application/vnd.ms-excel.template.macroenabled.",
    "application/vnd.ms-powerpoint.presentation.macroenabled.",
    "application/vnd.ms-powerpoint.slideshow.macroenabled.",
    "application/vnd.ms-powerpoint.template.macroenabled.",
)
_EXTENSIONS: dict[str, Kind] = {
    **dict.fromkeys(("jpg", "jpeg", "jpe", "jfif"), "jpeg"),
    "png": "png",
    "pdf": "pdf",
    **dict.fromkeys(
        (
            "docx",
            "docm",
            "dotx",
            "dotm",
            "xlsx",
            "xlsm",
            "xltx",
            "xltm",
            "pptx",
            "pptm",
            "potx",
            "potm",
            "ppsx",
            "ppsm",
        ),
        "ooxml",
    ),
}
# Content types that say nothing about the format: fall back to the extension.
_GENERIC_CONTENT_TYPES = frozenset(
    {
        "",
        "application/octet-stream",
        "binary/octet-stream",
        "application/x-download",
        "application/force-download",
        "application/unknown",
    }
)
_ZIP_CONTENT_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})


def working_copy_kind(content_type: str, filename: str) -> Kind | None:
    """Which stripper applies to an upload, or ``None`` if none is supported.

    Both inputs come from the reporter's browser and are untrusted: a specific
    content type wins, a generic one (``application/octet-stream``…) defers to
    the file extension, and a zip content type is accepted only for an OOXML
    extension.  The strippers then verify the actual format and raise
    :class:`MetadataError` when it does not match.
    """
    ctype = content_type.split(";", 1)[0].strip().lower()
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    ext = base.rsplit(".", 1)[-1].strip().lower() if "." in base else ""
    by_ext = _EXTENSIONS.get(ext)
    if ctype in _CONTENT_TYPES:
        return _CONTENT_TYPES[ctype]
    if ctype.startswith(_OOXML_CONTENT_TYPE_PREFIXES):
        return "ooxml"
    if ctype in _GENERIC_CONTENT_TYPES:
        return by_ext
    if ctype in _ZIP_CONTENT_TYPES and by_ext == "ooxml":
        return "ooxml"
    return None


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


# ---------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StripResult:
    """A cleaned document and the names (never values) of what was removed."""

    data: bytes
    removed: tuple[str, ...]


def strip_document(kind: DocumentKind, data: bytes) -> bytes:
    """Return a copy of a PDF or OOXML document without identifying metadata.

    Raises :class:`MetadataError` if ``data`` cannot be parsed as that kind.
    The caller enforces :data:`MAX_IN_MEMORY_DOCUMENT` beforehand.
    """
    return strip_document_report(kind, data).data


def strip_document_report(kind: DocumentKind, data: bytes) -> StripResult:
    """Like :func:`strip_document`, also telling which fields were removed."""
    removed: set[str] = set()
    if kind == "pdf":
        out = _strip_pdf(bytes(data), removed)
    elif kind == "ooxml":
        out = _strip_ooxml(bytes(data), removed)
    else:
        raise ValueError(f"no document stripper for {kind!r}")
    return StripResult(out, tuple(sorted(removed)))


def removed_fields_summary(source: StreamingStripper | StripResult | Iterable[str]) -> str:
    """One line for the case timeline: which kinds of metadata were removed.

    Only field names are listed, never their values.
    """
    if isinstance(source, StreamingStripper | StripResult):
        names: Iterable[str] = source.removed
    else:
        names = source
    unique = sorted(set(names))
    if not unique:
        return "No identifying metadata found."
    return "Removed from the working copy: " + "; ".join(unique) + "."


# --- PDF -------------------------------------------------------------------

_PDF_KEPT_INFO = frozenset({"/Title"})
_PDF_KNOWN_INFO = frozenset(
    {
        "/Author",
        "/Creator",
        "/Producer",
        "/Subject",
        "/Keywords",
        "/CreationDate",
        "/ModDate",
        "/Trapped",
    }
)
_PDF_MARKUP_ANNOTS = frozenset(
    {
        "/Text",
        "/FreeText",
        "/Line",
        "/Square",
        "/Circle",
        "/Polygon",
        "/PolyLine",
        "/Highlight",
        "/Underline",
        "/Squiggly",
        "/StrikeOut",
        "/Stamp",
        "/Caret",
        "/Ink",
        "/FileAttachment",
        "/Sound",
        "/Redact",
        "/Popup",
    }
)


def _strip_pdf(data: bytes, removed: set[str]) -> bytes:
    from pypdf import PdfReader, PdfWriter
    from pypdf.generic import DictionaryObject, NameObject, StreamObject, TextStringObject

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise MetadataError("encrypted PDF")
        info = reader.metadata
        title = info.get("/Title") if info is not None else None
        if info is not None:
            removed.update(
                f"PDF Info {k[1:]}" if k in _PDF_KNOWN_INFO else "PDF Info custom entries"
                for k in info
                if k not in _PDF_KEPT_INFO
            )
        writer = PdfWriter(clone_from=reader)
        writer.metadata = None
        if title is not None:
            title_text = str(title.get_object()) if hasattr(title, "get_object") else str(title)
            writer.add_metadata({"/Title": TextStringObject(title_text)})
        for obj in list(writer._objects):
            if not isinstance(obj, DictionaryObject):
                continue
            if obj.pop(NameObject("/Metadata"), None) is not None:
                removed.add("PDF XMP metadata stream")
            if obj.pop(NameObject("/PieceInfo"), None) is not None:
                removed.add("PDF PieceInfo (application data)")
            if obj.get("/Type") == "/Annot" and obj.get("/Subtype") in _PDF_MARKUP_ANNOTS:
                for key, label in (("/T", "author"), ("/M", "date"), ("/CreationDate", "date")):
                    if obj.pop(NameObject(key), None) is not None:
                        removed.add(f"PDF annotation {label}")
            if isinstance(obj, StreamObject) and obj.get("/Filter") == "/DCTDecode":
                _clean_pdf_jpeg(obj, removed)
        writer.compress_identical_objects(remove_duplicates=False, remove_unreferenced=True)
        writer._ID = None
        writer.generate_file_identifiers()
        out = io.BytesIO()
        writer.write(out)
    except MetadataError:
        raise
    except Exception as exc:  # pypdf raises many types on hostile input
        raise MetadataError(f"unparsable PDF: {type(exc).__name__}") from exc
    return out.getvalue()


def _clean_pdf_jpeg(stream: object, removed: set[str]) -> None:
    raw = getattr(stream, "_data", None)
    if not isinstance(raw, bytes):
        return
    try:
        cleaned, names = _strip_image_bytes("jpeg", raw)
    except MetadataError:
        return  # not decodable as baseline JPEG by us: leave the image as is
    if names:
        stream._data = cleaned  # type: ignore[attr-defined]
        removed.update(f"PDF image: {name}" for name in names)


# --- OOXML -------------------------------------------------------------------

_NS = {
    "cp": "http://schemas.openxmlformats.org/package/2006/metadata/core-properties",
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "dcmitype": "http://purl.org/dc/dcmitype/",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "vt": "http://schemas.openxmlformats.org/officeDocument/2006/docPropsVTypes",
}

_CORE_KEPT = frozenset({"title", "language"})
_APP_REMOVED = frozenset({"Company", "Manager", "Template", "TotalTime", "HyperlinkBase"})
_REL_CORE = "/metadata/core-properties"
_REL_APP = "/extended-properties"
_REL_CUSTOM = "/custom-properties"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _ns(tag: str) -> str:
    return tag[1:].split("}", 1)[0] if tag.startswith("{") else ""


def _parse_xml(raw: bytes, name: str) -> ET.Element:
    # OOXML never uses DTDs; refusing them rules out entity-expansion attacks.
    if b"<!DOCTYPE" in raw or b"<!ENTITY" in raw:
        raise MetadataError(f"OOXML part {name} declares a DTD")
    try:
        return ET.fromstring(raw)  # noqa: S314 - DTD rejected above
    except ET.ParseError as exc:
        raise MetadataError(f"OOXML part {name} is not well-formed XML") from exc


_PREFIXES = {uri: prefix for prefix, uri in _NS.items()}


def _escape(text: str, attribute: bool = False) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if attribute:
        text = text.replace('"', "&quot;").replace("\n", "&#10;").replace("\r", "&#13;")
        text = text.replace("\t", "&#9;")
    return text


def _serialize(root: ET.Element) -> bytes:
    """Serialize a small package part, keeping the usual OOXML prefixes.

    ElementTree cannot write a default namespace when attributes are unqualified
    (as in every OOXML part), so this writes the markup itself: the root's
    namespace becomes the default one unless it has a well-known prefix.
    """
    default = _ns(root.tag)
    if default in _PREFIXES or any(not el.tag.startswith("{") for el in root.iter()):
        default = ""
    declared: dict[str, str] = {}

    def qname(tag: str, is_attribute: bool) -> str:
        uri = _ns(tag)
        if not uri or (uri == default and not is_attribute):
            return _local(tag)
        if uri not in declared:
            declared[uri] = _PREFIXES.get(uri, f"ns{len(declared)}")
        return f"{declared[uri]}:{_local(tag)}"

    def render(el: ET.Element, parts: list[str]) -> None:
        name = qname(el.tag, False)
        parts.append("<" + name)
        for key, value in el.attrib.items():
            parts.append(f' {qname(key, True)}="{_escape(value, True)}"')
        if len(el) == 0 and not el.text:
            parts.append("/>")
        else:
            parts.append(">" + _escape(el.text or ""))
            for child in el:
                render(child, parts)
            parts.append(f"</{name}>")
        if el.tail:
            parts.append(_escape(el.tail))

    parts: list[str] = []
    render(root, parts)
    decls = f' xmlns="{_escape(default, True)}"' if default else ""
    decls += "".join(f' xmlns:{p}="{_escape(uri, True)}"' for uri, p in declared.items())
    parts[0] += decls  # parts[0] is "<root-name"
    body = "".join(parts)
    return b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n' + body.encode("utf-8")


def _strip_children(
    raw: bytes, name: str, drop: Callable[[str], bool], label: str, removed: set[str]
) -> bytes:
    root = _parse_xml(raw, name)
    victims = [child for child in root if drop(_local(child.tag))]
    if not victims:
        return raw
    for child in victims:
        root.remove(child)
        removed.add(f"{label} {_local(child.tag)}")
    return _serialize(root)


# Attribute / element rewrites for comment and revision authors.
_ATTR_RE = re.compile(rb"(?<=[\s])((?:[A-Za-z_][\w.-]*:)?([A-Za-z]+))(\s*=\s*)(\"[^\"]*\"|'[^']*')")
_TAG_RE = re.compile(rb"<[A-Za-z_][^<>]*>")
_XL_AUTHOR_RE = re.compile(
    rb"(<(?:[A-Za-z_][\w.-]*:)?author>)([^<]+)(</(?:[A-Za-z_][\w.-]*:)?author>)"
)
_AUTHOR_RULES: tuple[tuple[re.Pattern[str], frozenset[str], str], ...] = (
    (re.compile(r"word/people\.xml"), frozenset({"author", "userId", "providerId"}), "Word people"),
    (re.compile(r"word/[^/]+\.xml"), frozenset({"author", "initials"}), "Word comment/revision"),
    (
        re.compile(r"xl/persons/[^/]+\.xml"),
        frozenset({"displayName", "userId", "providerId"}),
        "Excel persons",
    ),
    (
        re.compile(r"ppt/(commentAuthors|authors)\.xml"),
        frozenset({"name", "initials", "userId", "providerId"}),
        "PowerPoint comment",
    ),
)
_XL_COMMENTS = re.compile(r"xl/comments[^/]*\.xml")


class _Pseudonyms:
    def __init__(self) -> None:
        self._names: dict[bytes, int] = {}
        self._initials: dict[bytes, int] = {}

    def replace(self, attr: str, value: bytes) -> bytes:
        if attr == "initials":
            return b"A%d" % self._initials.setdefault(value, len(self._initials) + 1)
        number = self._names.setdefault(value, len(self._names) + 1)
        if attr == "providerId":
            return b"None"
        if attr == "userId":
            return b"author%d" % number
        return b"Author %d" % number


def _anonymize_authors(name: str, raw: bytes, pseudonyms: _Pseudonyms, removed: set[str]) -> bytes:
    out = raw
    if _XL_COMMENTS.fullmatch(name):

        def element(m: re.Match[bytes]) -> bytes:
            return m.group(1) + pseudonyms.replace("author", m.group(2)) + m.group(3)

        out = _XL_AUTHOR_RE.sub(element, out)
        if out != raw:
            removed.add("Excel comment author")
    for pattern, attrs, label in _AUTHOR_RULES:
        if not pattern.fullmatch(name):
            continue

        def attribute(m: re.Match[bytes], attrs: frozenset[str] = attrs) -> bytes:
            local = m.group(2).decode("ascii")
            if local not in attrs:
                return m.group(0)
            quote = m.group(4)[:1]
            value = pseudonyms.replace(local, m.group(4)[1:-1])
            return m.group(1) + m.group(3) + quote + value + quote

        def tag(
            m: re.Match[bytes], attribute: Callable[[re.Match[bytes]], bytes] = attribute
        ) -> bytes:
            return _ATTR_RE.sub(attribute, m.group(0))

        before = out
        out = _TAG_RE.sub(tag, out)
        if out != before:
            removed.add(f"{label} author")
        break
    if out != raw:
        _parse_xml(out, name)  # still well-formed
    return out


def _rels_targets(raw: bytes | None) -> dict[str, str]:
    """Relationship type suffix → part name, from the package ``_rels/.rels``."""
    found = {_REL_CORE: "docProps/core.xml", _REL_APP: "docProps/app.xml"}
    if raw is None:
        return found
    for rel in _parse_xml(raw, "_rels/.rels"):
        rtype, target = rel.get("Type", ""), rel.get("Target", "")
        if rel.get("TargetMode") == "External" or not target:
            continue
        for suffix in (_REL_CORE, _REL_APP, _REL_CUSTOM):
            if rtype.endswith(suffix):
                found[suffix] = posixpath.normpath(target.lstrip("/"))
    return found


def _drop_custom_rels(raw: bytes, removed: set[str]) -> bytes:
    root = _parse_xml(raw, "_rels/.rels")
    victims = [rel for rel in root if rel.get("Type", "").endswith(_REL_CUSTOM)]
    for rel in victims:
        root.remove(rel)
    if not victims:
        return raw
    removed.add("OOXML custom properties relationship")
    return _serialize(root)


def _drop_content_type(raw: bytes, part: str) -> bytes:
    root = _parse_xml(raw, "[Content_Types].xml")
    victims = [
        el
        for el in root
        if _local(el.tag) == "Override" and el.get("PartName", "").lstrip("/") == part
    ]
    for el in victims:
        root.remove(el)
    return _serialize(root) if victims else raw


_MEDIA_RE = re.compile(r"(?:[^/]+/)*(?:media/[^/]+|thumbnail)\.(jpe?g|png)", re.IGNORECASE)


def _strip_ooxml(data: bytes, removed: set[str]) -> bytes:
    try:
        zin = zipfile.ZipFile(io.BytesIO(data))
        infos = zin.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise MetadataError("not a zip/OOXML file") from exc
    names = [info.filename for info in infos]
    if "[Content_Types].xml" not in names:
        raise MetadataError("OOXML without [Content_Types].xml")
    if len(set(names)) != len(names) or len(names) > _MAX_OOXML_ENTRIES:
        raise MetadataError("OOXML with duplicate or too many entries")
    if sum(info.file_size for info in infos) > _MAX_OOXML_UNCOMPRESSED:
        raise MetadataError("OOXML too large once decompressed")
    try:
        with zin:
            return _rewrite_ooxml(zin, infos, removed)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as exc:
        raise MetadataError("corrupt zip/OOXML file") from exc
    except (zlib.error, NotImplementedError, RuntimeError) as exc:
        raise MetadataError("unreadable zip/OOXML member") from exc


def _rewrite_ooxml(zin: zipfile.ZipFile, infos: list[zipfile.ZipInfo], removed: set[str]) -> bytes:
    names = {info.filename for info in infos}
    rels_raw = zin.read("_rels/.rels") if "_rels/.rels" in names else None
    targets = _rels_targets(rels_raw)
    core, app = targets[_REL_CORE], targets[_REL_APP]
    custom = targets.get(_REL_CUSTOM, "docProps/custom.xml")
    has_custom = custom in names
    pseudonyms = _Pseudonyms()

    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zout:
        for info in infos:
            name = info.filename
            if name == custom:
                removed.add("OOXML custom properties")
                continue
            new = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            new.compress_type = (
                zipfile.ZIP_STORED
                if info.compress_type == zipfile.ZIP_STORED
                else zipfile.ZIP_DEFLATED
            )
            new.external_attr = (0o40755 << 16) | 0x10 if info.is_dir() else 0o644 << 16
            if info.is_dir():
                zout.writestr(new, b"")
                continue
            transform = _member_transform(name, core, app, custom, has_custom, pseudonyms, removed)
            if transform is None:
                with zin.open(info) as src, zout.open(new, "w") as dst:
                    while chunk := src.read(1 << 20):
                        dst.write(chunk)
            else:
                zout.writestr(new, transform(zin.read(info)))
    return out.getvalue()


def _member_transform(
    name: str,
    core: str,
    app: str,
    custom: str,
    has_custom: bool,
    pseudonyms: _Pseudonyms,
    removed: set[str],
) -> Callable[[bytes], bytes] | None:
    if name == core:
        return lambda raw: _strip_children(
            raw, name, lambda tag: tag not in _CORE_KEPT, "OOXML core property", removed
        )
    if name == app:
        return lambda raw: _strip_children(
            raw, name, lambda tag: tag in _APP_REMOVED, "OOXML app property", removed
        )
    if name == "_rels/.rels" and has_custom:
        return lambda raw: _drop_custom_rels(raw, removed)
    if name == "[Content_Types].xml" and has_custom:
        return lambda raw: _drop_content_type(raw, custom)
    if name.endswith(".xml") and (
        name.startswith(("word/", "ppt/")) or name.startswith(("xl/comments", "xl/persons/"))
    ):
        return lambda raw: (
            _anonymize_authors(name, raw, pseudonyms, removed)
            if (b"author" in raw or b"Author" in raw or b"displayName" in raw)
            else raw
        )
    media = _MEDIA_RE.fullmatch(name)
    if media:
        kind: ImageKind = "png" if media.group(1).lower() == "png" else "jpeg"

        def clean_image(raw: bytes) -> bytes:
            try:
                cleaned, names = _strip_image_bytes(kind, raw)
            except MetadataError:
                return raw  # not an image we can parse: leave it as is
            removed.update(f"embedded image: {n}" for n in names)
            return cleaned

        return clean_image
    return None
