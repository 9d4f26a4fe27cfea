"""Text from forms: normalised, length-bounded, control characters removed."""

from __future__ import annotations

import unicodedata


def clean_text(value: str, limit: int, *, multiline: bool = False) -> str:
    """NFC, no control characters (newlines kept in multi-line fields), no bidi overrides."""
    value = unicodedata.normalize("NFC", value).replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for ch in value:
        if ch == "\n" and multiline:
            out.append(ch)
        elif ch == "\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(ch)
    return "".join(out).strip()[:limit]
