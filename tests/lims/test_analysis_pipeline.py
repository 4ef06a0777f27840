"""One analysis pipeline for the LIMS and the command line (issue 14).

- The LIMS's match request and ``dnatrack analyze`` on the same profiles and settings give the
  same result: every number, pair, link, assignment, mixture and surface (records named
  differently aside).
- A result stored in layout 3 (the LIMS's untyped results; ``tests/data/results/``, written
  by the code of that layout on the scenario of :mod:`tests.lims.test_match_requests`) is read:
  its missing LRs, text numbers and printed labels become the typed result's, its words are
  the ones the report layer writes now, and a report on it is drafted, issued and amended.
- The scope of a search: a seizure-level and a case-level request on the same data say how
  many pairs they compared, counted here, and the page shows it next to the links.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from dnatrack.cli import main
from dnatrack.formats import write_genotypes
from dnatrack.panels import load_panel
from lims.extensions import db
from lims.models import MatchRequest, Seizure, User, UserRole
from lims.release import released_genotypes
from lims.reports.analysis import seizure_barcodes
from lims.reports.layout import present
from matching.analysis import RESULT_FORMAT, AnalysisResult, upgrade
from tests.lims.quality_support import confirm_hits
from tests.lims.test_match_requests import (
    FAST,
    PANEL,
    REFERENCE,
    load_scenario,
    request_body,
    run_to_end,
)
from tests.lims.web_support import make_browser

LAYOUT_3 = Path(__file__).parent.parent / "data" / "results" / "layout3_seizure_request.json"


@pytest.fixture
def world(app, agencies):
    return load_scenario(app, agencies)


#: What differs between the LIMS and the command line for the same analysis: who and what
#: the records are (the LIMS's seizures against a file's groups), provenance.
def analytical(result: dict) -> dict:
    result = json.loads(json.dumps(result))
    for name in ("subject", "software", "ledger_head", "content_sha256", "nodes"):
        result.pop(name)
    for pair in result["pairs"]:
        pair.pop("origin1"), pair.pop("origin2")
    for profile in result["subject_profiles"]:
        profile.pop("origin")
    for row in result["assignment"]["rows"]:
        row.pop("origin")
    for group in [*result["mixture"], *result["geographic"]["surfaces"]]:
        group.pop("group")
    return result


def test_the_lims_and_dnatrack_analyze_give_the_same_result(app, world, login, agencies,
                                                            tmp_path):
    # Agency B shares its case, so that the requester sees every pair in full.
    owner_b = login("custodian", agency="B")
    assert owner_b.put(f"/api/v1/cases/{world.case_ids['B']}/shares/{agencies['A']}",
                       json={"access": "read"}).status_code == 201
    investigator = login("investigator")
    request = run_to_end(app, investigator, request_body(world))
    assert request["status"] == "done", request["error"]
    stored = investigator.get(f"/api/v1/match-requests/{request['id']}/result").json
    assert stored["format"] == RESULT_FORMAT and all(p["visible"] for p in stored["pairs"])

    # The same released profiles as files: the seizure's and the others, grouped by record.
    with app.app_context():
        released = released_genotypes(db.session, load_panel(PANEL))
        subject = seizure_barcodes(db.session, world.seizure_ids["SZ-A"])
        seizure_of = {}
        for seizure_id, barcodes in ((s.id, seizure_barcodes(db.session, s.id))
                                     for s in db.session.scalars(sa.select(Seizure))):
            seizure_of.update(dict.fromkeys(barcodes, str(seizure_id)))
    in_subject = np.array([pid in subject for pid in released.profile_ids])
    write_genotypes(released.take(in_subject), tmp_path / "subject.csv")
    write_genotypes(released.take(~in_subject), tmp_path / "background.csv")
    with open(tmp_path / "groups.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample", "seizure"])
        writer.writerows(sorted(seizure_of.items()))
    out = tmp_path / "out"
    assert main(["analyze", str(tmp_path / "subject.csv"), "--background",
                 str(tmp_path / "background.csv"), "--reference", REFERENCE,
                 "--groups", str(tmp_path / "groups.csv"), "--out", str(out),
                 "--parameters", json.dumps(FAST)]) == 0
    from_files = json.loads((out / "result.json").read_text())
    assert analytical(from_files) == analytical(stored)
    assert from_files["pairs"], "the scenario's pairs were not found"

    # The tables hold the result's rows; the report is the LIMS's body without signatures.
    with open(out / "pairs.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["sample1"], r["sample2"], r["relationship"]) for r in rows] == [
        (p["sample1"], p["sample2"], p["relationship"]) for p in stored["pairs"]]
    with open(out / "assignment.csv", newline="") as handle:
        assert [r["barcode"] for r in csv.DictReader(handle)] == [
            r["barcode"] for r in stored["assignment"]["rows"]]
    html = (out / "report.html").read_text()
    assert (out / "report.pdf").read_bytes().startswith(b"%PDF-")
    assert "ANALYSIS FROM FILES" in html and "Signatures" not in html
    assert f"{stored['scope']['pairs_compared']:,} pairs" in html
    for pair in present(stored)["pairs"]:
        assert pair["lr_text"].split("^")[0] in html


def test_a_stored_layout_3_result_is_read_with_its_numbers_and_words():
    old = json.loads(LAYOUT_3.read_text())
    assert old["format"] == 3
    result = AnalysisResult.from_json(old)
    current = result.to_json()
    assert current["format"] == RESULT_FORMAT
    # Read back unchanged.
    assert AnalysisResult.from_json(current).to_json() == current
    assert upgrade(old) == current
    for before, after in zip(old["pairs"], current["pairs"], strict=True):
        assert (before["sample1"], before["relationship"], before["node2"]) == (
            after["sample1"], after["relationship"], after["node2"])
        if not before["visible"]:
            continue
        # Missing LRs were "" and numbers could be text: now None and numbers.
        for name, value in before["log10_lr_by_relationship"].items():
            expected = None if value == "" else float(value)
            assert after["log10_lr_by_relationship"][name] == expected
        assert after["rmp"] == (None if before.get("rmp") in (None, "") else float(before["rmp"]))
        for locus_before, locus_after in zip(before["loci"], after["loci"], strict=True):
            text = locus_before["genotype1"]
            assert locus_after["alleles1"] == (None if text == "–"
                                               else [int(a) for a in text.split("/")])
    labels = {"parent–offspring": "parent_offspring", "same animal": "same_animal",
              "full siblings": "full_sibling", "half siblings": "half_sibling"}
    for before, after in zip(old["links"], current["links"], strict=True):
        assert after["relationships"] == {labels[k]: n for k, n in before["relationships"].items()}
    # The scope, rebuilt from what layout 3 recorded, counted here.
    n = old["searched"]["subject_profiles"]
    others = old["searched"]["released_profiles"] - n
    assert current["scope"]["pairs_compared"] == n * (n - 1) // 2 + n * others
    # The words the report layer writes now are those layout 3 stored.
    shown = present(old)
    for before, after in zip(old["pairs"], shown["pairs"], strict=True):
        for name in ("relationship_label", "lr_text", "verbal", "conclusion", "propositions",
                     "rmp_text", "one_in_text"):
            assert after.get(name) == before.get(name), name
        for locus_before, locus_after in zip(before.get("loci", []), after.get("loci", []),
                                             strict=True):
            assert locus_after["genotype1"] == locus_before["genotype1"]
    assert [link["relationships"] for link in shown["links"]] == [
        link["relationships"] for link in old["links"]]


def test_a_report_on_a_layout_3_result_is_drafted_issued_and_amended(app, world, login):
    """The stored example was computed on this very scenario; its record ids are made this
    database's (PostgreSQL's sequences run on between tests)."""
    text = LAYOUT_3.read_text()
    for key, node in json.loads(text)["nodes"].items():
        if key.startswith("seizure:"):
            text = text.replace(f'"{key}"', f'"#seizure:{world.seizure_ids[node["reference"]]}"')
    old = json.loads(text.replace('"#seizure:', '"seizure:'))
    investigator, analyst, reviewer = (login(role) for role in
                                       ("investigator", "analyst", "reviewer"))
    created = investigator.post("/api/v1/match-requests", json=request_body(world)).json
    with app.app_context():
        record = db.session.get(MatchRequest, created["id"])
        assert f"seizure:{world.seizure_ids['SZ-A']}" in old["nodes"]
        record.status, record.result, record.progress = "done", old, 1.0
        record.started_at = record.finished_at = record.created_at
        db.session.commit()
        analyst_id = db.session.scalar(sa.select(User.id).join(UserRole).where(
            UserRole.role == "analyst").limit(1))
    # the evidential report states only confirmed same-animal hits (lims.quality)
    assert confirm_hits(app, created["id"], analyst_id) > 0
    draft = analyst.post(f"/api/v1/match-requests/{created['id']}/reports",
                         json={"kind": "evidential"})
    assert draft.status_code == 201, draft.json
    issued = reviewer.post(f"/api/v1/reports/{draft.json['id']}/sign")
    assert issued.status_code == 200, issued.json
    html = investigator.get(f"/api/v1/reports/{issued.json['id']}/html").text
    [pair] = [p for p in old["pairs"] if p["visible"]]
    assert pair["lr_text"].split("^")[0] in html and "Scope of the search" in html
    amended = analyst.post(f"/api/v1/reports/{issued.json['id']}/amendments",
                           json={"reason": "Layout 3 results, amended."})
    assert amended.status_code == 201, amended.json
    assert amended.json["replaces_id"] == issued.json["id"]


def test_the_scope_says_how_many_pairs_each_request_compared(app, world, login, agencies):
    investigator = login("investigator")
    quick = {"analyses": ["identity", "kinship"], "parameters": dict(FAST)}
    seizure = run_to_end(app, investigator, request_body(world, **quick))
    case_body = {**request_body(world, **quick), "case_id": world.case_ids["A"]}
    del case_body["seizure_id"]
    case = run_to_end(app, investigator, case_body)
    n_released = len(world.scenario.observed)
    n_seizure = int(np.sum(world.scenario.observed.group == "SZ-A"))
    n_case = int(np.sum(np.isin(world.scenario.observed.group, ["SZ-A", "SZ-B"])))
    scopes = {}
    for request, n in ((seizure, n_seizure), (case, n_case)):
        assert request["status"] == "done", request["error"]
        result = investigator.get(f"/api/v1/match-requests/{request['id']}/result").json
        scope = result["scope"]
        assert (scope["subject_profiles"], scope["background_profiles"]) == (n, n_released - n)
        assert scope["pairs_compared"] == n * (n - 1) // 2 + n * (n_released - n)
        assert scope["min_loci"] == 8
        [thresholds] = scope["thresholds"].values()
        cutoffs = result["parameters"]["kinship"][REFERENCE]["cutoffs_applied"]
        for relationship, threshold in thresholds.items():
            values = [v for v in cutoffs[relationship].values() if v is not None]
            assert (threshold["lowest"], threshold["highest"]) == (min(values), max(values))
        scopes[request["id"]] = scope
        page = make_browser(app, agencies, "investigator", username=f"reader{request['id']}") \
            .get(f"/match-requests/{request['id']}").get_data(as_text=True)
        assert "Scope of the search" in page
        assert f"{scope['pairs_compared']:,} pairs" in page
    assert scopes[seizure["id"]]["pairs_compared"] < scopes[case["id"]]["pairs_compared"]
