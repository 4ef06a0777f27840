"""Seizure-level mixture proportions over reference populations (DESIGN 5.5).

The model is rubias's conditional GSI model: every sample of a group (a seizure, a fishery
mixture) comes from population ``p`` with probability ``π_p``, and its genotype likelihoods
under the populations are those of :mod:`matching.assignment` (Rannala & Mountain predictive,
fixed by the reference). The proportions ``π`` are estimated

* by EM (maximum likelihood, a point estimate), and
* by Gibbs sampling with a Dirichlet prior (default ``1/P`` per population, rubias's default):
  the posterior mean and an equal-tailed credible interval from the sweeps after burn-in.

Each sample's posterior membership (rubias's ``PofZ``) is its membership probability given the
proportions, averaged over the kept sweeps (and, for EM, at the EM estimate). Everything is
also summed to reporting units; intervals for reporting units come from the summed sweeps.

Examples
--------
>>> result = model.assign(seizures, exclusion_simulations=0)          # doctest: +SKIP
>>> mixture = estimate_mixture(result, seed=1)                         # doctest: +SKIP
>>> mixture.proportion_records()[0]                                    # doctest: +SKIP
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from matching import _mixture_kernels as kernels
from matching._rng_kernels import seed_state
from matching.assignment import Assignment

DEFAULT_SWEEPS = 2_000
DEFAULT_BURN_IN = 100
DEFAULT_TOLERANCE = 1e-8
DEFAULT_MAX_ITERATIONS = 10_000

PROPORTION_COLUMNS = [
    "mixture_collection", "repunit", "collection", "pi", "pi_lo95", "pi_hi95", "pi_em",
    "n_samples",
]
REPUNIT_COLUMNS = ["mixture_collection", "repunit", "repunit_pi", "repunit_pi_lo95",
                   "repunit_pi_hi95", "repunit_pi_em", "n_samples"]
MEMBERSHIP_COLUMNS = ["mixture_collection", "indiv", "repunit", "collection", "PofZ", "PofZ_em"]


@dataclass(eq=False)
class MixtureEstimate:
    """Mixing proportions of one or more groups of samples.

    Attributes
    ----------
    groups : tuple of str, length G
    populations : tuple of str, length P
    repunit_names : tuple of str, length R
    population_repunit : ndarray of int64, shape (P,)
    profile_ids : ndarray of str, shape (n,)
        Samples in input order.
    group_index : ndarray of int64, shape (n,)
        Group of each sample.
    em_proportions : ndarray of float64, shape (G, P)
    em_iterations : ndarray of int64, shape (G,)
    em_membership : ndarray of float64, shape (n, P)
    trace : ndarray of float64, shape (G, n_sweeps, P)
        Proportions after every Gibbs sweep, burn-in included.
    membership : ndarray of float64, shape (n, P)
        Posterior membership averaged over the kept sweeps.
    prior : ndarray of float64, shape (P,)
    burn_in, seed : int
    """

    groups: tuple[str, ...]
    populations: tuple[str, ...]
    repunit_names: tuple[str, ...]
    population_repunit: np.ndarray
    profile_ids: np.ndarray
    group_index: np.ndarray
    em_proportions: np.ndarray
    em_iterations: np.ndarray
    em_membership: np.ndarray
    trace: np.ndarray
    membership: np.ndarray
    prior: np.ndarray
    burn_in: int
    seed: int
    max_iterations: int = DEFAULT_MAX_ITERATIONS

    @property
    def kept(self) -> np.ndarray:
        """Sweeps after burn-in, float64 (G, n_kept, P)."""
        return self.trace[:, self.burn_in:, :]

    @property
    def posterior_mean(self) -> np.ndarray:
        """Posterior mean proportions, float64 (G, P)."""
        return self.kept.mean(axis=1)

    def credible_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed interval of each proportion: lower and upper, float64 (G, P) each."""
        return _interval(self.kept, level)

    @property
    def em_converged(self) -> np.ndarray:
        """True for groups whose EM reached the tolerance, bool (G,)."""
        return self.em_iterations < self.max_iterations

    @cached_property
    def repunit_trace(self) -> np.ndarray:
        """Sweeps summed to reporting units, float64 (G, n_sweeps, R)."""
        return _to_repunits(self.trace, self.population_repunit, len(self.repunit_names))

    @property
    def repunit_posterior_mean(self) -> np.ndarray:
        """Posterior mean reporting-unit proportions, float64 (G, R)."""
        return self.repunit_trace[:, self.burn_in:, :].mean(axis=1)

    def repunit_credible_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed interval of each reporting unit's proportion, float64 (G, R) each."""
        return _interval(self.repunit_trace[:, self.burn_in:, :], level)

    @property
    def repunit_em_proportions(self) -> np.ndarray:
        """EM proportions summed to reporting units, float64 (G, R)."""
        return _to_repunits(self.em_proportions, self.population_repunit,
                            len(self.repunit_names))

    @property
    def repunit_membership(self) -> np.ndarray:
        """Posterior membership summed to reporting units, float64 (n, R)."""
        return _to_repunits(self.membership, self.population_repunit, len(self.repunit_names))

    @property
    def group_sizes(self) -> np.ndarray:
        return np.bincount(self.group_index, minlength=len(self.groups))

    # ------------------------------------------------------------------ records
    def proportion_records(self) -> list[dict]:
        """One row per group and population (:data:`PROPORTION_COLUMNS`)."""
        mean = self.posterior_mean
        low, high = self.credible_interval()
        sizes = self.group_sizes
        return [
            {
                "mixture_collection": group,
                "repunit": self.repunit_names[self.population_repunit[p]],
                "collection": population,
                "pi": float(mean[g, p]),
                "pi_lo95": float(low[g, p]),
                "pi_hi95": float(high[g, p]),
                "pi_em": float(self.em_proportions[g, p]),
                "n_samples": int(sizes[g]),
            }
            for g, group in enumerate(self.groups)
            for p, population in enumerate(self.populations)
        ]

    def repunit_records(self) -> list[dict]:
        """One row per group and reporting unit (:data:`REPUNIT_COLUMNS`)."""
        mean = self.repunit_posterior_mean
        low, high = self.repunit_credible_interval()
        em = self.repunit_em_proportions
        sizes = self.group_sizes
        return [
            {
                "mixture_collection": group,
                "repunit": unit,
                "repunit_pi": float(mean[g, r]),
                "repunit_pi_lo95": float(low[g, r]),
                "repunit_pi_hi95": float(high[g, r]),
                "repunit_pi_em": float(em[g, r]),
                "n_samples": int(sizes[g]),
            }
            for g, group in enumerate(self.groups)
            for r, unit in enumerate(self.repunit_names)
        ]

    def membership_records(self, minimum: float = 0.0) -> list[dict]:
        """Long-form posterior membership (:data:`MEMBERSHIP_COLUMNS`); rows whose Gibbs and
        EM membership are both below ``minimum`` are left out."""
        out = []
        for i, pid in enumerate(self.profile_ids):
            group = self.groups[self.group_index[i]]
            for p, population in enumerate(self.populations):
                gibbs, em = self.membership[i, p], self.em_membership[i, p]
                if max(gibbs, em) < minimum:
                    continue
                out.append({
                    "mixture_collection": group,
                    "indiv": pid,
                    "repunit": self.repunit_names[self.population_repunit[p]],
                    "collection": population,
                    "PofZ": float(gibbs),
                    "PofZ_em": float(em),
                })
        return out

    def parameters(self) -> dict:
        return {
            "model": "conditional GSI mixture (rubias); EM and Gibbs with a Dirichlet prior",
            "n_sweeps": int(self.trace.shape[1]),
            "burn_in": self.burn_in,
            "prior": self.prior.tolist(),
            "seed": self.seed,
            "em_iterations": self.em_iterations.tolist(),
        }


def _interval(samples: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 < level < 1.0:
        raise ValueError(f"credible level must lie strictly between 0 and 1, got {level}")
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(samples, [tail, 1.0 - tail], axis=1)
    return low, high


def _to_repunits(values: np.ndarray, population_repunit: np.ndarray, n_units: int) -> np.ndarray:
    """Sum the last axis (populations) into reporting units."""
    summed = np.zeros((*values.shape[:-1], n_units))
    for p, unit in enumerate(population_repunit):
        summed[..., unit] += values[..., p]
    return summed


def _check_whole(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be a whole number ≥ {minimum}, got {value!r}")
    return int(value)


def estimate_mixture(
    assignment: Assignment,
    groups: Sequence[str] | None = None,
    *,
    n_sweeps: int = DEFAULT_SWEEPS,
    burn_in: int = DEFAULT_BURN_IN,
    prior: float | Sequence[float] | None = None,
    seed: int = 0,
    tolerance: float = DEFAULT_TOLERANCE,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> MixtureEstimate:
    """Mixing proportions of each group of assigned samples, by EM and by Gibbs sampling.

    Parameters
    ----------
    assignment : Assignment
        Per-sample log-likelihoods (from :meth:`AssignmentModel.assign`).
    groups : sequence of str, length n, optional
        Group (seizure) of each sample; by default the samples' ``group`` labels, or one group
        ``"all"`` when they have none.
    n_sweeps, burn_in : int
        Gibbs sweeps in all, and how many to discard first.
    prior : float or sequence of float, optional
        Dirichlet parameter per population (one number for all); default ``1/P``.
    seed : int
        Seed of the sampler; a group's chain depends only on the seed and the group's name.
    tolerance, max_iterations
        EM stopping rule: largest change of a proportion in one iteration.

    Returns
    -------
    MixtureEstimate
    """
    n, n_pop = assignment.log_likelihood.shape
    n_sweeps = _check_whole("n_sweeps", n_sweeps, 1)
    burn_in = _check_whole("burn_in", burn_in, 0)
    max_iterations = _check_whole("max_iterations", max_iterations, 1)
    if burn_in >= n_sweeps:
        raise ValueError(f"burn_in ({burn_in}) must be smaller than n_sweeps ({n_sweeps})")
    if not tolerance > 0:
        raise ValueError(f"tolerance must be positive, got {tolerance}")
    if prior is None:
        prior_array = np.full(n_pop, 1.0 / n_pop)
    else:
        prior_array = np.broadcast_to(np.asarray(prior, dtype=np.float64), (n_pop,)).copy()
        if not (np.isfinite(prior_array).all() and (prior_array > 0).all()):
            raise ValueError("the Dirichlet prior must be positive and finite for every population")
    if groups is None:
        labels = assignment.group if assignment.group is not None else np.full(n, "all")
    else:
        labels = np.asarray([str(g) for g in groups], dtype=object)
        if labels.shape != (n,):
            raise ValueError(f"groups has {labels.shape[0]} entries for {n} samples")
    if n == 0:
        raise ValueError("no samples to estimate a mixture from")
    group_names = tuple(dict.fromkeys(str(g) for g in labels))
    position = {name: k for k, name in enumerate(group_names)}
    group_index = np.array([position[str(g)] for g in labels], dtype=np.int64)
    order = np.argsort(group_index, kind="stable")
    group_starts = np.searchsorted(group_index[order], np.arange(len(group_names) + 1))

    log_likelihood = assignment.log_likelihood[order]
    likelihood = np.ascontiguousarray(
        np.exp(log_likelihood - log_likelihood.max(axis=1, keepdims=True))
    )
    em, iterations = kernels.em_mixtures(likelihood, group_starts, float(tolerance),
                                         max_iterations)
    group_keys = np.array([zlib.crc32(name.encode()) for name in group_names], dtype=np.int64)
    trace, sorted_membership = kernels.gibbs_mixtures(
        likelihood, group_starts, prior_array, n_sweeps, burn_in, seed_state(seed), group_keys
    )
    weights = em[group_index[order]] * likelihood
    sorted_em_membership = weights / weights.sum(axis=1, keepdims=True)
    membership = np.empty_like(sorted_membership)
    membership[order] = sorted_membership
    em_membership = np.empty_like(sorted_em_membership)
    em_membership[order] = sorted_em_membership
    return MixtureEstimate(
        groups=group_names,
        populations=assignment.populations,
        repunit_names=assignment.repunit_names,
        population_repunit=assignment.population_repunit,
        profile_ids=assignment.profile_ids,
        group_index=group_index,
        em_proportions=em,
        em_iterations=iterations,
        em_membership=em_membership,
        trace=trace,
        membership=membership,
        prior=prior_array,
        burn_in=burn_in,
        seed=seed,
        max_iterations=max_iterations,
    )
