"""Rendering a report body as HTML and as PDF, from one template per kind of document.

``reports/evidential.html`` (the evidential report) and ``reports/lead.html`` (the hit
notification, an investigative lead) each render both formats: :func:`render_html` for the
browser and the stored HTML file, and :func:`render_pdf`, which renders the same template with
``pdf=True`` (page size, running footer, an embedded font with the Greek and mathematical
signs the report uses) and converts it with xhtml2pdf. Figures are PNGs in ``data:`` URIs, so
both files are self-contained and need nothing from the network or the disk.
"""

from __future__ import annotations

import base64
import functools
import io
import os

import matplotlib
import xhtml2pdf
from flask import current_app
from xhtml2pdf import pisa

from lims.reports.figures import data_uri, network_png, origin_map_png
from lims.reports.wording import RELATIONSHIP_LABELS, format_decimal, origin_text, power_parts

TEMPLATES = {"evidential": "reports/evidential.html", "lead": "reports/lead.html"}
# DejaVu Sans has every glyph the report uses (θ, ×, ≥, –); matplotlib ships it.
PDF_FONTS = {"normal": "DejaVuSans.ttf", "bold": "DejaVuSans-Bold.ttf"}


class RenderError(RuntimeError):
    """The PDF converter reported errors."""


def renderer_versions() -> dict[str, str]:
    """Versions of the software that draws and converts the documents."""
    return {"matplotlib": matplotlib.__version__, "xhtml2pdf": xhtml2pdf.__version__}


@functools.cache
def _font_uri(filename: str) -> str:
    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", filename)
    with open(path, "rb") as handle:
        return "data:font/ttf;base64," + base64.b64encode(handle.read()).decode("ascii")


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _figures(body: dict) -> dict:
    """The figures of a body as data URIs: the network and one map per seizure surface."""
    result = body["result"]
    figures: dict = {"network": None, "maps": []}
    if result.get("links"):
        figures["network"] = data_uri(network_png(result["links"], result["nodes"],
                                                  result["subject"]["agency"]))
    geographic = result.get("geographic")
    if geographic:
        # In the order of the surfaces: two seizures may carry the same reference.
        figures["maps"] = [data_uri(origin_map_png(geographic, surface))
                           for surface in geographic["surfaces"]]
    return figures


def _context(body: dict, *, pdf: bool, body_sha256: str | None, figures: dict | None) -> dict:
    return {
        "body": body,
        "result": body["result"],
        "document": body["document"],
        "pdf": pdf,
        "body_sha256": body_sha256,
        "figures": _figures(body) if figures is None else figures,
        "fonts": {weight: _font_uri(name) for weight, name in PDF_FONTS.items()} if pdf else {},
        "power": power_parts,
        "decimal": format_decimal,
        "percent": _percent,
        "origin_text": origin_text,
        "relationship_labels": RELATIONSHIP_LABELS,
    }


def render_html(body: dict, *, body_sha256: str | None = None, pdf: bool = False,
                figures: dict | None = None) -> str:
    """The report document as HTML (``pdf=True``: the variant xhtml2pdf converts).

    Parameters
    ----------
    body : dict
        The report body (``document``, ``result``, ``signatures`` …).
    body_sha256 : str, optional
        Printed on the document so a copy can be checked against the stored body.
    figures : dict, optional
        Figures already drawn for this body (drawn here otherwise).
    """
    template = current_app.jinja_env.get_template(TEMPLATES[body["document"]["kind"]])
    return template.render(**_context(body, pdf=pdf, body_sha256=body_sha256, figures=figures))


def html_to_pdf(html: str) -> bytes:
    """Convert the PDF variant of a report's HTML; :class:`RenderError` on converter errors."""
    output = io.BytesIO()
    # capacity=-1 keeps the converter's buffers in memory: no temporary files to leak.
    status = pisa.CreatePDF(html, dest=output, encoding="utf-8", capacity=-1)
    if status.err:
        raise RenderError(f"the PDF could not be made ({status.err} error(s) in conversion)")
    return output.getvalue()


def render_pdf(body: dict, *, body_sha256: str | None = None,
               figures: dict | None = None) -> bytes:
    """The report document as PDF, from the same template as :func:`render_html`."""
    return html_to_pdf(render_html(body, body_sha256=body_sha256, pdf=True, figures=figures))


def render_documents(body: dict, *, body_sha256: str) -> tuple[bytes, bytes]:
    """``(HTML as UTF-8 bytes, PDF bytes)`` of a report, its figures drawn once for both."""
    figures = _figures(body)
    html = render_html(body, body_sha256=body_sha256, figures=figures)
    return html.encode("utf-8"), render_pdf(body, body_sha256=body_sha256, figures=figures)


def render_without_app(body: dict) -> tuple[bytes, bytes]:
    """:func:`render_documents` outside the LIMS (``dnatrack analyze``): the same templates,
    from an application that holds nothing but them."""
    from flask import Flask

    app = Flask("lims", template_folder=os.path.join(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))), "templates"))
    with app.app_context():
        return render_documents(body, body_sha256=None)
