"""The QR code of the poster (issue 18), drawn on the server. Framework-free.

segno (already a dependency for the authenticator enrolment code) builds the symbol: pure
Python, no native library, no image library, ISO/IEC 18004 conformant, and it exposes the
module matrix, which is all the poster needs. The SVG is drawn here from that matrix, one
``<rect>`` per horizontal run of dark modules, so the page embeds it inline (no data: URL, no
file) and a test can read the matrix back from the markup.
"""

from __future__ import annotations

import segno
from markupsafe import Markup, escape

QUIET_ZONE = 4  # modules of white around the symbol (the standard's minimum)


def qr_matrix(data: str) -> list[list[bool]]:
    """The symbol's modules, row by row (True = dark), error correction level M."""
    qr = segno.make(data, error="m", micro=False, boost_error=False)
    return [[bool(cell) for cell in row] for row in qr.matrix]


def qr_svg(data: str, title: str = "") -> Markup:
    """An inline SVG of the QR code of ``data`` that scales to its box."""
    matrix = qr_matrix(data)
    size = len(matrix) + 2 * QUIET_ZONE
    rects: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < len(row):
            if not row[x]:
                x += 1
                continue
            start = x
            while x < len(row) and row[x]:
                x += 1
            rects.append(
                f'<rect x="{start + QUIET_ZONE}" y="{y + QUIET_ZONE}" '
                f'width="{x - start}" height="1"/>'
            )
    label = escape(title or data)
    # every value above is an int or escaped
    return Markup(  # noqa: S704
        f'<svg xmlns="http://www.w3.org/2000/svg" class="qr" viewBox="0 0 {size} {size}" '
        f'role="img" aria-label="{label}" shape-rendering="crispEdges">'
        f'<rect width="{size}" height="{size}" fill="#fff"/><g fill="#000">'
        + "".join(rects)
        + "</g></svg>"
    )
