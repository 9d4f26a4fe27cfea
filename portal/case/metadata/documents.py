"""PDF and OOXML documents: in-memory metadata removal, and the timeline summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from portal.case.metadata.images import StreamingStripper
from portal.case.metadata.kinds import DocumentKind
from portal.case.metadata.ooxml import _strip_ooxml
from portal.case.metadata.pdf import _strip_pdf

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
