"""Calibrating kinship cutoffs by simulation (DESIGN 5.3).

For each relationship ``R`` and number of loci compared ``m``, the cutoff is the smallest
``log10 LR_R`` whose false-positive rate per unrelated pair is at most ``α / n_relationships``,
so that an unrelated pair passes *any* of the relationships tested with probability at most
``α`` (by default ``0.01 / pairs compared``); the power is the share of true ``R`` pairs
reaching the cutoff.

Genotype pairs are drawn exactly from the model the search scores them with — per-locus joint
distributions of observed genotypes under each relationship, with θ and the error model — so
LRs are exact likelihood ratios of the simulation. That allows importance sampling of the far
tail: for pairs drawn under ``R``, ``P(LR_R ≥ t | unrelated) = E_R[1{LR_R ≥ t} / LR_R]``, which
estimates false-positive rates far below ``1 / n_simulations``; the cutoff is chosen where the
estimate plus two standard errors stays below the target, so simulation noise errs on the safe
side. The cutoff never exceeds
``log10(1/α)``, which bounds the rate for any model (``E[LR | unrelated] = 1``, Markov).
Directly simulated unrelated pairs give an empirical check at rates simulation can reach.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatrack.genotypes import GenotypeTable
from matching.frequencies import allele_counts, point_frequencies
from matching.relationships import (
    RELATIONSHIPS,
    UNRELATED,
    ErrorModel,
    locus_log10_lr,
    observed_pair_probabilities,
    relationship_coefficients,
)

CALIBRATION_FILE = "calibration.json"


@dataclass
class Calibration:
    """Cutoffs and power per relationship and number of loci compared.

    ``cutoffs[relationship][m]`` is the log10 LR cutoff for pairs compared at ``m`` loci;
    ``power`` has the same shape; ``unrelated_exceeding`` counts directly simulated unrelated
    pairs that passed (an empirical check, expected 0 for small ``α``).
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
                "unrelated_exceeding": self.unrelated_exceeding[r][m],
            }
            for r in self.relationships
            for m in self.loci_counts
        ]

    def to_dict(self) -> dict:
        return {
            "relationships": list(self.relationships),
            "loci_counts": list(self.loci_counts),
            "cutoffs": {r: {str(m): v for m, v in t.items()} for r, t in self.cutoffs.items()},
            "power": {r: {str(m): v for m, v in t.items()} for r, t in self.power.items()},
            "unrelated_exceeding": {
                r: {str(m): v for m, v in t.items()} for r, t in self.unrelated_exceeding.items()
            },
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


def _simulate_locus_lrs(freqs, theta, errors, relationships, n, rng) -> np.ndarray:
    """log10 LRs at one locus for ``n`` pairs simulated under each relationship and under
    "unrelated": float64 (n_relationships + 1, n, n_relationships)."""
    q = observed_pair_probabilities(freqs, theta, errors)
    table = locus_log10_lr(freqs, theta, relationships, errors)
    coefficients = np.vstack([relationship_coefficients(relationships), [UNRELATED]])
    g = q.shape[1]
    out = np.empty((len(coefficients), n, len(relationships)))
    for h, k in enumerate(coefficients):
        joint = np.einsum("k,kgh->gh", k, q).ravel()
        draws = rng.choice(g * g, size=n, p=joint / joint.sum())
        out[h] = table[draws // g, draws % g]
    return out


def calibrate(
    reference: GenotypeTable,
    *,
    theta: float,
    errors: ErrorModel | None = None,
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS),
    false_positive_rate: float | None = None,
    pairs_compared: float = 1e9,
    loci_counts: tuple[int, ...] | None = None,
    n_simulations: int = 20_000,
    seed: int = 1,
    reference_name: str = "",
    reference_hash: str = "",
) -> Calibration:
    """Simulate pairs from ``reference``'s pooled frequencies and derive cutoffs.

    Parameters
    ----------
    reference : GenotypeTable
        Reference genotypes; all populations are pooled (θ accounts for structure).
    theta : float
        Co-ancestry coefficient used both to simulate and to score.
    errors : ErrorModel, optional
        Genotyping error model (default rates when ``None``).
    relationships : tuple of str
    false_positive_rate : float, optional
        Target false-positive rate per unrelated pair, over all relationships tested together;
        default ``0.01 / pairs_compared``.
    pairs_compared : float
        Expected number of pairs a search compares (used for the default rate).
    loci_counts : tuple of int, optional
        Numbers of loci compared to calibrate for; default every count from
        ``min(6, n_loci)`` to ``n_loci``.
    n_simulations : int
        Pairs simulated per relationship (and unrelated).
    seed : int
    """
    errors = ErrorModel() if errors is None else errors
    relationships = tuple(relationships)
    relationship_coefficients(relationships)
    n_loci = reference.n_loci
    alpha = false_positive_rate if false_positive_rate is not None else 0.01 / pairs_compared
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"the false-positive rate must be in (0, 1), got {alpha}")
    if n_simulations < 100:
        raise ValueError("n_simulations must be at least 100")
    if loci_counts is None:
        loci_counts = tuple(range(min(6, n_loci), n_loci + 1))
    bad = [m for m in loci_counts if not 1 <= m <= n_loci]
    if bad:
        raise ValueError(f"loci counts must be between 1 and {n_loci}; got {bad}")
    rng = np.random.default_rng(seed)
    counts = allele_counts(reference.replace(population=None))
    freqs = point_frequencies(counts)[0]
    n_alleles = counts.coding.n_alleles
    per_locus = np.stack(
        [
            _simulate_locus_lrs(freqs[locus, : n_alleles[locus]], theta, errors, relationships,
                                n_simulations, rng)
            for locus in range(n_loci)
        ],
        axis=2,
    )  # (hypotheses, n, loci, relationships)
    # Each simulated pair is compared at a random subset of m loci: the first m of a random
    # order of the loci.
    order = np.argsort(rng.random((n_simulations, n_loci)), axis=1)
    ranked = np.take_along_axis(per_locus, order[None, :, :, None], axis=2)
    cumulative = np.cumsum(ranked, axis=2)

    cutoffs, power, exceeding = {}, {}, {}
    per_relationship = alpha / len(relationships)
    markov = float(np.log10(1.0 / per_relationship))
    for r, name in enumerate(relationships):
        cutoffs[name], power[name], exceeding[name] = {}, {}, {}
        for m in loci_counts:
            related = cumulative[r, :, m - 1, r]
            cutoff = min(_importance_cutoff(related, per_relationship), markov)
            cutoffs[name][m] = cutoff
            power[name][m] = float(np.mean(related >= cutoff))
            unrelated = cumulative[-1, :, m - 1, r]
            exceeding[name][m] = int(np.sum(unrelated >= cutoff))
    return Calibration(
        relationships=relationships,
        loci_counts=tuple(loci_counts),
        cutoffs=cutoffs,
        power=power,
        unrelated_exceeding=exceeding,
        false_positive_rate=alpha,
        n_simulations=n_simulations,
        theta=float(theta),
        errors=errors,
        seed=seed,
        loci=reference.loci,
        reference=reference_name,
        reference_hash=reference_hash,
    )


def _importance_cutoff(related_log10_lr: np.ndarray, alpha: float) -> float:
    """Smallest observed ``t`` whose importance-sampling estimate of the false-positive rate,
    ``mean(1{x ≥ t} · 10^−x)`` over pairs simulated under the relationship, plus two standard
    errors, is at most ``α`` (``inf`` when no observed value qualifies)."""
    n = len(related_log10_lr)
    x = np.sort(related_log10_lr)[::-1]
    x = x[np.isfinite(x)]
    weights = 10.0 ** -x
    mean = np.cumsum(weights) / n
    second = np.cumsum(weights**2) / n
    standard_error = np.sqrt(np.maximum(second - mean**2, 0.0) / n)
    ok = np.flatnonzero(mean + 2.0 * standard_error <= alpha)
    if ok.size == 0:
        return float("inf")
    k = ok[-1]
    # Ties: every pair at the cutoff value passes, so the rate must hold at the tie's end.
    while k >= 0 and k + 1 < len(x) and x[k + 1] == x[k]:
        k -= 1
    return float(x[k]) if k >= 0 else float("inf")
