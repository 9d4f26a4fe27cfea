"""The text a person reads on a page: tags, attributes, scripts, styles and form values removed.

``visible_texts(html)`` returns the text nodes (stripped, unescaped, non-empty) outside
``<script>``, ``<style>``, ``<textarea>`` (a form value) and elements marked
``translate="no"`` (verbatim data such as an audit entry's detail or the administrator's own
category code on the directory page, never a label). ``<option>`` text is kept: it is read.
"""

from __future__ import annotations

from html.parser import HTMLParser

_SKIP = {"script", "style", "textarea"}
_VOID = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
    "track", "wbr",
}  # fmt: skip


class _Texts(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[bool] = []  # per open element: does it hide its text?
        self.texts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _VOID:
            return
        hidden = tag in _SKIP or ("translate", "no") in attrs
        self.stack.append(hidden or (bool(self.stack) and self.stack[-1]))

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID:
            return
        if self.stack:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        if self.stack and self.stack[-1]:
            return
        text = data.strip()
        if text:
            self.texts.append(text)


def visible_texts(html: str) -> list[str]:
    parser = _Texts()
    parser.feed(html)
    parser.close()
    return parser.texts


def visible_text(html: str) -> str:
    return "\n".join(visible_texts(html))
