"""Release to matching: current released profiles as a GenotypeTable grouped by seizure."""

from __future__ import annotations

import numpy as np

from dnatrack.genotypes import MISSING
from dnatrack.panels import Panel
from lims.models import CaseShare, GenotypeProfile, Sample, SourceAnimal, User
from lims.release import released_genotypes, seizure_labels
from tests.lims.conftest import TEST_PANEL
from tests.lims.factories import make_case_tree, make_user

PANEL = Panel.from_dict(TEST_PANEL)


def add_profile(
    session, sample_id: int, analyst: User, alleles: dict, state: str, **fields
) -> GenotypeProfile:
    profile = GenotypeProfile(
        sample_id=sample_id,
        panel=PANEL.name,
        alleles=alleles,
        n_loci_typed=len(alleles),
        state=state,
        analyst_id=analyst.id,
        **fields,
    )
    session.add(profile)
    session.flush()
    return profile


def test_released_profiles_load_grouped_by_seizure(session, agencies):
    kenya = make_case_tree(session, agencies["A"], "KE")
    uganda = make_case_tree(session, agencies["B"], "UG")
    analyst = make_user(session, agencies["A"], "ana", "analyst")
    aliquot = Sample(
        barcode="KE-S1a", case_id=kenya.case_id, sample_type="powder", parent_id=kenya.sample_ids[0]
    )
    carcass = SourceAnimal(
        case_id=kenya.case_id,
        identifier="CARC-1",
        kind="carcass",
        population="Tsavo",
        latitude=-2.9,
        longitude=38.5,
    )
    session.add_all([aliquot, carcass])
    session.flush()
    carcass_sample = Sample(
        barcode="CARC-1-T", case_id=kenya.case_id, sample_type="tissue", source_animal_id=carcass.id
    )
    session.add(carcass_sample)
    session.flush()

    add_profile(session, kenya.sample_ids[0], analyst, {"FH67": [148, 152]}, "released")
    add_profile(session, aliquot.id, analyst, {"FH71": [200, 204], "LAT24": [220, 220]}, "released")
    add_profile(session, uganda.sample_ids[1], analyst, {"LA5": [100, 104]}, "released")
    add_profile(session, carcass_sample.id, analyst, {"FH67": [150, 150]}, "released")
    # Not searchable: pending, rejected, superseded.
    add_profile(session, kenya.sample_ids[1], analyst, {"FH67": [160, 160]}, "pending")
    add_profile(
        session,
        uganda.sample_ids[0],
        analyst,
        {"FH67": [162, 162]},
        "rejected",
        rejection_reason="contaminated",
    )
    add_profile(
        session, uganda.sample_ids[0], analyst, {"FH67": [164, 164]}, "released", superseded=True
    )
    session.commit()

    table = released_genotypes(session, PANEL)
    assert table.loci == ("FH67", "FH71", "LA5", "LAT24")
    assert table.profile_ids.tolist() == ["KE-S1", "KE-S1a", "UG-S2", "CARC-1-T"]
    assert table.group.tolist() == ["KE-SZ", "KE-SZ", "UG-SZ", ""]
    m = MISSING
    expected = np.array(
        [
            [[148, 152], [m, m], [m, m], [m, m]],
            [[m, m], [200, 204], [m, m], [220, 220]],
            [[m, m], [m, m], [100, 104], [m, m]],
            [[150, 150], [m, m], [m, m], [m, m]],
        ],
        dtype=np.int16,
    )
    np.testing.assert_array_equal(table.alleles, expected)
    assert table.population.tolist() == ["", "", "", "Tsavo"]
    np.testing.assert_allclose(table.lat, [np.nan, np.nan, np.nan, -2.9])

    # Need-to-know, when asked for: agency B sees only its own released profile.
    outsider = make_user(session, agencies["B"], "bob", "researcher")
    assert released_genotypes(session, PANEL, user=outsider).profile_ids.tolist() == ["UG-S2"]


def test_no_released_profiles_give_an_empty_table(session, agencies):
    table = released_genotypes(session, PANEL)
    assert table.n_profiles == 0 and table.loci == PANEL.locus_names
    assert table.population is None and table.lat is None


def test_seizures_of_one_reference_in_two_agencies_stay_two_groups(session, agencies):
    """References are unique per agency only: agency A's and agency B's "KE-001" are two
    seizures, two groups labelled with their agency's code; a table a user may see labels
    only by what it holds, so B's unshared seizure changes nothing in A's."""
    analyst = make_user(session, agencies["A"], "ana", "analyst")
    own = make_case_tree(session, agencies["A"], "KE", seizure_reference="KE-001")
    shared = make_case_tree(session, agencies["B"], "UG", seizure_reference="KE-001")
    unshared = make_case_tree(session, agencies["B"], "TZ", seizure_reference="KE-001 (A)")
    for tree, size in ((own, 148), (shared, 150), (unshared, 152)):
        add_profile(session, tree.sample_ids[0], analyst, {"FH67": [size, size]}, "released")
    session.commit()

    table = released_genotypes(session, PANEL)
    assert table.profile_ids.tolist() == ["KE-S1", "UG-S1", "TZ-S1"]
    # B's third seizure is literally called "KE-001 (A)": it is qualified in turn.
    assert table.group.tolist() == ["KE-001 (A)", "KE-001 (B)", "KE-001 (A) (B)"]

    researcher = make_user(session, agencies["A"], "res", "researcher")
    assert released_genotypes(session, PANEL, user=researcher).group.tolist() == ["KE-001"]
    session.add(CaseShare(case_id=shared.case_id, agency_id=agencies["A"], access="read"))
    session.commit()
    seen = released_genotypes(session, PANEL, user=researcher)
    assert seen.profile_ids.tolist() == ["KE-S1", "UG-S1"]
    assert seen.group.tolist() == ["KE-001 (A)", "KE-001 (B)"]


def test_seizure_labels_are_references_until_two_seizures_share_one():
    assert seizure_labels({}) == {}
    assert seizure_labels({7: ("KE-001", "KWS")}) == {7: "KE-001"}
    assert seizure_labels({1: ("X", "A"), 2: ("X", "B"), 3: ("X (B)", "A"), 4: ("Y", "A")}) == {
        1: "X (A)",
        2: "X (B)",
        3: "X (B) (A)",
        4: "Y",
    }
