"""Kinds of evidence that get a metadata-stripped working copy, and the limits."""

from __future__ import annotations

from typing import Literal

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
