"""``dnatrack demo --years N``: the demo extended with earlier years of simulated, coded ivory
seizures (dnatrack.simulate, links planted across seizures); once the workers have searched the
released profiles, the network holds exactly the planted links between seizures."""

from __future__ import annotations

from collections import Counter

import pytest
import sqlalchemy as sa

from dnatrack.cli import main as dnatrack_main
from lims import jobs
from lims.demo import SEIZURES_PER_YEAR, YEARS_CASE, open_demo
from lims.extensions import db
from lims.models import Case, Item, LinkSearch, Sample, Seizure, SeizureLink, SeizureRecord
from tests.lims.test_demo import TEST_CONFIG

YEARS = 2
RELATIONSHIPS = ("same_animal", "parent_offspring", "full_sibling", "half_sibling")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    app, _, contents = open_demo(tmp_path_factory.mktemp("years") / "d", config=TEST_CONFIG,
                                 years=YEARS)
    yield app, contents
    db.engine_for(app).dispose()


def _seizure_of_barcode(session) -> dict[str, int]:
    return dict(session.execute(
        sa.select(Sample.barcode, Item.seizure_id).join(Item, Item.id == Sample.item_id)).all())


def test_the_years_are_coded_seizures_of_earlier_years(demo):
    app, contents = demo
    with app.app_context():
        rows = db.session.execute(
            sa.select(Seizure.seized_on, SeizureRecord.commodity, SeizureRecord.discovery_country)
            .join(SeizureRecord, SeizureRecord.seizure_id == Seizure.id)
            .join(Case, Case.id == Seizure.case_id)
            .where(Case.reference == YEARS_CASE.reference)).all()
    assert Counter(day.year for day, _, _ in rows) == {
        2024 - YEARS + k: SEIZURES_PER_YEAR for k in range(YEARS)}
    assert {commodity for _, commodity, _ in rows} == {"ivory"}
    assert all(country for _, _, country in rows)
    assert contents.years is not None and len(contents.years.relationships) == YEARS + 1


def test_the_network_of_the_extended_demo_holds_exactly_the_planted_links(demo):
    app, contents = demo
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(SeizureLink)) == 0
    ran = jobs.run_queued(app)
    with app.app_context():
        searches = db.session.scalars(sa.select(LinkSearch).where(LinkSearch.id.in_(ran))).all()
        assert {search.panel for search in searches} == {"elephant_16str", "rhino_str"}
        assert all(search.status == "done" for search in searches), [s.error for s in searches]
        seizure_of = _seizure_of_barcode(db.session)
        planted: dict[tuple[int, int], Counter] = {}
        for scenario in (contents.ivory, contents.years, contents.rhino):
            for record in scenario.relationships:
                ends = [seizure_of.get(contents.barcodes[item])
                        for item in (record.item1, record.item2)]
                if None in ends or ends[0] == ends[1]:
                    continue  # a carcass (no seizure) or a pair within one seizure
                pair = tuple(sorted(ends))
                planted.setdefault(pair, Counter())[record.relationship] += 1
        found = {
            (link.seizure1_id, link.seizure2_id): Counter(
                {r: getattr(link, r) for r in RELATIONSHIPS if getattr(link, r)})
            for link in db.session.scalars(sa.select(SeizureLink))
        }
        years_seizures = set(db.session.scalars(sa.select(Seizure.id).join(Case).where(
            Case.reference == YEARS_CASE.reference)))
    # Links into the simulated years are there (they span seizures of different years).
    assert sum(1 for pair in planted if set(pair) & years_seizures) >= YEARS
    # Exactly the planted links between seizures, no other; same-animal pairs counted
    # exactly, and as many kin pairs as planted (the base demo's full siblings may be called
    # parent-offspring: 16 STRs tell the two apart poorly).
    assert set(found) == set(planted)

    def split(counts: Counter) -> tuple[int, int]:
        return counts["same_animal"], sum(counts.values()) - counts["same_animal"]

    assert {pair: split(c) for pair, c in found.items()} == {
        pair: split(c) for pair, c in planted.items()}
    for pair in found:
        if set(pair) & years_seizures:
            assert found[pair] == planted[pair]


def test_dnatrack_demo_refuses_a_bad_number_of_years(tmp_path, capsys):
    assert dnatrack_main(["demo", "--folder", str(tmp_path / "d"), "--years", "-1",
                          "--no-serve"]) != 0
    assert "--years must be 0..20" in capsys.readouterr().err
