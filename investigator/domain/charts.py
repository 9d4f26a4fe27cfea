"""Charts as inline SVG rendered on the server: no JavaScript, no library in the page.

The workspace's CSP (``style-src 'self'``) blocks ``style="..."`` attributes, so the charts
use SVG presentation attributes only (``fill``, ``stroke``, ``stroke-width``, ``font-size``),
which are attributes, not CSS, and are not subject to ``style-src``. Each chart is an
``<svg role="img" aria-labelledby="<id>-title <id>-desc">`` with a ``<title>`` and a ``<desc>``
that states the values; the page puts the same numbers in a data table next to it.

Every text that goes into the SVG is escaped here (``markupsafe.escape``); the result is
``Markup`` so the template inserts it as is.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

WIDTH = 640
HEIGHT = 240
PAD_LEFT = 48
PAD_RIGHT = 16
PAD_TOP = 16
PAD_BOTTOM = 40
COLOURS = ("#1d4e89", "#9aa5b1")  # current period, previous period (dashed)
_ID = re.compile(r"^[a-z][a-z0-9-]{0,40}$")


def _check_id(chart_id: str) -> str:
    if not _ID.match(chart_id):
        raise ValueError(f"bad chart id {chart_id!r}")
    return chart_id


def _nice_max(value: int) -> int:
    if value <= 5:
        return 5
    magnitude = 10 ** (len(str(value)) - 1)
    for step in (1, 2, 5, 10):
        top = step * magnitude
        if top >= value:
            return top
    return value  # pragma: no cover


def _open(chart_id: str, title: str, desc: str) -> list[str]:
    cid = _check_id(chart_id)
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" role="img" '
        f'aria-labelledby="{cid}-title {cid}-desc">',
        f'<title id="{cid}-title">{escape(title)}</title>',
        f'<desc id="{cid}-desc">{escape(desc)}</desc>',
    ]


def _axes(top: int) -> list[str]:
    x0, y0, y1 = PAD_LEFT, HEIGHT - PAD_BOTTOM, PAD_TOP
    out = [
        f'<line x1="{x0}" y1="{y0}" x2="{WIDTH - PAD_RIGHT}" y2="{y0}" stroke="#444" '
        'stroke-width="1"/>',
        f'<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#444" stroke-width="1"/>',
    ]
    for frac in (0.5, 1.0):
        y = y0 - (y0 - y1) * frac
        out.append(
            f'<text x="{x0 - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#333">{int(top * frac)}</text>'
        )
        out.append(
            f'<line x1="{x0}" y1="{y:.1f}" x2="{WIDTH - PAD_RIGHT}" y2="{y:.1f}" '
            'stroke="#ddd" stroke-width="1"/>'
        )
    return out


def _tick_labels(labels: Sequence[str], xs: Sequence[float]) -> list[str]:
    every = max(1, len(labels) // 12 + (1 if len(labels) % 12 else 0))
    out = []
    for i, (label, x) in enumerate(zip(labels, xs, strict=True)):
        if i % every == 0:
            out.append(
                f'<text x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM + 16}" text-anchor="middle" '
                f'font-size="10" fill="#333">{escape(label)}</text>'
            )
    return out


def bar_chart(chart_id: str, title: str, desc: str, items: Sequence[tuple[str, int]]) -> Markup:
    """Vertical bars, one per (label, value)."""
    parts = _open(chart_id, title, desc)
    top = _nice_max(max((v for _, v in items), default=0))
    parts += _axes(top)
    if items:
        span = (WIDTH - PAD_LEFT - PAD_RIGHT) / len(items)
        height = HEIGHT - PAD_TOP - PAD_BOTTOM
        xs = []
        for i, (label, value) in enumerate(items):
            h = height * value / top
            x = PAD_LEFT + i * span + span * 0.15
            xs.append(x + span * 0.35)
            parts.append(
                f'<rect x="{x:.1f}" y="{HEIGHT - PAD_BOTTOM - h:.1f}" width="{span * 0.7:.1f}" '
                f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{escape(label)}: {value}</title>'
                "</rect>"
            )
        parts += _tick_labels([label for label, _ in items], xs)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped


def line_chart(
    chart_id: str,
    title: str,
    desc: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int]]],
) -> Markup:
    """Lines over shared x labels; the first series solid, the second (previous) dashed."""
    parts = _open(chart_id, title, desc)
    top = _nice_max(max((v for _, values in series for v in values), default=0))
    parts += _axes(top)
    n = len(labels)
    width = WIDTH - PAD_LEFT - PAD_RIGHT
    height = HEIGHT - PAD_TOP - PAD_BOTTOM
    xs = [PAD_LEFT + (width * (i + 0.5) / n) for i in range(n)] if n else []
    for index, (name, values) in enumerate(series):
        colour = COLOURS[min(index, len(COLOURS) - 1)]
        points = " ".join(
            f"{x:.1f},{HEIGHT - PAD_BOTTOM - height * v / top:.1f}"
            for x, v in zip(xs, values, strict=False)
        )
        dash = ' stroke-dasharray="6 4"' if index else ""
        parts.append(
            f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2"{dash}>'
            f"<title>{escape(name)}</title></polyline>"
        )
        legend_y = PAD_TOP + 12 + 14 * index
        parts.append(
            f'<line x1="{WIDTH - 180}" y1="{legend_y - 4}" x2="{WIDTH - 160}" y2="{legend_y - 4}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
            f'<text x="{WIDTH - 154}" y="{legend_y}" font-size="11" fill="#333">'
            f"{escape(name)}</text>"
        )
    parts += _tick_labels(labels, xs)
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text above is escaped
