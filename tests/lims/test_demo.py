"""The demo: its folder rules, what it loads, that matching its released profiles finds the
planted tusk pairs, horn-to-carcass matches and relatives, and ``dnatrack demo``."""

from __future__ import annotations

import re

import numpy as np
import pytest
import sqlalchemy as sa

from dnatrack.cli import main as dnatrack_main
from lims.custody import verify_ledger
from lims.demo import (
    CARCASS_GROUP,
    DEMO_PASSWORD,
    DEMO_SEED,
    MARKER_FILE,
    USERS,
    DemoFolderError,
    open_demo,
    prepare_folder,
    simulate_scenarios,
)
from lims.extensions import db
from lims.genotyping import resolve_panel
from lims.models import CustodyEvent, GenotypeProfile, Item, Sample
from lims.permissions import ROLES
from lims.release import released_genotypes
from matching.identity import IdentityCriteria, identity_search
from matching.kinship import KinshipSearch
from tests.lims.conftest import TEST_PASSWORD_METHOD
from tests.lims.web_support import csrf_token

TEST_CONFIG = {"PASSWORD_HASH_METHOD": TEST_PASSWORD_METHOD, "SECRET_KEY": "test secret"}
# Identity at moderate stringency, but strict enough for the low diversity of rhino STRs.
IDENTITY = IdentityCriteria("moderate", max_mismatches=1, max_dropouts=1)
RELATIVES = ("parent_offspring", "full_sibling", "half_sibling")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    app, folder, contents = open_demo(tmp_path_factory.mktemp("demo") / "d", config=TEST_CONFIG)
    yield app, folder, contents
    db.engine_for(app).dispose()


def test_the_demo_holds_the_scenario(demo):
    app, _, contents = demo
    # 4 ivory seizures of 14 + 12 + 10 + 10 tusks, one of 6 horns, 5 carcasses; a sample of
    # each item and carcass and two replicate aliquots; 5 events per seizure and per sample,
    # 2 more for each carcass sample.
    assert contents.counts == {
        "agencies": 4, "users": 8, "cases": 4, "seizures": 5, "items": 52,
        "source_animals": 5, "samples": 60, "profiles": 60,
        "custody_events": 5 * 5 + 5 * 52 + 7 * 5 + 5 * 3, "storage_locations": 13,
    }
    with app.app_context():
        session = db.session
        states = dict(session.execute(
            sa.select(GenotypeProfile.state, sa.func.count()).group_by(GenotypeProfile.state)
        ).all())
        assert states == {"released": 57, "pending": 3}  # the QC run's flagged replicate too
        for profile in session.scalars(sa.select(GenotypeProfile).where(
                GenotypeProfile.state == "released")):
            assert profile.reviewer_id not in (None, profile.analyst_id)
            assert profile.released_by_id not in (None, profile.analyst_id)
        without_events = session.scalars(
            sa.select(Sample.barcode).where(~Sample.id.in_(
                sa.select(CustodyEvent.sample_id).where(CustodyEvent.sample_id.is_not(None))))
        ).all()
        assert without_events == []
        assert verify_ledger(session).ok
        horns = session.scalars(sa.select(Item.kind).distinct()).all()
        assert sorted(horns) == ["horn", "tusk"]


def test_every_role_has_a_demo_login(demo):
    app, _, _ = demo
    assert {role for user in USERS for role in user.roles} == set(ROLES)
    for user in USERS:
        client = app.test_client()
        token = csrf_token(client.get("/login").get_data(as_text=True))
        response = client.post("/login", data={"username": user.username,
                                               "password": DEMO_PASSWORD, "csrf_token": token})
        assert response.status_code == 302, user.username


def _pairs(ids, query_index, target_index) -> set[frozenset[str]]:
    return {frozenset((str(ids[i]), str(ids[j]))) for i, j in zip(query_index, target_index,
                                                                   strict=True)}


def _planted(scenario, barcodes, relationships) -> set[frozenset[str]]:
    return {
        frozenset((barcodes[record.item1], barcodes[record.item2]))
        for record in scenario.relationships
        if record.relationship in relationships
    }


def test_matching_the_released_profiles_finds_what_was_planted(demo):
    app, _, contents = demo
    _, _, ivory_reference, rhino_reference = simulate_scenarios(DEMO_SEED)
    with app.app_context():
        ivory = released_genotypes(db.session, resolve_panel(ivory_reference.panel))
        rhino = released_genotypes(db.session, resolve_panel(rhino_reference.panel))
    # The import kept every observed genotype as simulated.
    order = [contents.barcodes[item_id] for item_id in contents.ivory.observed.profile_ids]
    assert np.array_equal(ivory.take([ivory.index_of(b) for b in order]).alleles,
                          contents.ivory.observed.alleles)
    assert ivory.n_profiles == 46 and rhino.n_profiles == 11

    tusk_pairs = _planted(contents.ivory, contents.barcodes, ("same_animal",))
    assert len(tusk_pairs) == 4
    hits = identity_search(ivory, IDENTITY)
    found = _pairs(ivory.profile_ids, hits.query_index, hits.target_index)
    assert found == tusk_pairs
    seizure_of = dict(zip(ivory.profile_ids, ivory.group, strict=True))
    assert all(len({seizure_of[barcode] for barcode in pair}) == 2 for pair in tusk_pairs)

    search = KinshipSearch.from_reference(ivory_reference.table, ivory, theta=0.047)
    kin = search.all_pairs(ivory)
    best = {
        pair: search.relationships[index]
        for pair, index in zip(
            [frozenset((str(ivory.profile_ids[i]), str(ivory.profile_ids[j])))
             for i, j in zip(kin.query_index, kin.target_index, strict=True)],
            kin.best_relationship, strict=True)
    }
    relatives = _planted(contents.ivory, contents.barcodes, RELATIVES)
    assert len(relatives) == 4
    for pair in relatives:
        assert best.get(pair) in RELATIVES, pair
    for pair in tusk_pairs:
        assert best[pair] == "same_animal"

    horn_pairs = _planted(contents.rhino, contents.barcodes, ("same_animal",))
    assert len(horn_pairs) == 3
    hits = identity_search(rhino, IDENTITY)
    assert _pairs(rhino.profile_ids, hits.query_index, hits.target_index) == horn_pairs
    carcasses = {contents.barcodes[item.item_id] for item in contents.rhino.items
                 if item.seizure == CARCASS_GROUP}
    for pair in horn_pairs:
        assert len(pair & carcasses) == 1  # a horn and a carcass


def test_the_demo_is_the_same_every_time(demo, tmp_path):
    app, _, contents = demo
    other_app, _, other = open_demo(tmp_path / "again", config=TEST_CONFIG)
    try:
        assert other.barcodes == contents.barcodes
        assert other.counts == contents.counts

        def records(application):
            with application.app_context():
                items = db.session.execute(sa.select(
                    Item.label, Item.length_cm, Item.circumference_cm, Item.weight_kg
                ).order_by(Item.id)).all()
                profiles = db.session.execute(sa.select(
                    Sample.barcode, GenotypeProfile.alleles, GenotypeProfile.state
                ).join(Sample).order_by(GenotypeProfile.id)).all()
                return items, profiles

        assert records(other_app) == records(app)
    finally:
        db.engine_for(other_app).dispose()


def test_the_other_laboratorys_seizure_is_outside_need_to_know(demo):
    app, _, _ = demo
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": "investigator", "password": DEMO_PASSWORD,
                                "csrf_token": token})
    cases = client.get("/cases").get_data(as_text=True)
    assert "DEMO-2024-IVORY" in cases and "DEMO-2024-EAST" not in cases
    with app.app_context():
        from lims.models import Seizure

        east = db.session.scalar(sa.select(Seizure.id).where(Seizure.reference == "TZ-ZNZ-2404"))
    assert client.get(f"/seizures/{east}").status_code == 404


def test_prepare_folder_refuses_folders_that_are_not_demo_folders(tmp_path):
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "thesis.docx").write_text("years of work")
    with pytest.raises(DemoFolderError, match="not empty and is not a dnatrack demo folder"):
        prepare_folder(occupied)
    assert sorted(path.name for path in occupied.iterdir()) == ["thesis.docx"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(DemoFolderError, match="is a file"):
        prepare_folder(a_file)
    empty = tmp_path / "empty"
    empty.mkdir()
    prepared = prepare_folder(empty)
    assert (empty / MARKER_FILE).is_file()
    assert prepared.database_url.endswith("dnatrack-demo.sqlite")


def test_a_demo_folder_is_reused_or_rebuilt(tmp_path):
    folder = tmp_path / "demo"
    app, _, contents = open_demo(folder, config=TEST_CONFIG)
    db.engine_for(app).dispose()
    assert contents is not None
    app, _, contents = open_demo(folder, config=TEST_CONFIG)
    db.engine_for(app).dispose()
    assert contents is None  # reused, not loaded twice
    app, _, contents = open_demo(folder, reset=True, config=TEST_CONFIG)
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Sample)) == 60
    db.engine_for(app).dispose()
    assert contents is not None


def test_dnatrack_demo_prints_the_logins(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert dnatrack_main(["demo", "--no-serve"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"Demo created in .*dnatrack-demo in [\d.]+ s: 4 cases, 5 seizures, "
                     r"60 samples, 60 genotype profiles, 335 custody events\.", out)
    assert f"every password: {DEMO_PASSWORD}" in out
    for user in USERS:
        assert re.search(rf"^  {re.escape(user.username)} +{re.escape(', '.join(user.roles))} ",
                         out, re.M)
    assert dnatrack_main(["demo", "--no-serve"]) == 0
    assert "Reusing the demo database" in capsys.readouterr().out
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "notes.txt").write_text("mine")
    assert dnatrack_main(["demo", "--folder", "elsewhere", "--no-serve"]) == 1
    assert "not a dnatrack demo folder" in capsys.readouterr().err
    assert dnatrack_main(["demo", "--port", "0", "--no-serve"]) == 1


def _log_in(app, username: str):
    client = app.test_client()
    token = csrf_token(client.get("/login").get_data(as_text=True))
    client.post("/login", data={"username": username, "password": DEMO_PASSWORD,
                                "csrf_token": token})
    return client


def test_both_sides_of_the_demos_planted_hits_are_confirmed(demo):
    """The demo's evidential walkthrough issues: every planted same-animal pair across seizures
    (tusk pairs; horn and carcass) has both profiles confirmed; an unconfirmed side would be
    named."""
    from lims.quality.checks import unconfirmed_hits
    from lims.quality.demo import DEMO_RUN

    app, _, contents = demo
    _, _, ivory_reference, rhino_reference = simulate_scenarios(DEMO_SEED)
    with app.app_context():
        for scenario, reference, n_pairs in ((contents.ivory, ivory_reference, 4),
                                             (contents.rhino, rhino_reference, 3)):
            pairs = [sorted(pair) for pair in _planted(scenario, contents.barcodes,
                                                       ("same_animal",))]
            assert len(pairs) == n_pairs
            result = {"panel": {"name": resolve_panel(reference.panel).name},
                      "pairs": [{"relationship": "same_animal", "node1": f"n-{a}",
                                 "node2": f"n-{b}", "sample1": a, "sample2": b}
                                for a, b in pairs]}
            assert unconfirmed_hits(db.session, result) == []
        # The QC run's replicate (never confirmed) as the other side of a hit is named.
        replicate = db.session.scalar(
            sa.select(Sample.barcode).join(GenotypeProfile).where(
                GenotypeProfile.run == DEMO_RUN))
        first = sorted(next(iter(_planted(contents.ivory, contents.barcodes,
                                          ("same_animal",)))))[0]
        result = {"panel": {"name": resolve_panel(ivory_reference.panel).name},
                  "pairs": [{"relationship": "same_animal", "node1": "x", "node2": "y",
                             "sample1": first, "sample2": replicate}]}
        assert unconfirmed_hits(db.session, result) == [
            f"the same-animal hit of {first} to {replicate} is not confirmed on the side of "
            f"{replicate} (record a concordant re-extraction or re-typing of {replicate})"]


def test_the_demo_shows_a_run_with_controls_and_a_flagged_contamination(demo):
    from lims.models import ContaminationFlag, GenotypingRun
    from lims.quality.demo import DEMO_CONTROL, DEMO_RUN

    app, _, _ = demo
    with app.app_context():
        run = db.session.scalar(sa.select(GenotypingRun).where(GenotypingRun.name == DEMO_RUN))
        flags = db.session.scalars(sa.select(ContaminationFlag)
                                   .order_by(ContaminationFlag.id)).all()
        # One contaminated profile: like the positive control (an elimination profile), and
        # so unlike its two replicates.
        assert len({f.profile_id for f in flags}) == 1
        assert [(f.kind, f.status) for f in flags] == [
            ("elimination", "open"), ("replicate", "open"), ("replicate", "open")]
        flag = flags[0]
        run_id, flag_id, replicate = run.id, flag.id, flag.profile.sample.barcode
        assert run.status == "in_control"
    analyst = _log_in(app, "analyst")
    runs = analyst.get("/quality/runs").get_data(as_text=True)
    assert f'href="/quality/runs/{run_id}"' in runs and DEMO_RUN in runs
    page = analyst.get(f"/quality/runs/{run_id}").get_data(as_text=True)
    assert "Controls in order." in page
    wells = re.findall(r'<td data-label="Content">(.*?)</td>\s*<td data-label="Kind">(.*?)</td>'
                       r'\s*<td data-label="Result">(.*?)</td>', page, re.S)
    shown = [(re.sub(r"<[^>]+>", "", content), kind, result) for content, kind, result in wells]
    assert shown == [(DEMO_CONTROL, "positive control", "passed"),
                     ("NTC-1", "negative control", "passed"),
                     (replicate, "sample", "pending")]
    assert f'href="/quality/flags/{flag_id}"' in page  # the replicate's flag, on the run
    flags = analyst.get("/quality/flags").get_data(as_text=True)
    assert f'href="/quality/flags/{flag_id}"' in flags
    reason = (f"same genotype as elimination profile {DEMO_CONTROL} (positive control)")
    assert reason in flags
    assert reason in analyst.get(f"/quality/flags/{flag_id}").get_data(as_text=True)
