"""Genotype profiles: entry, the review workflow, corrections, and file imports."""

from __future__ import annotations

import hashlib
import io
import logging

import pytest
import sqlalchemy as sa

from lims.database import Base
from lims.models import GenotypeProfile
from tests.lims.factories import make_trees_of_both_agencies

PANEL = "test_str4"


@pytest.fixture
def trees(session, agencies):
    return make_trees_of_both_agencies(session, agencies)


@pytest.fixture
def analyst(login):
    return login("analyst")


@pytest.fixture
def reviewer(login):
    return login("reviewer")


def new_profile(caller, sample_id: int, alleles: dict | None = None):
    alleles = alleles or {"FH67": [152, 148], "FH71": [200], "LA5": []}
    return caller.post(
        "/api/v1/profiles",
        json={"sample_id": sample_id, "panel": PANEL, "alleles": alleles, "run": "plate-7"},
    )


def test_a_new_profile_is_pending_with_normalised_alleles(analyst, trees):
    response = new_profile(analyst, trees["A"].sample_ids[0])
    assert response.status_code == 201, response.json
    profile = response.json
    assert profile["state"] == "pending" and profile["version"] == 1
    # Smaller allele first, a single allele is a homozygote, empty loci are untyped.
    assert profile["alleles"] == {"FH67": [148, 152], "FH71": [200, 200]}
    assert profile["n_loci_typed"] == 2 and profile["barcode"] == "KE-S1"
    assert profile["analyst_id"] == analyst.user_id


def test_alleles_are_checked_against_the_panel(analyst, trees):
    response = new_profile(
        analyst,
        trees["A"].sample_ids[0],
        {
            "FH67": [152, 148, 150],
            "FH71": [90, 200],
            "D9": [100, 102],
            "LA5": ["x", 100],
        },
    )
    assert response.status_code == 422
    problems = {p["field"]: p["message"] for p in response.json["details"]["problems"]}
    assert problems["alleles.FH67"] == "must be a list of one or two alleles"
    assert "outside the range 150..250" in problems["alleles.FH71"]
    assert problems["alleles.D9"].startswith("unknown locus")
    assert problems["alleles.LA5"] == "alleles must be whole numbers"
    unknown_panel = analyst.post(
        "/api/v1/profiles",
        json={"sample_id": trees["A"].sample_ids[0], "panel": "no_such_panel", "alleles": {}},
    )
    assert unknown_panel.status_code == 422
    assert unknown_panel.json["details"]["problems"][0]["field"] == "panel"


def test_review_then_release_by_someone_other_than_the_analyst(login, trees):
    both_roles = login("analyst", "reviewer")
    profile = new_profile(both_roles, trees["A"].sample_ids[0]).json
    own_review = both_roles.post(f"/api/v1/profiles/{profile['id']}/review")
    assert own_review.status_code == 403
    assert own_review.json["message"] == "the analyst of a profile cannot review it"

    reviewer = login("reviewer")
    early = reviewer.post(f"/api/v1/profiles/{profile['id']}/release")
    assert early.status_code == 409
    reviewed = reviewer.post(f"/api/v1/profiles/{profile['id']}/review")
    assert reviewed.status_code == 200
    assert reviewed.json["state"] == "reviewed"
    assert reviewed.json["reviewer_id"] == reviewer.user_id
    assert both_roles.post(f"/api/v1/profiles/{profile['id']}/release").status_code == 403
    released = reviewer.post(f"/api/v1/profiles/{profile['id']}/release")
    assert released.json["state"] == "released" and released.json["released_at"]
    assert reviewer.post(f"/api/v1/profiles/{profile['id']}/review").status_code == 409


def test_the_database_refuses_a_profile_reviewed_by_its_analyst(session, analyst, trees):
    profile_id = new_profile(analyst, trees["A"].sample_ids[0]).json["id"]
    profile = session.get(GenotypeProfile, profile_id)
    profile.reviewer_id = profile.analyst_id
    with pytest.raises(sa.exc.IntegrityError):
        session.commit()


def test_analysts_cannot_review_at_all_and_other_agencies_cannot_see(analyst, login, trees):
    profile = new_profile(analyst, trees["A"].sample_ids[0]).json
    colleague = login("analyst")
    assert colleague.post(f"/api/v1/profiles/{profile['id']}/review").status_code == 403
    outsider = login("reviewer", agency="B")
    assert outsider.post(f"/api/v1/profiles/{profile['id']}/review").status_code == 404
    assert outsider.get(f"/api/v1/profiles/{profile['id']}").status_code == 404


def test_rejection_needs_a_reason_and_frees_the_sample(analyst, reviewer, trees):
    sample_id = trees["A"].sample_ids[0]
    profile = new_profile(analyst, sample_id).json
    assert new_profile(analyst, sample_id).status_code == 409  # one live profile per panel
    no_reason = reviewer.post(f"/api/v1/profiles/{profile['id']}/reject", json={"reason": " "})
    assert no_reason.status_code == 422
    rejected = reviewer.post(
        f"/api/v1/profiles/{profile['id']}/reject", json={"reason": "peak imbalance at FH67"}
    )
    assert rejected.json["state"] == "rejected"
    assert rejected.json["rejection_reason"] == "peak imbalance at FH67"
    assert reviewer.post(f"/api/v1/profiles/{profile['id']}/review").status_code == 409
    assert new_profile(analyst, sample_id).status_code == 201


def test_a_correction_adds_a_version_and_keeps_the_old_one(analyst, reviewer, trees):
    first = new_profile(analyst, trees["A"].sample_ids[0]).json
    reviewer.post(f"/api/v1/profiles/{first['id']}/review")
    reviewer.post(f"/api/v1/profiles/{first['id']}/release")
    response = analyst.post(
        f"/api/v1/profiles/{first['id']}/corrections",
        json={"alleles": {"FH67": [148, 154], "FH71": [200, 202]}, "reason": "FH67 mis-binned"},
    )
    assert response.status_code == 201, response.json
    second = response.json
    assert (second["version"], second["previous_version_id"]) == (2, first["id"])
    assert second["state"] == "pending" and second["correction_reason"] == "FH67 mis-binned"
    old = analyst.get(f"/api/v1/profiles/{first['id']}").json
    assert old["superseded"] is True and old["state"] == "released"
    assert old["alleles"] == first["alleles"]
    again = analyst.post(
        f"/api/v1/profiles/{first['id']}/corrections",
        json={"alleles": {"FH67": [150, 150]}, "reason": "again"},
    )
    assert again.status_code == 409
    assert (
        reviewer.post(f"/api/v1/profiles/{first['id']}/reject", json={"reason": "old"}).status_code
        == 409
    )
    current = analyst.get(f"/api/v1/profiles?superseded=false&sample_id={first['sample_id']}")
    assert [p["id"] for p in current.json["items"]] == [second["id"]]


def behind_the_apps_back(session, sample_id: int, analyst_id: int, **fields) -> GenotypeProfile:
    values = {"panel": PANEL, "state": "pending", "superseded": False} | fields
    profile = GenotypeProfile(
        sample_id=sample_id,
        alleles={"FH67": [148, 152]},
        n_loci_typed=1,
        analyst_id=analyst_id,
        version=1,
        **values,
    )
    session.add(profile)
    return profile


def live_profiles(session, sample_id: int) -> list[int]:
    return sorted(
        session.scalars(
            sa.select(GenotypeProfile.id).where(
                GenotypeProfile.sample_id == sample_id,
                GenotypeProfile.superseded.is_(False),
                GenotypeProfile.state != "rejected",
            )
        )
    )


def test_the_database_keeps_one_live_profile_per_sample_and_panel(
    session, analyst, reviewer, trees
):
    sample_id = trees["A"].sample_ids[0]
    first = new_profile(analyst, sample_id).json
    behind_the_apps_back(session, sample_id, analyst.user_id)
    with pytest.raises(sa.exc.IntegrityError, match="uq_genotype_profile_live|UNIQUE"):
        session.commit()
    session.rollback()
    # Superseded and rejected versions are not live; another panel is another profile.
    behind_the_apps_back(session, sample_id, analyst.user_id, superseded=True)
    behind_the_apps_back(
        session,
        sample_id,
        analyst.user_id,
        state="rejected",
        rejection_reason="noise",
        reviewer_id=reviewer.user_id,
    )
    other_panel = behind_the_apps_back(session, sample_id, analyst.user_id, panel="other")
    session.commit()
    reviewer.post(f"/api/v1/profiles/{first['id']}/reject", json={"reason": "noise"})
    replacement = behind_the_apps_back(session, sample_id, analyst.user_id)
    session.commit()
    assert live_profiles(session, sample_id) == [other_panel.id, replacement.id]


def test_the_app_names_the_live_profile_before_the_database_refuses(
    analyst, session, trees, monkeypatch
):
    sample_id = trees["A"].sample_ids[0]
    first = new_profile(analyst, sample_id).json
    refused = new_profile(analyst, sample_id)
    assert refused.status_code == 409
    assert f"already has profile {first['id']} on panel {PANEL}" in refused.json["message"]
    # Two writers passing the check at once: the second is stopped by the database.
    monkeypatch.setattr("lims.genotyping.current_profile", lambda *arguments: None)
    raced = new_profile(analyst, sample_id)
    assert raced.status_code == 409
    assert raced.json["message"] == "the change conflicts with existing records"
    assert live_profiles(session, sample_id) == [first["id"]]


def test_a_rejected_profile_is_not_corrected_beside_a_newer_one(analyst, reviewer, trees, session):
    sample_id = trees["A"].sample_ids[0]
    rejected = new_profile(analyst, sample_id).json
    reviewer.post(f"/api/v1/profiles/{rejected['id']}/reject", json={"reason": "noise"})
    newer = new_profile(analyst, sample_id).json
    response = analyst.post(
        f"/api/v1/profiles/{rejected['id']}/corrections",
        json={"alleles": {"FH67": [148, 154]}, "reason": "re-read"},
    )
    assert response.status_code == 409
    assert f"already has profile {newer['id']}" in response.json["message"]
    assert live_profiles(session, sample_id) == [newer["id"]]
    assert analyst.get(f"/api/v1/profiles/{rejected['id']}").json["superseded"] is False


# --------------------------------------------------------------------------- imports
WIDE = (
    "indiv,FH67,FH67.1,FH71,FH71.1,LA5,LA5.1\n"
    "KE-S1,148,152,200,200,,\n"
    "KE-S2,150,150,204,210,100,104\n"
)
LONG = "sample,locus,allele1,allele2\nKE-S1,FH67,148,152\nKE-S1,FH71,200,200\nKE-S2,LAT24,220,224\n"
GENEMAPPER = (
    "Sample Name\tPanel\tMarker\tDye\tAllele 1\tAllele 2\tSize 1\tHeight 1\n"
    "KE-S1\tElephant\tFH67\tB\t148\t152\t148.2\t1500\n"
    "KE-S1\tElephant\tFH71\tG\t200\t\t200.1\t2100\n"
    "KE-S2\tElephant\tLA5\tY\t100\t104\t100.3\t900\n"
)


def upload(caller, text: str, filename: str, **form):
    data = {"file": (io.BytesIO(text.encode()), filename), "panel": PANEL, **form}
    return caller.post("/api/v1/genotype-imports", data=data, content_type="multipart/form-data")


@pytest.mark.parametrize(
    ("text", "filename", "file_format", "expected"),
    [
        (
            WIDE,
            "run7.csv",
            None,
            {
                "KE-S1": {"FH67": [148, 152], "FH71": [200, 200]},
                "KE-S2": {"FH67": [150, 150], "FH71": [204, 210], "LA5": [100, 104]},
            },
        ),
        (
            LONG,
            "run7_long.csv",
            "long",
            {"KE-S1": {"FH67": [148, 152], "FH71": [200, 200]}, "KE-S2": {"LAT24": [220, 224]}},
        ),
        (
            GENEMAPPER,
            "run7.txt",
            "genemapper",
            {"KE-S1": {"FH67": [148, 152], "FH71": [200, 200]}, "KE-S2": {"LA5": [100, 104]}},
        ),
    ],
)
def test_import_creates_pending_profiles(analyst, trees, text, filename, file_format, expected):
    form = {"run": "run-7"} | ({"format": file_format} if file_format else {})
    response = upload(analyst, text, filename, **form)
    assert response.status_code == 201, response.json
    batch = response.json
    assert batch["n_profiles"] == 2 and batch["panel"] == PANEL and batch["run"] == "run-7"
    assert batch["sha256"] == hashlib.sha256(text.encode()).hexdigest()
    profiles = analyst.get(f"/api/v1/profiles?import_id={batch['id']}").json["items"]
    assert {p["barcode"]: p["alleles"] for p in profiles} == expected
    assert {p["state"] for p in profiles} == {"pending"}
    assert sorted(p["id"] for p in profiles) == sorted(batch["profile_ids"])


def row_counts(session) -> dict[str, int]:
    return {
        table.name: session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in Base.metadata.sorted_tables
    }


def test_a_failed_import_reports_every_problem_and_changes_nothing(analyst, trees, session):
    assert new_profile(analyst, trees["A"].sample_ids[1]).status_code == 201
    before = row_counts(session)
    text = (
        "indiv,FH67,FH67.1,FH71,FH71.1\n"
        "KE-S1,148,152,200,200\n"
        "NO-SUCH,150,150,204,210\n"
        "KE-S2,150,150,204,210\n"
        "UG-S1,150,150,204,210\n"
        "\n"
        "KE-XX,,,,\n"
    )
    response = upload(analyst, text, "bad.csv")
    assert response.status_code == 422
    problems = response.json["details"]["problems"]
    assert [(p["line"], p["field"], p["sample"]) for p in problems] == [
        (3, "sample", "NO-SUCH"),
        (4, "sample", "KE-S2"),
        (5, "sample", "UG-S1"),  # another agency's sample is as unknown as a missing one
        (7, "sample", "KE-XX"),
        (7, "alleles", "KE-XX"),
    ]
    assert problems[0]["message"].startswith("unknown sample barcode")
    assert problems[1]["message"].startswith("duplicate profile")
    assert problems[4]["message"] == "no locus is typed"
    assert "nothing imported" in response.json["message"]
    assert row_counts(session) == before


@pytest.mark.parametrize(
    ("text", "filename", "form", "where", "message"),
    [
        (
            "indiv,FH67,FH67.1\nKE-S1,148,152\nKE-S2,148,999\n",
            "a.csv",
            {},
            (3, "FH67"),
            "outside the range 100..200",
        ),
        ("indiv,D9,D9.1\nKE-S1,148,152\n", "a.csv", {}, (1, "D9"), "unknown locus"),
        (
            "Sample Name\tMarker\tAllele 1\tAllele 2\tAllele 3\nKE-S1\tFH67\t148\t150\t152\n",
            "gm.txt",
            {"format": "genemapper"},
            (2, None),
            "three alleles",
        ),
        ("pop\nKE-S1 , 148152\n", "a.gen", {}, (None, "format"), "cannot be imported"),
    ],
)
def test_a_malformed_file_is_refused_with_line_and_field(
    analyst, trees, session, text, filename, form, where, message
):
    before = row_counts(session)
    response = upload(analyst, text, filename, **form)
    assert response.status_code == 422
    (problem,) = response.json["details"]["problems"]
    assert (problem["line"], problem["field"] if where[1] else None) == where
    assert message in problem["message"]
    assert row_counts(session) == before


def test_import_needs_the_right_role_and_a_known_panel(login, trees):
    reviewer = login("reviewer")
    assert upload(reviewer, WIDE, "run.csv").status_code == 403
    analyst = login("analyst")
    response = upload(analyst, WIDE, "run.csv", panel="nope")
    assert response.status_code == 422
    assert response.json["details"]["problems"][0]["field"] == "panel"


def test_bundled_panels_are_found_by_name(analyst, trees):
    response = analyst.post(
        "/api/v1/profiles",
        json={
            "sample_id": trees["A"].sample_ids[0],
            "panel": "elephant_16str",
            "alleles": {"FH19": [160, 170]},
        },
    )
    assert response.status_code == 201, response.json
    assert response.json["panel"] == "elephant_16str"
    off_range = analyst.post(
        "/api/v1/profiles",
        json={
            "sample_id": trees["A"].sample_ids[1],
            "panel": "elephant_16str",
            "alleles": {"FH19": [150, 170]},
        },
    )
    assert off_range.status_code == 422
    assert "157..213" in off_range.json["details"]["problems"][0]["message"]
    traversal = analyst.post(
        "/api/v1/profiles",
        json={"sample_id": trees["A"].sample_ids[1], "panel": "../secrets", "alleles": {}},
    )
    assert traversal.status_code == 422


def problems_of(response) -> list[tuple]:
    assert response.status_code == 422, response.json
    return [
        (p["line"], p["field"], p["sample"], p["message"])
        for p in response.json["details"]["problems"]
    ]


OFF_RANGE_FH67 = f"allele 999 outside the range 100..200 of FH67 in panel '{PANEL}'"


def test_an_import_lists_every_problem_of_every_row(analyst, trees, session):
    before = row_counts(session)
    text = (
        "sample,locus,allele1,allele2\n"
        "KE-S1,FH67,148,152\n"
        "KE-S1,FH71,2x0,200\n"
        "KE-S2,FH67,148,999\n"
        "KE-S2,D9,100,104\n"
        "KE-S1,FH67,150,152\n"
        "NO-SUCH,LA5,100,104\n"
        "KE-S2,LA5,100,104,extra\n"
    )
    response = upload(analyst, text, "run.csv", format="long")
    assert problems_of(response) == [
        (3, "FH71", None, "non-numeric allele '2x0'"),
        (4, "FH67", None, OFF_RANGE_FH67),
        (5, "locus", None, f"unknown locus 'D9' (not in panel '{PANEL}')"),
        (6, "locus", None, "sample 'KE-S1' has a second row for locus 'FH67' (first on line 2)"),
        (
            7,
            "sample",
            "NO-SUCH",
            ("unknown sample barcode (no sample of a case you may add results to)"),
        ),
        (8, None, None, "5 fields where the header (line 1) has 4"),
    ]
    assert response.json["message"] == (
        "run.csv: nothing imported; line 3: non-numeric allele '2x0' (and 5 more)"
    )
    assert row_counts(session) == before


def test_a_wide_import_lists_every_unknown_locus_and_every_bad_cell(analyst, trees, session):
    before = row_counts(session)
    text = (
        "indiv,FH67,FH67.1,D9,D9.1,FH71,FH71.1,X7,X7.1\n"
        "KE-S1,148,152,1,2,200,2y0,3,4\n"
        "KE-S2,148,999,,,abc,200,,\n"
        "NO-SUCH,,,,,,,,\n"
    )
    response = upload(analyst, text, "run.csv")
    # KE-S2 lost every locus to the problems, so it is not also called untyped; NO-SUCH is.
    assert problems_of(response) == [
        (1, "D9", None, f"unknown locus 'D9' (not in panel '{PANEL}')"),
        (1, "X7", None, f"unknown locus 'X7' (not in panel '{PANEL}')"),
        (2, "FH71", None, "non-numeric allele '2y0'"),
        (3, "FH71", None, "non-numeric allele 'abc'"),
        (3, "FH67", None, OFF_RANGE_FH67),
        (
            4,
            "sample",
            "NO-SUCH",
            ("unknown sample barcode (no sample of a case you may add results to)"),
        ),
        (4, "alleles", "NO-SUCH", "no locus is typed"),
    ]
    assert row_counts(session) == before


def test_a_header_problem_is_listed_with_the_unreadable_rows_before_it(analyst, trees):
    text = "sample,locus,allele1\nKE-S1,FH67,148,152\nKE-S2,FH67,148\n"
    response = upload(analyst, text, "run.csv", format="long")
    assert problems_of(response) == [
        (1, None, None, "no allele2 column (expected one of allele2, allele_2, a2)"),
        (2, None, None, "4 fields where the header (line 1) has 3"),
    ]


def test_an_import_stops_listing_after_the_most_problems(analyst, trees, monkeypatch):
    monkeypatch.setattr("lims.genotype_import.MAX_FORMAT_PROBLEMS", 3)
    text = "sample,locus,allele1,allele2\n" + "".join(f"KE-S1,FH67,{n}x,150\n" for n in range(5))
    problems = problems_of(upload(analyst, text, "run.csv", format="long"))
    assert [problem[0] for problem in problems] == [2, 3, 4, None]
    assert problems[-1][3] == (
        "stopped after 3 problems in the file's format; fix these and import it again"
    )


@pytest.mark.parametrize("file_format", ["wide", "long"])
def test_a_file_that_is_not_utf8_is_refused_by_name(analyst, trees, file_format):
    text = "indiv,FH67,FH67.1\nKÉ-S1,148,152\n".encode("latin-1")
    data = {"file": (io.BytesIO(text), "run.csv"), "panel": PANEL, "format": file_format}
    response = analyst.post(
        "/api/v1/genotype-imports", data=data, content_type="multipart/form-data"
    )
    assert problems_of(response) == [
        (None, None, None, "not a UTF-8 text file (undecodable byte at offset 19)")
    ]


@pytest.mark.parametrize("window", [3, 100])
def test_problems_between_rows_far_apart_are_found_too(analyst, trees, monkeypatch, window):
    """Rows are re-read a few at a time after a problem; a repeated row whose first copy is
    in another window must still be found (by the final reading of the whole file)."""
    monkeypatch.setattr("lims.genotype_import._WINDOW", window)
    text = (
        "sample,locus,allele1,allele2\n"
        "KE-S1,FH67,148,152\n"
        "KE-S1,FH71,x,200\n"
        "KE-S1,LA5,100,104\n"
        "KE-S1,LAT24,220,224\n"
        "KE-S2,FH67,148,152\n"
        "KE-S2,FH71,200,200\n"
        "KE-S2,LA5,100,999\n"
        "KE-S2,LAT24,220,224\n"
        "KE-S1,FH67,150,150\n"
        "KE-S2,LAT24,oops,1\n"
    )
    problems = problems_of(upload(analyst, text, "run.csv", format="long"))
    assert problems == [
        (3, "FH71", None, "non-numeric allele 'x'"),
        (8, "LA5", None, f"allele 999 outside the range 80..160 of LA5 in panel '{PANEL}'"),
        (10, "locus", None, "sample 'KE-S1' has a second row for locus 'FH67' (first on line 2)"),
        (11, "LAT24", None, "non-numeric allele 'oops'"),
    ]


def test_a_retried_import_with_its_key_gets_the_first_answer_and_imports_once(
        analyst, trees, session, caplog):
    caplog.set_level(logging.INFO, logger="lims")
    keyed = {"headers": {**analyst.headers, "Idempotency-Key": "run7-upload"}}

    def send(text: str):
        data = {"file": (io.BytesIO(text.encode()), "run7.csv"), "panel": PANEL}
        return analyst.client.post("/api/v1/genotype-imports", data=data,
                                   content_type="multipart/form-data", **keyed)

    first = send(WIDE)
    assert first.status_code == 201 and first.json["n_profiles"] == 2
    after_first = row_counts(session)
    retry = send(WIDE)
    assert retry.status_code == 201 and retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json == first.json and retry.headers["Location"] == first.headers["Location"]
    assert row_counts(session) == after_first
    logged = [record.getMessage() for record in caplog.records]
    assert logged.count(f"genotype import {first.json['id']} (run7.csv, 2 profiles, panel "
                        f"{PANEL}) by user {analyst.user_id}") == 1
    assert sum(message.startswith("idempotent replay") for message in logged) == 1
    # Another file under the same key is refused, and imports nothing.
    other = send(WIDE.replace("148", "146"))
    assert other.status_code == 422
    assert other.json["details"]["problems"][0]["field"] == "Idempotency-Key"
    assert row_counts(session) == after_first
