"""The quality system: runs and their controls (hold, disposition), the contamination screen,
hit confirmations, validation and proficiency records, and who may do what.

Every expected reason is written out from the inputs the test builds (the control's expected
genotype, the alleles put into the blank), not taken from the code's earlier output.
"""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from lims.models import (
    ContaminationFlag,
    Extract,
    GenotypeImport,
    GenotypeProfile,
    GenotypingRun,
    Item,
    PlateWell,
    Sample,
)
from tests.lims.factories import make_case_tree
from tests.lims.quality_support import CONTROL, PANEL, export, genotype, post_run


@pytest.fixture
def lab(session, agencies, login):
    """Agency A's staff, two seizures (KE: tusks KE-S1, KE-S2; TZ: TZ-S1, TZ-S2) and the
    positive control PC-1 registered with its expected genotype."""
    staff = {"analyst": login("analyst"), "reviewer": login("reviewer"),
             "investigator": login("investigator"), "other": login("analyst", agency="B")}
    trees = {"KE": make_case_tree(session, agencies["A"], "KE"),
             "TZ": make_case_tree(session, agencies["A"], "TZ")}
    answer = staff["analyst"].post("/api/v1/positive-controls",
                                   json={"name": "PC-1", "panel": PANEL, "alleles": CONTROL})
    assert answer.status_code == 201, answer.json
    return staff, trees


def plate(samples: dict[str, dict], *, positive=CONTROL, blank=None, run=None) -> bytes:
    wells = [("A01", "PC-1", "Positive Control", positive),
             ("A02", "NTC-1", "Negative Control", blank or {})]
    wells += [(f"B{n:02d}", barcode, "Sample", alleles)
              for n, (barcode, alleles) in enumerate(samples.items(), start=1)]
    return export(wells, run=run)


def profile_ids(session, run_id: int) -> list[int]:
    return list(session.scalars(sa.select(PlateWell.profile_id).where(
        PlateWell.run_id == run_id, PlateWell.kind == "sample").order_by(PlateWell.well)))


def test_a_run_in_control_is_imported_with_its_wells_and_reviewable(session, lab):
    staff, trees = lab
    content = plate({"KE-S1": genotype(1), "TZ-S1": genotype(2)}, run="RUN-1")
    answer = post_run(staff["analyst"], content)
    assert answer.status_code == 201, answer.json
    run = answer.json
    assert run["status"] == "in_control" and run["hold_reason"] is None
    assert (run["instrument"], run["kit_lot"], run["allelic_ladder"]) == (
        "ABI 3500xL", "LOT-42", "GS500 LIZ")
    import hashlib
    assert run["sha256"] == hashlib.sha256(content).hexdigest()
    wells = {well["well"]: well for well in run["wells"]}
    assert wells["A01"]["kind"] == "positive_control" and wells["A01"]["passed"] is True
    assert wells["A02"]["kind"] == "negative_control" and wells["A02"]["passed"] is True
    assert wells["B01"]["kind"] == "sample" and wells["B02"]["kind"] == "sample"
    profiles = {p.sample.barcode: p for p in session.scalars(sa.select(GenotypeProfile))}
    assert set(profiles) == {"KE-S1", "TZ-S1"}  # the controls are no profiles
    assert profiles["KE-S1"].alleles == genotype(1) and profiles["KE-S1"].run == "RUN-1"
    reviewed = staff["reviewer"].post(f"/api/v1/profiles/{profiles['KE-S1'].id}/review")
    assert reviewed.status_code == 200, reviewed.json


def test_a_wrong_positive_control_holds_the_run_until_a_reviewer_accepts_it(session, lab):
    staff, trees = lab
    wrong = {**CONTROL, "FH67": [150, 154]}
    answer = post_run(staff["analyst"], plate({"KE-S1": genotype(1)}, positive=wrong))
    assert answer.status_code == 201, answer.json
    run = answer.json
    assert run["status"] == "on_hold"
    assert run["hold_reason"] == ("positive control PC-1 (well A01) failed: FH67: expected "
                                  "150/152, typed 150/154")
    (profile_id,) = profile_ids(session, run["id"])
    refused = staff["reviewer"].post(f"/api/v1/profiles/{profile_id}/review")
    assert refused.status_code == 409
    assert "run RUN-1 is on hold: positive control PC-1" in refused.json["message"]
    assert session.get(GenotypeProfile, profile_id).state == "pending"

    disposition = {"outcome": "accepted", "reason": "control mis-pipetted; re-typed, correct"}
    own = staff["analyst"].post(f"/api/v1/runs/{run['id']}/disposition", json=disposition)
    assert own.status_code == 403  # the analyst holds no review permission
    accepted = staff["reviewer"].post(f"/api/v1/runs/{run['id']}/disposition",
                                      json=disposition)
    assert accepted.status_code == 200, accepted.json
    assert accepted.json["status"] == "accepted"
    assert accepted.json["disposition_reason"] == disposition["reason"]
    again = staff["reviewer"].post(f"/api/v1/runs/{run['id']}/disposition", json=disposition)
    assert again.status_code == 409
    assert staff["reviewer"].post(f"/api/v1/profiles/{profile_id}/review").status_code == 200


def test_a_blank_with_alleles_holds_the_run_and_a_rejection_rejects_its_profiles(session,
                                                                                 lab):
    staff, trees = lab
    answer = post_run(staff["analyst"], plate({"KE-S1": genotype(1), "TZ-S2": genotype(3)},
                                              blank={"LA5": [120]}))
    run = answer.json
    assert run["status"] == "on_hold"
    assert run["hold_reason"] == "negative control NTC-1 (well A02) failed: LA5: alleles 120"
    rejected = staff["reviewer"].post(f"/api/v1/runs/{run['id']}/disposition",
                                      json={"outcome": "rejected", "reason": "contaminated"})
    assert rejected.status_code == 200, rejected.json
    states = {session.get(GenotypeProfile, pid).state for pid in profile_ids(session, run["id"])}
    session.expire_all()
    profiles = [session.get(GenotypeProfile, pid) for pid in profile_ids(session, run["id"])]
    assert [p.state for p in profiles] == ["rejected", "rejected"], states
    assert profiles[0].rejection_reason == "run RUN-1 rejected: contaminated"


def test_a_plate_without_controls_is_held_for_each_missing_one(session, lab):
    staff, trees = lab
    content = export([("C01", "KE-S1", "Sample", genotype(1))])
    run = post_run(staff["analyst"], content).json
    assert run["hold_reason"] == ("the plate has no positive control; the plate has no "
                                  "negative (PCR) control")


def test_a_positive_control_without_an_expected_genotype_fails(session, lab):
    staff, trees = lab
    content = export([("A01", "PC-9", "Positive Control", CONTROL),
                      ("A02", "NTC-1", "Negative Control", {}),
                      ("B01", "KE-S1", "Sample", genotype(1))])
    run = post_run(staff["analyst"], content).json
    assert run["hold_reason"] == ("positive control PC-9 (well A01) failed: no expected "
                                  f"genotype of PC-9 on panel {PANEL} is recorded")


def test_the_plate_map_names_controls_and_extracts_and_the_batch_blank_is_required(
        session, lab, app):
    staff, trees = lab
    extract = Extract(barcode="KE-S1-X1", sample_id=trees["KE"].sample_ids[0])
    session.add(extract)
    session.commit()
    batch = staff["analyst"].post("/api/v1/extraction-batches", json={
        "reference": "EB-2026-1", "kit": "DNeasy", "kit_lot": "K-7", "blank_name": "EB-1",
        "extract_ids": [extract.id]})
    assert batch.status_code == 201, batch.json
    # No Well or Sample Type columns: the plate map says everything.
    content = export([("", "PC-1", "", CONTROL), ("", "NTC-1", "", {}),
                      ("", "KE-S1", "", genotype(1))])
    plate_map = (b"well,kind,name,extract\nA1,positive_control,PC-1,\n"
                 b"A2,negative_control,NTC-1,\nB1,sample,KE-S1,KE-S1-X1\n")
    run = post_run(staff["analyst"], content, plate_map=plate_map).json
    assert run["status"] == "on_hold"
    assert run["hold_reason"] == ("the extraction blank EB-1 of batch EB-2026-1 is not on "
                                  "the plate")
    assert [w["well"] for w in run["wells"]] == ["A01", "A02", "B01"]
    profile = session.get(GenotypeProfile, profile_ids(session, run["id"])[0])
    assert profile.extract_id == extract.id

    with_blank = export([("", "PC-1", "", CONTROL), ("", "NTC-1", "", {}),
                         ("", "EB-1", "", {}), ("", "KE-S2", "", genotype(2))])
    extract2 = Extract(barcode="KE-S2-X1", sample_id=trees["KE"].sample_ids[1])
    session.add(extract2)
    session.commit()
    staff["analyst"].post("/api/v1/extraction-batches", json={
        "reference": "EB-2026-2", "kit": "DNeasy", "kit_lot": "K-7", "blank_name": "EB-1",
        "extract_ids": [extract2.id]})
    plate_map = (b"well,kind,name,extract\nA1,positive_control,PC-1,\n"
                 b"A2,negative_control,NTC-1,\nA3,extraction_blank,EB-1,\n"
                 b"B1,sample,KE-S2,KE-S2-X1\n")
    run = post_run(staff["analyst"], with_blank, name="RUN-2", plate_map=plate_map).json
    assert run["status"] == "in_control", run["hold_reason"]


def test_a_refused_run_import_lists_every_problem_and_writes_nothing(session, lab):
    staff, trees = lab
    content = export([("A01", "PC-1", "Positive Control", CONTROL),
                      ("Z99", "NTC-1", "Negative Control", {}),
                      ("B01", "NO-SUCH", "Sample", genotype(1))])
    answer = post_run(staff["analyst"], content, kit_lot="")
    assert answer.status_code == 422
    assert answer.json["details"]["problems"] == [
        {"field": "kit_lot", "message": "must not be empty"}]
    answer = post_run(staff["analyst"], content)
    problems = answer.json["details"]["problems"]
    assert any(p["field"] == "Well" and p["line"] == 6 and "'Z99'" in p["message"]
               for p in problems), problems
    # The samples are checked once the run's own problems are fixed.
    answer = post_run(staff["analyst"], content.replace(b"Z99", b"A02"))
    assert answer.status_code == 422
    assert answer.json["details"]["problems"][0]["sample"] == "NO-SUCH"
    assert answer.json["details"]["problems"][0]["line"] == 10
    for model in (GenotypingRun, PlateWell, GenotypeImport, GenotypeProfile):
        assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
    mismatch = post_run(staff["analyst"], plate({"KE-S1": genotype(1)}, run="OTHER"))
    assert mismatch.status_code == 422
    assert "the export is of run OTHER, not RUN-1" in mismatch.json["message"]


def test_plate_neighbours_of_different_seizures_with_one_genotype_are_flagged(session, lab):
    staff, trees = lab
    same = genotype(4)
    # KE-S1 and TZ-S1 (different seizures) share a genotype; KE-S2 shares KE-S1's seizure
    # and genotype too (two tusks of one animal: no flag between them).
    content = plate({"KE-S1": same, "KE-S2": same, "TZ-S1": same, "TZ-S2": genotype(5)})
    run = post_run(staff["analyst"], content).json
    assert run["status"] == "in_control"
    profiles = {p.sample.barcode: p for p in session.scalars(sa.select(GenotypeProfile))}
    flags = session.scalars(sa.select(ContaminationFlag).where(
        ContaminationFlag.kind == "plate")).all()
    pairs = {(profiles_by_id.sample.barcode, session.get(GenotypeProfile,
                                                          f.other_profile_id).sample.barcode)
             for f in flags for profiles_by_id in [session.get(GenotypeProfile, f.profile_id)]}
    assert pairs == {("KE-S1", "TZ-S1"), ("KE-S2", "TZ-S1"), ("TZ-S1", "KE-S1"),
                     ("TZ-S1", "KE-S2")}
    flag = next(f for f in flags if f.profile_id == profiles["TZ-S1"].id
                and f.other_profile_id == profiles["KE-S1"].id)
    assert "on the same plate" in flag.reason and flag.comparison["loci_compared"] == 4
    blocked = staff["reviewer"].post(f"/api/v1/profiles/{profiles['TZ-S1'].id}/review")
    assert blocked.status_code == 409
    assert f"open contamination flag {flag.id}" in blocked.json["message"]
    assert staff["reviewer"].post(
        f"/api/v1/profiles/{profiles['TZ-S2'].id}/review").status_code == 200
    listed = staff["investigator"].get(
        f"/api/v1/contamination-flags?profile_id={profiles['TZ-S1'].id}").json
    assert listed["total"] == 2
    for each in session.scalars(sa.select(ContaminationFlag).where(
            ContaminationFlag.profile_id == profiles["TZ-S1"].id)):
        cleared = staff["reviewer"].post(f"/api/v1/contamination-flags/{each.id}/resolve",
                                         json={"status": "cleared", "reason": "re-extracted"})
        assert cleared.status_code == 200, cleared.json
    assert staff["reviewer"].post(
        f"/api/v1/profiles/{profiles['TZ-S1'].id}/review").status_code == 200


def test_a_profile_like_an_elimination_profile_is_flagged_before_review(session, lab):
    staff, trees = lab
    staff_animal = genotype(7)
    answer = staff["analyst"].post("/api/v1/elimination-profiles", json={
        "name": "STAFF-ELE-1", "kind": "reference_animal", "panel": PANEL,
        "alleles": staff_animal})
    assert answer.status_code == 201, answer.json
    made = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": trees["KE"].sample_ids[0], "panel": PANEL, "alleles": staff_animal})
    assert made.status_code == 201
    clean = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": trees["KE"].sample_ids[1], "panel": PANEL,
        # One locus different from the elimination profile: no flag.
        "alleles": {**staff_animal, "FH71": [170, 172]}})
    flags = staff["analyst"].get("/api/v1/contamination-flags").json["items"]
    assert [(f["profile_id"], f["kind"]) for f in flags] == [(made.json["id"], "elimination")]
    assert flags[0]["reason"] == ("same genotype as elimination profile STAFF-ELE-1 "
                                  "(reference animal) at 4 loci")
    assert staff["reviewer"].post(
        f"/api/v1/profiles/{made.json['id']}/review").status_code == 409
    assert staff["reviewer"].post(
        f"/api/v1/profiles/{clean.json['id']}/review").status_code == 200
    confirmed = staff["reviewer"].post(f"/api/v1/contamination-flags/{flags[0]['id']}/resolve",
                                       json={"status": "confirmed", "reason": "handling"})
    assert confirmed.status_code == 200
    # A confirmed contamination keeps the profile from review for good.
    assert "confirmed contamination flag" in staff["reviewer"].post(
        f"/api/v1/profiles/{made.json['id']}/review").json["message"]


def test_discordant_replicates_of_one_item_are_flagged(session, lab):
    staff, trees = lab
    aliquot = Sample(barcode="KE-S1-A", case_id=trees["KE"].case_id, sample_type="powder",
                     item_id=trees["KE"].item_ids[0])
    session.add(aliquot)
    session.commit()
    first = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": trees["KE"].sample_ids[0], "panel": PANEL, "alleles": genotype(1)}).json
    second = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": aliquot.id, "panel": PANEL,
        "alleles": {**genotype(1), "LA5": [92, 96]}}).json
    flags = staff["analyst"].get("/api/v1/contamination-flags?status=open").json["items"]
    assert [(f["profile_id"], f["other_profile_id"], f["kind"]) for f in flags] == [
        (second["id"], first["id"], "replicate")]
    assert flags[0]["reason"].endswith("differs at LA5")


def test_need_to_know_and_permissions_of_every_quality_endpoint(session, lab, login):
    staff, trees = lab
    run = post_run(staff["analyst"], plate({"KE-S1": genotype(1)})).json
    outsider, investigator = staff["other"], staff["investigator"]
    # Another agency sees none of agency A's quality records.
    for path in ("/api/v1/runs", "/api/v1/positive-controls", "/api/v1/elimination-profiles",
                 "/api/v1/extraction-batches", "/api/v1/contamination-flags",
                 "/api/v1/hit-confirmations", "/api/v1/species-tests",
                 "/api/v1/quality-records"):
        assert outsider.get(path).json["total"] == 0, path
    assert outsider.get(f"/api/v1/runs/{run['id']}").status_code == 404
    assert outsider.post(f"/api/v1/runs/{run['id']}/disposition",
                         json={"outcome": "accepted", "reason": "x"}).status_code == 403
    outside_reviewer = login("reviewer", agency="B")
    assert outside_reviewer.post(f"/api/v1/runs/{run['id']}/disposition",
                                 json={"outcome": "accepted", "reason": "x"}).status_code == 404
    profile_id = profile_ids(session, run["id"])[0]
    # Roles without the permission are refused (403) before anything is read.
    refused = [
        (investigator, "POST", "/api/v1/runs"),
        (investigator, "GET", "/api/v1/runs"),
        (staff["reviewer"], "POST", "/api/v1/positive-controls"),
        (staff["reviewer"], "POST", "/api/v1/elimination-profiles"),
        (staff["reviewer"], "POST", "/api/v1/extraction-batches"),
        (staff["analyst"], "POST", f"/api/v1/runs/{run['id']}/disposition"),
        (staff["analyst"], "POST", "/api/v1/contamination-flags/1/resolve"),
        (investigator, "POST", f"/api/v1/profiles/{profile_id}/confirmations"),
        (investigator, "POST", f"/api/v1/samples/{trees['KE'].sample_ids[0]}/species-tests"),
        (staff["analyst"], "POST", "/api/v1/quality-records"),
        (login("researcher"), "GET", "/api/v1/contamination-flags"),
        (login("researcher"), "GET", "/api/v1/species-tests"),
        (login("researcher"), "GET", "/api/v1/hit-confirmations"),
        (login("researcher"), "GET", "/api/v1/quality-records"),
        (login("researcher"), "GET", "/api/v1/positive-controls"),
        (login("researcher"), "GET", "/api/v1/elimination-profiles"),
        (login("researcher"), "GET", "/api/v1/extraction-batches"),
        (login("researcher"), "GET", f"/api/v1/samples/{trees['KE'].sample_ids[0]}/consensus"),
    ]
    for caller, method, path in refused:
        answer = caller.client.open(path, method=method, headers=caller.headers, json={})
        assert answer.status_code == 403, (caller.username, method, path, answer.json)
    # Another agency's records are answered as not found.
    assert outsider.get(
        f"/api/v1/samples/{trees['KE'].sample_ids[0]}/consensus").status_code == 404
    assert outsider.post(f"/api/v1/profiles/{profile_id}/confirmations",
                         json={"method": "re-typing", "alleles": genotype(1)}
                         ).status_code == 404
    assert outsider.client.post(
        f"/api/v1/samples/{trees['KE'].sample_ids[0]}/species-tests",
        data={"file": (io.BytesIO(b">r\nACGT\n"), "r.fasta")}, headers=outsider.headers,
        content_type="multipart/form-data").status_code == 404
    # Nobody unauthenticated.
    assert outsider.client.get("/api/v1/runs").status_code == 401


def test_hit_confirmations_compare_the_retyping_with_the_profile(session, lab):
    staff, trees = lab
    made = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": trees["KE"].sample_ids[0], "panel": PANEL, "alleles": genotype(1)}).json
    url = f"/api/v1/profiles/{made['id']}/confirmations"
    discordant = staff["analyst"].post(url, json={
        "method": "re-typing", "alleles": {**genotype(1), "FH67": [112]}})
    assert discordant.status_code == 201
    # 112/112 against 112/132: dropout-compatible, which confirms nothing.
    assert discordant.json["concordant"] is False
    assert discordant.json["comparison"]["dropout_compatible"] == ["FH67"]
    concordant = staff["analyst"].post(url, json={"method": "re-typing",
                                                  "alleles": genotype(1)})
    assert concordant.json["concordant"] is True
    assert concordant.json["comparison"]["loci_compared"] == 4
    both = staff["analyst"].post(url, json={"method": "re-typing", "alleles": genotype(1),
                                            "confirming_profile_id": made["id"]})
    assert both.status_code == 422
    off_panel = staff["analyst"].post(url, json={"method": "re-typing",
                                                 "alleles": {"FH67": [999, 1000]}})
    assert off_panel.status_code == 422
    assert off_panel.json["details"]["problems"][0]["field"] == "alleles.FH67"


def test_quality_records_need_a_reviewer_and_name_an_analyst_of_the_agency(session, lab):
    staff, trees = lab
    data = {"kind": "proficiency", "method": PANEL, "title": "CTS 26-1", "outcome": "passed",
            "performed_on": "2026-06-01"}
    missing = staff["reviewer"].client.post("/api/v1/quality-records", data=data,
                                            headers=staff["reviewer"].headers)
    assert missing.status_code == 422 and "analyst_id" in missing.json["message"]
    other_agency = staff["reviewer"].client.post(
        "/api/v1/quality-records", data={**data, "analyst_id": str(staff["other"].user_id)},
        headers=staff["reviewer"].headers)
    assert other_agency.status_code == 422
    stored = staff["reviewer"].client.post(
        "/api/v1/quality-records", headers=staff["reviewer"].headers,
        data={**data, "analyst_id": str(staff["analyst"].user_id),
              "file": (io.BytesIO(b"%PDF-1.4 report"), "cts.pdf")},
        content_type="multipart/form-data")
    assert stored.status_code == 201, stored.json
    import hashlib
    assert stored.json["sha256"] == hashlib.sha256(b"%PDF-1.4 report").hexdigest()
    assert session.scalar(sa.select(sa.func.count()).select_from(Item)) == 4


def _xlsx(rows: list[list]) -> bytes:
    """A workbook whose first sheet holds ``rows`` (cells as given: text or numbers)."""
    from openpyxl import Workbook

    workbook = Workbook()
    for row in rows:
        workbook.active.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def test_an_xlsx_plate_map_is_read_as_its_csv(session, lab):
    staff, trees = lab
    content = export([("", "PC-1", "", CONTROL), ("", "NTC-1", "", {}),
                      ("", "KE-S1", "", genotype(1))])
    rows = [["well", "kind", "name"], ["A1", "positive_control", "PC-1"],
            ["A2", "negative_control", "NTC-1"], ["B1", "sample", "KE-S1"]]
    workbook = _xlsx(rows)
    answer = post_run(staff["analyst"], content, plate_map=workbook)
    assert answer.status_code == 201, answer.json
    run = answer.json
    assert run["status"] == "in_control", run["hold_reason"]
    assert [(w["well"], w["kind"]) for w in run["wells"]] == [
        ("A01", "positive_control"), ("A02", "negative_control"), ("B01", "sample")]
    import hashlib
    assert run["plate_map_sha256"] == hashlib.sha256(workbook).hexdigest()


def test_a_bad_xlsx_plate_map_gives_the_csv_problems_by_row_and_column_and_writes_nothing(
        session, lab):
    staff, trees = lab
    content = export([("", "PC-1", "", CONTROL), ("", "NTC-1", "", {}),
                      ("", "KE-S1", "", genotype(1))])
    rows = [["well", "kind", "name"], ["A1", "positive_control", "PC-1"],
            ["Q7", "negative_control", "NTC-1"], ["A1", "sampel", "KE-S1"]]
    csv_map = "".join(",".join(row) + "\n" for row in rows).encode()
    answers = [post_run(staff["analyst"], content, plate_map=plate_map).json
               for plate_map in (csv_map, _xlsx(rows))]
    problems = [answer["details"]["problems"] for answer in answers]
    assert problems[0] == problems[1]
    found = {(p["line"], p["field"], p["message"]) for p in problems[1]}
    assert (3, "plate_map.well", "'Q7' is not a plate well (A01..P24)") in found
    assert (4, "plate_map.well", "well A01 is already on line 2") in found
    assert (4, "plate_map.kind", "kind must be one of sample, positive_control, "
            "negative_control, extraction_blank") in found
    for model in (GenotypingRun, PlateWell, GenotypeImport, GenotypeProfile):
        assert session.scalar(sa.select(sa.func.count()).select_from(model)) == 0
    # A well typed as a number in the workbook is read as its text (no well), and a file
    # that is neither CSV nor a workbook is refused as such.
    numeric = post_run(staff["analyst"], content, plate_map=_xlsx(
        [["well", "kind", "name"], [11, "positive_control", "PC-1"]])).json
    assert {(p["line"], p["field"], p["message"]) for p in numeric["details"]["problems"]} >= {
        (2, "plate_map.well", "'11' is not a plate well (A01..P24)")}
    broken = post_run(staff["analyst"], content, plate_map=b"PK\x03\x04 not a zip").json
    assert {"field": "plate_map", "line": None, "sample": None,
            "message": "not a readable XLSX workbook (BadZipFile)"} in broken["details"][
        "problems"]
    assert session.scalar(sa.select(sa.func.count()).select_from(GenotypingRun)) == 0


def test_the_replicate_consensus_of_a_sample_is_computed_from_its_typings(session, lab, login):
    staff, trees = lab
    tusk = trees["KE"].sample_ids[0]
    aliquot = Sample(barcode="KE-S1-A", case_id=trees["KE"].case_id, sample_type="powder",
                     parent_id=tusk)
    session.add(aliquot)
    session.commit()
    url = f"/api/v1/samples/{tusk}/consensus"
    first = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": tusk, "panel": PANEL, "alleles": genotype(1)}).json
    alone = staff["investigator"].get(url).json["items"]
    assert [(c["panel"], c["n_replicates"], c["genotype"]) for c in alone] == [(PANEL, 1, None)]
    assert alone[0]["reason"] == "one typing only: a consensus needs at least two replicates"
    # The aliquot typed LA5 differently; a re-typing of the tusk did not type LAT24.
    second = staff["analyst"].post("/api/v1/profiles", json={
        "sample_id": aliquot.id, "panel": PANEL,
        "alleles": {**genotype(1), "LA5": [92, 96]}}).json
    retyped = {locus: alleles for locus, alleles in genotype(1).items() if locus != "LAT24"}
    retyping = staff["analyst"].post(f"/api/v1/profiles/{first['id']}/confirmations",
                                     json={"method": "re-typing", "alleles": retyped}).json
    answer = staff["investigator"].get(url)
    assert answer.status_code == 200, answer.json
    (found,) = answer.json["items"]
    assert [(r["kind"], r["barcode"], r["profile_id"], r["confirmation_id"])
            for r in found["replicates"]] == [
        ("profile", "KE-S1", first["id"], None), ("re-typing", "KE-S1", first["id"],
                                                  retyping["id"]),
        ("profile", "KE-S1-A", second["id"], None)]
    # FH67 and FH71 alike in all three, LAT24 alike in the two that typed it; LA5 differs.
    g = genotype(1)
    assert found["genotype"] == {"FH67": g["FH67"], "FH71": g["FH71"], "LAT24": g["LAT24"]}
    assert found["left_out"] == {"LA5": "typed differently: 88/120, 92/96"}
    assert found["rule"].startswith("a locus is in the consensus with a genotype typed "
                                    "identically in at least two replicates")
    # From the aliquot only its own typing counts (the parent is no aliquot of it).
    of_aliquot = staff["investigator"].get(f"/api/v1/samples/{aliquot.id}/consensus").json
    assert of_aliquot["items"][0]["n_replicates"] == 1
    assert staff["investigator"].get(f"{url}?panel=other_panel").json["items"] == []
    # Need-to-know and the permission matrix.
    assert staff["other"].get(url).status_code == 404
    assert login("researcher").get(url).status_code == 403
