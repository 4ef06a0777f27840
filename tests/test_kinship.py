"""The kinship search kernel against a plain numpy twin, and its public API."""

import numpy as np
import pytest

from dnatrack.genotypes import GenotypeTable
from matching import _kinship_kernels as kernels
from matching.kinship import DEFAULT_CUTOFFS, KinshipSearch, PairHits
from matching.relationships import RELATIONSHIPS, ErrorModel

KEEP_ALL = {name: -np.inf for name in RELATIONSHIPS}


def random_table(n, n_loci=6, n_alleles=5, missing=0.1, seed=0, prefix="s"):
    rng = np.random.default_rng(seed)
    freqs = rng.dirichlet(np.ones(n_alleles), size=n_loci)
    alleles = np.stack(
        [rng.choice(n_alleles, size=(n, 2), p=freqs[locus]) for locus in range(n_loci)], axis=1
    )
    alleles = alleles + 100
    alleles[rng.random((n, n_loci)) < missing] = -1
    ids = [f"{prefix}{i}" for i in range(n)]
    return GenotypeTable(alleles, ids, [f"L{j}" for j in range(n_loci)])


def numpy_pair_sums(search: KinshipSearch, query: GenotypeTable, target: GenotypeTable,
                    tables=None):
    """The same computation the kernel does, vectorised over all pairs with numpy (over the
    search's pooled tables, or ``tables``)."""
    q, t = search.codes(query), search.codes(target)
    tables = search.tables if tables is None else tables
    total = np.zeros((len(query), len(target), len(search.relationships)))
    compared = np.zeros((len(query), len(target)), dtype=np.int32)
    for locus in range(len(search.loci)):
        block = tables.locus_table(locus)
        total += block[q[:, locus][:, None], t[:, locus][None, :]]
        missing = tables.strides[locus] - 1
        compared += (q[:, locus] != missing)[:, None] & (t[:, locus] != missing)[None, :]
    return total, compared


def expected_pairs(search, total, compared, triangular, cutoffs=None):
    """Pairs a search must report, from plain sums: ``cutoffs`` broadcast against ``total``
    (default the search's fixed cutoffs)."""
    passing = total >= (search.cutoff_array if cutoffs is None else cutoffs)
    if "same_animal" in search.relationships and len(search.relationships) > 1:
        # the same animal is called only when it beats every other relationship
        same = search.relationships.index("same_animal")
        others = [r for r in range(len(search.relationships)) if r != same]
        passing[..., same] &= total[..., same] > total[..., others].max(axis=-1)
    keep = passing.any(axis=2) & (compared >= search.min_loci)
    if triangular:
        keep &= np.triu(np.ones_like(keep), k=1).astype(bool)
    return np.argwhere(keep)


@pytest.mark.parametrize(
    ("n", "n_loci", "n_alleles", "missing", "cutoffs", "min_loci"),
    [
        (40, 6, 5, 0.1, KEEP_ALL, 1),
        (70, 9, 3, 0.3, KEEP_ALL, 4),
        (150, 5, 8, 0.0, {"same_animal": 2.0, "parent_offspring": 1.0,
                          "full_sibling": 1.0, "half_sibling": 0.5}, 3),
        (30, 4, 1, 0.2, KEEP_ALL, 1),  # single-allele loci
        (25, 3, 4, 0.95, KEEP_ALL, 1),  # mostly untyped
        (30, 91, 2, 0.1, KEEP_ALL, 60),  # an SNP panel: more loci than one 64-bit mask
    ],
)
def test_all_pairs_equal_numpy_twin(n, n_loci, n_alleles, missing, cutoffs, min_loci):
    table = random_table(n, n_loci, n_alleles, missing, seed=n)
    search = KinshipSearch.from_reference(
        table, theta=0.03, cutoffs=cutoffs, min_loci=min_loci, errors=ErrorModel(0.02, 0.005)
    )
    hits = search.all_pairs(table)
    total, compared = numpy_pair_sums(search, table, table)
    pairs = expected_pairs(search, total, compared, triangular=True)
    assert np.array_equal(np.c_[hits.query_index, hits.target_index], pairs.reshape(-1, 2))
    assert np.array_equal(hits.log10_lr, total[pairs[:, 0], pairs[:, 1]])
    assert np.array_equal(hits.loci_compared, compared[pairs[:, 0], pairs[:, 1]])


@pytest.mark.parametrize("n_loci", [5, 16, 40])
def test_a_pair_exactly_at_a_cutoff_is_kept(n_loci):
    """The scan's coarse first pass must never drop a pair the exact sums keep: cutoffs set to
    pairs' exact sums keep those pairs (more than 16 loci: several packed sums per pair)."""
    table = random_table(120, n_loci, 6, 0.1, seed=n_loci)
    options = dict(theta=0.02, min_loci=1, errors=ErrorModel(0.01, 0.005))
    everything = KinshipSearch.from_reference(table, cutoffs=KEEP_ALL, **options)
    total, compared = numpy_pair_sums(everything, table, table)
    upper = np.triu(np.ones(compared.shape, dtype=bool), k=1)
    cutoffs = {name: float(np.quantile(total[..., r][upper], 0.99, method="lower"))
               for r, name in enumerate(everything.relationships)}
    search = KinshipSearch.from_reference(table, cutoffs=cutoffs, **options)
    hits = search.all_pairs(table)
    pairs = expected_pairs(search, total, compared, triangular=True)
    at_cutoff = (total[upper] == search.cutoff_array).any(axis=1).sum()
    assert at_cutoff >= len(cutoffs) and len(pairs) < upper.sum() / 10
    assert np.array_equal(np.c_[hits.query_index, hits.target_index], pairs.reshape(-1, 2))
    assert np.array_equal(hits.log10_lr, total[pairs[:, 0], pairs[:, 1]])


def test_packed_lane_sums_bound_the_exact_sums():
    """pack_lanes: the lanes of any n_loci entries, summed as integers, reach the threshold of
    a cutoff equal to the entries' exact sum (each lane rounds its value up)."""
    rng = np.random.default_rng(7)
    values = rng.normal(0.0, 3.0, size=(300, kernels.N_CHANNELS))
    values[rng.random(values.shape) < 0.02] = -np.inf
    values[:, 3] = 0.0  # a padding channel
    for n_loci in (1, 16, 33):
        for _ in range(50):
            entries = rng.integers(0, len(values), n_loci)
            exact = values[entries].sum(axis=0)
            packed, thresholds = kernels.pack_lanes(values.ravel(), exact, n_loci)
            lanes = [[(int(packed[entry]) >> (16 * c)) & 0xFFFF
                      for c in range(kernels.N_CHANNELS)] for entry in entries]
            coarse = np.sum(lanes, axis=0)
            assert np.all(coarse >= thresholds)
            assert np.all(np.array(lanes) <= kernels.LANE_MAX)


def test_channels_without_a_finite_bound_are_never_filtered():
    """+inf or NaN in a channel leaves no upper bound: its threshold lets every pair through
    to the exact sums; -inf entries (impossible genotype pairs) get the lowest lane."""
    values = np.array([[0.5, 1.0, np.inf, -np.inf], [2.0, np.nan, 0.0, 1.0]])
    packed, thresholds = kernels.pack_lanes(values.ravel(), np.array([3.0, 1.0, 1.0, 5.0]), 2)
    assert thresholds[1] == -1 and thresholds[2] == -1
    assert thresholds[0] > 0 and thresholds[3] > 0
    assert (int(packed[0]) >> 48) & 0xFFFF == 0


def test_new_vs_existing_equals_numpy_twin_and_covers_new_pairs():
    existing = random_table(90, seed=1)
    new = random_table(20, seed=2, prefix="n")
    search = KinshipSearch.from_reference(existing, new, theta=0.01, cutoffs=KEEP_ALL, min_loci=2)
    cross = search.new_vs_existing(new, existing, include_new_pairs=False)
    total, compared = numpy_pair_sums(search, new, existing)
    pairs = expected_pairs(search, total, compared, triangular=False)
    assert np.array_equal(np.c_[cross.query_index, cross.target_index], pairs.reshape(-1, 2))
    assert np.array_equal(cross.log10_lr, total[pairs[:, 0], pairs[:, 1]])

    everything = search.new_vs_existing(new, existing)
    combined = GenotypeTable.concat([new, existing])
    all_pairs = search.all_pairs(combined)
    involving_new = all_pairs.query_index < len(new)
    assert np.array_equal(everything.query_index, all_pairs.query_index[involving_new])
    assert np.array_equal(everything.target_index, all_pairs.target_index[involving_new])
    assert np.array_equal(everything.log10_lr, all_pairs.log10_lr[involving_new])


def test_empty_and_single_profile_tables():
    table = random_table(5)
    search = KinshipSearch.from_reference(table, cutoffs=KEEP_ALL, min_loci=1)
    assert len(search.all_pairs(table.take([]))) == 0
    assert len(search.all_pairs(table.take([0]))) == 0
    assert len(search.new_vs_existing(table.take([]), table)) == 0


def test_a_duplicate_profile_is_found_as_the_same_animal():
    table = random_table(60, n_loci=12, n_alleles=8, missing=0.0, seed=5)
    copy = table.take([7]).replace(profile_ids=["copy-of-s7"])
    both = GenotypeTable.concat([table, copy])
    search = KinshipSearch.from_reference(both, theta=0.02, min_loci=8)
    hits = search.all_pairs(both)
    records = hits.records(both.profile_ids, both.profile_ids)
    same = [r for r in records if {r["sample1"], r["sample2"]} == {"s7", "copy-of-s7"}]
    assert len(same) == 1
    assert same[0]["relationship"] == "same_animal"
    assert same[0]["loci_compared"] == 12
    assert same[0]["log10_lr"] >= DEFAULT_CUTOFFS["same_animal"]


def test_unseen_alleles_need_the_query_in_the_coding():
    reference = random_table(30, seed=3)
    query = reference.replace(alleles=np.where(reference.alleles > 0, reference.alleles + 50, -1))
    with pytest.raises(ValueError, match="not in the allele coding"):
        KinshipSearch.from_reference(reference).all_pairs(query)
    search = KinshipSearch.from_reference(reference, query, cutoffs=KEEP_ALL, min_loci=1)
    assert len(search.all_pairs(query)) > 0


def test_subset_of_relationships_and_validation():
    table = random_table(50, seed=4)
    search = KinshipSearch.from_reference(
        table, relationships=("parent_offspring",), cutoffs={"parent_offspring": -np.inf},
        min_loci=1,
    )
    hits = search.all_pairs(table)
    assert hits.log10_lr.shape[1] == 1
    assert {r["relationship"] for r in hits.records(table.profile_ids, table.profile_ids)} == {
        "parent_offspring"
    }
    with pytest.raises(ValueError, match="relationships must be among"):
        KinshipSearch.from_reference(table, relationships=("cousin",))
    missing = "no cutoff for parent_offspring, full_sibling, half_sibling"
    with pytest.raises(ValueError, match=missing):
        KinshipSearch.from_reference(table, cutoffs={"same_animal": 1.0})
    with pytest.raises(ValueError, match="theta"):
        KinshipSearch.from_reference(table, theta=1.5)


def test_best_relationship_is_the_most_likely_passing_one():
    hits = PairHits(
        np.array([0, 1]),
        np.array([1, 2]),
        np.array([[9.0, 7.0, 8.0, 3.0], [1.0, 5.0, 6.0, 4.0]]),
        np.array([16, 16], dtype=np.int32),
        tuple(RELATIONSHIPS),
        np.array([[9.0, 7.0, 8.0, 3.0], [1.0, 5.0, 6.0, 4.0]]) >= np.array([10.0, 4.0, 4.0, 3.0]),
    )
    # pair 0: same_animal (9) misses its cutoff (10), so full_sibling (8) is the best passing
    assert [hits.relationships[k] for k in hits.best_relationship] == [
        "full_sibling",
        "full_sibling",
    ]


def test_calibrated_cutoffs_depend_on_loci_compared():
    from matching.calibration import calibrate

    table = random_table(120, n_loci=8, n_alleles=4, missing=0.25, seed=9)
    errors = ErrorModel(0.02, 0.005)
    calibration = calibrate(table, theta=0.02, errors=errors, false_positive_rate=0.05,
                            loci_counts=(3, 5, 8), n_simulations=2000, seed=1)
    search = KinshipSearch.from_reference(table, theta=0.02, errors=errors, min_loci=3,
                                          calibration=calibration)
    hits = search.all_pairs(table)
    total, compared = numpy_pair_sums(search, table, table)
    matrix = calibration.cutoff_matrix(search.relationships, 8)
    expected = expected_pairs(search, total, compared, True, cutoffs=matrix[compared])
    assert np.array_equal(np.c_[hits.query_index, hits.target_index], expected)
    assert len(hits) > 0
    i, j = expected.T
    assert np.array_equal(hits.passes[:, 1:], total[i, j, 1:] >= matrix[compared[i, j], 1:])
    with pytest.raises(ValueError, match="calibration was made with theta=0.02"):
        KinshipSearch.from_reference(table, theta=0.05, errors=errors, calibration=calibration)


def test_a_pairs_lr_barely_depends_on_other_profiles_in_the_batch():
    reference = random_table(200, n_loci=10, n_alleles=6, missing=0.0, seed=21)
    pair = reference.take([3, 4]).replace(profile_ids=["q1", "q2"])
    stranger = GenotypeTable(np.full((1, 10, 2), 250), ["novel"], reference.loci)
    keep_all = {name: -np.inf for name in RELATIONSHIPS}
    alone = KinshipSearch.from_reference(reference, pair, cutoffs=keep_all, min_loci=1,
                                         theta=0.03).all_pairs(pair)
    batch = GenotypeTable.concat([pair, stranger])
    with_stranger = KinshipSearch.from_reference(reference, batch, cutoffs=keep_all,
                                                 min_loci=1, theta=0.03).all_pairs(batch)
    first = (with_stranger.query_index == 0) & (with_stranger.target_index == 1)
    # Known alleles keep their frequencies and miscall model; what remains is the chance that
    # a true genotype with the novel allele is miscalled as a known one: about 1e-3 log10
    # units here (renormalising frequencies used to move it by about one unit).
    assert np.allclose(alone.log10_lr[0], with_stranger.log10_lr[first][0], rtol=0, atol=5e-3)


def test_score_pairs_equals_the_search_for_the_pairs_it_reports():
    table = random_table(60, seed=31)
    search = KinshipSearch.from_reference(table, cutoffs=KEEP_ALL, min_loci=1)
    hits = search.all_pairs(table)
    lr, compared = search.score_pairs(table, hits.query_index, hits.target_index)
    assert np.array_equal(lr, hits.log10_lr)
    assert np.array_equal(compared, hits.loci_compared)


def structured_reference(n_per_population=60, n_loci=7, n_alleles=5, seed=30):
    """Three populations with their own allele frequencies, labelled."""
    parts = [random_table(n_per_population, n_loci, n_alleles, 0.05, seed=seed + k,
                          prefix=f"p{k}-") for k in range(3)]
    table = GenotypeTable.concat(parts)
    return table.replace(population=np.repeat(["A", "B", "C"], n_per_population))


def numpy_population_sums(search, query, target):
    """Each pair scored with the tables of both profiles' populations, the smaller sum kept."""
    q_pop = search.assign_populations(search.codes(query))
    t_pop = search.assign_populations(search.codes(target))
    per_population = [numpy_pair_sums(search, query, target, tables)
                      for tables in search.population_tables]
    totals = np.stack([total for total, _ in per_population])  # (populations, n_q, n_t, R)
    rows, cols = np.indices((len(query), len(target)))
    total = np.minimum(totals[q_pop[rows], rows, cols], totals[t_pop[cols], rows, cols])
    return total, per_population[0][1]


@pytest.mark.parametrize("incremental", [False, True])
def test_population_scoring_equals_numpy_twin(incremental):
    reference = structured_reference()
    query = GenotypeTable.concat([random_table(40, 7, 5, 0.1, seed=k, prefix=f"q{k}-")
                                  for k in (30, 31)])
    options = dict(theta=0.05, frequencies="population", errors=ErrorModel(0.02, 0.005),
                   min_loci=4, cutoffs={"same_animal": 1.0, "parent_offspring": 0.5,
                                        "full_sibling": 0.5, "half_sibling": 0.3})
    search = KinshipSearch.from_reference(reference, query, **options)
    assert search.frequencies == "population" and search.table_theta == 0.01
    if incremental:
        new, existing = query.take(np.arange(15)), query.take(np.arange(15, 80))
        hits = search.new_vs_existing(new, existing, include_new_pairs=False)
        total, compared = numpy_population_sums(search, new, existing)
        expected = expected_pairs(search, total, compared, triangular=False)
    else:
        hits = search.all_pairs(query)
        total, compared = numpy_population_sums(search, query, query)
        expected = expected_pairs(search, total, compared, triangular=True)
    assert 0 < len(expected) < compared.size / 4
    assert np.array_equal(np.c_[hits.query_index, hits.target_index], expected)
    i, j = expected.T
    np.testing.assert_allclose(hits.log10_lr, total[i, j], rtol=1e-12, atol=1e-12)
    if not incremental:
        lr, _ = search.score_pairs(query, i, j)
        np.testing.assert_allclose(lr, total[i, j], rtol=1e-12, atol=1e-12)
        from matching.pair_search import locus_log10_lrs

        np.testing.assert_allclose(locus_log10_lrs(search, query, i, j).sum(axis=1),
                                   total[i, j], rtol=1e-12, atol=1e-12)
    # with pooled frequencies the same pairs score otherwise
    pooled = KinshipSearch.from_reference(reference, query, **{**options,
                                                               "frequencies": "pooled"})
    assert pooled.frequencies == "pooled" and pooled.table_theta == 0.05


def test_population_frequencies_and_assignment_by_hand():
    from matching.frequencies import allele_counts, point_frequencies
    from matching.relationships import population_frequencies

    reference = structured_reference(n_per_population=20, n_loci=3, n_alleles=3)
    counts = allele_counts(reference)
    pooled = point_frequencies(counts.pooled())[0]
    theta = 0.1
    shrunk = population_frequencies(counts, theta)
    c = 0.9 / 0.1
    for k in range(3):
        for locus in range(3):
            n = counts.counts[k, locus].astype(float)
            np.testing.assert_allclose(shrunk[k, locus], (n + c * pooled[locus]) / (n.sum() + c))
    np.testing.assert_allclose(population_frequencies(counts, 0.0)[1], pooled)
    search = KinshipSearch.from_reference(reference, theta=theta, frequencies="population")
    assigned = search.assign_populations(search.codes(reference))
    coding = counts.coding
    codes = coding.encode(reference)
    for row in range(len(reference)):
        log_likelihood = []
        for k in range(3):
            total = 0.0
            for locus in range(3):
                a, b = codes[row, locus]
                if a < 0:
                    continue
                total += np.log((1 if a == b else 2) * shrunk[k, locus, a] * shrunk[k, locus, b])
            log_likelihood.append(total)
        assert assigned[row] == int(np.argmax(log_likelihood))
    with pytest.raises(ValueError, match="two populations or more"):
        KinshipSearch.from_reference(random_table(10), theta=0.1, frequencies="population")
