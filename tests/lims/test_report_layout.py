"""The layout of the report documents: no table cell's text runs past its column, in the PDF
(character boxes against the drawn cell borders, with pdfplumber) or in the HTML (rendered by
headless Chromium, see ``tests/browser``), on a report whose sample ids and population names are
long enough to overflow a careless layout.

The body is built here rather than by running an analysis: the layout depends only on what the
tables hold, and a body of deliberately long names needs no engine run.
"""

from __future__ import annotations

import io

import pytest

from lims.reports.render import html_to_pdf, render_html

pdfplumber = pytest.importorskip("pdfplumber", reason="the test extra is needed")

# Sample ids with no break opportunity, as barcodes are, and long population names.
LONG_BARCODES = [f"KE-MBA-2401-TUSK-{k:04d}-SUBSAMPLE-RIGHT-{k:06d}" for k in range(1, 31)]
LONG_POPULATIONS = [
    "Amboseli_Tsavo_West_Chyulu_Hills_transboundary_ecosystem",
    "Hluhluwe_iMfolozi_Park_northern_section_Zululand",
    "Selous_Niassa_wildlife_corridor_Ruvuma_river_basin",
]
# A tolerance in PDF points for the rounding of glyph boxes against border lines.
TOLERANCE_PT = 0.5


def _node(kind: str, reference: str) -> dict:
    return {"kind": kind, "reference": reference, "agency": "Agency A", "visible": True}


def long_names_body() -> dict:
    """A report body with every table the evidential report draws, its ids and names long."""
    rows = [
        {"barcode": barcode, "population": LONG_POPULATIONS[k % 3], "posterior": 0.987,
         "repunit": LONG_POPULATIONS[(k + 1) % 3], "repunit_posterior": 0.991,
         "z_score": -1.23, "exclusion_p_value": 0.000123, "unsampled_source": k % 7 == 0}
        for k, barcode in enumerate(LONG_BARCODES)
    ]
    populations = [{"population": name, "repunit": name, "pi": 0.33, "lo95": 0.1, "hi95": 0.6,
                    "em": 0.33} for name in LONG_POPULATIONS]
    nodes = {"s1": _node("seizure", "KE-MBA-2401-SEIZED-AT-MOMBASA-PORT-CONTAINER-MSKU7654321"),
             "s2": _node("seizure", "TZ-DAR-2402-SEIZED-AT-DAR-ES-SALAAM-PORT-CONTAINER-X1")}
    return {
        "document": {
            "kind": "evidential", "title": "Evidential report", "number": "EV-2026-0001",
            "report_id": 1, "version": 1, "status": "issued", "status_text": "issued",
            "requested_by": "Ivan Investigator", "requested_at": "2026-01-01 10:00 UTC",
            "request_id": 1, "replaces": None, "remarks": None, "signatures_awaited": [],
        },
        "result": {
            "subject": {"agency": "Agency A", "case_reference": "DEMO-2024-IVORY",
                        "case_title": "Ivory", "kind": "seizure",
                        "reference": nodes["s1"]["reference"]},
            "analyses": ["kinship", "assignment", "mixture"],
            "pairs": [], "links": [{"node1": "s1", "node2": "s2",
                                    "relationships": {"parent–offspring": 2},
                                    "same_animal": False, "max_log10_lr": 4.56}],
            "nodes": nodes, "within_node_pairs": 0,
            "searched": {"released_profiles": 120},
            "subject_profiles": [{"barcode": barcode, "origin": f"tusk of {barcode}",
                                  "loci_typed": 14} for barcode in LONG_BARCODES],
            "panel": {"name": "elephant_ivory_16", "loci_used": ["FH19"] * 14,
                      "content_hash": "ab" * 32},
            "assignment": {"reference": "savanna_elephant_simulated", "repunit_level": "region",
                           "populations": populations, "rows": rows},
            "mixture": [{"group": nodes["s1"]["reference"], "n_samples": 30,
                         "repunits": populations, "populations": populations}],
            "geographic": None, "frequencies": None, "caveats": ["Simulated."], "notes": [],
            "parameters": {"theta": {}, "settings": {}, "kinship": {}, "identity": None,
                           "assignment": None, "mixture": None, "geographic": None},
            "software": {"dnatrack": "0"}, "reference_sets": [],
            "parameters_sha256": "cd" * 32,
        },
        "run": {"finished_at": "2026-01-01 10:05 UTC"},
        "signatures": [], "software": {"xhtml2pdf": "0"},
        "ledger_head": {"seq": 1, "hash": "ef" * 32},
    }


def overflowing_cells(pdf: bytes) -> list[str]:
    """``"page N: 'text' runs past x=… into the next column"`` for every character of a table
    cell that lies right of the cell's right border (or left of its left border)."""
    problems = []
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        for number, page in enumerate(document.pages, start=1):
            cells = [cell for table in page.find_tables() for cell in table.cells]
            for x0, top, x1, bottom in cells:
                # The characters that start in this cell and sit on its rows.
                inside = [c for c in page.chars if x0 <= c["x0"] < x1
                          and top <= (c["top"] + c["bottom"]) / 2 <= bottom]
                escaped = [c for c in inside if c["x1"] > x1 + TOLERANCE_PT]
                if escaped:
                    text = "".join(c["text"] for c in inside)
                    problems.append(f"page {number}: {text!r} runs past x={x1:.1f}")
    return problems


def test_the_checker_sees_text_running_into_the_next_column():
    # A fixed-width table whose first cell holds a word far wider than its column.
    html = ('<table style="width: 10cm"><tr><td style="width: 2cm; border: 1px solid black">'
            + "X" * 60 + '</td><td style="border: 1px solid black">next</td></tr></table>')
    assert overflowing_cells(html_to_pdf(html))


def test_no_pdf_table_cell_runs_into_the_next_column(app):
    with app.app_context():
        pdf = html_to_pdf(render_html(long_names_body(), pdf=True,
                                      figures={"network": None, "maps": []}))
    with pdfplumber.open(io.BytesIO(pdf)) as document:
        text = "".join(page.extract_text() for page in document.pages)
        # The tables were found and hold the long names (broken across lines).
        assert sum(len(page.find_tables()) for page in document.pages) >= 5
    flat = "".join(text.split())
    assert LONG_BARCODES[-1] in flat and LONG_POPULATIONS[0] in flat
    assert overflowing_cells(pdf) == []
