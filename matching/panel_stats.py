"""How informative a marker panel is on a set of genotypes: per-locus and panel statistics.

Per locus (DESIGN 5.2; Waits, Luikart & Taberlet 2001), from the allele frequencies ``p`` of
all alleles of the locus:

- ``n_alleles``: alleles seen; ``n_typed``: animals typed;
- ``ho``: observed heterozygosity, the share of typed animals that are heterozygous;
- ``he``: expected heterozygosity ``1 − Σp²`` (the Hardy–Weinberg expectation, as in
  scikit-allel's ``heterozygosity_expected``);
- ``he_nei``: Nei's (1978) unbiased gene diversity ``2n/(2n−1) · (1 − Σp²)``, ``n`` animals
  typed;
- ``pi``: probability of identity of two unrelated animals, ``2(Σp²)² − Σp⁴``;
- ``pi_sib``: the same for two full siblings, ``0.25 + 0.5Σp² + 0.5(Σp²)² − 0.25Σp⁴``.

The frequencies are plain point frequencies ``n_a / 2n`` *without* the NRC II floor: these
statistics describe the sample itself, while the floor is a deliberately conservative device
for match probabilities of particular profiles. For the whole panel, ``pi`` and ``pi_sib`` are
products over loci and the other columns are means over loci, as in published panel tables;
loci with no typed animal are left out of both.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from dnatrack.genotypes import GenotypeTable
from matching.frequencies import allele_counts, point_frequencies
from matching.theta import ThetaChoice, ThetaEstimate

POOLED = "all"

#: Columns of :meth:`PanelStats.rows`, in order.
ROW_COLUMNS = (
    "population", "locus", "n_loci", "n_alleles", "n_typed", "ho", "he", "he_nei", "pi",
    "pi_sib", "theta_wc", "theta_wc_se", "theta_used",
)


def identity_probabilities(freqs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Probability of identity of unrelated animals and of full siblings per locus.

    Parameters
    ----------
    freqs : ndarray of float64, shape (..., max_alleles)
        Allele frequencies summing to one over the last axis (padding entries zero).

    Returns
    -------
    pi, pi_sib : ndarray of float64, shape (...)

    Examples
    --------
    >>> pi, pi_sib = identity_probabilities(np.array([0.5, 0.5]))
    >>> float(pi), float(pi_sib)
    (0.375, 0.59375)
    """
    freqs = np.asarray(freqs, dtype=np.float64)
    sum_p2 = (freqs**2).sum(axis=-1)
    sum_p4 = (freqs**4).sum(axis=-1)
    pi = 2.0 * sum_p2**2 - sum_p4
    pi_sib = 0.25 + 0.5 * sum_p2 + 0.5 * sum_p2**2 - 0.25 * sum_p4
    return pi, pi_sib


def _number_or_none(value) -> float | int | None:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass(frozen=True)
class LocusStats:
    """Statistics of one locus in one population (or all populations pooled).

    ``ho``, ``he``, ``he_nei``, ``pi`` and ``pi_sib`` are NaN when no animal is typed.
    """

    population: str
    locus: str
    n_alleles: int
    n_typed: int
    ho: float
    he: float
    he_nei: float
    pi: float
    pi_sib: float

    def to_row(self) -> dict:
        """CSV/JSON-ready dict (NaN as ``None``)."""
        return {key: _number_or_none(value) for key, value in asdict(self).items()}


@dataclass(frozen=True)
class PanelSummary:
    """The panel in one population: products of PI and PI_sib, means of the rest.

    Attributes
    ----------
    n_loci : int
        Loci with at least one typed animal (the loci the products and means run over).
    mean_n_alleles, mean_n_typed, mean_ho, mean_he, mean_he_nei : float
        Means over those loci.
    pi, pi_sib : float
        Products over those loci (1.0 when there are none).
    """

    population: str
    n_loci: int
    mean_n_alleles: float
    mean_n_typed: float
    mean_ho: float
    mean_he: float
    mean_he_nei: float
    pi: float
    pi_sib: float

    def to_row(self) -> dict:
        """CSV/JSON-ready dict in the columns of a locus row, with ``locus = "panel"``."""
        return {
            "population": self.population,
            "locus": "panel",
            "n_loci": self.n_loci,
            "n_alleles": _number_or_none(self.mean_n_alleles),
            "n_typed": _number_or_none(self.mean_n_typed),
            "ho": _number_or_none(self.mean_ho),
            "he": _number_or_none(self.mean_he),
            "he_nei": _number_or_none(self.mean_he_nei),
            "pi": self.pi,
            "pi_sib": self.pi_sib,
        }


@dataclass(frozen=True)
class PanelStats:
    """Per-locus statistics and panel summaries, per population or pooled.

    Attributes
    ----------
    populations : tuple of str
        ``("all",)`` when pooled.
    loci : tuple of str
    locus_stats : tuple of LocusStats
        Population-major: all loci of the first population, then the next.
    panels : tuple of PanelSummary
        One per population.
    """

    populations: tuple[str, ...]
    loci: tuple[str, ...]
    locus_stats: tuple[LocusStats, ...]
    panels: tuple[PanelSummary, ...]

    def rows(
        self, theta: ThetaEstimate | None = None, theta_used: ThetaChoice | None = None
    ) -> list[dict]:
        """Rows in :data:`ROW_COLUMNS`: each population's locus rows, then its panel row.

        With ``theta``, locus rows carry that locus's θ (``theta_wc``, the same for every
        population: it is a between-population quantity) and panel rows the overall θ and its
        standard error; with ``theta_used``, panel rows carry the θ chosen for downstream use.
        """
        per_locus = dict(zip(theta.loci, theta.per_locus, strict=True)) if theta else {}
        rows = []
        n_loci = len(self.loci)
        for k, panel in enumerate(self.panels):
            for stats in self.locus_stats[k * n_loci:(k + 1) * n_loci]:
                row = stats.to_row()
                if theta is not None:
                    row["theta_wc"] = _number_or_none(float(per_locus[stats.locus]))
                rows.append(row)
            row = panel.to_row()
            if theta is not None:
                row["theta_wc"] = theta.theta
                row["theta_wc_se"] = _number_or_none(theta.standard_error)
            if theta_used is not None:
                row["theta_used"] = theta_used.value
            rows.append(row)
        return rows


def panel_stats(table: GenotypeTable, by_population: bool = False) -> PanelStats:
    """Per-locus and panel statistics of ``table`` (see the module docstring).

    Parameters
    ----------
    table : GenotypeTable
    by_population : bool
        Compute per population (profiles with an empty label are left out) instead of over
        all profiles pooled.

    Returns
    -------
    PanelStats

    Examples
    --------
    >>> table = GenotypeTable([[[1, 2]], [[1, 1]]], ["a", "b"], ["L"])
    >>> stats = panel_stats(table)
    >>> stats.locus_stats[0].ho, stats.locus_stats[0].he
    (0.5, 0.375)
    """
    if by_population:
        if table.population is None:
            raise ValueError("statistics by population need population labels; the genotypes "
                             "have none")
        labelled = [p for p in table.unique_populations() if p]
        if not labelled:
            raise ValueError("statistics by population need population labels; every label "
                             "is empty")
        counts = allele_counts(table, populations=labelled)
        pop_index = np.array([counts.populations.index(p) if p else -1
                              for p in table.population], dtype=np.int64)
    else:
        counts = allele_counts(table).pooled(POOLED)
        pop_index = np.zeros(table.n_profiles, dtype=np.int64)

    n_populations = len(counts.populations)
    copies = counts.totals                                    # (n_populations, n_loci), = 2n
    n_typed = copies // 2
    typed = copies > 0
    freqs = point_frequencies(counts, floor=False)
    n_alleles = (counts.counts > 0).sum(axis=2)

    heterozygous = table.typed & (table.alleles[:, :, 0] != table.alleles[:, :, 1])
    counted = pop_index >= 0
    n_heterozygous = np.zeros((n_populations, table.n_loci), dtype=np.int64)
    np.add.at(n_heterozygous, pop_index[counted], heterozygous[counted])

    with np.errstate(divide="ignore", invalid="ignore"):
        ho = np.where(typed, n_heterozygous / n_typed, np.nan)
        he = np.where(typed, 1.0 - (freqs**2).sum(axis=2), np.nan)
        he_nei = np.where(typed, copies / (copies - 1.0) * he, np.nan)
    pi, pi_sib = identity_probabilities(freqs)
    pi = np.where(typed, pi, np.nan)
    pi_sib = np.where(typed, pi_sib, np.nan)

    locus_stats = []
    panels = []
    for k, population in enumerate(counts.populations):
        for j, locus in enumerate(table.loci):
            locus_stats.append(
                LocusStats(
                    population, locus, int(n_alleles[k, j]), int(n_typed[k, j]),
                    float(ho[k, j]), float(he[k, j]), float(he_nei[k, j]),
                    float(pi[k, j]), float(pi_sib[k, j]),
                )
            )
        used = typed[k]
        panels.append(
            PanelSummary(
                population,
                n_loci=int(used.sum()),
                mean_n_alleles=_mean(n_alleles[k, used]),
                mean_n_typed=_mean(n_typed[k, used]),
                mean_ho=_mean(ho[k, used]),
                mean_he=_mean(he[k, used]),
                mean_he_nei=_mean(he_nei[k, used]),
                pi=float(np.prod(pi[k, used])),
                pi_sib=float(np.prod(pi_sib[k, used])),
            )
        )
    return PanelStats(counts.populations, table.loci, tuple(locus_stats), tuple(panels))


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else math.nan
