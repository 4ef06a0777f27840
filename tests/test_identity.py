"""Identity search: the block search equals its brute-force twin, and the criteria hold."""

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from matching.identity import IdentityCriteria, identity_search, locus_blocks


def classify_by_hand(g1, g2):
    """'identical', 'dropout' or 'mismatch' for two typed genotypes (plain Python)."""
    if sorted(g1) == sorted(g2):
        return "identical"
    for hom, het in ((g1, g2), (g2, g1)):
        if hom[0] == hom[1] and hom[0] in het:
            return "dropout"
    return "mismatch"


def brute_force(table, criteria, new=None):
    pairs = []
    n_loci = table.n_loci
    for i in range(len(table)):
        for j in range(i + 1, len(table)):
            if new is not None and not (new[i] or new[j]):
                continue
            kinds = [
                classify_by_hand(list(table.alleles[i, k]), list(table.alleles[j, k]))
                for k in range(n_loci)
                if table.alleles[i, k, 0] > 0 and table.alleles[j, k, 0] > 0
            ]
            if len(kinds) < criteria.min_loci:
                continue
            if kinds.count("mismatch") > criteria.mismatches_allowed:
                continue
            if kinds.count("dropout") > criteria.dropouts_allowed(n_loci):
                continue
            pairs.append((i, j, len(kinds), kinds.count("identical"), kinds.count("dropout"),
                          kinds.count("mismatch")))
    return pairs


def table_with_near_duplicates(n=300, n_loci=10, n_alleles=4, seed=0, missing=0.05):
    """Random profiles plus copies altered by dropouts, mismatches and missing loci."""
    rng = np.random.default_rng(seed)
    alleles = rng.integers(1, n_alleles + 1, size=(n, n_loci, 2))
    copies = alleles[rng.integers(0, n, size=n // 5)].copy()
    for copy in copies:
        for _ in range(rng.integers(0, 3)):
            locus = rng.integers(n_loci)
            copy[locus] = copy[locus, rng.integers(2)]  # dropout
        for _ in range(rng.integers(0, 4)):
            copy[rng.integers(n_loci)] = rng.integers(1, n_alleles + 1, size=2)  # miscall
    both = np.concatenate([alleles, copies])
    both[rng.random(both.shape[:2]) < missing] = -1
    return GenotypeTable(both, [f"p{i}" for i in range(len(both))],
                         [f"L{k}" for k in range(n_loci)])


def as_rows(hits):
    return list(zip(hits.query_index.tolist(), hits.target_index.tolist(),
                    hits.loci_compared.tolist(), hits.identical.tolist(),
                    hits.dropout.tolist(), hits.mismatch.tolist(), strict=True))


@pytest.mark.parametrize(
    "criteria",
    [
        IdentityCriteria("high", min_loci=5),
        IdentityCriteria("moderate", max_mismatches=0, min_loci=6),
        IdentityCriteria("moderate", max_mismatches=1, min_loci=6, max_dropouts=1),
        IdentityCriteria("moderate", max_mismatches=2, min_loci=4),
    ],
)
def test_exhaustive_search_equals_brute_force(criteria):
    table = table_with_near_duplicates(n=120, seed=1)
    assert as_rows(identity_search(table, criteria, exhaustive=True)) == brute_force(
        table, criteria
    )


@pytest.mark.parametrize("seed", [2, 3])
@pytest.mark.parametrize("tolerance", [1, 2, 4])
def test_block_search_finds_every_pair_within_its_guarantee(seed, tolerance):
    table = table_with_near_duplicates(n=400, n_loci=12, n_alleles=6, seed=seed)
    criteria = IdentityCriteria("moderate", max_mismatches=1, min_loci=6, tolerance=tolerance)
    complete = as_rows(identity_search(table, criteria, exhaustive=True))
    found = as_rows(identity_search(table, criteria))
    assert set(found) <= set(complete)
    assert len(found) == len(set(found))  # a pair agreeing on several blocks is reported once
    n_blocks = criteria.n_blocks
    for row in complete:
        i, j, compared, identical = row[:4]
        not_exact = table.n_loci - identical  # mismatching, dropout, or untyped in either
        if not_exact <= n_blocks - 1:
            assert row in found, f"pair {i},{j} is within the guarantee but was missed"


def test_block_search_equals_exhaustive_on_complete_profiles():
    table = table_with_near_duplicates(n=500, n_loci=9, n_alleles=5, seed=4, missing=0.0)
    criteria = IdentityCriteria("moderate", max_mismatches=1, min_loci=9, max_dropouts=1)
    assert as_rows(identity_search(table, criteria)) == as_rows(
        identity_search(table, criteria, exhaustive=True)
    )


def test_incremental_search_reports_only_pairs_with_a_new_profile():
    table = table_with_near_duplicates(n=200, seed=5)
    new = np.zeros(len(table), dtype=bool)
    new[-30:] = True
    criteria = IdentityCriteria("moderate", max_mismatches=2, min_loci=5)
    found = as_rows(identity_search(table, criteria, new=new, exhaustive=True))
    assert found == brute_force(table, criteria, new=new)
    assert found  # the copies at the end match earlier profiles
    with pytest.raises(ValueError, match="one flag per profile"):
        identity_search(table, criteria, new=new[:5])


def test_a_dropout_is_tolerated_at_moderate_but_not_high_stringency():
    alleles = np.array([[[10, 12], [20, 22], [30, 30], [40, 44]],
                        [[10, 12], [20, 20], [30, 30], [40, 44]]])
    table = GenotypeTable(alleles, ["tusk-A", "tusk-B"], ["a", "b", "c", "d"])
    high = identity_search(table, IdentityCriteria("high", min_loci=4))
    moderate = identity_search(table, IdentityCriteria("moderate", max_mismatches=0, min_loci=4))
    assert len(high) == 0
    assert moderate.records(table.profile_ids) == [{
        "sample1": "tusk-A", "sample2": "tusk-B", "relationship": "same_animal",
        "loci_compared": 4, "loci_identical": 3, "loci_dropout": 1, "loci_mismatch": 0,
    }]


def test_blocks_cover_every_locus_once_and_balance_power():
    table = table_with_near_duplicates(n=300, n_loci=11, seed=6)
    from dnatrack.genotypes import AlleleCoding
    from matching.relationships import genotype_codes

    coding = AlleleCoding.from_tables(table)
    codes = genotype_codes(coding.encode(table), coding.n_alleles)
    missing = coding.n_alleles * (coding.n_alleles + 1) // 2
    blocks = locus_blocks(codes, missing, 4)
    assert sorted(locus for block in blocks for locus in block) == list(range(11))
    assert len(blocks) == 4
    assert max(len(b) for b in blocks) - min(len(b) for b in blocks) <= 2


def test_criteria_validation():
    with pytest.raises(ValueError, match="stringency must be one of"):
        IdentityCriteria("low")
    with pytest.raises(ValueError, match="must be 0 at high stringency"):
        IdentityCriteria("high", max_mismatches=1)
    with pytest.raises(ValueError, match="min_loci"):
        IdentityCriteria(min_loci=0)
    assert IdentityCriteria("moderate", max_mismatches=2, tolerance=2).n_blocks == 5
    assert IdentityCriteria("high", tolerance=2).n_blocks == 3


def test_tiny_tables():
    table = table_with_near_duplicates(n=5)
    assert len(identity_search(table.take([0]))) == 0
    assert len(identity_search(table.take([]), exhaustive=True)) == 0
