"""PDF: the information dictionary, XMP streams, annotation authors, JPEG images."""

from __future__ import annotations

import io

from portal.case.metadata.images import _strip_image_bytes
from portal.case.metadata.kinds import MetadataError

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
