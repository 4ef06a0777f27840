"""Calibrating kinship cutoffs by simulation (DESIGN 5.3, 8).

For each number of loci compared ``m``, the cutoff is the smallest log10 LR at which an
unrelated pair passes *any* of the relationships tested with probability at most ``α`` (the
sum of the relationships' false-positive rates): one cutoff for all relationships, the split
of ``α`` that finds the most related pairs (:func:`_common_cutoff`). A search states its
operating point as the expected number of false pairs it may report, ``E`` (default
:data:`DEFAULT_EXPECTED_FALSE_PAIRS`): ``α = E / pairs compared``. The power is the share of
true ``R`` pairs reaching the cutoff.

Genotype pairs are drawn exactly from the model the search scores them with — per-locus joint
distributions of observed genotypes under each relationship, with θ and the error model, from
the frequencies the search uses (pooled, or each reference population's in turn with equal
weight; :mod:`matching.kinship`) — so LRs are exact likelihood ratios of the simulation. That
allows importance sampling of the far tail: for pairs drawn under ``R``,
``P(LR_R ≥ t | unrelated) = E_R[1{LR_R ≥ t} / LR_R]``, which estimates false-positive rates far
below ``1 / n_simulations``; the cutoff is chosen where the estimate plus two standard errors
stays below the target, so simulation noise errs on the safe side. The cutoff never exceeds
``log10(n_relationships / α)``, which bounds the rate for any model (``E[LR | unrelated] = 1``,
Markov).
Directly simulated unrelated pairs give an empirical check at rates simulation can reach.

Every rate comes with its Monte-Carlo standard error: the importance-sampling estimate of the
false-positive rate at the cutoff and the binomial error of the power. Every loci count is
calibrated on the same simulated pairs (each compared at a random subset of ``m`` loci), so the
cutoffs of neighbouring counts differ by the change in the LR distribution, not by independent
noise; :data:`DEFAULT_SIMULATIONS` pairs keep that noise small.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatrack.genotypes import GenotypeTable
from matching._numba import kernel
from matching.frequencies import allele_counts, point_frequencies
from matching.relationships import (
    RELATIONSHIPS,
    UNRELATED,
    ErrorModel,
    genotype_alleles,
    locus_log10_lr,
    observed_pair_probabilities,
    population_frequencies,
    relationship_coefficients,
)

logger = logging.getLogger(__name__)

CALIBRATION_FILE = "calibration.json"
#: Simulated pairs per relationship (and unrelated), over all populations.
DEFAULT_SIMULATIONS = 40_000
#: Expected number of false pairs a search may report, over all relationships tested.
DEFAULT_EXPECTED_FALSE_PAIRS = 1.0
FREQUENCY_CHOICES = ("pooled", "population")


@dataclass
class Calibration:
    """Cutoffs and power per relationship and number of loci compared.

    ``cutoffs[relationship][m]`` is the log10 LR cutoff for pairs compared at ``m`` loci;
    ``power`` has the same shape, ``power_se`` its Monte-Carlo standard error;
    ``false_positive_estimate`` and ``false_positive_se`` are the importance-sampling estimate
    of the false-positive rate per pair at the cutoff and its standard error;
    ``unrelated_exceeding`` counts directly simulated unrelated pairs that passed (an empirical
    check, expected 0 for small ``α``). ``frequencies`` says how pairs are scored (``pooled``
    frequencies with ``theta``, or each ``population``'s frequencies, shrunk towards the pooled
    ones with ``between_theta``, with ``theta`` within the population).
    """

    relationships: tuple[str, ...]
    loci_counts: tuple[int, ...]
    cutoffs: dict[str, dict[int, float]]
    power: dict[str, dict[int, float]]
    unrelated_exceeding: dict[str, dict[int, int]]
    false_positive_rate: float
    n_simulations: int
    theta: float
    errors: ErrorModel
    seed: int
    loci: tuple[str, ...] = ()
    reference: str = ""
    reference_hash: str = ""
    notes: dict = field(default_factory=dict)
    power_se: dict[str, dict[int, float]] = field(default_factory=dict)
    false_positive_estimate: dict[str, dict[int, float]] = field(default_factory=dict)
    false_positive_se: dict[str, dict[int, float]] = field(default_factory=dict)
    frequencies: str = "pooled"
    between_theta: float | None = None
    expected_false_pairs: float | None = None
    pairs_compared: float | None = None

    def cutoff_for(self, relationship: str, loci_compared: int) -> float:
        """The cutoff for ``loci_compared`` loci (the nearest calibrated count below it;
        ``inf`` below the smallest calibrated count)."""
        table = self.cutoffs[relationship]
        usable = [m for m in self.loci_counts if m <= loci_compared]
        return table[max(usable)] if usable else float("inf")

    def cutoff_matrix(self, relationships: tuple[str, ...], max_loci: int) -> np.ndarray:
        """Cutoffs as float64 (max_loci + 1, n_relationships), indexed by loci compared."""
        return np.array(
            [[self.cutoff_for(r, m) for r in relationships] for m in range(max_loci + 1)]
        )

    def rows(self) -> list[dict]:
        return [
            {
                "relationship": r,
                "loci_compared": m,
                "log10_lr_cutoff": round(self.cutoffs[r][m], 4),
                "power": round(self.power[r][m], 4),
                "power_se": _rounded(self.power_se.get(r, {}).get(m)),
                "false_positive_rate": _rounded(self.false_positive_estimate.get(r, {}).get(m)),
                "false_positive_rate_se": _rounded(self.false_positive_se.get(r, {}).get(m)),
                "unrelated_exceeding": self.unrelated_exceeding[r][m],
            }
            for r in self.relationships
            for m in self.loci_counts
        ]

    def to_dict(self) -> dict:
        def by_m(table):
            return {r: {str(m): v for m, v in t.items()} for r, t in table.items()}

        return {
            "relationships": list(self.relationships),
            "loci_counts": list(self.loci_counts),
            "cutoffs": by_m(self.cutoffs),
            "power": by_m(self.power),
            "power_se": by_m(self.power_se),
            "false_positive_estimate": by_m(self.false_positive_estimate),
            "false_positive_se": by_m(self.false_positive_se),
            "unrelated_exceeding": by_m(self.unrelated_exceeding),
            "frequencies": self.frequencies,
            "between_theta": self.between_theta,
            "expected_false_pairs": self.expected_false_pairs,
            "pairs_compared": self.pairs_compared,
            "false_positive_rate": self.false_positive_rate,
            "n_simulations": self.n_simulations,
            "theta": self.theta,
            "errors": self.errors.as_dict(),
            "seed": self.seed,
            "loci": list(self.loci),
            "reference": self.reference,
            "reference_hash": self.reference_hash,
            "notes": self.notes,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Calibration:
        def by_m(table, kind):
            return {r: {int(m): kind(v) for m, v in t.items()} for r, t in table.items()}

        return cls(
            relationships=tuple(data["relationships"]),
            loci_counts=tuple(int(m) for m in data["loci_counts"]),
            cutoffs=by_m(data["cutoffs"], float),
            power=by_m(data["power"], float),
            unrelated_exceeding=by_m(data["unrelated_exceeding"], int),
            false_positive_rate=float(data["false_positive_rate"]),
            n_simulations=int(data["n_simulations"]),
            theta=float(data["theta"]),
            errors=ErrorModel(**data["errors"]),
            seed=int(data["seed"]),
            loci=tuple(data.get("loci", ())),
            reference=data.get("reference", ""),
            reference_hash=data.get("reference_hash", ""),
            notes=data.get("notes", {}),
            # absent from calibrations written before version 2 of this file
            power_se=by_m(data.get("power_se", {}), float),
            false_positive_estimate=by_m(data.get("false_positive_estimate", {}), float),
            false_positive_se=by_m(data.get("false_positive_se", {}), float),
            frequencies=data.get("frequencies", "pooled"),
            between_theta=data.get("between_theta"),
            expected_false_pairs=data.get("expected_false_pairs"),
            pairs_compared=data.get("pairs_compared"),
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write JSON to ``path`` (a file, or a folder to hold ``calibration.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Calibration:
        path = Path(path)
        if path.is_dir():
            path = path / CALIBRATION_FILE
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except (KeyError, TypeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path.name}: not a calibration file ({error})") from None


def _rounded(value: float | None, digits: int = 6) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def _simulate_pairs(freq_sets: np.ndarray, n_alleles: np.ndarray, theta: float,
                    errors: ErrorModel, relationships: tuple[str, ...], n_per_set: int,
                    rng: np.random.Generator, keep: dict | None = None):
    """Per-locus log10 LRs of pairs simulated from each frequency set in turn.

    Returns
    -------
    related : ndarray of float32, shape (n_relationships, n_pairs, n_loci)
        Pairs simulated under each relationship, scored for that relationship.
    unrelated : ndarray of float32, shape (n_pairs, n_loci, n_relationships)
        Unrelated pairs, scored for every relationship.

    With ``keep`` (a dict), it also receives what weighing the related pairs as pairs across
    sets needs (:func:`_mix_rates`): ``first`` and ``second`` (int32, like ``related``), the
    genotype codes of each pair; ``gap`` (float32, like ``related``),
    ``log10 P_s(g₁) − log10 P_U,s(g₁, g₂)``; ``tables[s][locus]`` (float32, G × G ×
    n_relationships), the LR tables, and ``marginals[s][locus]``, the log10 probability of each
    observed genotype, of every set.
    """
    n_sets, n_loci = freq_sets.shape[:2]
    n_rel = len(relationships)
    coefficients = np.vstack([relationship_coefficients(relationships), [UNRELATED]])
    related = np.empty((n_rel, n_sets * n_per_set, n_loci), dtype=np.float32)
    unrelated = np.empty((n_sets * n_per_set, n_loci, n_rel), dtype=np.float32)
    if keep is not None:
        for key, dtype in (("first", np.int32), ("second", np.int32), ("gap", np.float32)):
            keep[key] = np.empty(related.shape, dtype=dtype)
        keep["tables"] = [[None] * n_loci for _ in range(n_sets)]
        keep["marginals"] = [[None] * n_loci for _ in range(n_sets)]
    for s, freqs in enumerate(freq_sets):
        rows = slice(s * n_per_set, (s + 1) * n_per_set)
        for locus in range(n_loci):
            f = freqs[locus, : n_alleles[locus]]
            q = observed_pair_probabilities(f, theta, errors)
            table = locus_log10_lr(f, theta, relationships, errors)
            g = q.shape[1]
            if keep is not None:
                null = np.einsum("k,kgh->gh", np.asarray(UNRELATED), q)
                marginal = np.log10(null.sum(axis=1))
                keep["tables"][s][locus] = table.astype(np.float32)
                keep["marginals"][s][locus] = marginal
            for h, k in enumerate(coefficients):
                joint = np.einsum("k,kgh->gh", k, q).ravel()
                draws = rng.choice(g * g, size=n_per_set, p=joint / joint.sum())
                values = table[draws // g, draws % g]
                if h < n_rel:
                    related[h, rows, locus] = values[:, h]
                    if keep is not None:
                        first, second = draws // g, draws % g
                        keep["first"][h, rows, locus] = first
                        keep["second"][h, rows, locus] = second
                        keep["gap"][h, rows, locus] = (marginal[first]
                                                       - np.log10(null[first, second]))
                else:
                    unrelated[rows, locus] = values
    return related, unrelated


def scoring_frequencies(reference: GenotypeTable, frequencies: str,
                        between_theta: float) -> np.ndarray:
    """The frequency sets pairs are scored with, float64 (n_sets, n_loci, max_alleles): the
    pooled point frequencies (one set), or each reference population's frequencies shrunk
    towards them (:func:`matching.relationships.population_frequencies`)."""
    if frequencies not in FREQUENCY_CHOICES:
        raise ValueError(f"frequencies must be one of {', '.join(FREQUENCY_CHOICES)}, "
                         f"got {frequencies!r}")
    if frequencies == "pooled":
        return point_frequencies(allele_counts(reference.replace(population=None)))
    if reference.population is None or len(reference.unique_populations()) < 2:
        raise ValueError("population frequencies need a reference with two populations or "
                         "more")
    return population_frequencies(allele_counts(reference), between_theta)


def calibrate(
    reference: GenotypeTable,
    *,
    theta: float,
    errors: ErrorModel | None = None,
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS),
    false_positive_rate: float | None = None,
    pairs_compared: float = 1e9,
    expected_false_pairs: float = DEFAULT_EXPECTED_FALSE_PAIRS,
    loci_counts: Sequence[int] | None = None,
    n_simulations: int = DEFAULT_SIMULATIONS,
    seed: int = 1,
    frequencies: str = "pooled",
    between_theta: float | None = None,
    minimum_cutoff: float = -np.inf,
    reference_name: str = "",
    reference_hash: str = "",
    pair_mix: np.ndarray | None = None,
) -> Calibration:
    """Simulate pairs from ``reference``'s frequencies and derive cutoffs.

    Parameters
    ----------
    reference : GenotypeTable
        Reference genotypes, with populations for ``frequencies="population"``.
    theta : float
        Co-ancestry coefficient used both to simulate and to score: the F_ST of the pooled
        frequencies, or the θ within a population.
    errors : ErrorModel, optional
        Genotyping error model (default rates when ``None``).
    relationships : tuple of str
    false_positive_rate : float, optional
        Target false-positive rate per unrelated pair, over all relationships tested together;
        default ``expected_false_pairs / pairs_compared``.
    pairs_compared : float
        Number of pairs a search compares (used for the default rate).
    expected_false_pairs : float
        Expected false pairs per search the default rate allows.
    loci_counts : sequence of int, optional
        Numbers of loci compared to calibrate for; default every count from
        ``min(6, n_loci)`` to ``n_loci``.
    n_simulations : int
        Pairs simulated per relationship (and unrelated), shared equally among the populations.
    seed : int
    frequencies : {"pooled", "population"}
        Score with the pooled frequencies, or each population's in turn (equal weights).
    between_theta : float, optional
        With ``frequencies="population"``: the F_ST between populations that shrinks each
        population's frequencies towards the pooled ones.
    minimum_cutoff : float
        No cutoff is set below this log10 LR (a search's floor on the support it calls).
    pair_mix : ndarray, optional
        With ``frequencies="population"``: the share of the search's pairs whose profiles come
        from reference populations ``(a, b)``, float (n_populations, n_populations), symmetric,
        summing to 1 (:func:`matching.pair_search.population_pair_mix`). The false-positive
        rates are then those of this mix — a pair across populations, scored as the search
        scores it with the smaller LR of its two populations' frequencies, passes far less
        often than a pair within one — and the power that of related pairs drawn with the
        mix's population shares (:func:`_mix_rates`). Cutoffs are then on a grid of
        :data:`MIX_GRID_STEP` from ``minimum_cutoff`` (0 when unbounded). References too
        large for it (more than :data:`MIX_MAX_CELLS` populations × loci) are calibrated
        as without a mix, every pair within a population, which errs on the safe side.
        Default: every pair within a population, the populations equally often.
    """
    errors = ErrorModel() if errors is None else errors
    relationships = tuple(relationships)
    relationship_coefficients(relationships)
    n_loci = reference.n_loci
    alpha = (false_positive_rate if false_positive_rate is not None
             else expected_false_pairs / pairs_compared)
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"the false-positive rate must be in (0, 1), got {alpha}")
    if n_simulations < 100:
        raise ValueError("n_simulations must be at least 100")
    if loci_counts is None:
        loci_counts = tuple(range(min(6, n_loci), n_loci + 1))
    bad = [m for m in loci_counts if not 1 <= m <= n_loci]
    if bad:
        raise ValueError(f"loci counts must be between 1 and {n_loci}; got {bad}")
    if frequencies == "population" and between_theta is None:
        raise ValueError("population frequencies need between_theta")
    rng = np.random.default_rng(seed)
    freq_sets = scoring_frequencies(reference, frequencies, between_theta or 0.0)
    n_sets = len(freq_sets)
    mix = _checked_mix(pair_mix, frequencies, n_sets, n_loci)
    n_alleles = allele_counts(reference.replace(population=None)).coding.n_alleles
    n_per_set = max(1, -(-n_simulations // n_sets))
    genotypes = n_alleles.astype(np.int64) * (n_alleles + 1) // 2
    table_cells = n_sets * int(np.sum(genotypes**2)) * len(relationships)
    assigning = (frequencies == "population" and n_sets > 1
                 and n_sets * n_loci <= MIX_MAX_CELLS and table_cells <= ASSIGN_MAX_CELLS)
    if frequencies == "population" and n_sets > 1 and not assigning:
        logger.info("%d populations x %d loci: power for pairs scored with their own "
                    "population's frequencies (assignment not weighed)", n_sets, n_loci)
    kept = {} if mix is not None or assigning else None
    related, unrelated = _simulate_pairs(freq_sets, n_alleles, theta, errors, relationships,
                                         n_per_set, rng, kept)
    n_pairs = related.shape[1]
    pair_set = np.repeat(np.arange(n_sets), n_per_set)
    # Each simulated pair is compared at a random subset of m loci: the first m of a random
    # order of the loci.
    order = np.argsort(rng.random((n_pairs, n_loci)), axis=1)
    # Power: related pairs of each population, weighed by its share of the searched profiles.
    share = np.full(n_sets, 1.0 / n_sets) if mix is None else mix.sum(axis=1)
    power_weight = share[pair_set] * n_sets
    tables = {key: {} for key in ("cutoffs", "power", "power_se", "estimate", "se", "exceeding")}
    for table in tables.values():
        for name in relationships:
            table[name] = {}
    # Any one relationship passing makes a false pair, so the cutoff bounds the sum of the
    # rates; E[LR | unrelated] = 1 (Markov) caps it at log10(n_relationships / α).
    markov = float(np.log10(len(relationships) / alpha))
    related_sums, unrelated_sums = [], []
    for r in range(len(relationships)):
        related_sums.append(np.cumsum(np.take_along_axis(related[r], order, axis=1), axis=1,
                                      dtype=np.float64))
        unrelated_sums.append(np.cumsum(np.take_along_axis(unrelated[:, :, r], order, axis=1),
                                        axis=1, dtype=np.float64))
    # The power is that of pairs scored as the search scores them: each profile assigned to
    # its most likely population, the pair given the smaller LR of the two populations'.
    scored_sums = ([_assigned_scores(kept, r, order, freq_sets, n_alleles)
                    for r in range(len(relationships))] if assigning else related_sums)
    if mix is not None:
        lowest = minimum_cutoff if np.isfinite(minimum_cutoff) else 0.0
        grid = np.arange(lowest, max(markov, lowest) + MIX_GRID_STEP, MIX_GRID_STEP)
        rates = [_mix_rates(related_sums[r], kept, r, order, pair_set, mix, grid,
                            tuple(loci_counts)) for r in range(len(relationships))]
    for i, m in enumerate(loci_counts):
        x = [sums[:, m - 1] for sums in related_sums]
        if mix is None:
            cutoff = max(min(_common_cutoff(x, alpha, minimum_cutoff), markov), minimum_cutoff)
        else:
            mean = sum(rate[0][i] for rate in rates)
            spread = 2.0 * np.sqrt(sum(rate[1][i] for rate in rates) / n_pairs)
            bad = np.flatnonzero(mean + spread > alpha)
            start = 0 if bad.size == 0 else bad[-1] + 1
            cutoff = float(grid[start]) if start < grid.size else markov
        for r, name in enumerate(relationships):
            passed = scored_sums[r][:, m - 1] >= cutoff
            if mix is None:
                estimate, standard_error = _importance_rate(x[r], cutoff)
            else:
                at = min(int(np.searchsorted(grid, cutoff - 1e-12)), grid.size - 1)
                estimate = float(rates[r][0][i][at])
                standard_error = float(np.sqrt(rates[r][1][i][at] / n_pairs))
            tables["cutoffs"][name][m] = cutoff
            tables["power"][name][m] = float(np.mean(passed * power_weight))
            tables["power_se"][name][m] = _power_se(passed, pair_set, share)
            tables["estimate"][name][m] = estimate
            tables["se"][name][m] = standard_error
            tables["exceeding"][name][m] = int(np.sum(unrelated_sums[r][:, m - 1] >= cutoff))
    logger.info("calibrated %s for %d loci (%s frequencies, theta %g, rate per pair %.3g, "
                "%d simulated pairs per relationship)", ", ".join(relationships), n_loci,
                frequencies, theta, alpha, n_pairs)
    return Calibration(
        relationships=relationships,
        loci_counts=tuple(loci_counts),
        cutoffs=tables["cutoffs"],
        power=tables["power"],
        unrelated_exceeding=tables["exceeding"],
        false_positive_rate=alpha,
        n_simulations=n_pairs,
        theta=float(theta),
        errors=errors,
        seed=seed,
        loci=reference.loci,
        reference=reference_name,
        reference_hash=reference_hash,
        power_se=tables["power_se"],
        false_positive_estimate=tables["estimate"],
        false_positive_se=tables["se"],
        frequencies=frequencies,
        between_theta=None if between_theta is None else float(between_theta),
        expected_false_pairs=None if false_positive_rate is not None
        else float(expected_false_pairs),
        pairs_compared=float(pairs_compared),
        notes={**({} if mix is None else {
            "pair_mix": "false-positive rates and power for the searched profiles' mix of "
                        "population pairs",
            "pairs_within_a_population": round(float(np.trace(mix)), 6)}),
            **({"power": "pairs scored with their profiles' assigned populations"}
               if assigning else {})},
    )


#: Cutoffs calibrated for a mix of population pairs lie on a grid of this step (log10 LR).
MIX_GRID_STEP = 0.01
#: Populations × loci beyond which a mix is not weighed (the weights grow with their square).
MIX_MAX_CELLS = 1000
#: LR-table entries (populations × genotype pairs × relationships) beyond which the power is
#: not computed for pairs scored with their assigned populations (the tables are kept for it).
ASSIGN_MAX_CELLS = 30_000_000


def _checked_mix(pair_mix, frequencies: str, n_sets: int, n_loci: int) -> np.ndarray | None:
    """``pair_mix`` as a float64 array once checked; ``None`` without one or for a reference
    too large to weigh it for."""
    if pair_mix is None:
        return None
    if frequencies != "population":
        raise ValueError("a mix of population pairs needs population frequencies")
    mix = np.asarray(pair_mix, dtype=np.float64)
    if (mix.shape != (n_sets, n_sets) or not np.all(np.isfinite(mix)) or np.any(mix < 0)
            or abs(mix.sum() - 1.0) > 1e-6 or not np.allclose(mix, mix.T)):
        raise ValueError(f"pair_mix must be a symmetric non-negative {n_sets} x {n_sets} "
                         "matrix summing to 1")
    if n_sets * n_loci > MIX_MAX_CELLS:
        logger.info("%d populations x %d loci: the pair mix is not weighed (every pair counts "
                    "as within a population)", n_sets, n_loci)
        return None
    return mix


def _mix_rates(related_sums: np.ndarray, kept: dict, r: int, order: np.ndarray,
               pair_set: np.ndarray, mix: np.ndarray, grid: np.ndarray,
               loci_counts: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Importance-sampling estimate of the rate at which an unrelated pair of the mix passes
    each cutoff of ``grid`` for relationship ``r``, and the variance of one draw: two float64
    arrays (len(loci_counts), len(grid)); the rate's standard error is
    ``sqrt(variance / n_pairs)``.

    A pair simulated under ``r`` in population ``a`` (genotypes ``g₁, g₂``) stands for an
    unrelated pair of populations ``(a, b)`` with weight ``P_a(g₁) P_b(g₂) / P_r,a(g₁, g₂)``
    (within ``a``: ``P_U,a(g₁, g₂) / P_r,a = 10^−x``), and passes a cutoff when the search's
    score does: the smaller of its LRs under ``a``'s and ``b``'s frequencies. Each simulated
    pair's draw is the sum of its ``n_sets · mix[a, b]``-weighted terms over ``b``, so the mean
    over all simulated pairs estimates the mix's rate (the pairs with ``b`` first are the
    pairs simulated in ``b``).
    """
    n_sets = mix.shape[0]
    n_pairs, n_loci = related_sums.shape
    n_grid = grid.size
    columns = np.asarray(loci_counts) - 1
    # flat views of every set's tables (relationship r) and genotype marginals
    sizes = np.array([len(m) for m in kept["marginals"][0]])
    marginal_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    table_offsets = np.concatenate([[0], np.cumsum(sizes**2)[:-1]])
    marginals = np.array([np.concatenate(per_locus) for per_locus in kept["marginals"]])
    tables = np.array([np.concatenate([t[:, :, r].ravel() for t in per_locus])
                       for per_locus in kept["tables"]])
    first = np.take_along_axis(kept["first"][r], order, axis=1)
    second = np.take_along_axis(kept["second"][r], order, axis=1)
    table_index = table_offsets[order] + first * sizes[order] + second
    marginal_index = marginal_offsets[order] + second
    gap = np.take_along_axis(kept["gap"][r].astype(np.float64), order, axis=1)
    total = np.zeros((len(columns), n_grid))
    total_square = np.zeros((len(columns), n_grid))
    for a in range(n_sets):
        rows = np.flatnonzero(pair_set == a)
        if rows.size == 0 or mix[a].sum() == 0.0:
            continue
        x = related_sums[rows][:, columns]
        terms = [(x, n_sets * mix[a, a] * 10.0 ** -x)] if mix[a, a] > 0 else []
        for b in np.flatnonzero(mix[a] > 0):
            if b == a:
                continue
            score_b = np.cumsum(tables[b][table_index[rows]], axis=1)[:, columns]
            log_weight = np.cumsum(gap[rows] + marginals[b][marginal_index[rows]],
                                   axis=1)[:, columns] - x
            terms.append((np.minimum(x, score_b), n_sets * mix[a, b] * 10.0 ** log_weight))
        # each draw's value at every cutoff: the weights of its terms whose score reaches it
        draws = np.zeros((rows.size, len(columns), n_grid + 1))
        flat = draws.reshape(-1)
        base = (np.arange(rows.size)[:, None] * len(columns) + np.arange(len(columns))) * (
            n_grid + 1)
        for score, weight in terms:
            passed = np.searchsorted(grid, score, side="right")  # cutoffs the score reaches
            flat += np.bincount((base + passed).ravel(), weights=weight.ravel(),
                                minlength=flat.size)
        at_cutoff = np.cumsum(draws[:, :, ::-1], axis=2)[:, :, ::-1][:, :, 1:]
        total += at_cutoff.sum(axis=0)
        total_square += (at_cutoff**2).sum(axis=0)
    mean = total / n_pairs
    return mean, np.maximum(total_square / n_pairs - mean**2, 0.0)


def _assigned_scores(kept: dict, r: int, order: np.ndarray, freq_sets: np.ndarray,
                     n_alleles: np.ndarray) -> np.ndarray:
    """Summed log10 LRs for relationship ``r`` of the pairs simulated under it, over the first
    ``m`` loci of each pair's ``order`` for every ``m``, as the search scores them, float64
    (n_pairs, n_loci): each profile is assigned to the population whose frequencies give its
    genotypes at those loci the largest Hardy–Weinberg likelihood
    (:meth:`matching.kinship.KinshipSearch.assign_populations`), and the pair gets the smaller
    of its LRs under the two assigned populations' frequencies."""
    n_sets = len(freq_sets)
    first = np.take_along_axis(kept["first"][r], order, axis=1)
    second = np.take_along_axis(kept["second"][r], order, axis=1)
    n_pairs, n_loci = first.shape
    sizes = np.array([len(m) for m in kept["marginals"][0]])  # genotypes per locus
    genotype_offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    table_offsets = np.concatenate([[0], np.cumsum(sizes**2)[:-1]])
    first_index = genotype_offsets[order] + first
    second_index = genotype_offsets[order] + second
    table_index = table_offsets[order] + first * sizes[order] + second
    hw = np.empty((n_sets, int(sizes.sum())))
    tables = np.empty((n_sets, int((sizes**2).sum())), dtype=np.float32)
    for s in range(n_sets):
        per_locus = []
        for locus in range(n_loci):
            count = int(n_alleles[locus])
            a, b = genotype_alleles(count)
            f = freq_sets[s, locus, :count]
            per_locus.append(np.log(np.where(a == b, 1.0, 2.0) * f[a] * f[b]))
        hw[s] = np.concatenate(per_locus)
        tables[s] = np.concatenate([t[:, :, r].ravel() for t in kept["tables"][s]])
    return _assigned_min_sums(first_index.astype(np.int64), second_index.astype(np.int64),
                              table_index.astype(np.int64), hw, tables)


@kernel
def _assigned_min_sums(first_index, second_index, table_index, hw, tables):  # pragma: no cover
    """For each pair and each ``m``: the running sums over its first ``m`` loci of both
    profiles' log-likelihoods and of the pair's LR under every population; the smaller LR of
    the two profiles' most likely populations (the first on ties, as ``np.argmax``)."""
    n_pairs, n_loci = first_index.shape
    n_sets = hw.shape[0]
    out = np.empty((n_pairs, n_loci))
    first = np.zeros(n_sets)
    second = np.zeros(n_sets)
    score = np.zeros(n_sets)
    for i in range(n_pairs):
        first[:] = 0.0
        second[:] = 0.0
        score[:] = 0.0
        for j in range(n_loci):
            best_first = 0
            best_second = 0
            for s in range(n_sets):
                first[s] += hw[s, first_index[i, j]]
                second[s] += hw[s, second_index[i, j]]
                score[s] += tables[s, table_index[i, j]]
                if first[s] > first[best_first]:
                    best_first = s
                if second[s] > second[best_second]:
                    best_second = s
            out[i, j] = min(score[best_first], score[best_second])
    return out


def _power_se(passed: np.ndarray, pair_set: np.ndarray, share: np.ndarray) -> float:
    """Monte-Carlo standard error of the share-weighted power: binomial within each
    population's simulated pairs, combined with the population shares."""
    variance = 0.0
    for a, weight in enumerate(share):
        rows = pair_set == a
        n = int(rows.sum())
        if weight == 0.0 or n == 0:
            continue
        p = float(passed[rows].mean())
        variance += weight**2 * p * (1.0 - p) / n
    return float(np.sqrt(variance))


def _importance_rate(related_log10_lr: np.ndarray, cutoff: float) -> tuple[float, float]:
    """Importance-sampling estimate of ``P(LR ≥ 10^cutoff | unrelated)`` from pairs simulated
    under the relationship, and its standard error."""
    if not np.isfinite(cutoff):
        return 0.0, 0.0
    weights = np.where(related_log10_lr >= cutoff, 10.0 ** -related_log10_lr, 0.0)
    return float(weights.mean()), float(weights.std() / np.sqrt(len(weights)))


def _common_cutoff(related_log10_lr: list[np.ndarray], alpha: float,
                   lowest: float = -np.inf) -> float:
    """Smallest observed ``t ≥ lowest`` from which on the importance-sampling estimate of the
    rate at which an unrelated pair passes any relationship's cutoff ``t`` — the sum over the
    relationships of ``mean(1{x_R ≥ t} · 10^−x_R)`` over pairs simulated under ``R`` — plus two
    standard errors is at most ``α`` (``inf`` when no observed value qualifies, ``-inf`` when
    every one from ``lowest`` on does).

    One cutoff for every relationship is the allocation of ``α`` that finds the most related
    pairs: at cutoff ``t`` a relationship gains true pairs at ``10^t`` times the rate it gains
    false ones (the LR is the ratio of the two densities), so any other split would trade
    power where it is cheap for power where it is dear.
    """
    candidates = np.unique(np.concatenate(
        [x[np.isfinite(x) & (x >= lowest)] for x in related_log10_lr]))
    if candidates.size == 0:
        return float("inf")
    mean = np.zeros(candidates.size)
    variance = np.zeros(candidates.size)
    for x in related_log10_lr:
        n = len(x)
        base = np.where(np.isfinite(x), 10.0 ** -np.where(np.isfinite(x), x, 0.0), 0.0)
        sort = np.argsort(x)
        tail = np.cumsum(base[sort][::-1])[::-1] / n  # mean of 1{x ≥ x_(i)} · w
        tail_second = np.cumsum(base[sort][::-1] ** 2)[::-1] / n
        first = np.searchsorted(x[sort], candidates, side="left")  # first x ≥ t
        inside = first < n
        m1 = np.where(inside, tail[np.minimum(first, n - 1)], 0.0)
        m2 = np.where(inside, tail_second[np.minimum(first, n - 1)], 0.0)
        mean += m1
        variance += np.maximum(m2 - m1**2, 0.0) / n
    bad = np.flatnonzero(mean + 2.0 * np.sqrt(variance) > alpha)
    if bad.size == 0:
        return -float("inf")
    start = bad[-1] + 1
    return float(candidates[start]) if start < candidates.size else float("inf")


# ------------------------------------------------------------------------------------ cache
#: Format of the cache's keys: a change to how calibrations are made bumps it.
CACHE_FORMAT = 1
#: Environment variable naming the calibration cache folder (``none`` turns the cache off).
CACHE_ENVIRONMENT = "DNATRACK_CALIBRATION_CACHE"


def default_cache_dir() -> Path | None:
    """The calibration cache folder: ``$DNATRACK_CALIBRATION_CACHE`` when set (``none`` or
    empty: no cache), else ``dnatrack/calibrations`` under the user cache folder
    (``$XDG_CACHE_HOME``, default ``~/.cache``)."""
    chosen = os.environ.get(CACHE_ENVIRONMENT)
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "none") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dnatrack" / "calibrations"


def resolve_cache_dir(option: str | os.PathLike | None) -> Path | None:
    """The cache folder a ``--calibration-cache`` option names: :func:`default_cache_dir`
    when not given, none for ``none`` or an empty value."""
    if option is None:
        return default_cache_dir()
    return None if str(option).strip().lower() in ("", "none") else Path(option)


def table_hash(table: GenotypeTable) -> str:
    """SHA-256 of what a calibration simulates from: the loci, the alleles and the
    populations of ``table``."""
    digest = hashlib.sha256()
    digest.update(json.dumps([list(table.loci), None if table.population is None
                              else [str(p) for p in table.population]]).encode())
    digest.update(np.ascontiguousarray(table.alleles).tobytes())
    return digest.hexdigest()


def calibration_key(reference: GenotypeTable, reference_hash: str, options: dict) -> str:
    """Cache key of a calibration of ``reference`` (its content ``reference_hash`` and
    :func:`table_hash`) with :func:`calibrate`'s ``options`` (the pair mix by its exact
    bytes)."""
    canonical = {}
    for name, value in sorted(options.items()):
        if name == "pair_mix" and value is not None:
            value = hashlib.sha256(np.ascontiguousarray(value, dtype=np.float64).tobytes()
                                   ).hexdigest()
        elif isinstance(value, ErrorModel):
            value = value.as_dict()
        elif isinstance(value, (tuple, list)):
            value = [v if isinstance(v, str) else float(v) for v in value]
        elif isinstance(value, (int, float, np.floating, np.integer)):
            value = repr(float(value))
        canonical[name] = value
    payload = json.dumps([CACHE_FORMAT, reference_hash, table_hash(reference), canonical],
                         sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def cache_path(reference: GenotypeTable, cache_dir: str | os.PathLike, **options) -> Path:
    """The file of :func:`cached_calibrate`'s calibration of ``reference`` with ``options``."""
    key = calibration_key(reference, options.get("reference_hash", ""), options)
    return Path(cache_dir) / f"calibration-{key[:32]}.json"


def cached_calibrate(reference: GenotypeTable, cache_dir: str | os.PathLike | None,
                     **options) -> Calibration:
    """:func:`calibrate` through a cache of calibrations in ``cache_dir`` (none: no cache),
    one JSON file per :func:`calibration_key` — the reference's content hash and genotypes,
    its loci, every parameter and the seed — so a stored calibration is what ``calibrate``
    would return. A file that cannot be read as a calibration is refitted with a warning; one
    whose recorded key or reference hash differs from its name's is refused (``ValueError``:
    it does not belong there). Files are written atomically, so concurrent runs never leave
    half a file."""
    if cache_dir is None:
        return calibrate(reference, **options)
    reference_hash = options.get("reference_hash", "")
    key = calibration_key(reference, reference_hash, options)
    path = cache_path(reference, cache_dir, **options)
    if path.is_file():
        try:
            stored = Calibration.load(path)
        except (ValueError, OSError, UnicodeDecodeError, AttributeError) as error:
            logger.warning("calibration cache %s unreadable (%s); calibrating again", path,
                           error)
        else:
            if (stored.notes.get("cache_key") != key
                    or stored.reference_hash != reference_hash
                    or tuple(stored.loci) != tuple(reference.loci)):
                raise ValueError(
                    f"{path}: refused, it was made for reference hash "
                    f"{stored.reference_hash or '(none)'!r} and key "
                    f"{stored.notes.get('cache_key')!r}, not {reference_hash!r} and {key!r}; "
                    "remove the file")
            logger.info("calibration loaded from the cache %s", path)
            return stored
    calibration = calibrate(reference, **options)
    calibration.notes = {**calibration.notes, "cache_key": key}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_text(json.dumps(calibration.to_dict(), indent=1) + "\n")
        os.replace(temporary, path)
        logger.info("calibration stored in the cache %s", path)
    except OSError as error:  # a read-only or full cache folder costs only the speed-up
        logger.warning("calibration cache %s not written (%s)", path, error)
    return calibration
