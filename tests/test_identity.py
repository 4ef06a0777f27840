"""Identity search: the block search against plain-Python twins, its guarantee, incremental
searches, the choice of blocks, and each kernel against an obvious implementation."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from matching import _identity_kernels as kernels
from matching.identity import (
    IdentityCriteria,
    _chunk_rows,
    choose_blocks,
    guaranteed_bad_loci,
    identity_search,
    locus_blocks,
    locus_power,
    max_blocks,
    required_key_power,
)


# ------------------------------------------------------------------------ plain-Python twins
def typed(genotype):
    return genotype[0] >= 0 and genotype[1] >= 0


def classify_by_hand(g1, g2):
    """'identical', 'dropout' or 'mismatch' for two typed genotypes."""
    if sorted(g1) == sorted(g2):
        return "identical"
    for hom, het in ((g1, g2), (g2, g1)):
        if hom[0] == hom[1] and hom[0] in het:
            return "dropout"
    return "mismatch"


def brute_force(table, criteria, new=None):
    """Every matching pair as (i, j, compared, identical, dropout, mismatch), i < j."""
    pairs = []
    n_loci = table.n_loci
    rows = table.alleles.tolist()
    for i in range(len(table)):
        for j in range(i + 1, len(table)):
            if new is not None and not (new[i] or new[j]):
                continue
            kinds = [classify_by_hand(rows[i][k], rows[j][k]) for k in range(n_loci)
                     if typed(rows[i][k]) and typed(rows[j][k])]
            if len(kinds) < criteria.min_loci:
                continue
            if kinds.count("mismatch") > criteria.mismatches_allowed:
                continue
            if kinds.count("dropout") > criteria.dropouts_allowed:
                continue
            pairs.append((i, j, len(kinds), kinds.count("identical"), kinds.count("dropout"),
                          kinds.count("mismatch")))
    return pairs


def bad_loci(table, i, j, loci=None):
    """Loci that are not typed and identical in both profiles (all loci, or ``loci``)."""
    loci = range(table.n_loci) if loci is None else loci
    return [k for k in loci
            if not (typed(table.alleles[i, k]) and typed(table.alleles[j, k])
                    and sorted(table.alleles[i, k]) == sorted(table.alleles[j, k]))]


def found_by_blocks(table, i, j, blocks):
    """The search's promise: a pair is a candidate when some block holds at most one of its
    bad loci (none, for a one-locus block)."""
    return any(len(bad_loci(table, i, j, block)) <= (1 if len(block) > 1 else 0)
               for block in blocks)


def table_with_copies(n=300, n_loci=10, n_alleles=6, seed=0, missing=0.1, errors=True,
                      copies=0.2):
    """Unrelated profiles plus copies of some of them; every profile, copy or not, then loses
    each locus independently with probability ``missing``. With ``errors``, every other copy
    carries up to two dropouts and up to two miscalls."""
    rng = np.random.default_rng(seed)
    alleles = rng.integers(1, n_alleles + 1, size=(n, n_loci, 2))
    duplicates = alleles[rng.integers(0, n, size=int(n * copies))].copy()
    if errors:
        for copy in duplicates[1::2]:
            for _ in range(rng.integers(0, 3)):
                locus = rng.integers(n_loci)
                copy[locus] = copy[locus, rng.integers(2)]  # dropout
            for _ in range(rng.integers(0, 3)):
                copy[rng.integers(n_loci)] = rng.integers(1, n_alleles + 1, size=2)  # miscall
    both = np.concatenate([alleles, duplicates])
    both[rng.random(both.shape[:2]) < missing] = -1
    return GenotypeTable(both, [f"p{i}" for i in range(len(both))],
                         [f"L{k}" for k in range(n_loci)])


def as_rows(hits):
    return list(zip(hits.query_index.tolist(), hits.target_index.tolist(),
                    hits.loci_compared.tolist(), hits.identical.tolist(),
                    hits.dropout.tolist(), hits.mismatch.tolist(), strict=True))


def codes_of(table):
    codes, by_locus = kernels.genotype_codes(np.ascontiguousarray(table.alleles, dtype=np.int16))
    assert (by_locus == codes.T).all()
    return codes


# ----------------------------------------------------------------- exhaustive search (twin)
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
    table = table_with_copies(n=120, n_alleles=4, seed=1, missing=0.05)
    assert as_rows(identity_search(table, criteria, exhaustive=True)) == brute_force(
        table, criteria
    )


# ------------------------------------------------------------------------ the block search
@pytest.mark.parametrize("missing", [0.05, 0.12, 0.2])
@pytest.mark.parametrize(
    "criteria",
    [IdentityCriteria("high", min_loci=5), IdentityCriteria("moderate", max_mismatches=2,
                                                             min_loci=5)],
    ids=["high", "moderate"],
)
def test_block_search_equals_exhaustive_when_every_pair_is_within_the_guarantee(criteria,
                                                                               missing):
    table = table_with_copies(n=400, n_loci=14, n_alleles=12, seed=2, missing=missing)
    complete = brute_force(table, criteria)
    assert len(complete) > 40
    most_bad = max(len(bad_loci(table, *row[:2])) for row in complete)
    hits = identity_search(table, criteria)
    assert most_bad <= hits.guaranteed_bad_loci
    assert as_rows(hits) == complete
    # The fewest blocks whose guarantee still covers every pair: the guarantee is tight.
    fewest = math.ceil((most_bad + 1) / 2)
    hits = identity_search(table, dataclasses.replace(criteria, n_blocks=fewest))
    assert hits.guaranteed_bad_loci in (most_bad, most_bad + 1)
    assert as_rows(hits) == complete


@pytest.mark.parametrize("n_blocks", [2, 3, 4])
@pytest.mark.parametrize("stringency", ["high", "moderate"])
def test_pairs_within_the_guarantee_are_always_found(n_blocks, stringency):
    # Heavy, independent missingness: some true pairs have more bad loci than any block
    # structure can promise, so the guarantee and the exact rule are both put to work.
    table = table_with_copies(n=250, n_loci=12, n_alleles=8, seed=3, missing=0.3)
    criteria = IdentityCriteria(stringency, min_loci=4, n_blocks=n_blocks)
    hits = identity_search(table, criteria)
    assert hits.n_blocks == n_blocks
    assert hits.guaranteed_bad_loci == 2 * n_blocks - 1
    assert sorted(locus for block in hits.blocks for locus in block) == list(range(12))
    found = as_rows(hits)
    complete = brute_force(table, criteria)
    bad = {row[:2]: len(bad_loci(table, *row[:2])) for row in complete}
    within = [row for row in complete if bad[row[:2]] <= hits.guaranteed_bad_loci]
    assert any(bad[row[:2]] == hits.guaranteed_bad_loci for row in within)
    assert any(count > hits.guaranteed_bad_loci for count in bad.values())
    assert set(within) <= set(found)
    # Exactly the matching pairs with at most one bad locus in some block are found.
    assert found == [row for row in complete if found_by_blocks(table, *row[:2], hits.blocks)]


def test_each_pair_is_reported_once():
    # Exact triplicates without missing loci share every key of every block.
    rng = np.random.default_rng(4)
    alleles = rng.integers(1, 7, size=(40, 8, 2))
    table = GenotypeTable(np.concatenate([alleles, alleles, alleles[:10]]),
                          [f"p{i}" for i in range(90)], [f"L{k}" for k in range(8)])
    criteria = IdentityCriteria("high", min_loci=8)
    found = as_rows(identity_search(table, criteria))
    assert len({row[:2] for row in found}) == len(found)
    assert found == brute_force(table, criteria)
    assert len(found) == 40 + 2 * 10


def test_one_large_group_is_split_across_chunks():
    rng = np.random.default_rng(17)
    animal = rng.integers(1, 30, size=(1, 10, 2))
    others = rng.integers(1, 30, size=(100, 10, 2))
    table = GenotypeTable(np.concatenate([others, np.repeat(animal, 400, axis=0)]),
                          [f"p{i}" for i in range(500)], [f"L{k}" for k in range(10)])
    criteria = IdentityCriteria("high", min_loci=10)
    found = as_rows(identity_search(table, criteria))
    assert found == as_rows(identity_search(table, criteria, exhaustive=True))
    assert len(found) == 400 * 399 // 2
    new = np.arange(500) == 499
    assert len(identity_search(table, criteria, new=new)) == 399
    # The group's rows (399, 398, ... 1 pairs) go to several chunks of similar size.
    pairs_per_row = np.arange(399, 0, -1)
    bounds = _chunk_rows(pairs_per_row)
    per_chunk = [pairs_per_row[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    assert bounds[0] == 0 and bounds[-1] == 399 and len(per_chunk) >= 2
    assert max(per_chunk) <= sum(per_chunk) / len(per_chunk) + 399


def test_more_blocks_find_more_pairs_with_untyped_loci():
    table = table_with_copies(n=300, n_loci=12, n_alleles=8, seed=5, missing=0.25)
    criteria = [IdentityCriteria("high", min_loci=4, n_blocks=b) for b in (1, 3, 6)]
    found = [len(identity_search(table, c)) for c in criteria]
    assert found[0] < found[1] <= found[2] == len(brute_force(table, criteria[2]))


def test_a_dropout_is_tolerated_at_moderate_but_not_high_stringency():
    alleles = np.array([[[10, 12], [20, 22], [30, 30], [40, 44]],
                        [[12, 10], [20, 20], [30, 30], [40, 44]]])
    table = GenotypeTable(alleles, ["tusk-A", "tusk-B"], ["a", "b", "c", "d"])
    high = identity_search(table, IdentityCriteria("high", min_loci=4))
    moderate = identity_search(table, IdentityCriteria("moderate", max_mismatches=0, min_loci=4))
    assert len(high) == 0
    assert moderate.records(table.profile_ids) == [{
        "sample1": "tusk-A", "sample2": "tusk-B", "relationship": "same_animal",
        "loci_compared": 4, "loci_identical": 3, "loci_dropout": 1, "loci_mismatch": 0,
    }]
    assert (moderate.n_blocks, moderate.guaranteed_bad_loci) == (2, 3)


# ------------------------------------------------------------------------------ incremental
@pytest.mark.parametrize("criteria", [IdentityCriteria("high", min_loci=5),
                                      IdentityCriteria("moderate", min_loci=5)])
def test_incremental_search_equals_exhaustive_on_pairs_with_a_new_profile(criteria):
    table = table_with_copies(n=300, n_loci=14, n_alleles=8, seed=6, missing=0.1)
    new = np.random.default_rng(7).random(len(table)) < 0.15
    expected = brute_force(table, criteria, new=new)
    assert len(expected) > 5
    incremental = identity_search(table, criteria, new=new)
    assert as_rows(incremental) == expected
    full = identity_search(table, criteria)
    assert as_rows(incremental) == [row for row in as_rows(full) if new[row[0]] or new[row[1]]]
    assert as_rows(identity_search(table, criteria, new=new, exhaustive=True)) == expected


def test_incremental_search_with_no_new_or_only_new_profiles():
    table = table_with_copies(n=150, seed=8)
    criteria = IdentityCriteria("moderate", min_loci=5)
    none = identity_search(table, criteria, new=np.zeros(len(table), dtype=bool))
    assert len(none) == 0 and none.n_blocks > 0
    every = identity_search(table, criteria, new=np.ones(len(table), dtype=bool))
    assert as_rows(every) == as_rows(identity_search(table, criteria))
    with pytest.raises(ValueError, match="one flag per profile"):
        identity_search(table, criteria, new=np.ones(5, dtype=bool))


def test_incremental_search_splits_pairs_of_two_new_profiles_once():
    rng = np.random.default_rng(9)
    animal = rng.integers(1, 9, size=(1, 10, 2))
    others = rng.integers(1, 9, size=(20, 10, 2))
    table = GenotypeTable(np.concatenate([others, animal, animal, animal]),
                          [f"p{i}" for i in range(23)], [f"L{k}" for k in range(10)])
    new = np.zeros(23, dtype=bool)
    new[[21, 22]] = True
    found = as_rows(identity_search(table, IdentityCriteria("high", min_loci=10), new=new))
    assert [row[:2] for row in found] == [(20, 21), (20, 22), (21, 22)]


# -------------------------------------------------------------------------- choosing blocks
def test_chosen_blocks_by_hand_for_equal_loci():
    # Sixteen loci of power 4: a key of k loci has power 4k, and needs ln N − ln 25.
    power = np.full(16, 4.0)
    by_size = {n: len(choose_blocks(power, n)) for n in (1_000, 20_000, 100_000, 1_000_000)}
    # 1,000: needs 3.69, one locus will do: 8 blocks of 2.  20,000: needs 6.68, two loci:
    # blocks of 3 (4+3+3+3+3 = 16, 5 blocks; 6 blocks would have two-locus blocks).
    # 100,000 (8.29) and 1,000,000 (10.60): three loci, blocks of 4.
    assert by_size == {1_000: 8, 20_000: 5, 100_000: 4, 1_000_000: 4}
    assert math.isclose(required_key_power(1_000_000), math.log(1e6) - math.log(25))
    # Too weak for any key: the floor of two blocks.
    assert len(choose_blocks(np.full(16, 0.1), 10**9)) == 2
    assert len(choose_blocks(np.full(3, 0.1), 10**9)) == 1


@pytest.mark.parametrize("seed", range(5))
def test_more_profiles_never_mean_more_blocks(seed):
    rng = np.random.default_rng(seed)
    n_loci = int(rng.integers(2, 25))
    power = rng.uniform(0.2, 5.0, size=n_loci)
    counts = [len(choose_blocks(power, n)) for n in np.logspace(0, 9, 40).astype(int)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == max_blocks(n_loci)
    assert min(counts) >= (2 if n_loci >= 4 else 1)
    for n in (10, 10_000, 10**7):
        blocks = choose_blocks(power, n)
        if len(blocks) > (2 if n_loci >= 4 else 1):
            keys = [sum(power[block]) - max(power[block]) for block in blocks]
            assert min(keys) >= required_key_power(n)


def test_larger_tables_get_no_more_blocks():
    table = table_with_copies(n=20_000, n_loci=16, n_alleles=5, seed=10, missing=0.05,
                              copies=0.0)
    criteria = IdentityCriteria("high", min_loci=8)
    counts = [identity_search(table.take(np.arange(n)), criteria).n_blocks
              for n in (30, 300, 3_000, 20_000)]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] > counts[-1]


@pytest.mark.parametrize("n_loci, n_blocks", [(2, 1), (5, 2), (9, 4), (16, 5), (16, 8),
                                              (7, 7), (3, 5)])
def test_blocks_cover_every_locus_once_with_balanced_sizes(n_loci, n_blocks):
    power = np.random.default_rng(n_loci).uniform(0.1, 6.0, size=n_loci)
    power[0] = 50.0  # one overwhelming locus must not end up alone in a block
    blocks = locus_blocks(power, n_blocks)
    assert sorted(locus for block in blocks for locus in block) == list(range(n_loci))
    assert len(blocks) == min(n_blocks, n_loci)
    sizes = [len(block) for block in blocks]
    assert max(sizes) - min(sizes) <= 1
    if n_blocks <= max_blocks(n_loci):
        assert min(sizes) >= 2
    assert guaranteed_bad_loci(blocks) == sum(2 if s > 1 else 1 for s in sizes) - 1


def test_locus_power_by_hand():
    # Locus 0: genotypes 10/12 twice, 12/10 once (same), 14/14 once → f = 3/4, 1/4.
    # Locus 1: untyped everywhere. Locus 2: one genotype → power 0.
    alleles = np.array([[[10, 12], [-1, -1], [5, 6]], [[10, 12], [-1, -1], [5, 6]],
                        [[12, 10], [-1, -1], [6, 5]], [[14, 14], [-1, -1], [5, 6]]])
    codes = codes_of(GenotypeTable(alleles, list("abcd"), ["x", "y", "z"]))
    power = locus_power(np.ascontiguousarray(codes.T))
    assert np.allclose(power, [-math.log(0.75**2 + 0.25**2), 0.0, 0.0])


# --------------------------------------------------------------------------------- edge cases
def test_tiny_tables():
    table = table_with_copies(n=5)
    assert len(identity_search(table.take([0]))) == 0
    assert len(identity_search(table.take([]))) == 0
    assert len(identity_search(table.take([]), exhaustive=True)) == 0


def test_profiles_typed_nowhere_never_match():
    alleles = np.full((6, 5, 2), -1)
    alleles[:2] = [[10, 12]] * 5
    table = GenotypeTable(alleles, [f"p{i}" for i in range(6)], [f"L{k}" for k in range(5)])
    for criteria in (IdentityCriteria("high", min_loci=1), IdentityCriteria(min_loci=1)):
        assert [row[:2] for row in as_rows(identity_search(table, criteria))] == [(0, 1)]
    assert len(identity_search(table, IdentityCriteria(min_loci=6))) == 0


@pytest.mark.parametrize("n_loci", [1, 2, 3])
@pytest.mark.parametrize("stringency", ["high", "moderate"])
def test_one_to_three_loci(n_loci, stringency):
    table = table_with_copies(n=60, n_loci=n_loci, n_alleles=5, seed=11, missing=0.1)
    criteria = IdentityCriteria(stringency, min_loci=1)
    hits = identity_search(table, criteria)
    assert hits.n_blocks == 1
    assert hits.guaranteed_bad_loci == (0 if n_loci == 1 else 1)
    complete = brute_force(table, criteria)
    within = [row for row in complete
              if len(bad_loci(table, *row[:2])) <= hits.guaranteed_bad_loci]
    assert set(within) <= set(as_rows(hits)) <= set(complete)
    assert as_rows(hits) == [row for row in complete
                             if found_by_blocks(table, *row[:2], hits.blocks)]
    assert within


def test_criteria_validation():
    with pytest.raises(ValueError, match="stringency must be one of"):
        IdentityCriteria("low")
    with pytest.raises(ValueError, match="must be 0 at high stringency"):
        IdentityCriteria("high", max_mismatches=1)
    with pytest.raises(ValueError, match="min_loci"):
        IdentityCriteria(min_loci=0)
    with pytest.raises(ValueError, match="n_blocks must be at least 1"):
        IdentityCriteria(n_blocks=0)
    assert IdentityCriteria().n_blocks is None
    assert IdentityCriteria("moderate", n_blocks=3).as_dict() == {
        "stringency": "moderate", "max_mismatches": 2, "max_dropouts": 2, "min_loci": 8,
        "n_blocks": 3,
    }


def test_fixed_blocks_are_capped_at_half_the_loci():
    table = table_with_copies(n=50, n_loci=6, seed=12)
    hits = identity_search(table, IdentityCriteria(min_loci=3, n_blocks=10))
    assert hits.n_blocks == 3 and hits.guaranteed_bad_loci == 5


def test_exhaustive_search_guarantees_every_locus():
    table = table_with_copies(n=40, n_loci=7, seed=13)
    hits = identity_search(table, IdentityCriteria(min_loci=3), exhaustive=True)
    assert (hits.n_blocks, hits.guaranteed_bad_loci) == (0, 7)


# ---------------------------------------------------------------- kernels against their twins
@pytest.mark.parametrize("seed", [0, 1])
def test_genotype_codes_kernel(seed):
    rng = np.random.default_rng(seed)
    alleles = rng.integers(-1, 40, size=(30, 6, 2)).astype(np.int16)
    alleles[0, 0] = [32767, 1]
    codes, by_locus = kernels.genotype_codes(alleles)
    assert (by_locus == codes.T).all()
    for i, k in itertools.product(range(30), range(6)):
        a, b = alleles[i, k].tolist()
        expected = -1 if min(a, b) < 0 else min(a, b) * 65536 + max(a, b)
        assert codes[i, k] == expected


def groups_by_hand(table, key_loci, profiles):
    """Profiles sharing their genotypes on ``key_loci`` (all typed), as sorted tuples."""
    groups = {}
    for p in profiles:
        genotypes = [tuple(sorted(table.alleles[p, k].tolist())) for k in key_loci]
        if all(g[0] >= 0 for g in genotypes):
            groups.setdefault(tuple(genotypes), []).append(p)
    return sorted(tuple(g) for g in groups.values() if len(g) > 1)


@pytest.mark.parametrize("key_loci", [[0], [1, 3], [0, 2, 4], [4, 3, 2, 1, 0]])
@pytest.mark.parametrize("incremental", [False, True])
def test_key_kernels_group_profiles_like_a_dictionary(key_loci, incremental):
    table = table_with_copies(n=200, n_loci=5, n_alleles=3, seed=14, missing=0.15)
    codes = codes_of(table)
    by_locus = np.ascontiguousarray(codes.T)
    rng = np.random.default_rng(15)
    profiles = np.flatnonzero(rng.random(len(table)) < 0.8).astype(np.int64)
    is_new = rng.random(len(table)) < 0.1 if incremental else np.zeros(0, dtype=bool)
    loci = np.array(key_loci, dtype=np.int64)
    packed = kernels.packed_keys(by_locus, loci, profiles, 8)
    assert (packed & np.uint64(255)).tolist() == profiles.tolist()
    packed.sort()
    members, position, low, high = kernels.candidate_groups(packed, 8, is_new)
    hash_of = {int(v & np.uint64(255)): int(v >> np.uint64(8)) for v in packed}
    runs, start = [], 0
    for m in range(1, len(members) + 1):
        if m == len(members) or hash_of[members[m]] != hash_of[members[start]]:
            runs.append((start, m))
            start = m
    assert sorted(tuple(members[s:e].tolist()) for s, e in runs) == groups_by_hand(
        table, key_loci, profiles)
    if incremental:
        expected = [(p, s, e) for s, e in runs for p in range(s, e) if is_new[members[p]]]
    else:
        expected = [(p, p + 1, e) for s, e in runs for p in range(s, e - 1)]
    assert list(zip(position.tolist(), low.tolist(), high.tolist(), strict=True)) == expected


def test_share_a_key_and_hash_set_kernels():
    table = table_with_copies(n=300, n_loci=4, n_alleles=4, seed=16, missing=0.1)
    by_locus = np.ascontiguousarray(codes_of(table).T)
    loci = np.array([1, 2], dtype=np.int64)
    everyone = np.arange(len(table), dtype=np.int64)
    new = everyone[:7]
    shift = np.uint64(10)
    new_hashes = np.unique(kernels.packed_keys(by_locus, loci, new, 10) >> shift)
    new_hashes = new_hashes[new_hashes != kernels.ALL_ONES >> shift]
    table_of_hashes = kernels.hash_set(new_hashes)
    assert sorted(set(table_of_hashes.tolist()) - {int(kernels.ALL_ONES)}) == \
        new_hashes.tolist()
    shares = kernels.share_a_key(by_locus, loci, everyone, 10, table_of_hashes)
    genotypes = {p: tuple(tuple(sorted(table.alleles[p, k].tolist())) for k in loci)
                 for p in range(len(table))}
    wanted = {genotypes[p] for p in new if all(g[0] >= 0 for g in genotypes[p])}
    assert shares.tolist() == [genotypes[p] in wanted for p in range(len(table))]
    empty = kernels.hash_set(np.zeros(0, dtype=np.uint64))
    assert not kernels.share_a_key(by_locus, loci, everyone, 10, empty).any()


def first_key_by_hand(bad, blocks):
    """The first key (block, deleted locus or None) a pair with ``bad`` loci shares."""
    for b, block in enumerate(blocks):
        if len(block) == 1:
            if block[0] not in bad:
                return b, None
            continue
        for locus in block:
            if all(other not in bad for other in block if other != locus):
                return b, locus
    return None


@pytest.mark.parametrize("blocks", [[[0, 1], [2, 3]], [[0, 2, 4], [1, 3], [5, 6, 7]], [[0]],
                                    [[3, 0, 1, 2]]])
def test_first_found_on_key_kernel(blocks):
    n_loci = max(max(block) for block in blocks) + 1
    block_loci = np.array([locus for block in blocks for locus in block], dtype=np.int64)
    block_starts = np.cumsum([0] + [len(block) for block in blocks]).astype(np.int64)
    first = np.full(n_loci, 5, dtype=np.int32)
    for bad in itertools.chain.from_iterable(
            itertools.combinations(range(n_loci), r) for r in range(n_loci + 1)):
        second = first.copy()
        second[list(bad)] = -1
        owner = first_key_by_hand(set(bad), blocks)
        for b, block in enumerate(blocks):
            keys = [-1] if len(block) == 1 else range(block_starts[b], block_starts[b + 1])
            for deleted in keys:
                key = (b, None if deleted < 0 else int(block_loci[deleted]))
                assert kernels.first_found_on_key(first, second, block_loci, block_starts, b,
                                                  deleted) == (key == owner), (bad, key)


def test_compare_pair_kernel():
    codes = codes_of(GenotypeTable(
        np.array([[[10, 12], [20, 20], [30, 32], [40, 44], [-1, -1], [7, 8]],
                  [[12, 10], [20, 22], [30, 30], [41, 44], [50, 50], [-1, -1]]]),
        ["a", "b"], [f"L{k}" for k in range(6)]))
    assert kernels.compare_pair(codes[0], codes[1]) == (4, 1, 2, 1)
    assert kernels.compare_pair(codes[1], codes[0]) == (4, 1, 2, 1)


def test_gather_rows_kernel():
    codes = np.arange(40, dtype=np.int32).reshape(10, 4)
    members = np.array([3, 3, 0, 9], dtype=np.int64)
    assert (kernels.gather_rows(codes, members) == codes[members]).all()
