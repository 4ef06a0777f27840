"""Pairwise relationship likelihood ratios per locus (DESIGN 5.3).

For one locus with allele frequencies ``p`` and co-ancestry ``θ``, :func:`ibd_pair_probabilities`
gives ``P(G1, G2 | IBD = 0, 1, 2)`` for every pair of unordered genotypes, from the
Balding–Nichols sampling formula: the next allele drawn is ``a`` with probability
``[mθ + (1−θ)p_a] / [1 + (n−1)θ]`` after ``n`` draws of which ``m`` were ``a``. Genotyping error
is folded in with an observation matrix ``E`` (``Q_k = Eᵀ P_k E``), so the search kernels still
look up one number per locus and relationship, and one bad locus never makes an LR zero.

Genotypes of a locus with ``A`` alleles (dense codes ``0..A-1``) are numbered
``b(b+1)/2 + a`` for ``a ≤ b``: ``G = A(A+1)/2`` genotypes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from matching.frequencies import AlleleCounts, point_frequencies

#: IBD coefficients (k0, k1, k2) of the relationships the engine tests against "unrelated".
RELATIONSHIPS: dict[str, tuple[float, float, float]] = {
    "same_animal": (0.0, 0.0, 1.0),
    "parent_offspring": (0.0, 1.0, 0.0),
    "full_sibling": (0.25, 0.5, 0.25),
    "half_sibling": (0.5, 0.5, 0.0),
}
UNRELATED = (1.0, 0.0, 0.0)


@dataclass(frozen=True)
class ErrorModel:
    """Per-locus genotyping error, as it is applied to every locus of both profiles.

    Attributes
    ----------
    dropout_rate : float
        Probability that a heterozygote is read as one of its two homozygotes (each half of
        it). The default 0.01 is a typical rate for good-quality tissue; degraded ivory powder
        can be an order of magnitude higher.
    miscall_rate : float
        Probability that a genotype is read as some other genotype, spread evenly over the other
        genotypes of the locus (default 0.001).
    """

    dropout_rate: float = 0.01
    miscall_rate: float = 0.001

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not 0.0 <= value < 0.5:
                raise ValueError(f"{name} must be in [0, 0.5), got {value}")

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


NO_ERROR = ErrorModel(0.0, 0.0)


def relationship_coefficients(names: list[str] | tuple[str, ...]) -> np.ndarray:
    """IBD coefficients of ``names`` as a float64 array (n_relationships, 3)."""
    unknown = [name for name in names if name not in RELATIONSHIPS]
    if unknown:
        raise ValueError(
            f"unknown relationship {unknown[0]!r}; choose from {', '.join(RELATIONSHIPS)}"
        )
    return np.array([RELATIONSHIPS[name] for name in names], dtype=np.float64)


def population_frequencies(counts: AlleleCounts, between_theta: float) -> np.ndarray:
    """Allele frequencies of each reference population for scoring pairs drawn from it.

    Under the Balding–Nichols model a population's frequencies are Dirichlet around the pooled
    ones with precision ``c = (1 − F) / F``, ``F`` the F_ST between populations; the posterior
    mean given the population's counts is ``p_ka = (n_ka + c·p_a) / (n_k + c)``. A population
    sampled with few animals thus leans on the pooled frequencies (which carry the NRC II floor,
    so alleles it lacks keep a frequency), a well-sampled one on its own counts.

    Parameters
    ----------
    counts : AlleleCounts
        Counts per population (:func:`matching.frequencies.allele_counts`).
    between_theta : float
        F_ST between the populations; 0 gives the pooled frequencies to every population.

    Returns
    -------
    ndarray of float64, shape (n_populations, n_loci, max_alleles)
    """
    pooled = point_frequencies(counts.pooled(), floor=True)[0]
    if between_theta <= 0.0:
        return np.repeat(pooled[None], len(counts.populations), axis=0)
    if between_theta >= 1.0:
        raise ValueError(f"between_theta must be below 1, got {between_theta}")
    precision = (1.0 - between_theta) / between_theta
    raw = counts.counts.astype(np.float64)
    return (raw + precision * pooled[None]) / (raw.sum(axis=2, keepdims=True) + precision)


def n_genotypes(n_alleles: int) -> int:
    return n_alleles * (n_alleles + 1) // 2


def genotype_alleles(n_alleles: int) -> tuple[np.ndarray, np.ndarray]:
    """The two allele codes ``(a, b)``, ``a ≤ b``, of every genotype index (int64 arrays)."""
    b = np.repeat(np.arange(n_alleles), np.arange(1, n_alleles + 1))
    a = np.concatenate([np.arange(k + 1) for k in range(n_alleles)]) if n_alleles else b
    return a.astype(np.int64), b.astype(np.int64)


def genotype_codes(allele_codes: np.ndarray, n_alleles: np.ndarray) -> np.ndarray:
    """Genotype index per profile and locus from dense allele codes.

    Parameters
    ----------
    allele_codes : ndarray of int16, shape (n_profiles, n_loci, 2)
        Dense allele codes (sorted within each genotype), -1 missing.
    n_alleles : ndarray of int, shape (n_loci,)
        Alleles per locus; an untyped locus gets the code ``G_l = A_l(A_l+1)/2``.

    Returns
    -------
    ndarray of int32, shape (n_profiles, n_loci)
    """
    a = allele_codes[:, :, 0].astype(np.int64)
    b = allele_codes[:, :, 1].astype(np.int64)
    low, high = np.minimum(a, b), np.maximum(a, b)
    missing_code = np.asarray(n_alleles, dtype=np.int64) * (np.asarray(n_alleles) + 1) // 2
    codes = np.where(low >= 0, high * (high + 1) // 2 + low, missing_code[None, :])
    return np.ascontiguousarray(codes, dtype=np.int32)


def ibd_pair_probabilities(freqs: np.ndarray, theta: float) -> np.ndarray:
    """Joint probabilities of two genotypes given 0, 1 or 2 alleles identical by descent.

    Parameters
    ----------
    freqs : ndarray of float64, shape (A,)
        Allele frequencies of the locus (summing to one).
    theta : float
        Co-ancestry coefficient F_ST, in [0, 1).

    Returns
    -------
    ndarray of float64, shape (3, G, G)
        ``P[k, g1, g2] = P(G1 = g1, G2 = g2 | IBD = k)``; each ``P[k]`` sums to one.
    """
    p = np.asarray(freqs, dtype=np.float64)
    if not 0.0 <= theta < 1.0:
        raise ValueError(f"theta must be in [0, 1), got {theta}")
    a, b = genotype_alleles(len(p))
    het = (a != b).astype(np.float64)

    def draw(allele, already):
        """P(next allele = ``allele``) after the alleles in ``already`` have been drawn."""
        seen = sum((allele == prior).astype(np.float64) for prior in already)
        return (seen * theta + (1.0 - theta) * p[allele]) / (1.0 + (len(already) - 1) * theta)

    first = (1.0 + het) * p[a] * draw(b, [a])  # P(G1), factor 2 for a heterozygote
    a1, b1 = a[:, None], b[:, None]
    c2, d2 = a[None, :], b[None, :]
    het2 = (c2 != d2).astype(np.float64)

    ibd0 = first[:, None] * (1.0 + het2) * draw(c2, [a1, b1]) * draw(d2, [a1, b1, c2])

    # IBD = 1: G2 carries a copy of one of G1's alleles (each with probability 1/2) and one
    # allele drawn from the population given G1's two.
    ibd1 = np.zeros_like(ibd0)
    for shared in (a1, b1):
        ibd1 += 0.5 * (
            (shared == c2) * draw(d2, [a1, b1])
            + ((shared == d2) & (c2 != d2)) * draw(c2, [a1, b1])
        )
    ibd1 *= first[:, None]

    ibd2 = np.diag(first)
    return np.stack([ibd0, ibd1, ibd2])


def observation_matrix(
    n_alleles: int, errors: ErrorModel, n_reference_alleles: int | None = None
) -> np.ndarray:
    """``E[true, observed]`` for the genotypes of a locus under ``errors`` (rows sum to one).

    A miscall turns a genotype into any other genotype of the reference alleles (codes
    ``0..n_reference_alleles-1``, all alleles by default) with equal probability. Alleles seen
    only in queries are never miscall targets, so the error model of known genotypes does not
    change when a batch brings new alleles.
    """
    g = n_genotypes(n_alleles)
    if g == 1:
        return np.ones((1, 1))
    a, b = genotype_alleles(n_alleles)
    known = n_alleles if n_reference_alleles is None else n_reference_alleles
    targets = b < known
    n_targets = int(targets.sum())
    matrix = np.zeros((g, g))
    if n_targets > 1:
        # every true genotype spreads the miscall rate over the reference genotypes other
        # than itself
        per_target = np.where(targets, errors.miscall_rate / (n_targets - 1),
                              errors.miscall_rate / n_targets)
        matrix[:, targets] = per_target[:, None]
    for true in np.flatnonzero(a != b):
        for allele in (a[true], b[true]):
            matrix[true, allele * (allele + 1) // 2 + allele] += errors.dropout_rate / 2
    np.fill_diagonal(matrix, 0.0)
    np.fill_diagonal(matrix, 1.0 - matrix.sum(axis=1))
    return matrix


def observed_pair_probabilities(
    freqs: np.ndarray,
    theta: float,
    errors: ErrorModel = NO_ERROR,
    n_reference_alleles: int | None = None,
) -> np.ndarray:
    """:func:`ibd_pair_probabilities` of the *observed* genotypes: ``Eᵀ P_k E`` for each k."""
    true = ibd_pair_probabilities(freqs, theta)
    if errors == NO_ERROR:
        return true
    e = observation_matrix(len(freqs), errors, n_reference_alleles)
    return np.stack([e.T @ joint @ e for joint in true])


def locus_log10_lr(
    freqs: np.ndarray,
    theta: float,
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS),
    errors: ErrorModel = NO_ERROR,
    n_reference_alleles: int | None = None,
) -> np.ndarray:
    """``log10 LR`` of each relationship against unrelated for every genotype pair of a locus.

    ``n_reference_alleles``: alleles ``0..n-1`` are the reference's, the rest seen only in
    queries (see :func:`observation_matrix`).

    Returns
    -------
    ndarray of float64, shape (G, G, n_relationships)
        ``-inf`` where a relationship is impossible (only without an error model).
    """
    coefficients = relationship_coefficients(relationships)
    q = observed_pair_probabilities(freqs, theta, errors, n_reference_alleles)
    related = np.einsum("rk,kgh->ghr", coefficients, q)
    with np.errstate(divide="ignore"):
        return np.log10(related) - np.log10(q[0])[:, :, None]


@dataclass(frozen=True, eq=False)
class KinshipTables:
    """Per-locus log10 LR tables flattened for the search kernels.

    Locus ``l`` occupies ``values[offsets[l] : offsets[l] + strides[l]**2 * R]`` as a
    ``(G_l + 1, G_l + 1, R)`` block; genotype code ``G_l`` means untyped and its row and column
    are zero, so an untyped locus adds nothing.
    """

    relationships: tuple[str, ...]
    values: np.ndarray  # float64, flat
    offsets: np.ndarray  # int64 (n_loci,)
    strides: np.ndarray  # int64 (n_loci,) = G_l + 1
    n_alleles: np.ndarray  # int32 (n_loci,)
    theta: float
    errors: ErrorModel

    def padded(self, n_channels: int) -> KinshipTables:
        """The same tables with zero-filled extra relationship channels (for fixed-width
        kernels); the extra channels are named ``""``."""
        extra = n_channels - len(self.relationships)
        if extra < 0:
            raise ValueError(f"cannot pad {len(self.relationships)} channels to {n_channels}")
        if extra == 0:
            return self
        blocks, offsets, offset = [], [], 0
        for locus in range(len(self.strides)):
            table = self.locus_table(locus)
            widened = np.zeros((*table.shape[:2], n_channels))
            widened[:, :, : table.shape[2]] = table
            blocks.append(widened.ravel())
            offsets.append(offset)
            offset += widened.size
        return KinshipTables(
            (*self.relationships, *([""] * extra)),
            np.ascontiguousarray(np.concatenate(blocks)),
            np.array(offsets, dtype=np.int64),
            self.strides,
            self.n_alleles,
            self.theta,
            self.errors,
        )

    def locus_table(self, locus: int) -> np.ndarray:
        s = int(self.strides[locus])
        start = int(self.offsets[locus])
        return self.values[start : start + s * s * len(self.relationships)].reshape(
            s, s, len(self.relationships)
        )


def kinship_tables(
    freqs: np.ndarray,
    n_alleles: np.ndarray,
    theta: float,
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS),
    errors: ErrorModel | None = None,
    n_reference_alleles: np.ndarray | None = None,
) -> KinshipTables:
    """Build the flattened per-locus log10 LR tables for a panel.

    Parameters
    ----------
    freqs : ndarray of float64, shape (n_loci, max_alleles)
        Allele frequencies per locus (e.g. one population of
        :func:`matching.frequencies.point_frequencies`), zero-padded.
    n_alleles : ndarray of int, shape (n_loci,)
        Alleles per locus.
    theta : float
        Co-ancestry coefficient.
    relationships : tuple of str
        Names from :data:`RELATIONSHIPS`.
    errors : ErrorModel, optional
        Genotyping error model; the default :class:`ErrorModel` rates when ``None``.
    n_reference_alleles : ndarray of int, shape (n_loci,), optional
        Alleles per locus seen in the reference (the first codes); the others are seen only
        in queries and are never miscall targets. Default: all of them.
    """
    errors = ErrorModel() if errors is None else errors
    relationships = tuple(relationships)
    relationship_coefficients(relationships)
    n_rel = len(relationships)
    blocks, offsets, strides = [], [], []
    offset = 0
    known = n_alleles if n_reference_alleles is None else n_reference_alleles
    for locus, count in enumerate(np.asarray(n_alleles)):
        table = locus_log10_lr(freqs[locus, :count], theta, relationships, errors,
                               int(known[locus]))
        stride = table.shape[0] + 1
        padded = np.zeros((stride, stride, n_rel))
        padded[:-1, :-1] = table
        blocks.append(padded.ravel())
        offsets.append(offset)
        strides.append(stride)
        offset += padded.size
    return KinshipTables(
        relationships,
        np.ascontiguousarray(np.concatenate(blocks) if blocks else np.zeros(0)),
        np.array(offsets, dtype=np.int64),
        np.array(strides, dtype=np.int64),
        np.asarray(n_alleles, dtype=np.int32),
        float(theta),
        errors,
    )
