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

from portal.case.metadata.documents import (
    StripResult,
    removed_fields_summary,
    strip_document,
    strip_document_report,
)
from portal.case.metadata.images import StreamingStripper
from portal.case.metadata.kinds import (
    MAX_IN_MEMORY_DOCUMENT,
    DocumentKind,
    ImageKind,
    Kind,
    MetadataError,
    working_copy_kind,
)

__all__ = [
    "MAX_IN_MEMORY_DOCUMENT",
    "DocumentKind",
    "ImageKind",
    "Kind",
    "MetadataError",
    "StreamingStripper",
    "StripResult",
    "removed_fields_summary",
    "strip_document",
    "strip_document_report",
    "working_copy_kind",
]
