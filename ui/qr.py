"""A link as a QR code, drawn offline (segno, pure Python) as an SVG that scales to any size: the room's join
link, and a view's link in "Link to this view"."""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=64)  # a few KB each; a room's link is drawn every second
def qr_svg(link: str) -> str:
    """`link` as a QR code (error correction M: a projected code still scans with a fifth of it unreadable)."""
    import segno  # imported when a code is drawn: most runs draw none

    return segno.make(link, error="m").svg_inline(scale=1, border=2, dark="#000", light="#fff", omitsize=True)
