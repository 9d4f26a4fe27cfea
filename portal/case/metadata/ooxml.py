"""OOXML (docx/xlsx/pptx): properties, comment authors, media, zip entry metadata."""

from __future__ import annotations

import io
import posixpath
import re
import zipfile
import zlib
from collections.abc import Callable
from xml.etree import ElementTree as ET

from portal.case.metadata.images import _strip_image_bytes
from portal.case.metadata.kinds import (
    _MAX_OOXML_ENTRIES,
    _MAX_OOXML_UNCOMPRESSED,
    ImageKind,
    MetadataError,
)

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
