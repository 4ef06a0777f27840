"""The quality system in reports: an unconfirmed same-animal hit is refused as evidence, a
species test from an AB1 trace is stored and printed, the panel's validation is cited and an
analyst without a passed proficiency test is warned on signing.

The scenario is :mod:`tests.lims.test_match_requests`'s: seizure SZ-A holds one tusk of an
animal whose other tusk is in SZ-B (the simulation's truth says which), so an identity search
of SZ-A finds one same-animal hit to another seizure.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import numpy as np
import pytest
import sqlalchemy as sa

from lims.models import GenotypeProfile, QualityRecord, Report, Sample, SpeciesTest
from matching.species import BarcodeSet, default_barcode_set
from tests._species_helpers import write_abif
from tests.lims.test_match_requests import PANEL, World, load_scenario, request_body, run_to_end
from tests.lims.test_reports import pdf_text, plain_text

SAVANNA = "Loxodonta_africana_NC_000934_cytb"
MAMMOTH = "Mammuthus_primigenius_NC_007596_cytb"


@pytest.fixture
def world(app, agencies) -> World:
    return load_scenario(app, agencies)


@pytest.fixture
def staff(login):
    return {"investigator": login("investigator"), "analyst": login("analyst"),
            "reviewer": login("reviewer")}


def cross_seizure_pair(world: World) -> tuple[str, str]:
    """The SZ-A sample and its same-animal SZ-B sample, from the simulation's truth."""
    items = world.scenario.items
    for first in items:
        for second in items:
            if ((first.seizure, second.seizure) == ("SZ-A", "SZ-B")
                    and first.animal_id == second.animal_id):
                return first.item_id, second.item_id
    raise AssertionError("the scenario has no SZ-A/SZ-B tusk pair")


def upload_trace(caller, sample_id: int, path) -> dict:
    answer = caller.client.post(
        f"/api/v1/samples/{sample_id}/species-tests", headers=caller.headers,
        data={"file": (io.BytesIO(path.read_bytes()), path.name), "marker": "cytb"},
        content_type="multipart/form-data")
    assert answer.status_code == 201, answer.json
    return answer.json


def test_evidence_needs_confirmed_hits_and_prints_species_validation_and_warnings(
        app, world, staff, session, tmp_path):
    first, second = cross_seizure_pair(world)
    request = run_to_end(app, staff["investigator"], request_body(world, analyses=["identity"]))
    assert request["status"] == "done", request["error"]
    result = staff["investigator"].get(f"/api/v1/match-requests/{request['id']}/result").json
    hits = [pair for pair in result["pairs"]
            if pair["relationship"] == "same_animal" and pair["node1"] != pair["node2"]]
    assert [(pair["sample1"], pair["sample2"]) for pair in hits] == [(first, second)]
    url = f"/api/v1/match-requests/{request['id']}/reports"

    refused = staff["analyst"].post(url, json={"kind": "evidential"})
    assert refused.status_code == 409
    assert (f"the same-animal hit of {first} to {second} is not confirmed"
            in refused.json["message"])
    assert session.scalar(sa.select(sa.func.count()).select_from(Report)) == 0
    # As an investigative lead it goes out at once.
    lead = staff["analyst"].post(url, json={"kind": "lead"})
    assert lead.status_code == 201 and lead.json["status"] == "issued"

    sample = session.scalar(sa.select(Sample).where(Sample.barcode == first))
    profile = session.scalar(sa.select(GenotypeProfile).where(
        GenotypeProfile.sample_id == sample.id, GenotypeProfile.superseded.is_(False)))
    retyped = {locus: list(alleles) for locus, alleles in profile.alleles.items()}
    confirmation = staff["analyst"].post(f"/api/v1/profiles/{profile.id}/confirmations",
                                         json={"method": "re-typing", "alleles": retyped})
    assert confirmation.json["concordant"] is True, confirmation.json
    # One side confirmed is not enough: the other tusk's profile is unconfirmed.
    one_sided = staff["analyst"].post(url, json={"kind": "evidential"})
    assert one_sided.status_code == 409
    assert one_sided.json["message"] == (
        "an evidential report cannot be issued before its hits are confirmed: the same-animal "
        f"hit of {first} to {second} is not confirmed on the side of {second} (record a "
        f"concordant re-extraction or re-typing of {second})")
    assert session.scalar(sa.select(sa.func.count()).select_from(Report)) == 1  # the lead
    other = session.scalar(sa.select(GenotypeProfile).join(Sample).where(
        Sample.barcode == second, GenotypeProfile.superseded.is_(False)))
    # A re-typing of the other side that lost an allele (dropout) confirms nothing.
    locus, (low, high) = next((locus, pair) for locus, pair in other.alleles.items()
                              if pair[0] != pair[1])
    discordant = {**other.alleles, locus: [low, low]}
    answer = staff["analyst"].post(f"/api/v1/profiles/{other.id}/confirmations",
                                   json={"method": "re-typing", "alleles": discordant})
    assert answer.status_code == 201 and answer.json["concordant"] is False, answer.json
    assert staff["analyst"].post(url, json={"kind": "evidential"}).status_code == 409
    answer = staff["analyst"].post(f"/api/v1/profiles/{other.id}/confirmations",
                                   json={"method": "re-extraction",
                                         "alleles": dict(other.alleles)})
    assert answer.json["concordant"] is True, answer.json

    # A species test from an AB1 trace of the full savanna elephant cytb read.
    savanna = default_barcode_set().reference(SAVANNA).sequence
    trace = write_abif(tmp_path / "tusk.ab1", savanna, [40] * len(savanna), first)
    test = upload_trace(staff["analyst"], sample.id, trace)
    assert test["sha256"] == hashlib.sha256(trace.read_bytes()).hexdigest()
    assert (test["verdict"], test["call"]) == ("identified", "Loxodonta africana")
    assert test["reference_set_hash"] == default_barcode_set().content_hash
    assert session.get(SpeciesTest, test["id"]).content == trace.read_bytes()

    # The panel's validation; the analyst's proficiency test failed a month ago.
    session.add_all([
        QualityRecord(agency_id=staff["analyst"].agency_id, kind="validation", method=PANEL,
                      title="Validation of the 16-STR panel VS-2025-3", outcome="passed",
                      performed_on=dt.date(2025, 3, 1), recorded_by_id=staff["reviewer"].user_id),
        QualityRecord(agency_id=staff["analyst"].agency_id, kind="proficiency", method=PANEL,
                      title="CTS 26-1", analyst_id=staff["analyst"].user_id, outcome="failed",
                      performed_on=dt.date.today() - dt.timedelta(days=30),
                      recorded_by_id=staff["reviewer"].user_id)])
    session.commit()

    draft = staff["analyst"].post(url, json={"kind": "evidential"})
    assert draft.status_code == 201, draft.json
    name = staff["analyst"].username.title()
    failed_on = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    # Signed by the analyst only, so far.
    assert draft.json["warnings"] == [
        f"{name}'s latest proficiency test of {PANEL} ({failed_on}, CTS 26-1) was failed"]
    issued = staff["reviewer"].post(f"/api/v1/reports/{draft.json['id']}/sign")
    assert issued.status_code == 200, issued.json
    report = session.get(Report, issued.json["id"])
    session.refresh(report)
    for text in (plain_text(report.html.decode()), pdf_text(report.pdf)):
        assert plain_text("identified: Loxodonta africana (100.0% identical)") in text
        assert plain_text(default_barcode_set().content_hash) in text
        assert plain_text(f"The profile of sample {first} was confirmed by re-typing") in text
        assert plain_text(f"The profile of sample {second} was confirmed by re-extraction") \
            in text
        assert plain_text("Validation of the 16-STR panel VS-2025-3 (2025-03-01, passed)") in text
        assert plain_text(f"Warning: {name}'s latest proficiency test of {PANEL}") in text
    # The reviewer has no proficiency test either: warned when signing.
    assert issued.json["warnings"][-1] == (
        f"{staff['reviewer'].username.title()} has no proficiency test of {PANEL} in the "
        "last 12 months")


def test_a_read_of_a_relative_missing_from_the_set_is_ambiguous_with_its_best_species(
        app, session, agencies, login, tmp_path):
    """Settled (the species issue's option (a)): a short read from a conserved stretch of a
    species the set lacks is "ambiguous, best species X", never identified as X."""
    from tests.lims.factories import make_case_tree

    barcodes = default_barcode_set()
    app.config["SPECIES_BARCODE_SET"] = BarcodeSet(
        "no mammoth", tuple(r for r in barcodes.references
                            if r.species != "Mammuthus primigenius"), barcodes.groups)
    savanna, mammoth = barcodes.reference(SAVANNA).sequence, barcodes.reference(MAMMOTH).sequence
    # The 150-column window where mammoth and savanna elephant differ least.
    differences = [sum(a != b for a, b in zip(savanna[s:s + 150], mammoth[s:s + 150],
                                              strict=True))
                   for s in range(0, len(savanna) - 150, 10)]
    start = 10 * int(np.argmin(differences))
    assert min(differences) <= 2
    tree = make_case_tree(session, agencies["A"], "MM")
    read = tmp_path / "mammoth.fasta"
    read.write_text(f">mammoth-read\n{mammoth[start:start + 150]}\n")
    test = upload_trace(login("analyst"), tree.sample_ids[0], read)
    assert test["verdict"] == "ambiguous"
    assert test["best_species"] == "Loxodonta africana" and test["call"] is None
    assert test["reference_set"] == "no mammoth"
