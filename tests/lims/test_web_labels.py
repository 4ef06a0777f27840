"""Barcode labels: the Code128 and QR images decode to the sample's barcode (read back by
zxing-cpp from a rasterisation of the SVG written here), and the label pages show them."""

from __future__ import annotations

import re

import numpy as np
import pytest

from lims.labels import LabelError, code128_modules, code128_svg, qr_svg
from tests.lims.web_support import make_browser, make_world

zxingcpp = pytest.importorskip("zxingcpp")

PIXELS_PER_MODULE = 4


def rasterise_code128(svg: str) -> np.ndarray:
    """The bars of a python-barcode SVG (``<rect>`` elements in mm) as a grayscale image."""
    bars = [
        (float(x), float(width))
        for x, width in re.findall(r'<rect x="([\d.]+)mm" y="[\d.]+mm" width="([\d.]+)mm"', svg)
    ]
    module = min(width for _, width in bars)
    total = float(re.search(r'<svg[^>]* width="([\d.]+)mm"', svg).group(1))
    image = np.full((40, round(total / module) * PIXELS_PER_MODULE), 255, dtype=np.uint8)
    for x, width in bars:
        start = round(x / module) * PIXELS_PER_MODULE
        image[:, start:start + round(width / module) * PIXELS_PER_MODULE] = 0
    return image


def rasterise_qr(svg: str) -> np.ndarray:
    """The modules of a segno SVG path (``M``/``m`` moves, ``h`` dark runs, one row per
    y) as a grayscale image."""
    size = int(float(re.search(r'viewBox="0 0 ([\d.]+) [\d.]+"', svg).group(1)))
    scale = int(re.search(r'transform="scale\((\d+)\)"', svg).group(1))
    n_modules = size // scale
    modules = np.zeros((n_modules, n_modules), dtype=bool)
    x = y = 0.0
    path = re.search(r' d="([^"]+)"', svg).group(1)
    for command, first, second in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            run = int(float(first))
            modules[int(y), int(x):int(x) + run] = True
            x += run
    image = np.where(modules, 0, 255).astype(np.uint8)
    return np.kron(image, np.ones((PIXELS_PER_MODULE, PIXELS_PER_MODULE), dtype=np.uint8))


def decode(image: np.ndarray) -> list[tuple[object, str]]:
    """(format, text) of every symbol zxing-cpp finds in ``image``."""
    return [(found.format, found.text) for found in zxingcpp.read_barcodes(image)]


@pytest.mark.parametrize("text", ["KE-MBA-2401-T003-S1", "A", "sample 42/b", "X" * 40])
def test_code128_svg_decodes_to_the_text(text):
    svg = code128_svg(text)
    assert decode(rasterise_code128(svg)) == [(zxingcpp.BarcodeFormat.Code128, text)]
    # Bars and spaces: the symbol python-barcode built, quiet zones outside it.
    assert len(re.findall(r"<rect x=", svg)) == code128_modules(text).count("01") + 1


def test_code128_fits_the_label_width_until_bars_would_be_too_thin():
    short, long = code128_svg("AB"), code128_svg("X" * 60)
    width = lambda svg: float(re.search(r'<svg[^>]* width="([\d.]+)mm"', svg).group(1))  # noqa: E731
    assert width(short) < 56.0  # widest bars (0.33 mm) need less than the label
    assert width(code128_svg("X" * 12)) == pytest.approx(56.0, abs=0.01)
    assert width(long) > 56.0  # 0.19 mm bars: wider than the label rather than unreadable


@pytest.mark.parametrize("text", ["KE-MBA-2401-T003-S1", "ZA-CARC-01-S1", "a b c"])
def test_qr_svg_decodes_to_the_text(text):
    svg = qr_svg(text)
    assert 'viewBox="0 0 ' in svg and "width=" not in svg.split(">")[0]  # scales freely
    assert decode(rasterise_qr(svg)) == [(zxingcpp.BarcodeFormat.QRCode, text)]


@pytest.mark.parametrize("bad", ["", "tusk-é", "tab\there"])
def test_labels_refuse_text_a_scanner_cannot_type(bad):
    with pytest.raises(LabelError, match="barcode|label"):
        code128_svg(bad)
    with pytest.raises(LabelError):
        qr_svg(bad)


def test_label_images_and_sheet_pages(app, agencies):
    world = make_world(app, agencies["A"], "A")
    browser = make_browser(app, agencies, "custodian")
    sample_id, barcode = world.sample_ids[0], world.barcodes[0]
    code128 = browser.get(f"/samples/{sample_id}/label/code128.svg")
    assert code128.mimetype == "image/svg+xml"
    assert decode(rasterise_code128(code128.get_data(as_text=True))) == [
        (zxingcpp.BarcodeFormat.Code128, barcode)]
    qr = browser.get(f"/samples/{sample_id}/label/qr.svg")
    assert decode(rasterise_qr(qr.get_data(as_text=True))) == [
        (zxingcpp.BarcodeFormat.QRCode, barcode)]
    sheet = browser.get(f"/labels?seizure_id={world.seizure_id}").get_data(as_text=True)
    assert re.findall(r'<div class="barcode-text">(.*?)</div>', sheet) == world.barcodes
    assert 'href="/static/labels.css"' in sheet
    stylesheet = browser.get("/static/labels.css")
    assert "@page { size: 62mm 30mm" in stylesheet.get_data(as_text=True)
    stylesheet.close()
    assert f'src="/samples/{sample_id}/label/qr.svg"' in sheet
    one = browser.get(f"/labels?sample_id={world.aliquot_id}&sample_id={sample_id}")
    assert re.findall(r'<div class="barcode-text">(.*?)</div>', one.get_data(as_text=True)) == [
        "A-S1-A1", barcode]
    assert "aliquot of A-S1" in one.get_data(as_text=True)
    assert browser.get("/labels").status_code == 400
    assert browser.get("/labels?sample_id=x").status_code == 400
    assert browser.get("/labels?sample_id=999").status_code == 404
