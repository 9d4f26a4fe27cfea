"""Tests for portal.case.metadata (R11: identifying metadata stripped from working copies).

All fixtures are generated in memory here; nothing is written to disk.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image, ImageCms, PngImagePlugin
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
    TextStringObject,
)

from portal.case.metadata import (
    MAX_IN_MEMORY_DOCUMENT,
    MetadataError,
    StreamingStripper,
    StripResult,
    removed_fields_summary,
    strip_document,
    strip_document_report,
    working_copy_kind,
)

CANARY = "CANARYzhangsan13800138000"  # letters and digits only: PDF escapes others
CANARY_B = CANARY.encode()


# ---------------------------------------------------------------------------
# fixtures built in memory
# ---------------------------------------------------------------------------


def _gradient(mode: str = "RGB", size: tuple[int, int] = (48, 32)) -> Image.Image:
    img = Image.new(mode, size)
    img.putdata(
        [
            ((x * 5) % 256, (y * 7) % 256, (x * y) % 256)
            for y in range(size[1])
            for x in range(size[0])
        ]
    )
    return img


def _exif_with_gps() -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Artist] = CANARY
    exif[ExifTags.Base.Make] = "CanaryCam"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (39.0, 54.0, 27.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (116.0, 23.0, 17.0)
    return exif


_XMP = (
    '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    'syntax-ns#"><rdf:Description xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:creator>'
    f"{CANARY}</dc:creator></rdf:Description></rdf:RDF></x:xmpmeta>"
)


def make_jpeg(**extra: object) -> bytes:
    buf = io.BytesIO()
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    _gradient().save(
        buf,
        "JPEG",
        exif=_exif_with_gps(),
        comment=CANARY_B,
        icc_profile=srgb,
        xmp=_XMP.encode(),
        quality=90,
        **extra,
    )
    return buf.getvalue()


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def make_png() -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", CANARY)
    info.add_text("Comment", CANARY, zip=True)
    info.add_itxt("XML:com.adobe.xmp", _XMP)
    buf = io.BytesIO()
    _gradient().save(buf, "PNG", pnginfo=info, exif=_exif_with_gps(), dpi=(300, 300))
    data = buf.getvalue()
    # Pillow does not write tIME: insert one (and a private chunk) after IHDR.
    ihdr_end = 8 + 8 + 13 + 4
    extra = _png_chunk(b"tIME", bytes([7, 232, 5, 17, 8, 30, 0])) + _png_chunk(b"prVt", CANARY_B)
    return data[:ihdr_end] + extra + data[ihdr_end:]


def png_chunk_types(data: bytes) -> list[bytes]:
    pos, types = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        types.append(data[pos + 4 : pos + 8])
        pos += 12 + length
    return types


def run_chunked(kind: str, data: bytes, sizes: list[int]) -> bytes:
    stripper = StreamingStripper(kind)  # type: ignore[arg-type]
    out, pos, i = [], 0, 0
    while pos < len(data):
        size = sizes[i % len(sizes)]
        out.append(stripper.update(data[pos : pos + size]))
        pos += size
        i += 1
    out.append(stripper.finalize())
    return b"".join(out)


def strip_whole(kind: str, data: bytes) -> bytes:
    return run_chunked(kind, data, [len(data) or 1])


# ---------------------------------------------------------------------------
# working_copy_kind
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content_type", "filename", "expected"),
    [
        ("image/jpeg", "photo.jpg", "jpeg"),
        ("image/JPEG; charset=binary", "x", "jpeg"),
        ("application/octet-stream", "IMG_0001.JPEG", "jpeg"),
        ("image/png", "scan.png", "png"),
        ("application/pdf", "report.pdf", "pdf"),
        ("", "report.PDF", "pdf"),
        (
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "memo.docx",
            "ooxml",
        ),
        ("application/vnd.ms-excel.sheet.macroEnabled.12", "book.xlsm", "ooxml"),
        ("application/zip", "slides.pptx", "ooxml"),
        ("application/octet-stream", "C:\\Users\\x\\book.xlsx", "ooxml"),
        ("application/zip", "archive.zip", None),
        ("image/heic", "IMG_0001.HEIC", None),
        ("text/plain", "notes.txt", None),
        ("application/octet-stream", "noextension", None),
        ("application/msword", "old.doc", None),
    ],
)
def test_working_copy_kind(content_type: str, filename: str, expected: str | None) -> None:
    assert working_copy_kind(content_type, filename) == expected


def test_max_in_memory_document() -> None:
    assert MAX_IN_MEMORY_DOCUMENT == 64 * 1024 * 1024


# ---------------------------------------------------------------------------
# JPEG
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    data = make_jpeg()
    # sanity: the fixture really carries what we want removed
    assert CANARY_B in data and b"Exif" in data and b"http://ns.adobe.com/xap" in data
    assert Image.open(io.BytesIO(data)).getexif().get_ifd(ExifTags.IFD.GPSInfo)
    return data


def test_jpeg_stripped(jpeg_bytes: bytes) -> None:
    out = strip_whole("jpeg", jpeg_bytes)
    assert CANARY_B not in out
    assert b"Exif" not in out
    assert b"http://ns.adobe.com" not in out
    assert b"CanaryCam" not in out
    before, after = Image.open(io.BytesIO(jpeg_bytes)), Image.open(io.BytesIO(out))
    assert (after.format, after.size, after.mode) == ("JPEG", before.size, before.mode)
    assert after.tobytes() == before.tobytes()  # entropy-coded data untouched
    assert not after.getexif()
    assert not after.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    assert "comment" not in after.info
    assert "xmp" not in after.info
    assert after.info.get("icc_profile") == before.info.get("icc_profile")  # colour kept
    assert after.info.get("jfif") == before.info.get("jfif")


def test_jpeg_removed_summary(jpeg_bytes: bytes) -> None:
    stripper = StreamingStripper("jpeg")
    stripper.update(jpeg_bytes)
    stripper.finalize()
    assert "JPEG EXIF incl. GPS (APP1)" in stripper.removed
    assert "JPEG XMP (APP1)" in stripper.removed
    assert "JPEG comment (COM)" in stripper.removed
    summary = removed_fields_summary(stripper)
    assert "EXIF" in summary and CANARY not in summary


@pytest.mark.parametrize("size", range(1, 18))
def test_jpeg_every_small_chunk_size(jpeg_bytes: bytes, size: int) -> None:
    assert run_chunked("jpeg", jpeg_bytes, [size]) == strip_whole("jpeg", jpeg_bytes)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=40))
def test_jpeg_random_chunkings(jpeg_bytes: bytes, sizes: list[int]) -> None:
    assert run_chunked("jpeg", jpeg_bytes, sizes) == strip_whole("jpeg", jpeg_bytes)


@pytest.mark.parametrize(
    "extra",
    [{"progressive": True}, {"restart_marker_blocks": 1}, {"subsampling": 0, "optimize": True}],
)
def test_jpeg_variants_decode_identically(extra: dict[str, object]) -> None:
    data = make_jpeg(**extra)
    out = run_chunked("jpeg", data, [3, 1, 7])
    assert CANARY_B not in out and b"Exif" not in out
    assert Image.open(io.BytesIO(out)).tobytes() == Image.open(io.BytesIO(data)).tobytes()


def test_jpeg_cmyk_keeps_adobe_segment() -> None:
    buf = io.BytesIO()
    Image.new("CMYK", (16, 16), (10, 20, 30, 40)).save(
        buf, "JPEG", exif=_exif_with_gps(), comment=CANARY_B
    )
    data = buf.getvalue()
    out = run_chunked("jpeg", data, [5])
    assert b"Adobe" in out and CANARY_B not in out and b"Exif" not in out
    after = Image.open(io.BytesIO(out))
    assert after.mode == "CMYK"
    assert after.tobytes() == Image.open(io.BytesIO(data)).tobytes()


def test_jpeg_jfif_thumbnail_and_trailer_removed(jpeg_bytes: bytes) -> None:
    # JFIF APP0 with a 1x1 thumbnail, an APP13 IPTC segment and a trailer after EOI.
    thumb = b"JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x01\x01" + b"\xfe\xed\xfa"
    app0 = b"\xff\xe0" + struct.pack(">H", len(thumb) + 2) + thumb
    iptc = b"Photoshop 3.0\x008BIM" + CANARY_B
    app13 = b"\xff\xed" + struct.pack(">H", len(iptc) + 2) + iptc
    body = jpeg_bytes[2:]
    assert body.startswith(b"\xff\xe0")  # Pillow's own JFIF APP0 follows SOI
    (length,) = struct.unpack(">H", body[2:4])
    data = b"\xff\xd8" + app0 + app13 + body[2 + length :] + b"TRAILER" + CANARY_B
    stripper = StreamingStripper("jpeg")
    out = stripper.update(data) + stripper.finalize()
    assert CANARY_B not in out and b"\xfe\xed\xfa" not in out and b"TRAILER" not in out
    assert out.endswith(b"\xff\xd9")
    assert out[2:20] == b"\xff\xe0\x00\x10JFIF\x00\x01\x02\x00\x00\x01\x00\x01\x00\x00"
    assert {
        "JPEG JFIF thumbnail (APP0)",
        "JPEG IPTC/Photoshop (APP13)",
        "JPEG data after end of image",
    } <= set(stripper.removed)
    assert Image.open(io.BytesIO(out)).size == (48, 32)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda d: d[: len(d) // 2], id="truncated-in-scan"),
        pytest.param(lambda d: d[:-2], id="missing-eoi"),
        pytest.param(lambda d: d[:30], id="truncated-in-header"),
        pytest.param(lambda d: b"", id="empty"),
        pytest.param(lambda d: b"\x89PNG" + d, id="not-jpeg"),
        pytest.param(lambda d: d[:2] + b"\x00" + d[2:], id="garbage-between-segments"),
        pytest.param(lambda d: b"\xff\xd8\xff\xd9", id="no-image-data"),
        pytest.param(lambda d: d[:2] + b"\xff\xe1\x00\x01" + d[2:], id="bad-length"),
    ],
)
def test_jpeg_malformed_raises(jpeg_bytes: bytes, mangle: object) -> None:
    data = mangle(jpeg_bytes)  # type: ignore[operator]
    stripper = StreamingStripper("jpeg")
    for i in range(0, len(data), 64):
        stripper.update(data[i : i + 64])
    with pytest.raises(MetadataError):
        stripper.finalize()


def test_stripper_misuse() -> None:
    with pytest.raises(ValueError):
        StreamingStripper("pdf")  # type: ignore[arg-type]
    stripper = StreamingStripper("png")
    assert stripper.update(b"GIF89a") == b""
    assert stripper.failed
    assert stripper.update(b"more") == b""
    with pytest.raises(MetadataError):
        stripper.finalize()
    with pytest.raises(RuntimeError):
        stripper.update(b"x")


# ---------------------------------------------------------------------------
# PNG
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def png_bytes() -> bytes:
    data = make_png()
    assert CANARY_B in data
    types = png_chunk_types(data)
    assert {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"prVt"} <= set(types)
    return data


def test_png_stripped(png_bytes: bytes) -> None:
    out = strip_whole("png", png_bytes)
    assert CANARY_B not in out
    types = png_chunk_types(out)
    assert not {b"tEXt", b"zTXt", b"iTXt", b"eXIf", b"tIME", b"prVt"} & set(types)
    assert types[0] == b"IHDR" and types[-1] == b"IEND" and b"pHYs" in types
    before, after = Image.open(io.BytesIO(png_bytes)), Image.open(io.BytesIO(out))
    after.load()
    assert (after.size, after.mode) == (before.size, before.mode)
    assert after.tobytes() == before.tobytes()
    assert not after.text and not after.getexif()
    assert after.info.get("dpi") == pytest.approx((300, 300), abs=0.1)
    # kept chunks are copied byte for byte, CRC included
    ihdr = png_bytes[8 : 8 + 25]
    assert out[8 : 8 + 25] == ihdr


@pytest.mark.parametrize("size", range(1, 18))
def test_png_every_small_chunk_size(png_bytes: bytes, size: int) -> None:
    assert run_chunked("png", png_bytes, [size]) == strip_whole("png", png_bytes)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sizes=st.lists(st.integers(min_value=1, max_value=500), min_size=1, max_size=40))
def test_png_random_chunkings(png_bytes: bytes, sizes: list[int]) -> None:
    assert run_chunked("png", png_bytes, sizes) == strip_whole("png", png_bytes)


def test_png_removed_names(png_bytes: bytes) -> None:
    stripper = StreamingStripper("png")
    stripper.update(png_bytes + b"appended" + CANARY_B)
    assert stripper.finalize() == b""
    assert {
        "PNG text (tEXt)",
        "PNG EXIF (eXIf)",
        "PNG modification time (tIME)",
        "PNG data after end of image",
    } <= set(stripper.removed)
    assert all(CANARY not in name for name in stripper.removed)


def _corrupt_crc(data: bytes) -> bytes:
    pos = 8 + 8 + 13  # CRC of IHDR
    return data[:pos] + bytes([data[pos] ^ 0xFF]) + data[pos + 1 :]


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda d: b"\x89PNG\r\n\x1a\x0b" + d[8:], id="wrong-signature"),
        pytest.param(lambda d: b"\x89PN", id="short-signature"),
        pytest.param(lambda d: d[:-12], id="no-iend"),
        pytest.param(lambda d: d[: len(d) // 2], id="truncated"),
        pytest.param(_corrupt_crc, id="bad-crc"),
        pytest.param(lambda d: d[:8] + _png_chunk(b"IEND", b""), id="no-ihdr"),
        pytest.param(lambda d: d[:33] + _png_chunk(b"IEND", b""), id="no-idat"),
        pytest.param(lambda d: d[:33] + b"\x00\x00\x00\x01t3XT\x00" + d[33:], id="bad-type"),
    ],
)
def test_png_malformed_raises(png_bytes: bytes, mangle: object) -> None:
    data = mangle(png_bytes)  # type: ignore[operator]
    stripper = StreamingStripper("png")
    stripper.update(data)
    with pytest.raises(MetadataError):
        stripper.finalize()


# ---------------------------------------------------------------------------
# PDF
# ---------------------------------------------------------------------------


def make_pdf() -> bytes:
    writer = PdfWriter()
    page = writer.add_blank_page(width=200, height=200)
    writer.add_metadata(
        {
            "/Author": CANARY,
            "/Creator": f"Word for {CANARY}",
            "/Producer": "CanaryPDF 1.0",
            "/Subject": CANARY,
            "/Keywords": CANARY,
            "/Title": "Quarterly figures",
            "/Company": CANARY,
        }
    )
    xmp = DecodedStreamObject()
    xmp.set_data(_XMP.encode())
    xmp[NameObject("/Type")] = NameObject("/Metadata")
    xmp[NameObject("/Subtype")] = NameObject("/XML")
    writer._root_object[NameObject("/Metadata")] = writer._add_object(xmp)
    annot = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Annot"),
            NameObject("/Subtype"): NameObject("/Text"),
            NameObject("/Rect"): ArrayObject([NumberObject(n) for n in (10, 10, 30, 30)]),
            NameObject("/Contents"): TextStringObject("please check"),
            NameObject("/T"): TextStringObject(CANARY),
        }
    )
    page[NameObject("/Annots")] = ArrayObject([writer._add_object(annot)])
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_pdf_stripped() -> None:
    data = make_pdf()
    assert data.count(CANARY_B) >= 5
    result = strip_document_report("pdf", data)
    assert isinstance(result, StripResult)
    out = result.data
    assert CANARY_B not in out
    assert b"CanaryPDF" not in out
    reader = PdfReader(io.BytesIO(out))
    assert len(reader.pages) == 1
    meta = reader.metadata
    assert meta is not None and meta.title == "Quarterly figures"
    assert meta.author is None and meta.creator is None and meta.producer is None
    assert "/Metadata" not in reader.trailer["/Root"]
    assert reader.xmp_metadata is None
    annot = reader.pages[0]["/Annots"][0].get_object()
    assert annot["/Contents"] == "please check" and "/T" not in annot
    assert {"PDF Info Author", "PDF XMP metadata stream", "PDF annotation author"} <= set(
        result.removed
    )
    assert "PDF Info custom entries" in result.removed
    assert strip_document("pdf", data).startswith(b"%PDF")


def test_pdf_jpeg_image_cleaned() -> None:
    img_buf = io.BytesIO()
    Image.open(io.BytesIO(make_jpeg())).save(img_buf, "PDF")  # Pillow embeds the JPEG
    jpeg = make_jpeg()
    pdf = img_buf.getvalue()
    if CANARY_B not in pdf:  # Pillow re-encoded: splice our JPEG in as the image data
        writer = PdfWriter()
        writer.add_blank_page(100, 100)
        stream = DecodedStreamObject()
        stream.set_data(jpeg)
        stream[NameObject("/Type")] = NameObject("/XObject")
        stream[NameObject("/Subtype")] = NameObject("/Image")
        stream[NameObject("/Filter")] = NameObject("/DCTDecode")
        stream[NameObject("/Width")] = NumberObject(48)
        stream[NameObject("/Height")] = NumberObject(32)
        stream[NameObject("/ColorSpace")] = NameObject("/DeviceRGB")
        stream[NameObject("/BitsPerComponent")] = NumberObject(8)
        writer.pages[0][NameObject("/Resources")] = DictionaryObject(
            {
                NameObject("/XObject"): DictionaryObject(
                    {NameObject("/Im0"): writer._add_object(stream)}
                )
            }
        )
        buf = io.BytesIO()
        writer.write(buf)
        pdf = buf.getvalue()
    assert CANARY_B in pdf
    out = strip_document("pdf", pdf)
    assert CANARY_B not in out and b"Exif" not in out
    PdfReader(io.BytesIO(out)).pages[0].get_contents()


@pytest.mark.parametrize(
    "data",
    [b"", b"hello world", b"%PDF-1.7\n1 0 obj << /Type /Catalog", b"PK\x03\x04 not a pdf"],
)
def test_pdf_malformed_raises(data: bytes) -> None:
    with pytest.raises(MetadataError):
        strip_document("pdf", data)


# ---------------------------------------------------------------------------
# OOXML
# ---------------------------------------------------------------------------

CT_NS = "http://schemas.openxmlformats.org/package/2006/content-types"
REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_DECL = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
DOCX_PARTS: dict[str, bytes] = {
    "[Content_Types].xml": (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<Types xmlns="{CT_NS}">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Default Extension="jpeg" ContentType="image/jpeg"/>'
        '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.document.main+xml"/>'
        '<Override PartName="/word/comments.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.wordprocessingml.comments+xml"/>'
        '<Override PartName="/docProps/core.xml" '
        'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
        '<Override PartName="/docProps/app.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.extended-properties+xml"/>'
        '<Override PartName="/docProps/custom.xml" ContentType="application/vnd.openxmlformats-'
        'officedocument.custom-properties+xml"/>'
        "</Types>"
    ).encode(),
    "_rels/.rels": (
        XML_DECL + f'<Relationships xmlns="{REL_NS}">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="word/document.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
        'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
        '<Relationship Id="rId3" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/extended-properties" Target="docProps/app.xml"/>'
        '<Relationship Id="rId4" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/custom-properties" Target="docProps/custom.xml"/>'
        "</Relationships>"
    ).encode(),
    "word/_rels/document.xml.rels": (
        XML_DECL + f'<Relationships xmlns="{REL_NS}">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/comments" Target="comments.xml"/>'
        '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/image" Target="media/image1.jpeg"/>'
        "</Relationships>"
    ).encode(),
    "word/document.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main" '
        'xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006" '
        'xmlns:w14="http://schemas.microsoft.com/office/word/2010/wordml" mc:Ignorable="w14">'
        '<w:body><w:p w14:paraId="1A2B3C4D"><w:commentRangeStart w:id="0"/><w:r><w:t>'
        "举报内容：财务报销异常 (author=&quot;nobody&quot;)</w:t></w:r>"
        '<w:commentRangeEnd w:id="0"/></w:p></w:body></w:document>'
    ).encode(),
    "word/comments.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<w:comments xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f'<w:comment w:id="0" w:author="{CANARY}" w:initials="ZS" w:date="2024-05-01T10:00:00Z">'
        "<w:p><w:r><w:t>see ledger</w:t></w:r></w:p></w:comment></w:comments>"
    ).encode(),
    "docProps/core.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
        'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:dcterms="http://purl.org/dc/terms/" xmlns:dcmitype="http://purl.org/dc/dcmitype/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<dc:title>Expense memo</dc:title>"
        f"<dc:creator>{CANARY}</dc:creator>"
        f"<cp:lastModifiedBy>{CANARY}</cp:lastModifiedBy>"
        "<cp:revision>7</cp:revision>"
        '<dcterms:created xsi:type="dcterms:W3CDTF">2024-05-01T09:00:00Z</dcterms:created>'
        '<dcterms:modified xsi:type="dcterms:W3CDTF">2024-05-02T18:00:00Z</dcterms:modified>'
        "</cp:coreProperties>"
    ).encode(),
    "docProps/app.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'extended-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
        'docPropsVTypes"><Template>Normal.dotm</Template><TotalTime>42</TotalTime>'
        "<Pages>1</Pages><Application>Microsoft Office Word</Application>"
        f"<Company>{CANARY}</Company><Manager>{CANARY}</Manager>"
        '<TitlesOfParts><vt:vector size="1" baseType="lpstr"><vt:lpstr>Expense memo</vt:lpstr>'
        "</vt:vector></TitlesOfParts><AppVersion>16.0000</AppVersion></Properties>"
    ).encode(),
    "docProps/custom.xml": (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n'
        '<Properties xmlns="http://schemas.openxmlformats.org/officeDocument/2006/'
        'custom-properties" xmlns:vt="http://schemas.openxmlformats.org/officeDocument/2006/'
        'docPropsVTypes"><property fmtid="{D5CDD505-2E9C-101B-9397-08002B2CF9AE}" pid="2" '
        f'name="Owner"><vt:lpwstr>{CANARY}</vt:lpwstr></property></Properties>'
    ).encode(),
}


def make_docx(parts: dict[str, bytes] | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, body in (parts or {**DOCX_PARTS, "word/media/image1.jpeg": make_jpeg()}).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 5, 2, 18, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.comment = CANARY_B
            zf.writestr(info, body)
        zf.comment = CANARY_B
    return buf.getvalue()


def _all_plaintext(data: bytes) -> bytes:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        return b"".join(zf.read(n) for n in zf.namelist()) + data


def test_docx_stripped() -> None:
    data = make_docx()
    assert CANARY_B in _all_plaintext(data)
    result = strip_document_report("ooxml", data)
    out = result.data
    assert CANARY_B not in _all_plaintext(out)  # also raw: zip comments are gone
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert zf.testzip() is None
        names = zf.namelist()
        assert "docProps/custom.xml" not in names
        assert names[0] == "[Content_Types].xml"
        for name in names:
            if name.endswith((".xml", ".rels")):
                ET.fromstring(zf.read(name))  # well-formed
        assert zf.read("word/document.xml") == DOCX_PARTS["word/document.xml"]
        assert zf.read("word/_rels/document.xml.rels") == DOCX_PARTS["word/_rels/document.xml.rels"]
        assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zf.infolist())
        core = ET.fromstring(zf.read("docProps/core.xml"))
        assert [el.tag.rsplit("}", 1)[-1] for el in core] == ["title"]
        assert core[0].text == "Expense memo"
        app = ET.fromstring(zf.read("docProps/app.xml"))
        app_tags = [el.tag.rsplit("}", 1)[-1] for el in app]
        assert app_tags == ["Pages", "Application", "TitlesOfParts", "AppVersion"]
        rels = zf.read("_rels/.rels")
        assert b"custom" not in rels and b"core-properties" in rels
        assert b"custom.xml" not in zf.read("[Content_Types].xml")
        comments = zf.read("word/comments.xml")
        assert b'w:author="Author 1"' in comments and b'w:initials="A1"' in comments
        assert b"see ledger" in comments
        image = zf.read("word/media/image1.jpeg")
        assert b"Exif" not in image
        assert Image.open(io.BytesIO(image)).size == (48, 32)
    removed = set(result.removed)
    assert {
        "OOXML core property creator",
        "OOXML core property lastModifiedBy",
        "OOXML core property revision",
        "OOXML core property created",
        "OOXML core property modified",
        "OOXML app property Company",
        "OOXML app property Manager",
        "OOXML custom properties",
        "Word comment/revision author",
        "embedded image: JPEG EXIF incl. GPS (APP1)",
    } <= removed
    assert CANARY not in removed_fields_summary(result)
    assert strip_document("ooxml", data) == out  # deterministic


def test_ooxml_without_metadata_parts_unchanged_content() -> None:
    parts = {k: v for k, v in DOCX_PARTS.items() if not k.startswith(("docProps", "word/c"))}
    out = strip_document("ooxml", make_docx(parts))
    with zipfile.ZipFile(io.BytesIO(out)) as zf:
        assert {n: zf.read(n) for n in zf.namelist()} == parts


def test_xlsx_comment_authors_pseudonymised() -> None:
    comments = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\r\n<comments xmlns="http://'
        'schemas.openxmlformats.org/spreadsheetml/2006/main"><authors>'
        f"<author>{CANARY}</author><author>Li Si</author></authors><commentList/></comments>"
    ).encode()
    parts = {
        "[Content_Types].xml": DOCX_PARTS["[Content_Types].xml"],
        "xl/comments1.xml": comments,
    }
    result = strip_document_report("ooxml", make_docx(parts))
    with zipfile.ZipFile(io.BytesIO(result.data)) as zf:
        body = zf.read("xl/comments1.xml")
    assert b"<author>Author 1</author><author>Author 2</author>" in body
    assert "Excel comment author" in result.removed


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not a zip",
        make_docx({"word/document.xml": b"<x/>"}),  # no [Content_Types].xml
        make_docx({**DOCX_PARTS, "docProps/core.xml": b"<cp:coreProperties><unclosed>"}),
        make_docx(
            {
                **DOCX_PARTS,
                "docProps/core.xml": b'<!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>',
            }
        ),
    ],
    ids=["empty", "not-zip", "no-content-types", "bad-xml", "dtd"],
)
def test_ooxml_malformed_raises(data: bytes) -> None:
    with pytest.raises(MetadataError):
        strip_document("ooxml", data)


def test_strip_document_rejects_image_kinds() -> None:
    with pytest.raises(ValueError):
        strip_document("jpeg", b"")  # type: ignore[arg-type]


def test_removed_fields_summary_plain() -> None:
    assert removed_fields_summary([]) == "No identifying metadata found."
    assert removed_fields_summary(["b", "a", "a"]) == "Removed from the working copy: a; b."
