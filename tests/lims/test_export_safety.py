"""Spreadsheet formula injection and identifiers the export formats cannot hold.

Researchers open the released-profile files in spreadsheets: a barcode such as
``=cmd|' /C calc'!A0`` must reach them as text. New identifiers that a format cannot hold
(whitespace, control characters, a formula's first character) are refused when the record is
created; rows made before that rule (put straight into the database here) still export safely,
and a format that cannot carry one of them says so, naming the sample.
"""

from __future__ import annotations

import csv
import io
import logging

import pytest
import sqlalchemy as sa

from lims.extensions import db
from lims.models import Case, GenotypeProfile, Item, Sample, Seizure, SourceAnimal
from tests.lims.conftest import TEST_PANEL
from tests.lims.factories import make_case_tree, make_user
from tests.lims.web_support import count, field_errors, make_browser

PANEL = TEST_PANEL["name"]
# The probes of the security review, and what the export must make of them (by hand).
FORMULA_BARCODES = {
    "=cmd|' /C calc'!A0": "'=cmd|' /C calc'!A0",
    "+1+2": "'+1+2",
    "-3+4": "'-3+4",
    "@SUM(A1:A2)": "'@SUM(A1:A2)",
}
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def legacy_profiles(session, agencies):
    """Released profiles on samples whose barcodes, seizure reference and population an
    older version accepted: formulas, and a barcode with a space."""
    analyst = make_user(session, agencies["A"], "ana", "analyst")
    tree = make_case_tree(session, agencies["A"], "KE", seizure_reference="=HYPERLINK(1)")
    carcass = SourceAnimal(
        case_id=tree.case_id,
        identifier="C1",
        kind="carcass",
        population="-Tsavo",
        latitude=-2.5,
        longitude=-38.25,
    )
    session.add(carcass)
    session.flush()
    item_id = tree.item_ids[0]
    samples = [
        Sample(barcode=barcode, case_id=tree.case_id, sample_type="powder", item_id=item_id)
        for barcode in FORMULA_BARCODES
    ]
    samples.append(
        Sample(
            barcode="@carcass",
            case_id=tree.case_id,
            sample_type="tissue",
            source_animal_id=carcass.id,
        )
    )
    session.add_all(samples)
    session.flush()
    for sample in samples:
        session.add(
            GenotypeProfile(
                sample_id=sample.id,
                panel=PANEL,
                alleles={"FH67": [148, 152]},
                n_loci_typed=1,
                state="released",
                analyst_id=analyst.id,
            )
        )
    session.commit()
    return tree


def _export(caller, file_format: str):
    return caller.get(f"/api/v1/released-profiles?panel={PANEL}&format={file_format}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.mark.parametrize("file_format", ["wide", "long", "wasser"])
def test_csv_exports_write_formula_cells_as_text_and_numbers_as_numbers(
    login, legacy_profiles, file_format
):
    response = _export(login("researcher"), file_format)
    assert response.status_code == 200, response.get_data(as_text=True)
    cells = [cell for row in csv.reader(io.StringIO(response.get_data(as_text=True)))
             for cell in row]
    dangerous = [c for c in cells if c.startswith(FORMULA_STARTS) and not _is_number(c)]
    assert dangerous == []
    for written in (*FORMULA_BARCODES.values(), "'@carcass"):
        assert written in cells
    if file_format == "wide":
        # The seizure group, the population and the coordinates as the writer gives them.
        assert "'=HYPERLINK(1)" in cells and "'-Tsavo" in cells
        assert "-38.25" in cells and "'-38.25" not in cells


def test_genepop_export_writes_formula_names_as_text(login, legacy_profiles):
    response = _export(login("researcher"), "genepop")
    assert response.status_code == 200, response.get_data(as_text=True)
    lines = response.get_data(as_text=True).splitlines()
    names = [line.partition(" , ")[0] for line in lines if " , " in line]
    assert sorted(names) == sorted([*FORMULA_BARCODES.values(), "'@carcass"])
    assert "Pop '-Tsavo" in lines


def test_a_barcode_structure_cannot_hold_is_a_422_naming_the_sample(login, legacy_profiles):
    response = _export(login("researcher"), "structure")
    assert response.status_code == 422
    assert response.json["details"]["sample"] == "=cmd|' /C calc'!A0"
    message = response.json["message"]
    assert "sample \"=cmd|' /C calc'!A0\"" in message and "structure" in message


def test_structure_export_neutralises_formula_ids_it_can_hold(login, session, agencies):
    analyst = make_user(session, agencies["A"], "ana", "analyst")
    tree = make_case_tree(session, agencies["A"], "KE")
    sample = session.get(Sample, tree.sample_ids[0])
    sample.barcode = "@SUM(A1:A2)"
    session.add(
        GenotypeProfile(sample_id=sample.id, panel=PANEL, alleles={"LA5": [100, 104]},
                        n_loci_typed=1, state="released", analyst_id=analyst.id)
    )
    session.commit()
    response = _export(login("researcher"), "structure")
    assert response.status_code == 200, response.get_data(as_text=True)
    rows = [line.split("\t") for line in response.get_data(as_text=True).splitlines()]
    assert [row[0] for row in rows[1:]] == ["'@SUM(A1:A2)", "'@SUM(A1:A2)"]
    assert rows[1][1:] == ["-9", "-9", "100", "-9"]


def test_every_export_is_logged_for_the_audit(login, legacy_profiles, caplog):
    researcher = login("researcher")
    with caplog.at_level(logging.INFO, logger="lims.api.released"):
        assert _export(researcher, "genepop").status_code == 200
    [record] = [r for r in caplog.records if r.name == "lims.api.released"]
    message = record.getMessage()
    assert researcher.username in message
    assert f"panel {PANEL}" in message and "format genepop" in message
    assert "5 profiles" in message


BAD_IDENTIFIERS = [
    ("=cmd|' /C calc'!A0", "whitespace"),
    ("+1+2", "formula"),
    ("-3+4", "formula"),
    ("@SUM(A1:A2)", "formula"),
    ("=1+1", "formula"),
    ("KE 001", "whitespace"),
    ("KE\t001", "whitespace"),
    ("KE\x07001", "control characters"),
]


@pytest.fixture
def tree(session, agencies):
    return make_case_tree(session, agencies["A"], "KE")


def _creations(tree, value: str) -> list[tuple[str, str, dict]]:
    return [
        ("/api/v1/cases", "reference", {"reference": value, "title": "t",
                                         "kind": "investigation"}),
        ("/api/v1/seizures", "reference", {"case_id": tree.case_id, "reference": value}),
        ("/api/v1/items", "label", {"seizure_id": tree.seizure_id, "label": value,
                                    "kind": "tusk"}),
        ("/api/v1/source-animals", "identifier", {"case_id": tree.case_id, "identifier": value,
                                                  "kind": "carcass"}),
        ("/api/v1/samples", "barcode", {"barcode": value, "sample_type": "powder",
                                        "item_id": tree.item_ids[0]}),
        ("/api/v1/extracts", "barcode", {"barcode": value, "sample_id": tree.sample_ids[0]}),
    ]


@pytest.mark.parametrize(("value", "reason"), BAD_IDENTIFIERS)
def test_identifiers_a_format_cannot_hold_are_refused_at_creation(
    login, app, tree, value, reason
):
    caller = login("custodian", "analyst")
    for url, field, body in _creations(tree, value):
        response = caller.post(url, json=body)
        assert response.status_code == 422, (url, response.get_data(as_text=True))
        [problem] = response.json["details"]["problems"]
        assert problem["field"] == field and reason in problem["message"], (url, problem)
    with app.app_context():
        assert [count(app, model) for model in (Case, Seizure, Item, Sample)] == [1, 1, 2, 2]


def test_identifier_changes_are_checked_as_creations_are(login, tree):
    caller = login("custodian")
    response = caller.patch(f"/api/v1/seizures/{tree.seizure_id}", json={"reference": "@X"})
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "reference"
    response = caller.patch(f"/api/v1/items/{tree.item_ids[0]}", json={"label": "T 1"})
    assert response.status_code == 422


def test_ordinary_identifiers_are_still_accepted(login, tree):
    caller = login("custodian")
    for barcode in ("KE-2024/001", "X=1", "TUSK_7.b", "Ñ-01"):
        response = caller.post("/api/v1/samples", json={
            "barcode": barcode, "sample_type": "powder", "item_id": tree.item_ids[0]})
        assert response.status_code == 201, response.get_data(as_text=True)


def test_the_openapi_document_states_the_identifier_rule(client):
    schemas = client.get("/api/v1/openapi.json").json["components"]["schemas"]
    pattern = schemas["sample_create"]["properties"]["barcode"]["pattern"]
    assert schemas["seizure_update"]["properties"]["reference"]["pattern"] == pattern
    import re

    assert re.match(pattern, "KE-S1") and not re.match(pattern, "=1+1")
    assert not re.match(pattern, "KE S1")


@pytest.mark.parametrize(("value", "reason"), BAD_IDENTIFIERS[:6])
def test_the_forms_refuse_them_beside_the_field(app, agencies, tree, value, reason):
    custodian = make_browser(app, agencies, "custodian")
    pages = [
        ("/cases/new", "reference", {"title": "t", "kind": "investigation"}),
        (f"/cases/{tree.case_id}/seizures/new", "reference", {}),
        (f"/seizures/{tree.seizure_id}/items/new", "label", {"kind": "tusk"}),
        (f"/cases/{tree.case_id}/source-animals/new", "identifier", {"kind": "carcass"}),
        (f"/items/{tree.item_ids[0]}/samples/new", "barcode", {"sample_type": "powder"}),
    ]
    for url, field, data in pages:
        response = custodian.post(url, {**data, field: value})
        assert response.status_code == 422, url
        [error] = field_errors(response.get_data(as_text=True), field)
        assert reason in error, (url, error)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Sample)) == 2
