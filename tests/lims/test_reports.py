"""Reports: their numbers against the engine run independently here, the PDF against the HTML,
signatures and issue, immutability (API and database), amendments, need-to-know, the hit
notification, and the ENFSI wording.

The scenario is the one of :mod:`tests.lims.test_match_requests`: agency A's seizure SZ-A holds
one tusk of a pair whose other tusk is in SZ-B (agency A) and the parent of an animal whose
tusk is in SZ-C (agency B, not shared). The choice of allele frequencies is tested on the demo's
savanna elephant seizures and on a seizure of savanna and forest elephant tusks.
"""

from __future__ import annotations

import hashlib
import html as html_module
import io
import json
import math
import re
from types import SimpleNamespace

import numpy as np
import pypdf
import pytest
import sqlalchemy as sa

from dnatrack.genotypes import AlleleCoding, GenotypeTable
from dnatrack.panels import load_panel
from dnatrack.reference import load_reference_set
from dnatrack.simulate import ScenarioSpec, SeizureSpec, simulate
from lims import jobs
from lims.custody import canonical_json
from lims.database import create_database_engine
from lims.demo import DEMO_PASSWORD, load_demo
from lims.extensions import db
from lims.models import GenotypeProfile, MatchRequest, Report, Sample, Seizure, SourceAnimal, User
from lims.permissions import ROLES, permissions_of
from lims.release import released_genotypes
from lims.reports.layout import present
from lims.reports.wording import (
    format_coordinates,
    format_decimal,
    format_likelihood_ratio,
    origin_text,
    propositions,
    verbal_equivalent,
)
from matching.analysis import RESULT_FORMAT
from matching.analysis.pipeline import chosen_pairs
from matching.analysis.references import (
    FrequencyGroup,
    combine_references,
    frequencies_record,
    reference_set_posterior,
)
from matching.assignment import AssignmentModel
from matching.frequencies import allele_counts, point_frequencies
from matching.geo import GeographicModel
from matching.kinship import DEFAULT_WITHIN_THETA, KinshipSearch
from matching.match_probability import match_probabilities
from matching.mixture import estimate_mixture
from matching.pair_search import locus_log10_lrs
from matching.relationships import RELATIONSHIPS
from matching.theta import ThetaChoice
from tests.lims.quality_support import confirm_hits
from tests.lims.test_match_requests import (
    FAST,
    PANEL,
    REFERENCE,
    World,
    alleles_of,
    load_profiles,
    load_scenario,
    request_body,
    run_to_end,
)
from tests.lims.test_sessions import log_in
from tests.lims.web_support import Browser, make_browser

THETA = 0.047  # the published value for savanna elephants, which the report must use
FOREST = "forest_elephant_simulated"
FOREST_THETA = 0.059  # the published value for forest elephants


@pytest.fixture
def world(app, agencies) -> World:
    return load_scenario(app, agencies)


@pytest.fixture
def staff(login):
    return {"investigator": login("investigator"), "analyst": login("analyst"),
            "reviewer": login("reviewer")}


def finished_request(app, world, staff, **changes) -> dict:
    request = run_to_end(app, staff["investigator"], request_body(world, **changes))
    assert request["status"] == "done", request["error"]
    # An evidential report needs its same-animal hits confirmed (tests/lims/test_quality*.py).
    confirm_hits(app, request["id"], staff["analyst"].user_id)
    return request


def issued_report(app, world, staff, **changes) -> tuple[dict, dict]:
    """A finished request and its evidential report, drafted by the analyst and issued by the
    reviewer's signature."""
    request = finished_request(app, world, staff, **changes)
    draft = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                  json={"kind": "evidential", "remarks": "Tusks compared."})
    assert draft.status_code == 201, draft.json
    assert draft.json["status"] == "draft" and draft.json["html_sha256"] is None
    issued = staff["reviewer"].post(f"/api/v1/reports/{draft.json['id']}/sign")
    assert issued.status_code == 200, issued.json
    return request, issued.json


def plain_text(markup: str) -> str:
    """Text of HTML without tags or any whitespace (the PDF's line breaks differ)."""
    return re.sub(r"\s+", "", html_module.unescape(re.sub(r"<[^>]+>", "", markup)))


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return re.sub(r"\s+", "", "".join(page.extract_text() for page in reader.pages))


def frequency_counts(reference_name: str, observed: GenotypeTable):
    """Allele counts of a reference set's animals, pooled, coding ``observed``'s alleles too."""
    reference = load_reference_set(reference_name)
    return allele_counts(reference.table.replace(population=None),
                         AlleleCoding.from_tables(reference.table).extend(observed))


def identical_loci(observed: GenotypeTable, i: int, j: int) -> list[int]:
    return [k for k in range(observed.n_loci)
            if observed.typed[i, k] and observed.typed[j, k]
            and (observed.alleles[i, k] == observed.alleles[j, k]).all()]


def scored_as_engine(pair: dict, observed: GenotypeTable, reference_name: str,
                     theta: float) -> None:
    """The pair's LRs and match probability are the engine's with ``reference_name``'s
    population frequencies (shrunk with ``theta``, the within-population θ for the LR) and
    ``theta`` for the match probability, computed here."""
    assert (pair["frequency_reference"], pair["theta"]) == (reference_name,
                                                            DEFAULT_WITHIN_THETA)
    i, j = observed.index_of(pair["sample1"]), observed.index_of(pair["sample2"])
    search = KinshipSearch.from_reference(load_reference_set(reference_name).table, observed,
                                          theta=theta, frequencies="population")
    log10_lr, compared = search.score_pairs(observed, [i], [j])
    assert pair["log10_lr_by_relationship"] == pytest.approx(
        dict(zip(RELATIONSHIPS, log10_lr[0], strict=True)), abs=1e-6)
    assert pair["loci_compared"] == compared[0]
    if pair["relationship"] == "same_animal":
        per_locus = match_probabilities(observed, frequency_counts(reference_name, observed),
                                        theta).per_locus
        assert pair["rmp"] == pytest.approx(np.prod(per_locus[i, identical_loci(observed, i, j)]),
                                            rel=1e-12)


# --------------------------------------------------------------------------- the numbers
def test_the_reports_numbers_are_the_engines(app, world, staff):
    request = finished_request(app, world, staff)
    result = staff["investigator"].get(f"/api/v1/match-requests/{request['id']}/result").json
    reference = load_reference_set(REFERENCE)
    observed = world.scenario.observed
    assert result["panel"]["loci_used"] == list(reference.table.loci)
    assert result["parameters"]["theta"] == {
        REFERENCE: {"value": THETA, "source": "published value for African savanna elephant"}}
    assert result["frequencies"]["statement"] == (
        f"Allele frequencies and θ of reference set {REFERENCE} (African savanna elephant), "
        "the only set chosen.")
    assert result["reference_sets"][0]["content_hash"] == reference.content_hash

    # The planted tusk pair is reported with details; the parent–offspring pair into agency
    # B's seizure only as a link.
    visible = [p for p in result["pairs"] if p["visible"]]
    hidden = [p for p in result["pairs"] if not p["visible"]]
    assert [(p["sample1"], p["sample2"], p["relationship"]) for p in visible] == [
        ("SZ-A-T004", "SZ-B-T001", "same_animal")]
    assert [(p["sample1"], p["node2"], p["relationship"]) for p in hidden] == [
        ("SZ-A-T001", "held:1", "parent_offspring")]

    # Likelihood ratios, whole and per locus, and the random match probability (sample 1's
    # genotype over the identical loci, NRC II 4.10), from searches built here.
    pair = visible[0]
    scored_as_engine(pair, observed, REFERENCE, THETA)
    i, j = observed.index_of(pair["sample1"]), observed.index_of(pair["sample2"])
    assert pair["log10_lr"] == pair["log10_lr_by_relationship"]["same_animal"]
    [shown] = [p for p in present(result)["pairs"] if p["visible"]]
    assert shown["verbal"] == "extremely strong support" and pair["log10_lr"] > 6
    # per-locus terms of the population that gives the pair the smaller LR; they add up to it
    search = KinshipSearch.from_reference(reference.table, observed, theta=THETA,
                                          frequencies="population")
    terms = locus_log10_lrs(search, observed, [i], [j])[0, :, 0]
    assert sum(e["log10_lr"] or 0.0 for e in pair["loci"]) == pytest.approx(pair["log10_lr"],
                                                                            abs=1e-6)
    for k, locus in enumerate(reference.table.loci):
        entry = pair["loci"][k]
        assert entry["locus"] == locus
        if observed.typed[i, k] and observed.typed[j, k]:
            assert entry["log10_lr"] == pytest.approx(terms[k], abs=1e-9)
        else:
            assert entry["log10_lr"] is None and not entry["compared"]
        assert entry["alleles1"] == (None if observed.alleles[i, k, 0] < 0 else
                                     observed.alleles[i, k].tolist())

    counts = frequency_counts(REFERENCE, observed)
    identical = identical_loci(observed, i, j)
    assert [e["match_probability"] is not None for e in pair["loci"]] == [
        k in identical for k in range(observed.n_loci)]
    # One locus by hand from the closed form, with the floored point frequencies.
    k = identical[0]
    frequencies = point_frequencies(counts.pooled())[0, k]
    codes = counts.coding.encode(observed.select_loci(counts.loci))[i, k]
    p, q = frequencies[codes[0]], frequencies[codes[1]]
    denominator = (1 + THETA) * (1 + 2 * THETA)
    if codes[0] == codes[1]:
        by_hand = (2 * THETA + (1 - THETA) * p) * (3 * THETA + (1 - THETA) * p) / denominator
    else:
        by_hand = 2 * (THETA + (1 - THETA) * p) * (THETA + (1 - THETA) * q) / denominator
    assert pair["loci"][k]["match_probability"] == pytest.approx(by_hand, rel=1e-12)

    # Population assignment, mixture and geographic origin of SZ-A's four tusks.
    subject = observed.take(np.flatnonzero(observed.group == "SZ-A"))
    assignment = AssignmentModel.from_reference(reference).assign(
        subject, exclusion_simulations=FAST["exclusion_simulations"], seed=1)
    for row, expected in zip(result["assignment"]["rows"], assignment.records(), strict=True):
        assert row["barcode"] == expected["indiv"]
        assert row["population"] == expected["inferred_collection"]
        assert row["posterior"] == pytest.approx(expected["scaled_likelihood"], rel=1e-12)
        assert row["repunit"] == expected["inferred_repunit"]
        assert row["z_score"] == pytest.approx(expected["z_score"], rel=1e-12)
        assert row["exclusion_p_value"] == pytest.approx(expected["exclusion_p_value"])
    # The engine's groups are the seizures' keys (a group's chain depends on its name).
    key = f"seizure:{world.seizure_ids['SZ-A']}"
    mixture = estimate_mixture(assignment, [key] * 4, n_sweeps=FAST["mixture_sweeps"],
                               burn_in=FAST["mixture_burn_in"], seed=1)
    expected_units = {r["repunit"]: r for r in mixture.repunit_records()}
    [group] = result["mixture"]
    assert (group["node"], group["group"], group["n_samples"]) == (key, "SZ-A", 4)
    for unit in group["repunits"]:
        engine = expected_units[unit["repunit"]]
        assert (unit["pi"], unit["lo95"], unit["hi95"], unit["em"]) == pytest.approx(
            (engine["repunit_pi"], engine["repunit_pi_lo95"], engine["repunit_pi_hi95"],
             engine["repunit_pi_em"]))
    geo = GeographicModel.from_reference(reference, n_cells=FAST["geo_cells"])
    surfaces = geo.seizure_surfaces(subject, [key] * 4, method="pooled")
    [surface] = result["geographic"]["surfaces"]
    assert (surface["node"], surface["group"]) == (key, "SZ-A")
    assert (surface["best_lat"], surface["best_lon"]) == pytest.approx(
        (surfaces.best_lat[0], surfaces.best_lon[0]))
    assert surface["posterior"] == pytest.approx(surfaces.posterior[0].tolist())
    assert surface["area90_km2"] == pytest.approx(surfaces.region_area_km2(0.9)[0])
    assert surface["region50"] == np.flatnonzero(surfaces.credible_regions(0.5)[0]).tolist()
    assert math.isclose(sum(surface["posterior"]), 1.0, rel_tol=1e-9)


def test_the_pdf_opens_and_shows_what_the_html_shows(app, world, staff):
    request, report = issued_report(app, world, staff)
    html = staff["investigator"].get(f"/api/v1/reports/{report['id']}/html")
    pdf = staff["investigator"].get(f"/api/v1/reports/{report['id']}/pdf")
    assert html.status_code == pdf.status_code == 200
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert hashlib.sha256(html.data).hexdigest() == report["html_sha256"]
    assert hashlib.sha256(pdf.data).hexdigest() == report["pdf_sha256"]
    assert pdf.headers["X-Content-SHA256"] == report["pdf_sha256"]
    reader = pypdf.PdfReader(io.BytesIO(pdf.data))
    assert len(reader.pages) >= 3
    # The same figures: the network picture and one origin map, in both files.
    images = sum(len(page.images) for page in reader.pages)
    assert html.data.count(b'src="data:image/png;base64,') == images == 2

    result = present(
        staff["investigator"].get(f"/api/v1/match-requests/{request['id']}/result").json)
    [pair] = [p for p in result["pairs"] if p["visible"]]
    figures = [
        pair["lr_text"].replace("^", ""), f"{pair['log10_lr']:.2f}",
        pair["rmp_text"].replace("^", ""), pair["one_in_text"].replace("^", ""), pair["verbal"],
        *(f"{locus['log10_lr']:.3f}" for locus in pair["loci"] if locus["compared"]),
        "SZ-A", "SZ-B", "SZ-C", "AgencyB", report["number"], report["ledger_head_hash"],
        report["body_sha256"], result["reference_sets"][0]["content_hash"],
        result["parameters_sha256"], result["panel"]["content_hash"],
        *(f"{abs(surface['best_lat']):.2f}° {'S' if surface['best_lat'] < 0 else 'N'}"
          for surface in result["geographic"]["surfaces"]),
        *(f"{100 * row['posterior']:.1f}%" for row in result["assignment"]["rows"]),
    ]
    in_html, in_pdf = plain_text(html.data.decode()), pdf_text(pdf.data)
    for figure in figures:
        needle = re.sub(r"\s+", "", figure)
        assert needle in in_html, figure
        assert needle in in_pdf, figure
    # Draft previews are marked as such; the issued files are not.
    assert "DRAFT" not in in_pdf and "notissued" not in in_html


def test_issuing_needs_two_people_and_records_their_signatures(app, world, staff, login):
    request = finished_request(app, world, staff)
    both = login("analyst", "reviewer")
    draft = both.post(f"/api/v1/match-requests/{request['id']}/reports",
                      json={"kind": "evidential"}).json
    assert [s["role"] for s in draft["signatures"]] == ["analyst"]
    refused = both.post(f"/api/v1/reports/{draft['id']}/sign")
    assert refused.status_code == 403
    assert "may not also review" in refused.json["message"]
    preview = both.get(f"/api/v1/reports/{draft['id']}/pdf")
    assert preview.status_code == 200 and "DRAFT" in pdf_text(preview.data)
    assert "notyetsigned" in plain_text(both.get(f"/api/v1/reports/{draft['id']}/html").text)
    signed = staff["reviewer"].post(f"/api/v1/reports/{draft['id']}/sign").json
    assert signed["status"] == "issued" and signed["issued_at"]
    analyst, reviewer = signed["signatures"]
    assert (analyst["role"], analyst["user_id"]) == ("analyst", both.user_id)
    assert (reviewer["role"], reviewer["user_id"]) == ("reviewer", staff["reviewer"].user_id)
    html = plain_text(staff["investigator"].get(f"/api/v1/reports/{signed['id']}/html").text)
    for signature in signed["signatures"]:
        assert re.sub(r"\s+", "", signature["name"]) in html
        assert re.sub(r"\s+", "", signature["meaning"]) in html
        assert signature["signed_at"][:10] in html
    with app.app_context():
        report = db.session.get(Report, signed["id"])
        # The stored body is exactly what its hash covers, and names the ledger head.
        assert hashlib.sha256(canonical_json(report.body)).hexdigest() == report.body_sha256
        assert report.body["ledger_head"]["hash"] == report.ledger_head_hash


@pytest.mark.parametrize("role", ROLES)
def test_report_actions_follow_the_role_permissions(app, world, staff, login, role):
    request = finished_request(app, world, staff)
    caller = login(role)
    granted = permissions_of([role])
    drafted = caller.post(f"/api/v1/match-requests/{request['id']}/reports",
                          json={"kind": "evidential"})
    assert drafted.status_code == (201 if "report.prepare" in granted else 403)
    if drafted.status_code != 201:
        drafted = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                        json={"kind": "evidential"})
    signed = caller.post(f"/api/v1/reports/{drafted.json['id']}/sign")
    assert signed.status_code == (200 if "report.review" in granted else 403)
    read = caller.get(f"/api/v1/reports/{drafted.json['id']}")
    assert read.status_code == (200 if "record.read" in granted else 403)


# --------------------------------------------------------------------------- immutability
def test_issued_reports_never_change(app, world, staff, database_url):
    request, report = issued_report(app, world, staff)
    analyst = staff["analyst"]
    url = f"/api/v1/reports/{report['id']}"
    pdf_before = analyst.get(f"{url}/pdf").data
    for response in (analyst.patch(url, json={"remarks": "changed"}), analyst.delete(url),
                     staff["reviewer"].post(f"{url}/sign")):
        assert response.status_code == 409, response.json
        assert "issued" in response.json["message"]
    assert staff["investigator"].post(
        f"/api/v1/match-requests/{request['id']}/run").status_code == 200
    jobs.run_queued(app)  # new results do not touch the issued report
    assert analyst.get(url).json == report
    assert analyst.get(f"{url}/pdf").data == pdf_before
    # The database refuses too, whoever asks.
    engine = create_database_engine(database_url)
    try:
        for statement in (
            f"UPDATE report SET remarks = 'changed' WHERE id = {report['id']}",
            f"DELETE FROM report WHERE id = {report['id']}",
            f"UPDATE report_signature SET signer_name = 'x' WHERE report_id = {report['id']}",
            f"DELETE FROM report_signature WHERE report_id = {report['id']}",
        ):
            with pytest.raises(sa.exc.DBAPIError, match="issued|cannot change"):
                with engine.begin() as connection:
                    connection.execute(sa.text(statement))
    finally:
        engine.dispose()
    assert analyst.get(f"{url}/pdf").data == pdf_before


def test_an_amendment_is_a_new_version_naming_the_one_it_replaces(app, world, staff):
    request, first = issued_report(app, world, staff)
    analyst = staff["analyst"]
    refused = analyst.post(f"/api/v1/reports/{first['id']}/amendments", json={"reason": " "})
    assert refused.status_code == 422
    assert refused.json["details"]["problems"][0]["field"] == "reason"
    amended = analyst.post(f"/api/v1/reports/{first['id']}/amendments",
                           json={"reason": "Typing error in the remarks corrected.",
                                 "remarks": "Tusks compared again."})
    assert amended.status_code == 201, amended.json
    second = amended.json
    assert (second["version"], second["replaces_id"], second["status"]) == (
        2, first["id"], "draft")
    assert second["number"] == f"MR{request['id']}-E-v2"
    # Only the latest version is amended; a draft is revised instead.
    assert analyst.post(f"/api/v1/reports/{second['id']}/amendments",
                        json={"reason": "x"}).status_code == 409
    issued = staff["reviewer"].post(f"/api/v1/reports/{second['id']}/sign").json
    assert analyst.post(f"/api/v1/reports/{first['id']}/amendments",
                        json={"reason": "x"}).status_code == 409
    text = plain_text(analyst.get(f"/api/v1/reports/{issued['id']}/html").text)
    assert f"amendsandreplacesMR{request['id']}-E-v1" in text
    assert "Typingerrorintheremarkscorrected." in text and "Tuskscomparedagain." in text
    old = analyst.get(f"/api/v1/reports/{first['id']}")
    assert old.json == first
    listed = analyst.get(f"/api/v1/reports?match_request_id={request['id']}").json["items"]
    assert [(r["version"], r["status"]) for r in listed] == [(1, "issued"), (2, "issued")]


def test_drafts_can_be_revised_or_withdrawn_and_hold_back_a_rerun(app, world, staff, login):
    request = finished_request(app, world, staff)
    analyst = staff["analyst"]
    draft = analyst.post(f"/api/v1/match-requests/{request['id']}/reports",
                         json={"kind": "evidential", "remarks": "first"}).json
    assert analyst.post(f"/api/v1/match-requests/{request['id']}/reports",
                        json={"kind": "evidential"}).status_code == 409
    rerun = staff["investigator"].post(f"/api/v1/match-requests/{request['id']}/run")
    assert rerun.status_code == 409 and "draft" in rerun.json["message"]
    other = login("analyst")
    assert other.patch(f"/api/v1/reports/{draft['id']}",
                       json={"remarks": "mine"}).status_code == 403
    revised = analyst.patch(f"/api/v1/reports/{draft['id']}", json={"remarks": "second"}).json
    assert revised["remarks"] == "second" and revised["body_sha256"] != draft["body_sha256"]
    assert [s["role"] for s in revised["signatures"]] == ["analyst"]
    assert revised["signatures"][0]["signed_at"] >= draft["signatures"][0]["signed_at"]
    assert analyst.delete(f"/api/v1/reports/{draft['id']}").status_code == 204
    assert analyst.get(f"/api/v1/reports/{draft['id']}").status_code == 404
    assert staff["investigator"].post(
        f"/api/v1/match-requests/{request['id']}/run").status_code == 200
    queued = analyst.post(f"/api/v1/match-requests/{request['id']}/reports",
                          json={"kind": "evidential"})
    assert queued.status_code == 409 and "queued" in queued.json["message"]


# --------------------------------------------------------------------------- need-to-know
def test_links_into_another_agencys_seizure_show_only_its_reference_and_agency(
        app, world, staff, login, agencies):
    request, report = issued_report(app, world, staff)
    result = staff["investigator"].get(f"/api/v1/match-requests/{request['id']}/result")
    html = staff["investigator"].get(f"/api/v1/reports/{report['id']}/html").text
    pdf = pdf_text(staff["investigator"].get(f"/api/v1/reports/{report['id']}/pdf").data)
    # Agency B's tusk, its genotypes and its LR are nowhere; its seizure and agency are.
    hidden_barcodes = [b for b in world.sample_ids if b.startswith("SZ-C")]
    for text in (result.text, html, pdf):
        assert all(barcode not in text for barcode in hidden_barcodes)
        assert "SZ-C" in text and ("Agency B" in text or "AgencyB" in text)
    # Keyed without the other agency's record id.
    assert f"seizure:{world.seizure_ids['SZ-C']}" not in result.text
    node = result.json["nodes"]["held:1"]
    assert node == {"kind": "seizure", "reference": "SZ-C", "agency": "Agency B",
                    "visible": False, "in_subject": False, "case": None, "country": None,
                    "place": None, "seized_on": None}
    [link] = [link for link in result.json["links"] if link["node2"] == "held:1"]
    assert link["max_log10_lr"] is None and link["relationships"] == {"parent_offspring": 1}
    assert "B-CASE" not in result.text
    # Agency B's staff cannot read agency A's report at all.
    outsider = login("investigator", "analyst", "reviewer", agency="B")
    for url in (f"/api/v1/reports/{report['id']}", f"/api/v1/reports/{report['id']}/pdf",
                f"/api/v1/reports/{report['id']}/html"):
        assert outsider.get(url).status_code == 404
    assert outsider.get("/api/v1/reports").json["items"] == []
    # Once B shares its case with A, a new run shows the pair in full.
    owner_b = login("custodian", agency="B")
    assert owner_b.put(f"/api/v1/cases/{world.case_ids['B']}/shares/{agencies['A']}",
                       json={"access": "read"}).status_code == 201
    assert staff["investigator"].post(
        f"/api/v1/match-requests/{request['id']}/run").status_code == 200
    jobs.run_queued(app)
    shared = staff["investigator"].get(f"/api/v1/match-requests/{request['id']}/result").json
    [pair] = [p for p in shared["pairs"] if p["relationship"] == "parent_offspring"]
    assert pair["visible"] and pair["sample2"] == "SZ-C-T001" and pair["log10_lr"] > 0
    assert shared["nodes"][f"seizure:{world.seizure_ids['SZ-C']}"]["case"] == "B-CASE"


#: Two agencies' seizures that both carry the reference KE-001 (agency B's is loaded as
#: KE-001-B and renamed) and one more animal, all unrelated.
SAME_REFERENCE = ScenarioSpec(
    seizures=(SeizureSpec("KE-001", {"Amboseli": 1}, 4), SeizureSpec("KE-001-B", {"Tsavo": 1}, 3),
              SeizureSpec("SPARE", {"Samburu": 1}, 1)),
    same_animal_pairs=0, parent_offspring_pairs=0, full_sibling_pairs=0, half_sibling_pairs=0,
    missing_rate=0.05, dropout_rate=0.0, miscall_rate=0.0,
)


def test_two_agencies_seizures_and_carcasses_of_one_name_stay_apart(app, agencies, staff, login):
    """Agencies A and B each hold a seizure KE-001 and a carcass CARC-1 (B's case unshared).
    B's tusk KE-001-B-T001 is of the animal of A's tusk KE-001-T001, and B's carcass is the
    animal of A's tusk KE-001-T002; A's carcass is of another animal. A's results never merge
    the two KE-001 or the two CARC-1, and show of B's only the reference and the agency."""
    observed = simulate(load_reference_set(REFERENCE), SAME_REFERENCE, seed=3).observed
    alleles = observed.alleles.copy()
    alleles[observed.index_of("KE-001-B-T001")] = alleles[observed.index_of("KE-001-T001")]
    observed = observed.replace(alleles=alleles)
    tusks = observed.take(np.flatnonzero(observed.group != "SPARE"))
    case_ids, seizure_ids, _ = load_profiles(app, agencies, tusks,
                                             {"KE-001": "A", "KE-001-B": "B"})
    own, theirs = seizure_ids["KE-001"], seizure_ids["KE-001-B"]
    carcass_ids = {}
    with app.app_context():
        session = db.session
        session.get(Seizure, theirs).reference = "KE-001"
        for agency, animal in (("A", "SPARE-T001"), ("B", "KE-001-T002")):
            carcass = SourceAnimal(case_id=case_ids[agency], identifier="CARC-1", kind="carcass")
            sample = Sample(barcode=f"{agency}-CARC-1", case_id=case_ids[agency],
                            sample_type="tissue", source_animal=carcass)
            session.add_all([carcass, sample])
            session.flush()
            typed = alleles_of(observed, observed.index_of(animal))
            analyst_id = session.scalar(sa.select(User.id).where(
                User.username == f"lab-analyst-{agency}"))
            session.add(GenotypeProfile(sample_id=sample.id, panel=PANEL, alleles=typed,
                                        n_loci_typed=len(typed), state="released",
                                        analyst_id=analyst_id))
            carcass_ids[agency] = carcass.id
        session.commit()
        # The table handed to the engine keeps the two KE-001 apart.
        released = released_genotypes(session, load_panel(PANEL))
        assert dict(zip(released.profile_ids, released.group, strict=True)) == {
            **{f"KE-001-T00{k}": "KE-001 (A)" for k in range(1, 5)},
            **{f"KE-001-B-T00{k}": "KE-001 (B)" for k in range(1, 4)},
            "A-CARC-1": "", "B-CARC-1": ""}
    own_key, own_carcass = f"seizure:{own}", f"animal:{carcass_ids['A']}"
    theirs_keys = (f"seizure:{theirs}", f"animal:{carcass_ids['B']}")
    investigator = staff["investigator"]

    def hidden(kind: str, reference: str) -> dict:
        return {"kind": kind, "reference": reference, "agency": "Agency B", "visible": False,
                "in_subject": False, "case": None, "country": None, "place": None,
                "seized_on": None}

    # A request on A's seizure: its four tusks, and two links into B's records.
    request = run_to_end(app, investigator, {
        "seizure_id": own, "analyses": ["identity", "mixture", "geographic"],
        "reference_sets": [REFERENCE], "parameters": dict(FAST)})
    assert request["status"] == "done", request["error"]
    response = investigator.get(f"/api/v1/match-requests/{request['id']}/result")
    result = response.json
    assert sorted(p["barcode"] for p in result["subject_profiles"]) == [
        f"KE-001-T00{k}" for k in range(1, 5)]
    assert {p["node"] for p in result["subject_profiles"]} == {own_key}
    assert result["searched"] == {"released_profiles": 9, "subject_profiles": 4}
    assert result["nodes"] == {
        own_key: {"kind": "seizure", "reference": "KE-001", "agency": "Agency A",
                  "visible": True, "in_subject": True, "case": "A-CASE", "country": "Kenya",
                  "place": None, "seized_on": None},
        "held:1": hidden("carcass", "CARC-1"),
        "held:2": hidden("seizure", "KE-001"),
    }
    assert {(p["sample1"], p["node2"], p["relationship"], p["visible"])
            for p in result["pairs"]} == {("KE-001-T001", "held:2", "same_animal", False),
                                          ("KE-001-T002", "held:1", "same_animal", False)}
    assert [(link["node1"], link["node2"]) for link in result["links"]] == [
        (own_key, "held:1"), (own_key, "held:2")]
    assert result["within_node_pairs"] == 0
    assert [(g["node"], g["group"], g["n_samples"]) for g in result["mixture"]] == [
        (own_key, "KE-001", 4)]
    assert [(s["node"], s["group"]) for s in result["geographic"]["surfaces"]] == [
        (own_key, "KE-001")]
    for secret in ("KE-001-B-T", "B-CARC-1", "B-CASE", *theirs_keys):
        assert secret not in response.text

    # A request on A's case: its seizure and its carcass, B's carcass of the same name apart;
    # the hit notification names B's records by reference and agency only.
    case_request = run_to_end(app, investigator, {
        "case_id": case_ids["A"], "analyses": ["identity"], "reference_sets": [REFERENCE],
        "parameters": dict(FAST)})
    result = investigator.get(f"/api/v1/match-requests/{case_request['id']}/result").json
    assert {p["node"] for p in result["subject_profiles"]} == {own_key, own_carcass}
    assert set(result["nodes"]) == {own_key, own_carcass, "held:1", "held:2"}
    assert result["nodes"][own_carcass] == {
        "kind": "carcass", "reference": "CARC-1", "agency": "Agency A", "visible": True,
        "in_subject": True, "case": "A-CASE", "country": None, "place": None, "seized_on": None}
    assert result["nodes"]["held:1"] == hidden("carcass", "CARC-1")
    lead = staff["analyst"].post(f"/api/v1/match-requests/{case_request['id']}/reports",
                                 json={"kind": "lead"})
    assert lead.status_code == 201, lead.json
    html = investigator.get(f"/api/v1/reports/{lead.json['id']}/html").text
    pdf = pdf_text(investigator.get(f"/api/v1/reports/{lead.json['id']}/pdf").data)
    for text in (plain_text(html), pdf):
        assert "carcassCARC-1(heldbyAgencyB)" in text and "seizureKE-001(heldbyAgencyB)" in text
        assert all(secret not in text for secret in ("KE-001-B-T", "B-CARC-1", "B-CASE"))

    # Once B shares its case, the links show B's records in full, still apart from A's.
    assert login("custodian", agency="B").put(
        f"/api/v1/cases/{case_ids['B']}/shares/{agencies['A']}",
        json={"access": "read"}).status_code == 201
    assert investigator.post(f"/api/v1/match-requests/{request['id']}/run").status_code == 200
    jobs.run_queued(app)
    result = investigator.get(f"/api/v1/match-requests/{request['id']}/result").json
    assert {key: (node["reference"], node["agency"], node["case"], node["in_subject"])
            for key, node in result["nodes"].items()} == {
        own_key: ("KE-001", "Agency A", "A-CASE", True),
        theirs_keys[0]: ("KE-001", "Agency B", "B-CASE", False),
        theirs_keys[1]: ("CARC-1", "Agency B", "B-CASE", False)}
    assert {(p["sample1"], p["sample2"], p["visible"]) for p in result["pairs"]} == {
        ("KE-001-T001", "KE-001-B-T001", True), ("KE-001-T002", "B-CARC-1", True)}
    assert [g["n_samples"] for g in result["mixture"]] == [4]
    lead = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                 json={"kind": "lead"})
    text = plain_text(investigator.get(f"/api/v1/reports/{lead.json['id']}/html").text)
    assert "seizureKE-001(heldbyAgencyB)" in text and "carcassCARC-1(heldbyAgencyB)" in text


def test_a_hit_notification_is_a_separate_clearly_labelled_document(app, world, staff):
    request = finished_request(app, world, staff)
    lead = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                 json={"kind": "lead"})
    assert lead.status_code == 201
    assert lead.json["status"] == "issued"  # a lead needs no review
    assert [s["role"] for s in lead.json["signatures"]] == ["analyst"]
    assert lead.json["number"] == f"MR{request['id']}-L-v1"
    assert staff["reviewer"].post(f"/api/v1/reports/{lead.json['id']}/sign").status_code == 409
    html = staff["investigator"].get(f"/api/v1/reports/{lead.json['id']}/html").text
    pdf = pdf_text(staff["investigator"].get(f"/api/v1/reports/{lead.json['id']}/pdf").data)
    for text in (plain_text(html), pdf):
        assert "INVESTIGATIVELEAD—HITNOTIFICATION" in text
        assert "notanevidentialreport" in text
        assert "SZ-B" in text and "SZ-C" in text and "AgencyB" in text
        assert "log10LR" not in text and "Propositions" not in text
    # The evidential report of the same request is numbered on its own.
    draft = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                  json={"kind": "evidential"}).json
    assert (draft["version"], draft["number"]) == (1, f"MR{request['id']}-E-v1")


# --------------------------------------------------------------------------- pages
def test_the_report_pages_draft_sign_and_download(app, world, staff, agencies):
    request = finished_request(app, world, staff)
    analyst = make_browser(app, agencies, "analyst")
    page = analyst.get(f"/match-requests/{request['id']}").get_data(as_text=True)
    assert "Draft and sign as analyst" in page
    drafted = analyst.post(f"/match-requests/{request['id']}/reports",
                           {"kind": "evidential", "remarks": "From the page."})
    assert drafted.status_code == 302
    report_url = drafted.headers["Location"]
    reviewer = make_browser(app, agencies, "reviewer")
    assert "Sign as reviewer and issue" in reviewer.get(report_url).get_data(as_text=True)
    assert "Sign as reviewer" not in analyst.get(report_url).get_data(as_text=True)
    signed = reviewer.post(report_url + "/sign")
    assert signed.status_code == 302
    shown = reviewer.get(report_url).get_data(as_text=True)
    assert "issued" in shown and "Download the PDF" in shown
    pdf = reviewer.get(report_url + "/document.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    with app.app_context():
        stored = db.session.scalars(sa.select(Report)).one()
        assert hashlib.sha256(pdf.data).hexdigest() == stored.pdf_sha256
        assert stored.remarks == "From the page."
    assert reviewer.get(report_url + "/document.txt").status_code == 404
    refused = reviewer.post(report_url + "/withdraw")
    assert refused.status_code == 403  # reviewers do not prepare reports


# --------------------------------------------------------------------------- wording
# The ENFSI scale as the guideline tabulates it, by LR (not log10 LR) ranges.
ENFSI = [(1, 2, "no support"), (2, 10, "weak support"), (10, 100, "moderate support"),
         (100, 1_000, "moderately strong support"), (1_000, 10_000, "strong support"),
         (10_000, 1_000_000, "very strong support"),
         (1_000_000, math.inf, "extremely strong support")]


@pytest.mark.parametrize("lr", [1, 1.5, 2, 3.7, 9.99, 10, 55, 100, 999, 1_000, 9_999, 10_000,
                                123_456, 999_999, 1_000_000, 1e40])
def test_the_verbal_scale_follows_the_enfsi_table(lr):
    [words] = [w for low, high, w in ENFSI if low <= lr < high]
    found = verbal_equivalent(math.log10(lr))
    assert found.words == words
    assert found.favours == ("neither" if lr < 2 else "first")
    if lr >= 2:
        inverse = verbal_equivalent(-math.log10(lr))
        assert (inverse.words, inverse.favours) == (words, "second")


def test_conclusions_and_numbers_read_as_a_court_expects():
    stated = propositions("parent_offspring", "tusk A", "tusk B", "Loxodonta africana")
    assert stated["first"] == "tusk A and tusk B come from a parent elephant and its offspring"
    assert verbal_equivalent(4.5).sentence(stated["first"], stated["second"]) == (
        "The findings provide very strong support for the proposition that tusk A and tusk B "
        "come from a parent elephant and its offspring rather than that they come from two "
        "different, unrelated elephants.")
    assert "support for the proposition that they come from two different" in \
        verbal_equivalent(-2.5).sentence(stated["first"], stated["second"])
    assert propositions("same_animal", "horn 1", "carcass 7", "black rhino")["second"] == (
        "they come from two different, unrelated rhinoceroses")
    assert format_likelihood_ratio(16.418296) == "2.62 × 10^16"
    assert format_likelihood_ratio(4.322099) == "21,000"
    assert format_likelihood_ratio(400.0) == "1.00 × 10^400"  # beyond the range of a float
    assert format_decimal(3.1e-16) == "3.10 × 10^-16"
    assert format_decimal(0.5) == "0.500" and format_decimal(140740.2) == "141,000"
    with pytest.raises(ValueError, match="must be a number"):
        verbal_equivalent(math.nan)


def test_the_most_likely_origin_is_worded_with_hemispheres_and_a_place():
    sites = [{"name": "Amboseli", "lat": -2.65, "lon": 37.26},
             {"name": "Equator_site", "lat": 0.0, "lon": 30.0}]
    geographic = {"sites": sites}
    assert format_coordinates(-2.345, 37.123) == "2.35° S, 37.12° E"
    assert format_coordinates(7.5, -5.5) == "7.50° N, 5.50° W"
    # At a reference site in Kenya, and one degree of longitude (111.2 km on the equator)
    # east of a site, in Uganda.
    assert origin_text(geographic, {"best_lat": -2.6, "best_lon": 37.2}) == (
        "2.60° S, 37.20° E, near Amboseli (Kenya)")
    assert origin_text(geographic, {"best_lat": 0.0, "best_lon": 31.0}) == (
        "0.00° N, 31.00° E, in Uganda, 111 km from Equator site")
    # Lesotho is a hole in South Africa's outline; the Atlantic is no country.
    assert "in Lesotho" in origin_text(geographic, {"best_lat": -29.5, "best_lon": 28.2})
    assert origin_text({"sites": []}, {"best_lat": 0.0, "best_lon": -10.0}) == (
        "0.00° N, 10.00° W")


def test_the_json_result_has_no_values_json_cannot_hold(app, world, staff):
    request = finished_request(app, world, staff)
    with app.app_context():
        raw = db.session.execute(sa.text(
            "SELECT CAST(result AS TEXT) FROM match_request WHERE id = :id"),
            {"id": request["id"]}).scalar_one()
    assert "NaN" not in raw and "Infinity" not in raw
    assert json.loads(raw)["format"] == RESULT_FORMAT


def test_results_of_an_older_layout_are_run_again_before_a_report(app, world, staff):
    request = finished_request(app, world, staff)
    with app.app_context():
        record = db.session.get(MatchRequest, request["id"])
        record.result = {**record.result, "format": 1}
        db.session.commit()
    refused = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                    json={"kind": "evidential"})
    assert refused.status_code == 409 and "run it again" in refused.json["message"]


# --------------------------------------------------------------------------- frequencies
def demo_browser(app, username: str) -> Browser:
    """A demo user logged in through the login form."""
    browser = log_in(app, username, DEMO_PASSWORD)
    assert browser is not None, f"{username} could not log in"
    return browser


def test_a_savanna_seizure_is_scored_with_savanna_frequencies_when_forest_is_chosen_first(app):
    """The demo walkthrough: the investigator requests the analyses of KE-MBA-2401 with the
    form's default reference sets, forest elephants first; the report links KE-NBO-2403 by the
    planted tusk pair and parent–offspring pairs, and nothing else."""
    with app.app_context():
        contents = load_demo(db.session)
        db.session.commit()
        seizure_id = db.session.scalar(sa.select(Seizure.id).where(
            Seizure.reference == "KE-MBA-2401"))
    scenario = contents.ivory
    observed = scenario.observed.replace(
        profile_ids=[contents.barcodes[item] for item in scenario.observed.profile_ids])
    subject = sorted(contents.barcodes[item] for item in scenario.observed.profile_ids
                     if item.startswith("SZ01-"))

    investigator = demo_browser(app, "investigator")
    form = investigator.get(f"/match-requests/new?seizure_id={seizure_id}").get_data(
        as_text=True)
    chosen = re.findall(r'<input checked [^>]*name="reference_sets"[^>]*value="([^"]+)"', form)
    assert chosen == [FOREST, REFERENCE]
    created = investigator.post("/match-requests/new", {
        "subject": f"seizure:{seizure_id}", "analyses": ["identity", "kinship"],
        "reference_sets": chosen, "stringency": "moderate"})
    assert created.status_code == 302
    jobs.run_queued(app)
    request_id = int(created.headers["Location"].rsplit("/", 1)[1])
    result = investigator.get(f"/api/v1/match-requests/{request_id}/result").json

    # The frequencies are the savanna set's, for every profile, and the result says why.
    [used] = result["frequencies"]["sets"]
    assert (used["reference"], used["theta"]) == (REFERENCE, THETA)
    assert sorted(used["samples"]) == subject and result["frequencies"]["uncertain"] == []
    assert result["frequencies"]["statement"].startswith(
        f"Allele frequencies and θ of reference set {REFERENCE} (African savanna elephant): "
        f"all 14 profiles of the subject are assigned to it rather than to {FOREST}")
    assert list(result["parameters"]["theta"]) == [REFERENCE]

    # Exactly the planted pairs are reported: no unrelated tusks turned half siblings.
    planted = {frozenset((contents.barcodes[r.item1], contents.barcodes[r.item2])):
               r.relationship for r in scenario.relationships
               if r.item1.startswith("SZ01-") or r.item2.startswith("SZ01-")}
    assert sorted(planted.values()) == ["parent_offspring", "parent_offspring", "same_animal"]
    assert all(pair["visible"] for pair in result["pairs"])
    assert {frozenset((p["sample1"], p["sample2"])): p["relationship"]
            for p in result["pairs"]} == planted
    [link] = result["links"]
    assert link["node1"] == f"seizure:{seizure_id}"
    assert [result["nodes"][link[side]]["reference"] for side in ("node1", "node2")] == [
        "KE-MBA-2401", "KE-NBO-2403"]
    for pair in result["pairs"]:
        scored_as_engine(pair, observed, REFERENCE, THETA)
    # The forest set's frequencies would have made unrelated tusks look like half siblings.
    cutoff = result["parameters"]["kinship"][REFERENCE]["cutoffs"]["half_sibling"]
    forest = KinshipSearch.from_reference(load_reference_set(FOREST).table, observed,
                                          theta=FOREST_THETA)
    rows = [observed.index_of(barcode) for barcode in subject]
    others = [k for k in range(len(observed)) if k not in rows]
    first, second = np.array([(i, j) for i in rows for j in others
                              if frozenset((str(observed.profile_ids[i]),
                                            str(observed.profile_ids[j]))) not in planted]).T
    forest_lr, _ = forest.score_pairs(observed, first, second)
    assert (forest_lr[:, forest.relationships.index("half_sibling")] >= cutoff).sum() > 5

    # The issued report names the savanna set as the source of the frequencies.
    analyst = demo_browser(app, "analyst")
    drafted = analyst.post(f"/match-requests/{request_id}/reports", {"kind": "evidential"})
    report_url = drafted.headers["Location"]
    assert demo_browser(app, "reviewer").post(report_url + "/sign").status_code == 302
    html = plain_text(analyst.get(report_url + "/document.html").get_data(as_text=True))
    pdf = pdf_text(analyst.get(report_url + "/document.pdf").data)
    statement = re.sub(r"\s+", "", f"reference set {REFERENCE} (African savanna elephant): "
                                   "all 14 profiles of the subject are assigned to it")
    assert statement in html and statement in pdf
    assert "KE-NBO-2403" in pdf


MIXED_SAVANNA = ScenarioSpec(
    seizures=(SeizureSpec("SZ-M", {"Amboseli": 1}, 4), SeizureSpec("SZ-S", {"Tsavo": 1}, 3)),
    same_animal_pairs=1, parent_offspring_pairs=0, full_sibling_pairs=0, half_sibling_pairs=0,
    missing_rate=0.05, dropout_rate=0.0, miscall_rate=0.0, item_prefix="T",
)
MIXED_FOREST = ScenarioSpec(
    seizures=(SeizureSpec("SZ-M", {"Lope": 1}, 3), SeizureSpec("SZ-F", {"Minkebe": 1}, 3)),
    same_animal_pairs=1, parent_offspring_pairs=0, full_sibling_pairs=0, half_sibling_pairs=0,
    missing_rate=0.05, dropout_rate=0.0, miscall_rate=0.0, item_prefix="F",
)


def test_a_mixed_seizure_scores_each_tusk_with_its_own_species_frequencies(app, agencies,
                                                                          staff):
    """Seizure SZ-M holds four savanna and three forest elephant tusks; one savanna tusk's
    partner is in SZ-S, one forest tusk's in SZ-F."""
    savanna = simulate(load_reference_set(REFERENCE), MIXED_SAVANNA, seed=1)
    forest = simulate(load_reference_set(FOREST), MIXED_FOREST, seed=1)
    observed = GenotypeTable.concat([savanna.observed, forest.observed])
    _, seizure_ids, _ = load_profiles(app, agencies, observed,
                                      {"SZ-M": "A", "SZ-S": "A", "SZ-F": "A"})
    request = run_to_end(app, staff["investigator"], {
        "seizure_id": seizure_ids["SZ-M"], "analyses": ["identity", "kinship"],
        "reference_sets": [FOREST, REFERENCE], "parameters": dict(FAST)})
    assert request["status"] == "done", request["error"]
    result = staff["investigator"].get(f"/api/v1/match-requests/{request['id']}/result").json

    truth = {REFERENCE: [b for b in savanna.observed.profile_ids if b.startswith("SZ-M")],
             FOREST: [b for b in forest.observed.profile_ids if b.startswith("SZ-M")]}
    frequencies = result["frequencies"]
    assert [(s["reference"], s["theta"], sorted(s["samples"])) for s in frequencies["sets"]] == [
        (FOREST, FOREST_THETA, sorted(truth[FOREST])), (REFERENCE, THETA, sorted(truth[REFERENCE]))]
    assert frequencies["statement"].startswith(
        f"The subject's profiles are assigned to 2 reference sets: 3 to {FOREST} (African "
        f"forest elephant), 4 to {REFERENCE} (African savanna elephant).")
    assert any("assigned to different reference sets" in c for c in result["caveats"])
    assert set(result["parameters"]["kinship"]) == {FOREST, REFERENCE}

    planted = {frozenset((r.item1, r.item2)): (r.relationship, name)
               for name, part in ((REFERENCE, savanna), (FOREST, forest))
               for r in part.relationships}
    assert {frozenset((p["sample1"], p["sample2"])): (p["relationship"], p["frequency_reference"])
            for p in result["pairs"]} == planted
    thetas = {REFERENCE: THETA, FOREST: FOREST_THETA}
    for pair in result["pairs"]:
        scored_as_engine(pair, observed, pair["frequency_reference"],
                         thetas[pair["frequency_reference"]])

    confirm_hits(app, request["id"], staff["analyst"].user_id)
    draft = staff["analyst"].post(f"/api/v1/match-requests/{request['id']}/reports",
                                  json={"kind": "evidential"}).json
    html = plain_text(staff["analyst"].get(f"/api/v1/reports/{draft['id']}/html").text)
    assert re.sub(r"\s+", "", frequencies["statement"]) in html
    assert f"0.059(publishedvalueforAfricanforestelephant),withthefrequenciesof{FOREST}" in html


def _found(*rows: tuple[str, str, float]) -> SimpleNamespace:
    return SimpleNamespace(found=SimpleNamespace(rows=[
        {"sample1": first, "sample2": second, "log10_lr": lr} for first, second, lr in rows]))


def test_a_pair_across_reference_sets_needs_both_and_keeps_the_lower_lr():
    # s1 and s2 are subject profiles of set 0, s3 of set 1; d1 is in the database.
    searches = [_found(("s1", "s2", 5.0), ("s1", "s3", 4.0), ("s2", "s3", 9.0), ("s1", "d1", 7.0)),
                _found(("s1", "s3", 3.5), ("s3", "d1", 6.0))]
    chosen, dropped = chosen_pairs(searches, {"s1": 0, "s2": 0, "s3": 1})
    assert [(row["sample1"], row["sample2"], row["log10_lr"], k) for row, k in chosen] == [
        ("s1", "d1", 7.0, 0), ("s1", "s2", 5.0, 0), ("s1", "s3", 3.5, 1), ("s3", "d1", 6.0, 1)]
    assert dropped == 1  # s2–s3: only set 0's frequencies support it


def test_profiles_assigned_to_their_reference_set_with_doubt_are_named():
    savanna = SimpleNamespace(name=REFERENCE, species="African savanna elephant")
    forest = SimpleNamespace(name=FOREST, species="African forest elephant")
    subject = SimpleNamespace(profile_ids=np.array(["a", "b", "c"]))
    record = frequencies_record([
        FrequencyGroup(forest, ThetaChoice(FOREST_THETA, "forest"), np.array([1]),
                       np.array([0.95])),
        FrequencyGroup(savanna, ThetaChoice(THETA, "savanna"), np.array([0, 2]),
                       np.array([0.99999, 0.995])),
    ], [forest, savanna], subject)
    assert record["uncertain"] == [{"barcode": "b", "reference": FOREST, "posterior": 0.95}]
    assert [(s["reference"], s["samples"], s["lowest_posterior"]) for s in record["sets"]] == [
        (FOREST, ["b"], 0.95), (REFERENCE, ["a", "c"], 0.995)]

    # All assigned to one set: the lowest posterior is stated, never rounded up to 100%.
    record = frequencies_record([FrequencyGroup(
        savanna, ThetaChoice(THETA, "savanna"), np.array([0, 1, 2]),
        np.array([0.99999, 0.999996, 0.999999]))], [forest, savanna], subject)
    assert record["uncertain"] == []
    assert record["statement"] == (
        f"Allele frequencies and θ of reference set {REFERENCE} (African savanna elephant): all "
        f"3 profiles of the subject are assigned to it rather than to {FOREST} (lowest posterior "
        "probability above 99.99%, equal priors for the sets).")


# --------------------------------------------------------------------------- combined sets
def test_sets_sharing_a_population_name_combine_with_qualified_names():
    """The black and white rhino sets both sample Hluhluwe-iMfolozi: combined, the two stay
    two populations, each named with its set, and every animal keeps its own set's one."""
    black, white = (load_reference_set(name) for name in
                    ("black_rhino_simulated", "white_rhino_simulated"))
    shared = {p.name for p in black.populations} & {p.name for p in white.populations}
    assert shared, "the bundled rhino sets no longer share a population name"
    loci = [locus for locus in black.table.loci if locus in white.table.loci]
    combined = combine_references([black, white], loci)
    names = [p.name for p in combined.populations]
    assert len(names) == len(set(names)) == len(black.populations) + len(white.populations)
    for name in shared:
        assert f"{name} (black_rhino_simulated)" in names
        assert f"{name} (white_rhino_simulated)" in names
        assert name not in names
    for reference in (black, white):
        rows = [k for k, pid in enumerate(combined.table.profile_ids)
                if pid.startswith(f"{reference.name}:")]
        expected = [f"{p} ({reference.name})" if p in shared else p
                    for p in reference.table.population]
        assert [combined.table.population[k] for k in rows] == expected
    # The sets' posteriors still sum each set's own populations.
    posterior = reference_set_posterior([black, white], loci, black.table.select_loci(loci))
    assert posterior.shape == (len(black.table), 2)
    assert np.mean(posterior[:, 0] > 0.5) > 0.9


def test_the_demo_rhino_seizure_runs_with_the_sets_the_form_preselects(app):
    with app.app_context():
        load_demo(db.session)
        db.session.commit()
        seizure_id = db.session.scalar(sa.select(Seizure.id).where(
            Seizure.reference == "ZA-JNB-2405"))
    investigator = demo_browser(app, "investigator")
    form = investigator.get(f"/match-requests/new?seizure_id={seizure_id}").get_data(
        as_text=True)
    chosen = re.findall(r'<input checked [^>]*name="reference_sets"[^>]*value="([^"]+)"', form)
    assert sorted(chosen) == ["black_rhino_simulated", "white_rhino_simulated"]
    created = investigator.post("/match-requests/new", {
        "subject": f"seizure:{seizure_id}", "analyses": ["identity", "assignment", "mixture"],
        "reference_sets": chosen, "stringency": "moderate"})
    assert created.status_code == 302
    jobs.run_queued(app)
    request_id = int(created.headers["Location"].rsplit("/", 1)[1])
    request = investigator.get(f"/api/v1/match-requests/{request_id}").json
    assert (request["status"], request["error"]) == ("done", None)
