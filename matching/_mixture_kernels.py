"""Numba kernels for mixture proportions (the conditional GSI model of rubias).

``likelihood`` float64 (n, P) holds each sample's genotype likelihood under each population,
scaled per row (divided by the row maximum) so that it neither under- nor overflows; the scale
cancels in every quantity computed here. Rows are sorted by group (seizure, mixture sample);
``group_starts`` int64 (G + 1,) gives the first row of each group and the end. Each group is an
independent mixture, and one ``prange`` iteration handles one group, writing only its own
slices of the outputs.
"""

from __future__ import annotations

import numba
import numpy as np

from matching._numba import parallel_kernel
from matching._rng_kernels import gamma, state_for, uniform


@parallel_kernel
def em_mixtures(likelihood, group_starts, tolerance, max_iterations):
    """Maximum-likelihood mixing proportions of each group by EM.

    Starts from equal proportions; stops when no proportion changes by more than
    ``tolerance`` in an iteration, or after ``max_iterations``.

    Returns
    -------
    proportions : float64 (G, P)
    iterations : int64 (G,)
        Iterations run; ``max_iterations`` means the tolerance was not reached.
    """
    n_groups = group_starts.shape[0] - 1
    n_pop = likelihood.shape[1]
    proportions = np.empty((n_groups, n_pop))
    iterations = np.zeros(n_groups, dtype=np.int64)
    for g in numba.prange(n_groups):
        start, stop = group_starts[g], group_starts[g + 1]
        pi = np.full(n_pop, 1.0 / n_pop)
        updated = np.empty(n_pop)
        for iteration in range(max_iterations):
            updated[:] = 0.0
            for i in range(start, stop):
                total = 0.0
                for p in range(n_pop):
                    total += pi[p] * likelihood[i, p]
                for p in range(n_pop):
                    updated[p] += pi[p] * likelihood[i, p] / total
            change = 0.0
            for p in range(n_pop):
                updated[p] /= stop - start
                change = max(change, abs(updated[p] - pi[p]))
                pi[p] = updated[p]
            iterations[g] = iteration + 1
            if change <= tolerance:
                break
        proportions[g] = pi
    return proportions, iterations


@parallel_kernel
def gibbs_mixtures(likelihood, group_starts, prior, n_sweeps, burn_in, seed, group_keys):
    """Gibbs sampler of the mixing proportions with a Dirichlet(``prior``) prior.

    Each sweep draws every sample's population given the proportions, then the proportions
    from Dirichlet(``prior`` + counts). Starts from the prior mean. Group ``g`` draws from the
    random stream ``group_keys[g]`` of ``seed``, so its chain does not depend on the others.

    Returns
    -------
    trace : float64 (G, n_sweeps, P)
        The proportions after every sweep.
    membership : float64 (n, P)
        Each sample's membership probabilities given the current proportions, averaged over
        the sweeps after ``burn_in``.
    """
    n_groups = group_starts.shape[0] - 1
    n, n_pop = likelihood.shape
    trace = np.empty((n_groups, n_sweeps, n_pop))
    membership = np.zeros((n, n_pop))
    prior_total = 0.0
    for p in range(n_pop):
        prior_total += prior[p]
    for g in numba.prange(n_groups):
        start, stop = group_starts[g], group_starts[g + 1]
        state = state_for(seed, group_keys[g])
        pi = np.empty(n_pop)
        for p in range(n_pop):
            pi[p] = prior[p] / prior_total
        weights = np.empty(n_pop)
        counts = np.zeros(n_pop)
        for sweep in range(n_sweeps):
            counts[:] = 0.0
            keep = sweep >= burn_in
            for i in range(start, stop):
                total = 0.0
                for p in range(n_pop):
                    weights[p] = pi[p] * likelihood[i, p]
                    total += weights[p]
                target = uniform(state) * total
                running = 0.0
                chosen = n_pop - 1
                for p in range(n_pop):
                    running += weights[p]
                    if running > target:
                        chosen = p
                        break
                counts[chosen] += 1.0
                if keep:
                    for p in range(n_pop):
                        membership[i, p] += weights[p] / total
            total = 0.0
            for p in range(n_pop):
                pi[p] = gamma(state, prior[p] + counts[p])
                total += pi[p]
            for p in range(n_pop):
                pi[p] /= total
                trace[g, sweep, p] = pi[p]
        kept = max(n_sweeps - burn_in, 1)
        for i in range(start, stop):
            for p in range(n_pop):
                membership[i, p] /= kept
    return trace, membership
