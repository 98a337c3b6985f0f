"""QR codes: for an authenticator app's enrolment and a WireGuard peer's configuration.

``qr_svg`` gives an inline ``<svg>`` element (no XML declaration) for a page, with explicit
black-on-white colours so a dark page theme cannot make it unreadable; ``qr_text`` gives a
QR of Unicode half blocks for a terminal (drawn for a dark terminal background, as most are).
segno is imported on the first QR code, not with the pages that may show one: most
gateways draw none for days (about 0.6 MB).
"""

from __future__ import annotations

import io

__all__ = ["qr_svg", "qr_text"]


def qr_svg(text: str) -> str:
    """The QR code of ``text`` as an ``<svg>`` element to put inline in an HTML page."""
    import segno

    qr = segno.make_qr(text)
    svg: str = qr.svg_inline(scale=4, border=4, dark="#000000", light="#ffffff")
    return svg


def qr_text(text: str) -> str:
    """The QR code of ``text`` drawn with Unicode half blocks, for a terminal."""
    import segno

    out = io.StringIO()
    segno.make_qr(text).terminal(out=out, compact=True)
    return out.getvalue()
