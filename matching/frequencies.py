"""Allele counts and frequencies per population and locus (DESIGN 5.1).

Everything downstream (match statistics, kinship tables, assignment) starts from
:class:`AlleleCounts`: a dense ``(n_populations, n_loci, max_alleles)`` count array against an
:class:`~dnatrack.genotypes.AlleleCoding`, padded with zeros past each locus's last allele.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from dnatrack.genotypes import AlleleCoding, GenotypeTable


@dataclass(frozen=True, eq=False)
class AlleleCounts:
    """Allele copy counts per population and locus.

    Attributes
    ----------
    populations : tuple of str
        Population labels, in the order of the first axis.
    coding : AlleleCoding
        The allele coding the last axis refers to.
    counts : ndarray of int64, shape (n_populations, n_loci, max_alleles)
        Copies of each allele; zero past ``coding.n_alleles[l]``.
    """

    populations: tuple[str, ...]
    coding: AlleleCoding
    counts: np.ndarray

    @property
    def loci(self) -> tuple[str, ...]:
        return self.coding.loci

    @property
    def totals(self) -> np.ndarray:
        """Allele copies typed per population and locus, int64 (n_populations, n_loci)."""
        return self.counts.sum(axis=2)

    @property
    def allele_mask(self) -> np.ndarray:
        """Bool (n_loci, max_alleles): True for real alleles, False for padding."""
        n_alleles = self.coding.n_alleles
        return np.arange(self.counts.shape[2])[None, :] < n_alleles[:, None]

    def pooled(self, name: str = "all") -> AlleleCounts:
        """The counts of all populations added together, as one population."""
        return AlleleCounts((name,), self.coding, self.counts.sum(axis=0, keepdims=True))

    def population_index(self, population: str) -> int:
        try:
            return self.populations.index(population)
        except ValueError:
            raise KeyError(f"no population {population!r} in the allele counts") from None


def allele_counts(
    table: GenotypeTable,
    coding: AlleleCoding | None = None,
    populations: Sequence[str] | None = None,
) -> AlleleCounts:
    """Count allele copies per population and locus.

    Parameters
    ----------
    table : GenotypeTable
        Profiles to count. Its ``population`` labels split the counts; without labels (or with
        ``populations=["all"]`` and no labels) everything is one population named ``"all"``.
    coding : AlleleCoding, optional
        Allele coding to count against; by default the alleles of ``table``. Use a coding
        extended with query alleles so unseen alleles get a zero count (and a floor).
    populations : sequence of str, optional
        Which populations, in which order; by default those of ``table`` in order of first
        appearance.

    Returns
    -------
    AlleleCounts
    """
    coding = coding or AlleleCoding.from_tables(table)
    codes = coding.encode(table)
    if table.population is None:
        if populations not in (None, ["all"], ("all",)):
            raise ValueError("the table has no population labels")
        populations = ("all",)
        pop_index = np.zeros(table.n_profiles, dtype=np.int64)
    else:
        populations = tuple(populations or table.unique_populations())
        lookup = {name: i for i, name in enumerate(populations)}
        pop_index = np.array([lookup.get(p, -1) for p in table.population], dtype=np.int64)
        # Profiles of populations not asked for are simply not counted.
        keep = pop_index >= 0
        codes, pop_index = codes[keep], pop_index[keep]
    n_loci = len(coding.loci)
    counts = np.zeros((len(populations), n_loci, max(coding.max_alleles, 1)), dtype=np.int64)
    for k in (0, 1):
        allele = codes[:, :, k]
        rows, loci = np.nonzero(allele >= 0)
        np.add.at(counts, (pop_index[rows], loci, allele[rows, loci]), 1)
    return AlleleCounts(tuple(populations), coding, counts)


def point_frequencies(counts: AlleleCounts, floor: bool = True) -> np.ndarray:
    """Allele frequencies ``n_a / n`` per population and locus.

    With ``floor=True`` (used for match statistics), every allele gets at least the NRC II
    minimum ``5 / (2N)``, N being the number of animals typed at that locus in that population.
    The alleles seen anywhere in the counts are then renormalised to sum to one; alleles seen
    nowhere (present in the coding only because a query carries them) keep the floor, capped at
    ``1 / (alleles seen + 1)`` for tiny samples, and are *not* renormalised, so the frequencies
    of known alleles — and the statistics of profiles made of them — do not depend on which
    other queries are in the batch. Padding entries stay
    zero. A population with no typed animal at a locus gets equal frequencies.

    Returns
    -------
    ndarray of float64, shape (n_populations, n_loci, max_alleles)
    """
    raw = counts.counts.astype(np.float64)
    totals = raw.sum(axis=2, keepdims=True)
    mask = counts.allele_mask[None, :, :]
    seen = (counts.counts.sum(axis=0) > 0)[None, :, :] if floor else mask
    n_seen = np.maximum(seen.sum(axis=2, keepdims=True), 1).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        freqs = np.where(totals > 0, raw / totals, 1.0 / n_seen)
        minimum = np.where(totals > 0, 5.0 / totals, 0.0)  # 5 / 2N with 2N = allele copies
    if floor:
        freqs = np.maximum(freqs, minimum)
    freqs = np.where(mask, freqs, 0.0)
    known = np.where(seen, freqs, 0.0)
    sums = known.sum(axis=2, keepdims=True)
    normalised = np.divide(known, sums, out=np.zeros_like(known), where=sums > 0)
    unseen = np.minimum(freqs, 1.0 / (n_seen + 1.0))
    return np.where(seen, normalised, np.where(mask, unseen, 0.0))
