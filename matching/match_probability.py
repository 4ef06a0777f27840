"""Random match probability of a profile, with the θ correction of NRC II recommendation 4.10.

For a homozygote ``aa``: ``[2θ+(1−θ)p][3θ+(1−θ)p] / [(1+θ)(1+2θ)]``; for a heterozygote
``ab``: ``2[θ+(1−θ)p_a][θ+(1−θ)p_b] / [(1+θ)(1+2θ)]``; the profile's value is the product over
its typed loci. Frequencies are point frequencies with the NRC II floor
(:func:`matching.frequencies.point_frequencies`), so alleles rare or unseen in the reference do
not give absurdly small probabilities.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dnatrack.genotypes import GenotypeTable
from matching.frequencies import AlleleCounts, point_frequencies


@dataclass(frozen=True, eq=False)
class MatchProbabilities:
    """Per-profile random match probabilities.

    Attributes
    ----------
    per_locus : ndarray of float64, shape (n_profiles, n_loci)
        Conditional match probability at each locus; 1.0 where the locus is untyped.
    loci_typed : ndarray of int64, shape (n_profiles,)
    theta : float
    population : str
        The population whose frequencies were used.
    """

    per_locus: np.ndarray
    loci_typed: np.ndarray
    theta: float
    population: str

    @property
    def profile(self) -> np.ndarray:
        """Match probability of each whole profile (product over typed loci)."""
        return np.exp(np.log(self.per_locus).sum(axis=1))

    @property
    def one_in(self) -> np.ndarray:
        """``1 / RMP``: "one in N unrelated animals" as reports state it."""
        return 1.0 / self.profile


def genotype_match_probability(p_a: np.ndarray, p_b: np.ndarray, homozygous: np.ndarray,
                               theta: float) -> np.ndarray:
    """NRC II 4.10 conditional match probability of genotypes with allele frequencies
    ``p_a``, ``p_b`` (float64 arrays of one shape)."""
    denominator = (1.0 + theta) * (1.0 + 2.0 * theta)
    hom = (2 * theta + (1 - theta) * p_a) * (3 * theta + (1 - theta) * p_a)
    het = 2 * (theta + (1 - theta) * p_a) * (theta + (1 - theta) * p_b)
    return np.where(homozygous, hom, het) / denominator


def match_probabilities(
    table: GenotypeTable,
    counts: AlleleCounts,
    theta: float,
    population: str | None = None,
) -> MatchProbabilities:
    """Random match probability of every profile of ``table``.

    Parameters
    ----------
    table : GenotypeTable
        The profiles; their alleles must be in ``counts.coding`` (extend the coding with
        the table's alleles before counting, so unseen alleles get the floor frequency).
    counts : AlleleCounts
        Reference allele counts.
    theta : float
        Co-ancestry coefficient, in [0, 1).
    population : str, optional
        Use this population's frequencies; by default all populations pooled.
    """
    if not 0.0 <= theta < 1.0:
        raise ValueError(f"theta must be in [0, 1), got {theta}")
    if population is None:
        counts, population = counts.pooled(), "all populations"
        freqs = point_frequencies(counts)[0]
    else:
        freqs = point_frequencies(counts)[counts.population_index(population)]
    codes = counts.coding.encode(table.select_loci(counts.loci))
    typed = codes[:, :, 0] >= 0
    locus = np.arange(codes.shape[1])[None, :]
    p_a = freqs[locus, np.where(typed, codes[:, :, 0], 0)]
    p_b = freqs[locus, np.where(typed, codes[:, :, 1], 0)]
    per_locus = genotype_match_probability(p_a, p_b, codes[:, :, 0] == codes[:, :, 1], theta)
    per_locus = np.where(typed, per_locus, 1.0)
    return MatchProbabilities(per_locus, typed.sum(axis=1), float(theta), population)
