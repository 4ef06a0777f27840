"""Barcode images for sample labels: Code128 (linear) and QR, as SVG.

Both encode the sample's barcode text exactly, so a keyboard-wedge scanner reading either
types the barcode into the custody form. Code128 bars are sized in millimetres so that the
symbol fits the label's printable width; a longer barcode gets narrower bars, down to
:data:`MIN_MODULE_MM`, below which common scanners stop reading.
"""

from __future__ import annotations

import io

import barcode
import segno
from barcode.writer import SVGWriter

# Widest and narrowest Code128 module (bar unit) used, in mm: 0.33 mm reads at a distance,
# 0.19 mm (7.5 mil) is about the limit of handheld laser and imager scanners.
MAX_MODULE_MM = 0.33
MIN_MODULE_MM = 0.19
# Code128 needs a quiet zone of ten modules on each side.
QUIET_ZONE_MODULES = 10


class LabelError(ValueError):
    """Text that cannot be put on a label (empty, or not printable ASCII for Code128)."""


def _check_text(text: str) -> str:
    if not isinstance(text, str) or not text:
        raise LabelError("a label needs a non-empty barcode")
    if not all(32 <= ord(character) < 127 for character in text):
        raise LabelError(f"barcode {text!r}: Code128 labels take printable ASCII only")
    return text


def code128_modules(text: str) -> str:
    """The symbol as a string of ``1`` (bar) and ``0`` (space) modules, quiet zones excluded."""
    return barcode.get("code128", _check_text(text)).build()[0]


def code128_svg(text: str, *, width_mm: float = 56.0, height_mm: float = 7.0) -> str:
    """A Code128 symbol of ``text`` as an SVG document, at most ``width_mm`` wide with its
    quiet zones, bars ``height_mm`` tall, without human-readable text (the label prints it).

    Raises
    ------
    LabelError
        For empty or non-ASCII text.
    """
    n_modules = len(code128_modules(text)) + 2 * QUIET_ZONE_MODULES
    module_mm = min(MAX_MODULE_MM, max(MIN_MODULE_MM, width_mm / n_modules))
    symbol = barcode.get("code128", text, writer=SVGWriter())
    output = io.BytesIO()
    symbol.write(
        output,
        options={
            "module_width": module_mm,
            "module_height": height_mm,
            "quiet_zone": QUIET_ZONE_MODULES * module_mm,
            "write_text": False,
            "margin_top": 0.0,
            "margin_bottom": 0.0,
            "compress": False,
        },
    )
    return output.getvalue().decode("utf-8")


def qr_svg(text: str, *, module_px: int = 4) -> str:
    """A QR code of ``text`` as an SVG document (error correction level M, four-module quiet
    zone, ``module_px`` user units per module; scale it freely, it has a view box)."""
    symbol = segno.make_qr(_check_text(text), error="m", boost_error=False)
    output = io.BytesIO()
    symbol.save(output, kind="svg", scale=module_px, border=4, xmldecl=False, svgclass=None,
                lineclass=None, omitsize=True)
    return output.getvalue().decode("utf-8")
