"""Numba kernels for mixture proportions (the conditional GSI model of rubias).

``likelihood`` float64 (n, P) holds each sample's genotype likelihood under each population,
scaled per row (divided by the row maximum) so that it neither under- nor overflows; the scale
cancels in every quantity computed here. Rows are sorted by group (seizure, mixture sample);
``group_starts`` int64 (G + 1,) gives the first row of each group and the end. Each group is an
independent mixture, and one ``prange`` iteration handles one group, writing only its own
slices of the outputs.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel
from matching._rng_kernels import gamma, state_for, uniform

LOG2 = math.log(2.0)


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


@kernel
def run_chain(likelihood, start, stop, prior, pi, state, first_sweep, n_run, burn_in, trace,
              membership_sums):
    """``n_run`` Gibbs sweeps of one group's chain (rows ``start:stop``), in place.

    Each sweep draws every sample's population given the proportions ``pi``, then ``pi`` from
    Dirichlet(``prior`` + counts). ``pi`` (float64, P) and ``state`` (uint64[1]) hold the chain
    and are advanced in place, so a chain run in pieces equals one run in one go. Sweeps are
    numbered from ``first_sweep``; from ``burn_in`` on, every sample's membership probabilities
    are added to ``membership_sums`` (n, P). ``trace`` (n_run, P) receives ``pi`` after each
    sweep.
    """
    n_pop = likelihood.shape[1]
    weights = np.empty(n_pop)
    counts = np.zeros(n_pop)
    for step in range(n_run):
        counts[:] = 0.0
        keep = first_sweep + step >= burn_in
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
                    membership_sums[i, p] += weights[p] / total
        total = 0.0
        for p in range(n_pop):
            pi[p] = gamma(state, prior[p] + counts[p])
            total += pi[p]
        for p in range(n_pop):
            pi[p] /= total
            trace[step, p] = pi[p]


@parallel_kernel
def gibbs_mixtures(likelihood, group_starts, prior, pi, states, first_sweep, n_run, burn_in,
                   membership_sums):
    """Advance every group's Gibbs chain by ``n_run`` sweeps (see :func:`run_chain`).

    ``pi`` float64 (G, P) and ``states`` uint64 (G,) hold each group's chain and are advanced
    in place; group ``g`` draws only from ``states[g]``, so its chain does not depend on the
    others. ``membership_sums`` float64 (n, P) accumulates the membership of sweeps from
    ``burn_in`` on.

    Returns
    -------
    trace : float64 (G, n_run, P)
        The proportions after each of the sweeps run.
    """
    n_groups = group_starts.shape[0] - 1
    n_pop = likelihood.shape[1]
    trace = np.empty((n_groups, n_run, n_pop))
    for g in numba.prange(n_groups):
        run_chain(likelihood, group_starts[g], group_starts[g + 1], prior, pi[g],
                  states[g:g + 1], first_sweep, n_run, burn_in, trace[g], membership_sums)
    return trace


@parallel_kernel
def bootstrap_mixtures(reference_likelihood, pool, pool_starts, proportions, sizes, prior,
                       n_sweeps, burn_in, base_seed, group_keys, n_iterations):
    """Posterior mean proportions of mixtures simulated from the reference (rubias's
    parametric bootstrap, ``gprob_sim_ind``).

    Bootstrap ``b`` of group ``g`` draws ``sizes[g]`` populations from ``proportions[g]``,
    takes for each a random reference animal of that population (its row of
    ``reference_likelihood``: the animal scored leave-one-out, missing data as it was), and
    runs the Gibbs chain on them from equal proportions. ``pool`` lists reference rows by
    population, population ``p`` at ``pool[pool_starts[p]:pool_starts[p + 1]]``.

    Returns
    -------
    means : float64 (G, n_iterations, P)
        Posterior mean proportions of every bootstrap mixture (sweeps from ``burn_in`` on).
    """
    n_groups = proportions.shape[0]
    n_pop = proportions.shape[1]
    means = np.zeros((n_groups, n_iterations, n_pop))
    for task in numba.prange(n_groups * n_iterations):
        g = task // n_iterations
        b = task % n_iterations
        state = state_for(base_seed, group_keys[g] * n_iterations + b)
        size = sizes[g]
        rows = np.empty((size, n_pop))
        cumulative = np.cumsum(proportions[g])
        for i in range(size):
            target = uniform(state) * cumulative[n_pop - 1]
            p = n_pop - 1
            for q in range(n_pop):
                if cumulative[q] > target:
                    p = q
                    break
            available = pool_starts[p + 1] - pool_starts[p]
            k = min(int(uniform(state) * available), available - 1)
            rows[i] = reference_likelihood[pool[pool_starts[p] + k]]
        pi = np.full(n_pop, 1.0 / n_pop)
        trace = np.empty((n_sweeps, n_pop))
        sums = np.zeros((size, n_pop))
        run_chain(rows, 0, size, prior, pi, state, 0, n_sweeps, burn_in, trace, sums)
        for sweep in range(burn_in, n_sweeps):
            for p in range(n_pop):
                means[g, b, p] += trace[sweep, p]
        for p in range(n_pop):
            means[g, b, p] /= n_sweeps - burn_in
    return means


@kernel
def _log_predictive(a, b, x_a, x_b, total):
    """``log P(a, b)`` of the Rannala & Mountain predictive from pseudo-counts ``x`` and the
    locus total ``total`` (copies, before the prior)."""
    norm = math.log((total + 1.0) * (total + 2.0))
    if a == b:
        return math.log(x_a) + math.log(x_a + 1.0) - norm
    return LOG2 + math.log(x_a) + math.log(x_b) - norm


@parallel_kernel
def baseline_resampling_mixtures(codes, group_starts, counts, totals, allele_prior, known,
                                 prior, pi, states, n_sweeps, burn_in, membership_sums):
    """Gibbs sampler of the fully Bayesian mixture model (rubias's method ``"BR"``).

    The populations' allele frequencies are not fixed by the reference: each sweep scores
    every sample under every population with the predictive of the reference counts plus the
    alleles of the group's other samples as the previous sweep allocated them (the sample's
    own alleles are left out), draws every sample's population from those likelihoods and
    ``pi``, then ``pi`` from Dirichlet(``prior`` + counts). Samples with ``known[i] >= 0`` are
    allocated to that population every sweep. The first sweep uses the reference counts alone.

    ``codes`` int16 (n, L, 2), rows sorted by group; ``counts`` float64 (L, W, P) and
    ``totals`` (L, P) the reference's (see :mod:`matching._assignment_kernels`);
    ``allele_prior`` float64 (L,); ``pi`` (G, P) and ``states`` (G,) hold the chains and are
    advanced in place; ``membership_sums`` (n, P) accumulates sweeps from ``burn_in`` on.

    Returns
    -------
    trace : float64 (G, n_sweeps, P)
    """
    n_groups = group_starts.shape[0] - 1
    n_loci, width, n_pop = counts.shape
    trace = np.empty((n_groups, n_sweeps, n_pop))
    for g in numba.prange(n_groups):
        start, stop = group_starts[g], group_starts[g + 1]
        state = states[g:g + 1]
        added = np.zeros((n_loci, width, n_pop))
        added_total = np.zeros((n_loci, n_pop))
        allocation = np.full(stop - start, -1, dtype=np.int64)
        chosen_now = np.empty(stop - start, dtype=np.int64)
        log_like = np.empty(n_pop)
        weights = np.empty(n_pop)
        tally = np.zeros(n_pop)
        log_x = np.empty((n_loci, width, n_pop))
        log_x1 = np.empty((n_loci, width, n_pop))
        log_norm = np.empty((n_loci, n_pop))
        for sweep in range(n_sweeps):
            keep = sweep >= burn_in
            tally[:] = 0.0
            # The predictive's logs under the current allocation, looked up for every sample;
            # only the sample's own population needs its alleles taken out.
            for locus in range(n_loci):
                for p in range(n_pop):
                    total = totals[locus, p] + added_total[locus, p]
                    log_norm[locus, p] = math.log((total + 1.0) * (total + 2.0))
                    for a in range(width):
                        x = counts[locus, a, p] + added[locus, a, p] + allele_prior[locus]
                        log_x[locus, a, p] = math.log(x)
                        log_x1[locus, a, p] = math.log(x + 1.0)
            for i in range(start, stop):
                own = allocation[i - start]
                log_like[:] = 0.0
                for locus in range(n_loci):
                    a = codes[i, locus, 0]
                    if a < 0:
                        continue
                    b = codes[i, locus, 1]
                    for p in range(n_pop):
                        if p == own:
                            x_a = counts[locus, a, p] + added[locus, a, p] + allele_prior[locus]
                            x_b = counts[locus, b, p] + added[locus, b, p] + allele_prior[locus]
                            if a == b:
                                x_a -= 2.0
                            else:
                                x_a -= 1.0
                                x_b -= 1.0
                            total = totals[locus, p] + added_total[locus, p] - 2.0
                            log_like[p] += _log_predictive(a, b, x_a, x_b, total)
                        elif a == b:
                            log_like[p] += log_x[locus, a, p] + log_x1[locus, a, p] \
                                - log_norm[locus, p]
                        else:
                            log_like[p] += LOG2 + log_x[locus, a, p] + log_x[locus, b, p] \
                                - log_norm[locus, p]
                top = log_like.max()
                total_weight = 0.0
                for p in range(n_pop):
                    if known[i] >= 0:
                        weights[p] = 1.0 if p == known[i] else 0.0
                    else:
                        weights[p] = pi[g, p] * math.exp(log_like[p] - top)
                    total_weight += weights[p]
                target = uniform(state) * total_weight
                running = 0.0
                chosen = n_pop - 1
                for p in range(n_pop):
                    running += weights[p]
                    if running > target:
                        chosen = p
                        break
                chosen_now[i - start] = chosen
                tally[chosen] += 1.0
                if keep:
                    for p in range(n_pop):
                        membership_sums[i, p] += weights[p] / total_weight
            total_weight = 0.0
            for p in range(n_pop):
                pi[g, p] = gamma(state, prior[p] + tally[p])
                total_weight += pi[g, p]
            for p in range(n_pop):
                pi[g, p] /= total_weight
                trace[g, sweep, p] = pi[g, p]
            added[:] = 0.0
            added_total[:] = 0.0
            for i in range(start, stop):
                c = chosen_now[i - start]
                allocation[i - start] = c
                for locus in range(n_loci):
                    a = codes[i, locus, 0]
                    if a < 0:
                        continue
                    added[locus, a, c] += 1.0
                    added[locus, codes[i, locus, 1], c] += 1.0
                    added_total[locus, c] += 2.0
    return trace
