"""Numba kernels for population assignment (DESIGN 5.1, 5.5).

Layout shared by every kernel here (``L`` loci, ``W`` allele slots, ``P`` populations):

``codes`` int16 (n, L, 2)
    Dense allele indices, smaller first, -1 where the locus is untyped.
``counts`` float64 (L, W, P)
    Allele copies per locus, allele and population (populations last, so the inner loops over
    populations read contiguous memory). Float so that smoothed, fractional counts (the
    geographic surfaces) use the same kernels.
``totals`` float64 (L, P)
    Allele copies typed per locus and population (the sum of ``counts`` over alleles).
``prior`` float64 (L,)
    The Rannala & Mountain pseudo-count ``1/A`` per allele.
``n_alleles`` int64 (L,)
    ``A``: alleles at each locus in the reference; slots ``0..A-1`` of ``counts``.

The Rannala & Mountain (1997) posterior predictive of a genotype, with ``x_a = n_a + 1/A``:
``P(aa) = x_a (x_a + 1) / ((n + 1)(n + 2))`` and ``P(ab) = 2 x_a x_b / ((n + 1)(n + 2))``.
:func:`log_tables` precomputes ``log x``, ``log(x + 1)`` and ``log((n + 1)(n + 2))`` so that a
sample's log-likelihood is a sum of lookups. Leave-one-out (a reference animal scored against
its own population) takes the animal's alleles out of that one population's counts.

The exclusion test's null scores are resampled from the reference animals' own leave-one-out
scores, kept per locus and population in flat pools (:func:`leave_one_out_pools`).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel
from matching._rng_kernels import state_for, uniform

#: Simulated animals drawn at a time in a leave-one-out exclusion test, between checks of
#: whether the flag is already decided; 250 settle an animal with p-value 0.5 at alpha 0.01
#: in one block.
EXCLUSION_BLOCK = 250

LOG2 = math.log(2.0)


@kernel
def log_tables(counts, totals, prior):
    """Lookup tables of the posterior predictive.

    Returns
    -------
    log_x, log_x1 : float64 (L, W, P)
        ``log(n_a + 1/A)`` and ``log(n_a + 1/A + 1)``.
    log_norm : float64 (L, P)
        ``log((n + 1)(n + 2))``.
    """
    n_loci, width, n_pop = counts.shape
    log_x = np.empty((n_loci, width, n_pop))
    log_x1 = np.empty((n_loci, width, n_pop))
    log_norm = np.empty((n_loci, n_pop))
    for locus in range(n_loci):
        for p in range(n_pop):
            log_norm[locus, p] = math.log((totals[locus, p] + 1.0) * (totals[locus, p] + 2.0))
        for a in range(width):
            for p in range(n_pop):
                x = counts[locus, a, p] + prior[locus]
                log_x[locus, a, p] = math.log(x)
                log_x1[locus, a, p] = math.log(x + 1.0)
    return log_x, log_x1, log_norm


@kernel
def leave_one_out_term(a, b, counts_a, counts_b, total, prior):
    """``log P(g)`` of genotype (a, b) with its own two copies removed from the counts."""
    norm = math.log((total - 1.0) * total)  # (n' + 1)(n' + 2) with n' = n - 2
    if a == b:
        x = counts_a - 2.0 + prior
        return math.log(x) + math.log(x + 1.0) - norm
    return LOG2 + math.log(counts_a - 1.0 + prior) + math.log(counts_b - 1.0 + prior) - norm


@parallel_kernel
def population_log_likelihoods(codes, log_x, log_x1, log_norm, counts, totals, prior, own):
    """Natural log-likelihood of every sample under every population.

    Parameters
    ----------
    codes : int16 (n, L, 2)
    log_x, log_x1, log_norm
        From :func:`log_tables`.
    counts, totals, prior
        The counts the tables were made from (needed for leave-one-out).
    own : int64 (n,)
        Population whose counts include the sample (scored leave-one-out), or -1.

    Returns
    -------
    float64 (n, P); untyped loci contribute nothing.
    """
    n, n_loci, _ = codes.shape
    n_pop = log_norm.shape[1]
    out = np.zeros((n, n_pop))
    for i in numba.prange(n):
        row = out[i]
        q = own[i]
        own_total = 0.0
        for locus in range(n_loci):
            a = codes[i, locus, 0]
            if a < 0:
                continue
            b = codes[i, locus, 1]
            if a == b:
                for p in range(n_pop):
                    row[p] += log_x[locus, a, p] + log_x1[locus, a, p] - log_norm[locus, p]
            else:
                for p in range(n_pop):
                    row[p] += (
                        LOG2 + log_x[locus, a, p] + log_x[locus, b, p] - log_norm[locus, p]
                    )
            if q >= 0:
                own_total += leave_one_out_term(
                    a, b, counts[locus, a, q], counts[locus, b, q], totals[locus, q], prior[locus]
                )
        if q >= 0:
            row[q] = own_total
    return out


@kernel
def genotype_log_probabilities(x, n_alleles, total):
    """``log P(g)`` of every genotype of one locus, in the order (0,0), (0,1)…(0,A-1), (1,1)…

    ``x`` (float64, ≥ A entries) holds the pseudo-counts ``n_a + 1/A``; ``total`` is ``n``.
    """
    norm = math.log((total + 1.0) * (total + 2.0))
    log_x = np.empty(n_alleles)
    for a in range(n_alleles):
        log_x[a] = math.log(x[a])
    out = np.empty(n_alleles * (n_alleles + 1) // 2)
    k = 0
    for a in range(n_alleles):
        out[k] = log_x[a] + math.log(x[a] + 1.0) - norm
        k += 1
        for b in range(a + 1, n_alleles):
            out[k] = LOG2 + log_x[a] + log_x[b] - norm
            k += 1
    return out


@kernel
def locus_pseudo_counts(counts, totals, prior, n_alleles, locus, p, a, b):
    """Pseudo-counts ``x`` (float64, A) and total ``n`` at one locus of population ``p``.

    With ``a >= 0`` the genotype (a, b) is taken out first (leave-one-out).
    """
    n_a = n_alleles[locus]
    x = np.empty(n_a)
    for k in range(n_a):
        x[k] = counts[locus, k, p] + prior[locus]
    total = totals[locus, p]
    if a >= 0:
        x[a] -= 1.0
        x[b] -= 1.0
        total -= 2.0
    return x, total


@kernel
def log_moments(log_p):
    """Mean and variance of ``log P(g)`` when g is drawn with probabilities ``exp(log_p)``."""
    mean = 0.0
    second = 0.0
    for k in range(log_p.shape[0]):
        prob = math.exp(log_p[k])
        mean += prob * log_p[k]
        second += prob * log_p[k] * log_p[k]
    return mean, max(second - mean * mean, 0.0)


@kernel
def locus_log_moments(counts, totals, prior, n_alleles):
    """Exact mean and variance of a locus's log-likelihood under each population.

    Returns
    -------
    mean, variance : float64 (L, P)
    """
    n_loci, _, n_pop = counts.shape
    mean = np.zeros((n_loci, n_pop))
    variance = np.zeros((n_loci, n_pop))
    for locus in range(n_loci):
        if n_alleles[locus] == 0:
            continue
        for p in range(n_pop):
            x, total = locus_pseudo_counts(counts, totals, prior, n_alleles, locus, p, -1, -1)
            mean[locus, p], variance[locus, p] = log_moments(
                genotype_log_probabilities(x, n_alleles[locus], total)
            )
    return mean, variance


@parallel_kernel
def sample_log_moments(
    codes, population, own, locus_mean, locus_variance, counts, totals, prior, n_alleles
):
    """Expected mean and variance of each sample's log-likelihood under ``population[i]``.

    Sums the per-locus moments over exactly the loci the sample has typed. Where ``population
    [i] == own[i]`` the sample was scored leave-one-out, so the moments are those of the
    predictive with its alleles removed.

    Returns
    -------
    mean, variance : float64 (n,)
    """
    n, n_loci, _ = codes.shape
    mean = np.zeros(n)
    variance = np.zeros(n)
    for i in numba.prange(n):
        p = population[i]
        loo = p == own[i]
        for locus in range(n_loci):
            a = codes[i, locus, 0]
            if a < 0:
                continue
            if loo:
                x, total = locus_pseudo_counts(
                    counts, totals, prior, n_alleles, locus, p, a, codes[i, locus, 1]
                )
                m, v = log_moments(genotype_log_probabilities(x, n_alleles[locus], total))
            else:
                m = locus_mean[locus, p]
                v = locus_variance[locus, p]
            mean[i] += m
            variance[i] += v
    return mean, variance


@kernel
def draw_index(cumulative, u):
    """First index whose cumulative probability exceeds ``u`` (binary search)."""
    lo = 0
    hi = cumulative.shape[0] - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if cumulative[mid] > u:
            hi = mid
        else:
            lo = mid + 1
    return lo


@kernel
def tie_limit(observed):
    """Observed log-likelihood plus a rounding allowance: simulated and observed scores are
    summed in different orders, and a simulated genotype equal to the observed one must count
    as "at most". Works on a float or an array."""
    return observed + 1e-9 * (1.0 + np.abs(observed))


@kernel
def genotype_cumulative(log_p):
    """Running sums of ``exp(log_p)`` (float64, same length) for drawing genotypes."""
    cumulative = np.empty(log_p.shape[0])
    running = 0.0
    for k in range(log_p.shape[0]):
        running += math.exp(log_p[k])
        cumulative[k] = running
    return cumulative


@kernel
def add_draws(simulated, log_p, cumulative, state):
    """Add the log-probability of one drawn genotype to every entry of ``simulated``."""
    total = cumulative[cumulative.shape[0] - 1]
    for s in range(simulated.shape[0]):
        simulated[s] += log_p[draw_index(cumulative, uniform(state) * total)]


@kernel
def leave_one_out_pools(codes, own, counts, totals, prior, n_pop):
    """Each reference animal's leave-one-out log-likelihood at each locus, pooled by population.

    These are the scores a new animal of the population gets: the animal is scored against its
    population's counts with its own two copies taken out. The exclusion test draws its null
    scores from these pools (see :func:`resample_population`).

    Parameters
    ----------
    codes : int16 (n, L, 2)
        The reference animals.
    own : int64 (n,)
        Each animal's population.
    counts, totals, prior
        See the module docstring.
    n_pop : int

    Returns
    -------
    values : float64 (n_typed,)
        The scores, grouped by locus and then population, animals in row order within a group.
    start, size : int64 (L, P)
        Where each (locus, population) pool begins in ``values`` and how many scores it holds.
    slot : int64 (n, L)
        Each animal's position within its own pool at each locus, -1 where untyped.
    """
    n, n_loci, _ = codes.shape
    size = np.zeros((n_loci, n_pop), dtype=np.int64)
    slot = np.full((n, n_loci), -1, dtype=np.int64)
    for locus in range(n_loci):
        for i in range(n):
            if codes[i, locus, 0] >= 0:
                slot[i, locus] = size[locus, own[i]]
                size[locus, own[i]] += 1
    start = np.zeros((n_loci, n_pop), dtype=np.int64)
    running = 0
    for locus in range(n_loci):
        for p in range(n_pop):
            start[locus, p] = running
            running += size[locus, p]
    values = np.empty(running)
    for i in range(n):
        q = own[i]
        for locus in range(n_loci):
            if slot[i, locus] < 0:
                continue
            a = codes[i, locus, 0]
            b = codes[i, locus, 1]
            values[start[locus, q] + slot[i, locus]] = leave_one_out_term(
                a, b, counts[locus, a, q], counts[locus, b, q], totals[locus, q], prior[locus]
            )
    return values, start, size, slot


@kernel
def pool_index(state, size, skip):
    """A uniform draw from positions ``0..size-1`` of a pool, leaving out ``skip`` (-1 for
    none); ``size`` counts the skipped position."""
    available = size - 1 if skip >= 0 else size
    k = min(int(uniform(state) * available), available - 1)
    if skip >= 0 and k >= skip:
        k += 1
    return k


@kernel
def resample_population(
    values, start, size, counts, totals, prior, n_alleles, p, n_simulations, seed
):
    """Null log-likelihoods of new animals of population ``p`` for the exclusion test.

    At every locus, each simulated animal takes the leave-one-out score of a reference animal of
    ``p`` drawn at random (independently across loci, as genotypes are under linkage
    equilibrium). Scores from the predictive itself would understate how poorly a new animal
    fits a small reference: its own alleles are not in the counts. At a locus where no animal
    of ``p`` is typed, genotypes are drawn from the predictive (there the prior alone). Draws
    come from random stream ``p`` of ``seed``, locus after locus.

    Returns
    -------
    float64 (L, n_simulations)
        Zero at loci without alleles.
    """
    n_loci = counts.shape[0]
    simulated = np.zeros((n_loci, n_simulations))
    state = state_for(seed, p)
    for locus in range(n_loci):
        if n_alleles[locus] == 0:
            continue
        if size[locus, p] > 0:
            pool = values[start[locus, p]:start[locus, p] + size[locus, p]]
            for s in range(n_simulations):
                simulated[locus, s] = pool[pool_index(state, size[locus, p], -1)]
        else:
            x, total = locus_pseudo_counts(counts, totals, prior, n_alleles, locus, p, -1, -1)
            log_p = genotype_log_probabilities(x, n_alleles[locus], total)
            add_draws(simulated[locus], log_p, genotype_cumulative(log_p), state)
    return simulated


@parallel_kernel
def shared_exclusion_p_values(simulated, typed, observed, decided_at):
    """Exclusion p-values of samples against one population's shared simulated animals.

    Each sample's null scores are the simulated animals' sums over the loci the sample has
    typed, locus by locus in order. They are counted in blocks of ``EXCLUSION_BLOCK``, and a
    sample stops after the block in which ``decided_at`` of them are at most its score (as
    :func:`leave_one_out_exclusion_p_values`); the p-value is ``(k + 1) / (m + 1)`` over the
    ``m`` counted.

    Parameters
    ----------
    simulated : float64 (n_simulations, L)
        Per-locus scores of the simulated animals (from :func:`resample_population`,
        transposed).
    typed : bool (n, L)
    observed : float64 (n,)
    decided_at : int

    Returns
    -------
    p_values : float64 (n,)
    drawn : int64 (n,)
    """
    n_simulations, n_loci = simulated.shape
    n = typed.shape[0]
    p_values = np.empty(n)
    drawn = np.empty(n, dtype=np.int64)
    for i in numba.prange(n):
        limit = tie_limit(observed[i])
        at_most = 0
        done = 0
        while done < n_simulations and at_most < decided_at:
            stop = min(done + EXCLUSION_BLOCK, n_simulations)
            for s in range(done, stop):
                total = 0.0
                for locus in range(n_loci):
                    if typed[i, locus]:
                        total += simulated[s, locus]
                if total <= limit:
                    at_most += 1
            done = stop
        p_values[i] = (at_most + 1.0) / (done + 1.0)
        drawn[i] = done
    return p_values, drawn


@parallel_kernel
def leave_one_out_exclusion_p_values(
    codes, observed, population, slots, values, start, size, counts, totals, prior, n_alleles,
    n_simulations, seed, stream_keys, decided_at,
):
    """Exclusion p-values of reference animals against their own population, left out.

    As :func:`resample_population`, but each animal's null scores are drawn, at exactly its
    typed loci, from its population's pools without its own score, so that the animal is
    scored against the others exactly as a new animal would be. Where the animal is the only
    one typed at a locus, genotypes come from the predictive without its alleles. Each animal
    draws from random stream ``stream_keys[i]`` of ``seed``, in blocks of
    ``EXCLUSION_BLOCK`` simulated animals (locus after locus within a block), and stops after
    the block in which ``decided_at`` simulated scores at most the observed one are reached:
    the full run could then only count more. The p-value is ``(k + 1) / (m + 1)`` with ``k``
    of the ``m`` simulated scores at most the observed one; a run that never stops early is
    the run of ``n_simulations`` whose first blocks every stopped run shares.

    Parameters
    ----------
    codes : int16 (n, L, 2)
    observed : float64 (n,)
        The animal's leave-one-out log-likelihood under its population.
    population : int64 (n,)
    slots : int64 (n, L)
        The animal's position in its population's pool at each locus
        (from :func:`leave_one_out_pools`).
    values, start, size
        The pools (from :func:`leave_one_out_pools`).
    counts, totals, prior, n_alleles
        See the module docstring.
    n_simulations : int
        Most simulated animals per animal.
    seed : uint64
    stream_keys : int64 (n,)
        Stream of each animal, fixed by its reference row so results do not depend on chunking.
    decided_at : int
        Count of simulated scores at most the observed one that stops the animal's draws
        (more than ``n_simulations`` never stops them).

    Returns
    -------
    p_values : float64 (n,)
    drawn : int64 (n,)
        Simulated animals drawn for each animal.
    """
    n, n_loci, _ = codes.shape
    p_values = np.empty(n)
    drawn = np.empty(n, dtype=np.int64)
    for i in numba.prange(n):
        p = population[i]
        state = state_for(seed, stream_keys[i])
        simulated = np.zeros(EXCLUSION_BLOCK)
        limit = tie_limit(observed[i])
        at_most = 0
        done = 0
        while done < n_simulations and at_most < decided_at:
            block = min(EXCLUSION_BLOCK, n_simulations - done)
            scores = simulated[:block]
            scores[:] = 0.0
            for locus in range(n_loci):
                a = codes[i, locus, 0]
                if a < 0 or n_alleles[locus] == 0:
                    continue
                if size[locus, p] > 1:
                    pool = values[start[locus, p]:start[locus, p] + size[locus, p]]
                    for s in range(block):
                        scores[s] += pool[pool_index(state, size[locus, p], slots[i, locus])]
                else:
                    x, total = locus_pseudo_counts(
                        counts, totals, prior, n_alleles, locus, p, a, codes[i, locus, 1]
                    )
                    log_p = genotype_log_probabilities(x, n_alleles[locus], total)
                    add_draws(scores, log_p, genotype_cumulative(log_p), state)
            for s in range(block):
                if scores[s] <= limit:
                    at_most += 1
            done += block
        p_values[i] = (at_most + 1.0) / (done + 1.0)
        drawn[i] = done
    return p_values, drawn
