"""Released profiles for researchers: a genotype file of what their agency may see."""

from __future__ import annotations

import csv
import io

import pytest

from dnatrack.formats import read_genotypes
from lims.models import CaseShare, GenotypeProfile, Sample, SourceAnimal
from tests.lims.conftest import TEST_PANEL
from tests.lims.factories import make_case_tree, make_user

PANEL = TEST_PANEL["name"]


@pytest.fixture
def released(session, agencies):
    """Released profiles in a case of A, a case of B shared with A, and an unshared case of
    B; plus profiles that are not released or not current, and one of another panel."""
    analyst = make_user(session, agencies["A"], "ana", "analyst")
    own = make_case_tree(session, agencies["A"], "KE")
    shared = make_case_tree(session, agencies["B"], "UG")
    unshared = make_case_tree(session, agencies["B"], "TZ")
    session.add(CaseShare(case_id=shared.case_id, agency_id=agencies["A"], access="read"))
    carcass = SourceAnimal(
        case_id=own.case_id,
        identifier="C1",
        kind="carcass",
        population="Tsavo",
        latitude=-2.5,
        longitude=38.25,
    )
    session.add(carcass)
    session.flush()
    carcass_sample = Sample(
        barcode="KE-C1", case_id=own.case_id, sample_type="tissue", source_animal_id=carcass.id
    )
    session.add(carcass_sample)
    session.flush()

    def profile(sample_id, alleles, state="released", panel=PANEL, **fields):
        session.add(
            GenotypeProfile(
                sample_id=sample_id,
                panel=panel,
                alleles=alleles,
                n_loci_typed=len(alleles),
                state=state,
                analyst_id=analyst.id,
                **fields,
            )
        )

    profile(own.sample_ids[0], {"FH67": [148, 152], "LA5": [100, 104]})
    profile(carcass_sample.id, {"FH71": [200, 200]})
    profile(shared.sample_ids[0], {"LAT24": [220, 224]})
    profile(unshared.sample_ids[0], {"FH67": [150, 150]})
    profile(own.sample_ids[1], {"FH67": [160, 160]}, state="pending")
    profile(shared.sample_ids[1], {"FH67": [162, 162]}, superseded=True)
    profile(unshared.sample_ids[1], {"FH67": [164, 164]}, panel="other_panel")
    session.commit()


def rows_of(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_researchers_get_the_released_profiles_their_agency_may_see(login, released):
    researcher = login("researcher")
    response = researcher.get(f"/api/v1/released-profiles?panel={PANEL}")
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="released-{PANEL}.csv"'
    )
    rows = rows_of(response)
    # Written out by hand: sample barcodes, seizure groups, the carcass's population and place.
    assert [(r["indiv"], r["group"], r["collection"], r["lat"], r["lon"]) for r in rows] == [
        ("KE-S1", "KE-SZ", "KE-SZ", "", ""),
        ("KE-C1", "", "Tsavo", "-2.5", "38.25"),
        ("UG-S1", "UG-SZ", "UG-SZ", "", ""),
    ]
    alleles = [
        [
            r[column]
            for column in ("FH67", "FH67.1", "FH71", "FH71.1", "LA5", "LA5.1", "LAT24", "LAT24.1")
        ]
        for r in rows
    ]
    assert alleles == [
        ["148", "152", "", "", "100", "104", "", ""],
        ["", "", "200", "200", "", "", "", ""],
        ["", "", "", "", "", "", "220", "224"],
    ]

    outsider_rows = rows_of(
        login("researcher", agency="B").get(f"/api/v1/released-profiles?panel={PANEL}")
    )
    assert [r["indiv"] for r in outsider_rows] == ["UG-S1", "TZ-S1"]


def test_the_file_is_read_back_by_dnatrack(login, released, tmp_path):
    researcher = login("researcher")
    for file_format, suffix in (("wide", ".csv"), ("genepop", ".gen")):
        response = researcher.get(f"/api/v1/released-profiles?panel={PANEL}&format={file_format}")
        assert response.status_code == 200
        path = tmp_path / f"released{suffix}"
        path.write_bytes(response.data)
        table = read_genotypes(path, format=file_format)
        assert sorted(table.profile_ids.tolist()) == ["KE-C1", "KE-S1", "UG-S1"]
        assert table.n_profiles == 3 and len(table.loci) == 4
    assert response.mimetype == "text/plain"


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("", "panel", "is required"),
        ("?panel=no_such_panel", "panel", "no_such_panel"),
        (f"?panel={PANEL}&format=excel", "format", "must be one of"),
        (f"?panel={PANEL}&colour=red", "colour", "unknown query parameter"),
    ],
)
def test_bad_queries_are_refused_naming_the_parameter(login, query, field, message):
    response = login("researcher").get(f"/api/v1/released-profiles{query}")
    assert response.status_code == 400
    [problem] = response.json["details"]["problems"]
    assert problem["field"] == field and message in problem["message"]


@pytest.mark.parametrize("role", ["admin", "custodian", "analyst", "reviewer", "investigator"])
def test_only_researchers_may_export(login, released, role):
    response = login(role).get(f"/api/v1/released-profiles?panel={PANEL}")
    assert response.status_code == 403
    assert "released.read" in response.json["message"]


def test_the_export_is_in_the_openapi_document(client):
    operation = client.get("/api/v1/openapi.json").json["paths"]["/api/v1/released-profiles"]["get"]
    assert "released.read" in operation["description"]
    assert {p["name"] for p in operation["parameters"]} == {"panel", "format"}
    assert "text/csv" in operation["responses"]["200"]["content"]
