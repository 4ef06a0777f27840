"""rubias-style close matching (``close_matching_samples``): the kernel against a plain numpy
twin, and the pair sets rubias reports on its own data sets."""

import csv

import numpy as np
import pytest

from dnatrack.cli import main
from dnatrack.formats import read_genotypes
from dnatrack.genotypes import GenotypeTable
from matching.identity import close_matching_samples


def numpy_close_matches(alleles, min_fraction_matching, min_fraction_typed):
    """rubias's loop over all pairs, vectorised: typed = loci where all four alleles are known,
    matching = typed loci with the same unordered genotype; report typed / L ≥ typed fraction
    and matching / typed ≥ matching fraction."""
    alleles = np.sort(alleles, axis=2)
    known = (alleles >= 0).all(axis=2)
    n, n_loci = known.shape
    both = known[:, None, :] & known[None, :, :]
    same = (alleles[:, None] == alleles[None, :]).all(axis=3) & both
    typed, matching = both.sum(axis=2), same.sum(axis=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = (typed / n_loci >= min_fraction_typed) & (matching / typed >= min_fraction_matching)
    keep &= np.triu(np.ones((n, n), dtype=bool), k=1)
    i, j = np.nonzero(keep)
    return np.c_[i, j, typed[i, j], matching[i, j]]


def random_table(n, n_loci, n_alleles, missing, copies, seed):
    """Random genotypes with some near-copies (a few loci changed, alleles swapped in order) so
    that close matches exist at every fraction."""
    rng = np.random.default_rng(seed)
    alleles = rng.integers(100, 100 + n_alleles, size=(n, n_loci, 2)).astype(np.int16)
    for _ in range(copies):
        src, dst = rng.choice(n, 2, replace=False)
        alleles[dst] = alleles[src][:, ::-1]
        changed = rng.random(n_loci) < 0.15
        alleles[dst, changed, 0] = rng.integers(100, 100 + n_alleles, changed.sum())
    alleles[rng.random((n, n_loci, 2)) < missing] = -1
    return GenotypeTable(alleles, [f"s{k}" for k in range(n)], [f"L{k}" for k in range(n_loci)])


@pytest.mark.parametrize(
    ("n", "n_loci", "n_alleles", "missing", "matching", "typed"),
    [
        (120, 11, 4, 0.05, 0.8, 0.7),
        (90, 91, 2, 0.1, 0.9, 0.7),  # an SNP panel
        (60, 6, 1, 0.2, 1.0, 0.0),  # single-allele loci: every typed pair matches
        (50, 8, 3, 0.9, 0.5, 0.0),  # mostly untyped: pairs typed nowhere in common never match
        (40, 10, 3, 0.0, 0.0, 1.0),
        (1, 5, 3, 0.0, 0.5, 0.5),  # a single profile
    ],
)
def test_kernel_equals_numpy_twin(n, n_loci, n_alleles, missing, matching, typed):
    table = random_table(n, n_loci, n_alleles, missing, copies=n // 4, seed=n + n_loci)
    found = close_matching_samples(table, matching, typed)
    expected = numpy_close_matches(table.alleles, matching, typed)
    assert np.array_equal(np.c_[found.index1, found.index2, found.typed, found.identical],
                          expected.reshape(-1, 4))


def test_fractions_are_checked():
    table = random_table(5, 4, 3, 0.0, 0, seed=1)
    with pytest.raises(ValueError, match="min_fraction_matching must be in"):
        close_matching_samples(table, 1.5)
    with pytest.raises(ValueError, match="min_fraction_typed must be in"):
        close_matching_samples(table, 0.9, -0.1)


# Pair counts rubias 0.3's close_matching_samples(D, gen_start_col, min_frac_non_miss = 0.7,
# min_frac_matching) reports on its own data (issue 12; alewife: the documented example).
@pytest.mark.parametrize(("fraction", "n_pairs"), [(0.9, 1), (0.8, 19)])
def test_alewife_pairs_equal_rubias(shared_datasets, fraction, n_pairs):
    table = read_genotypes(shared_datasets / "alewife_rubias.csv")
    found = close_matching_samples(table, fraction)
    assert len(found) == n_pairs
    expected = numpy_close_matches(table.alleles, fraction, 0.7)
    assert np.array_equal(np.c_[found.index1, found.index2, found.typed, found.identical],
                          expected)
    if fraction == 0.9:
        assert found.records(table.profile_ids) == [
            {"sample1": "AEMME_017", "sample2": "ASGME_005", "loci_typed_in_both": 11,
             "loci_identical": 10}]


def test_chinook_baseline_pairs_equal_rubias(shared_datasets, tmp_path, capsys):
    out = tmp_path / "close.csv"
    assert main(["match", str(shared_datasets / "chinook_baseline_rubias.csv"),
                 "--min-fraction-matching", "0.9", "--out", str(out)]) == 0
    with open(out, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 881
    assert all(int(r["loci_identical"]) >= 0.9 * int(r["loci_typed_in_both"]) for r in rows)
    assert all(int(r["loci_typed_in_both"]) >= 0.7 * 91 for r in rows)
    assert "881 close-matching pairs" in capsys.readouterr().out
