"""The network grows with the database: each release queues a new-vs-all search of the newly
released profiles (lims.network), run by the job workers; releasing in batches gives the links
one search of all profiles gives, the links are the planted ones, and the network page only
reads them."""

from __future__ import annotations

import io

import networkx as nx
import pytest
import sqlalchemy as sa

import lims.network
import matching.analysis.pipeline
from dnatrack.reference import load_reference_set
from dnatrack.simulate import ScenarioSpec, SeizureSpec, simulate
from lims import jobs
from lims.extensions import db
from lims.genotyping import release_profile
from lims.models import (
    GenotypeProfile,
    LinkSearch,
    ProfileLink,
    Sample,
    SearchedProfile,
    SeizureLink,
    User,
)
from lims.network import rebuild_network
from tests.lims.test_match_requests import REFERENCE, load_profiles

SPEC = ScenarioSpec(
    seizures=tuple(SeizureSpec(f"NW-{k}", {"Amboseli": 1, "Tsavo": 1}, 4) for k in range(5)),
    same_animal_pairs=2, parent_offspring_pairs=1, full_sibling_pairs=1, half_sibling_pairs=0,
    missing_rate=0.02, dropout_rate=0.0, miscall_rate=0.0,
)
BATCHES = (("NW-0", "NW-1"), ("NW-2",), ("NW-3", "NW-4"))


@pytest.fixture
def network(app, agencies):
    # Cutoffs for a database of about 140 profiles (the test's holds 20).
    app.config["NETWORK_PAIRS_COMPARED"] = 1e4
    scenario = simulate(load_reference_set(REFERENCE), SPEC, seed=7)
    owners = {seizure.name: "A" for seizure in SPEC.seizures}
    _, seizure_ids, _ = load_profiles(app, agencies, scenario.observed, owners)
    with app.app_context():  # back to reviewed: the batches are released below
        db.session.execute(sa.update(GenotypeProfile).values(
            state="reviewed", released_by_id=None, released_at=None))
        db.session.commit()
    return scenario, seizure_ids


def _release(app, seizures) -> None:
    with app.app_context():
        reviewer = db.session.scalar(sa.select(User).where(User.username == "lab-reviewer-A"))
        profiles = db.session.scalars(
            sa.select(GenotypeProfile).join(Sample, Sample.id == GenotypeProfile.sample_id)
            .where(sa.or_(*(Sample.barcode.startswith(f"{name}-") for name in seizures)))
        ).all()
        for profile in profiles:
            release_profile(profile, reviewer)
        db.session.commit()


def _links(app) -> tuple[dict, set]:
    with app.app_context():
        seizure_links = {
            (row.seizure1_id, row.seizure2_id): (row.same_animal, row.parent_offspring,
                                                 row.full_sibling, row.half_sibling,
                                                 round(row.best_log10_lr, 9))
            for row in db.session.scalars(sa.select(SeizureLink))
        }
        profile_links = {(row.profile1_id, row.profile2_id, row.relationship,
                          round(row.log10_lr, 9))
                         for row in db.session.scalars(sa.select(ProfileLink))}
    return seizure_links, profile_links


def test_releases_in_batches_give_the_links_of_a_full_rerun_and_the_planted_ones(
    app, network
):
    scenario, seizure_ids = network
    searched = []
    for batch in BATCHES:
        _release(app, batch)
        with app.app_context():
            queued = db.session.scalars(sa.select(LinkSearch).where(
                LinkSearch.status == "queued")).all()
        assert len(queued) == 1  # one search per panel waits, however many were released
        ran = jobs.run_queued(app)
        assert ran == [queued[0].id]
        with app.app_context():
            search = db.session.get(LinkSearch, ran[0])
            assert search.status == "done", search.error
            searched.append(search.new_profiles)
    # Each search took only the newly released profiles as new (new-vs-all).
    items = {seizure.name: seizure.n_items for seizure in SPEC.seizures}
    assert searched == [sum(items[name] for name in batch) for batch in BATCHES]
    incremental = _links(app)

    truth = {}
    for relationship in scenario.relationships:
        pair = tuple(sorted(seizure_ids[item.rsplit("-", 1)[0]]
                            for item in (relationship.item1, relationship.item2)))
        truth.setdefault(pair, []).append(relationship.relationship)
    assert len(truth) >= 2 and sum(map(len, truth.values())) == 4
    found = {pair: [r for r, n in zip(("same_animal", "parent_offspring", "full_sibling",
                                        "half_sibling"), counts[:4], strict=True)
                    for _ in range(n)] for pair, counts in incremental[0].items()}
    assert {pair: sorted(rs) for pair, rs in found.items()} == {
        pair: sorted(rs) for pair, rs in truth.items()}

    with app.app_context():
        rebuild_network(db.session, app)
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SearchedProfile)) == \
            sum(items.values())
    assert _links(app) == incremental


def test_the_network_page_reads_the_kept_links_and_reruns_no_pairs(
    app, network, login, monkeypatch
):
    _, seizure_ids = network
    _release(app, [seizure.name for seizure in SPEC.seizures])
    jobs.run_queued(app)
    stored, _ = _links(app)
    assert stored

    def refused(*args, **kwargs):
        raise AssertionError("the network page searched pairs")

    for module, name in ((lims.network, "analyse"), (matching.analysis.pipeline, "analyse"),
                         (matching.analysis.pipeline, "find_pairs")):
        monkeypatch.setattr(module, name, refused)
    investigator = login("investigator")
    network_json = investigator.get("/api/v1/intelligence/network").get_json()
    # The page's edges are exactly the stored seizure links, with their counts and LRs.
    edges = {(edge["source"], edge["target"]): (edge["n_pairs"], round(edge["best_log10_lr"], 9))
             for edge in network_json["edges"]}
    expected = {(f"seizure:{first}", f"seizure:{second}"): (sum(counts[:4]), counts[4])
                for (first, second), counts in stored.items()}
    assert edges == expected
    node_ids = {node["id"] for node in network_json["nodes"]}
    assert node_ids == {end for pair in expected for end in pair}
    svg = investigator.get("/api/v1/intelligence/network.svg")
    assert svg.status_code == 200 and b"<svg" in svg.data
    graphml = investigator.get("/api/v1/intelligence/network.graphml")
    assert graphml.status_code == 200
    graph = nx.read_graphml(io.BytesIO(graphml.data))
    assert set(graph.nodes) == node_ids
    assert {tuple(sorted(edge)) for edge in graph.edges} == {
        tuple(sorted(pair)) for pair in expected}


def test_a_corrected_profile_takes_its_links_out_of_the_network(app, network):
    from lims.genotyping import correct_profile, resolve_panel

    scenario, seizure_ids = network
    _release(app, [seizure.name for seizure in SPEC.seizures])
    jobs.run_queued(app)
    same_animal = next(r for r in scenario.relationships if r.relationship == "same_animal")
    pair = tuple(sorted(seizure_ids[item.rsplit("-", 1)[0]]
                        for item in (same_animal.item1, same_animal.item2)))
    before, _ = _links(app)
    assert before[pair][0] >= 1
    with app.app_context():
        profile = db.session.scalar(
            sa.select(GenotypeProfile).join(Sample, Sample.id == GenotypeProfile.sample_id)
            .where(Sample.barcode == same_animal.item1))
        analyst = db.session.scalar(sa.select(User).where(User.username == "lab-analyst-A"))
        # A correction that types the sample at three loci only: too few to be compared.
        alleles = dict(list(profile.alleles.items())[:3])
        correct_profile(db.session, profile, panel=resolve_panel(profile.panel),
                        alleles=alleles, analyst=analyst, reason="re-typed")
        db.session.commit()
    ran = jobs.run_queued(app)
    assert len(ran) == 1  # the correction queued a search
    after, profile_links = _links(app)
    with app.app_context():
        assert not {p for p1, p2, _, _ in profile_links for p in (p1, p2)} & {profile.id}
    expected = dict(before)
    counts = list(before[pair])
    counts[0] -= 1
    if sum(counts[:4]) == 0:
        del expected[pair]
        assert pair not in after
    else:
        assert after[pair][0] == before[pair][0] - 1
        expected[pair] = after[pair]
    assert after == expected


def test_one_search_of_a_panel_runs_at_a_time(app):
    with app.app_context():
        running = LinkSearch(panel="elephant_16str", status="running", progress=0.0,
                             attempts=1, worker="elsewhere")
        waiting = LinkSearch(panel="elephant_16str", status="queued", progress=0.0)
        other_panel = LinkSearch(panel="rhino_str", status="queued", progress=0.0)
        db.session.add_all([running, waiting, other_panel])
        db.session.commit()
        ids = running.id, waiting.id, other_panel.id
    # The other panel's search may run; this panel's waits for the running one.
    assert jobs.claim_next(app, "w", jobs._search_table) == (ids[2], 1)
    assert jobs.claim_next(app, "w", jobs._search_table) is None
    with app.app_context():
        db.session.execute(sa.update(LinkSearch).where(LinkSearch.id == ids[0])
                           .values(status="done"))
        db.session.commit()
    assert jobs.claim_next(app, "w", jobs._search_table) == (ids[1], 1)
