"""Slow implementations of the assignment formulas in plain Python, and small test data.

Written from DESIGN 5.1 and 5.5 without the package's counting or kernels, so the tests compare
two independent computations.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from dnatrack.genotypes import GenotypeTable
from tests.simulated_populations import SimulatedPopulations


# ---------------------------------------------------------------------- slow implementation
def slow_counts(reference: GenotypeTable):
    """Allele counts per (population, locus) and A per locus, by plain counting."""
    counts: dict[tuple[str, str], Counter] = {}
    seen: dict[str, set] = {locus: set() for locus in reference.loci}
    alleles = reference.alleles.tolist()
    for i in range(reference.n_profiles):
        pop = reference.population[i]
        for j, locus in enumerate(reference.loci):
            a, b = alleles[i][j]
            counts.setdefault((pop, locus), Counter())
            if a < 0:
                continue
            counts[(pop, locus)][a] += 1
            counts[(pop, locus)][b] += 1
            seen[locus].update((a, b))
    return counts, {locus: len(values) for locus, values in seen.items()}


def slow_genotype_probability(counter: Counter, n_alleles: int, a: int, b: int) -> float:
    """Rannala & Mountain posterior predictive, straight from the formula."""
    prior = 1.0 / n_alleles
    n = sum(counter.values())
    x_a = counter.get(a, 0) + prior
    x_b = counter.get(b, 0) + prior
    if a == b:
        return x_a * (x_a + 1) / ((n + 1) * (n + 2))
    return 2 * x_a * x_b / ((n + 1) * (n + 2))


def slow_log_likelihoods(reference, samples, leave_one_out=False):
    counts, n_alleles = slow_counts(reference)
    populations = reference.unique_populations()
    out = np.zeros((samples.n_profiles, len(populations)))
    for i in range(samples.n_profiles):
        for k, pop in enumerate(populations):
            total = 0.0
            for locus in reference.loci:
                if locus not in samples.loci or n_alleles[locus] == 0:
                    continue
                a, b = (int(v) for v in samples.alleles[i, samples.locus_index(locus)])
                if a < 0:
                    continue
                counter = Counter(counts.get((pop, locus), Counter()))
                if leave_one_out and samples.population[i] == pop:
                    counter[a] -= 1
                    counter[b] -= 1
                total += math.log(slow_genotype_probability(counter, n_alleles[locus], a, b))
            out[i, k] = total
    return out


def slow_posterior(log_likelihood_row):
    top = max(log_likelihood_row)
    weights = [math.exp(v - top) for v in log_likelihood_row]
    return [w / sum(weights) for w in weights]


def slow_genotype_distribution(counter: Counter, n_alleles: int, alleles: list[int]):
    """Every genotype of the reference alleles with its predictive probability."""
    out = []
    for i, a in enumerate(alleles):
        for b in alleles[i:]:
            out.append(((a, b), slow_genotype_probability(counter, n_alleles, a, b)))
    return out


def slow_z_score(reference, sample_alleles, sample_loci, population, leave_one_out):
    """z-score of one sample under ``population`` by enumerating every genotype per locus."""
    counts, n_alleles = slow_counts(reference)
    observed = mean = variance = 0.0
    for locus in reference.loci:
        if locus not in sample_loci or n_alleles[locus] == 0:
            continue
        a, b = sample_alleles[sample_loci.index(locus)]
        if a < 0:
            continue
        counter = Counter(counts[(population, locus)])
        if leave_one_out:
            counter[a] -= 1
            counter[b] -= 1
        alleles = sorted(reference.alleles_at(locus).tolist())
        dist = slow_genotype_distribution(counter, n_alleles[locus], alleles)
        m = sum(p * math.log(p) for _, p in dist)
        v = sum(p * math.log(p) ** 2 for _, p in dist) - m * m
        observed += math.log(slow_genotype_probability(counter, n_alleles[locus], a, b))
        mean += m
        variance += v
    return (observed - mean) / math.sqrt(variance)


def slow_rubias_z_scores(reference: GenotypeTable, samples: GenotypeTable, populations,
                         leave_one_out: bool):
    """rubias's z-score of each sample under ``populations[i]``, from its definition.

    rubias (R/self_assign.R, R/per_locus_means_and_vars.R, src/rcpp_per_locus_logls.cpp,
    rcpp_indiv_specific_logl_means_and_vars): every reference animal's log-likelihood at each
    locus under its own collection, leave-one-out; per collection and locus the mean and the
    ``var()`` (n - 1) of those, a value within sqrt(machine epsilon) of zero taken as missing,
    NaN results set to zero; a sample's expected mean and variance are their sums over the
    loci it has typed. The observed log-likelihood is the sample's own (leave-one-out against
    its own collection when ``leave_one_out``).
    """
    counts, n_alleles = slow_counts(reference)
    per_locus: dict[tuple[str, str], list[float]] = {}
    reference_alleles = reference.alleles.tolist()
    for i in range(reference.n_profiles):
        population = reference.population[i]
        for j, locus in enumerate(reference.loci):
            a, b = reference_alleles[i][j]
            if a < 0 or b < 0:
                continue
            counter = Counter(counts[(population, locus)])
            counter[a] -= 1
            counter[b] -= 1
            value = math.log(slow_genotype_probability(counter, n_alleles[locus], a, b))
            if abs(value) >= math.sqrt(np.finfo(float).eps):
                per_locus.setdefault((population, locus), []).append(value)

    def mean(values):
        return sum(values) / len(values) if values else 0.0

    def variance(values):
        if len(values) < 2:
            return 0.0
        centre = mean(values)
        return sum((v - centre) ** 2 for v in values) / (len(values) - 1)

    column = {locus: j for j, locus in enumerate(samples.loci)}
    sample_alleles = samples.alleles.tolist()
    summaries = {key: (mean(values), variance(values)) for key, values in per_locus.items()}
    out = []
    for i in range(samples.n_profiles):
        population = populations[i]
        observed = expected_mean = expected_variance = 0.0
        for locus in reference.loci:
            if locus not in column or n_alleles[locus] == 0:
                continue
            a, b = sample_alleles[i][column[locus]]
            if a < 0 or b < 0:
                continue
            counter = Counter(counts.get((population, locus), Counter()))
            if leave_one_out and samples.population[i] == population:
                counter[a] -= 1
                counter[b] -= 1
            observed += math.log(slow_genotype_probability(counter, n_alleles[locus], a, b))
            locus_mean, locus_variance = summaries.get((population, locus), (0.0, 0.0))
            expected_mean += locus_mean
            expected_variance += locus_variance
        out.append((observed - expected_mean) / math.sqrt(expected_variance)
                   if expected_variance > 0 else math.nan)
    return np.array(out)


def slow_leave_one_out_pools(reference: GenotypeTable):
    """Each reference animal's leave-one-out log-likelihood at each typed locus, against its
    own population without its two copies, pooled by ``(locus, population)`` in row order.

    Returns ``pools`` {(locus, population): [log-likelihood, …]} and ``slots``
    {(row, locus): position of the animal in its pool}.
    """
    counts, n_alleles = slow_counts(reference)
    pools: dict[tuple[str, str], list[float]] = {}
    slots: dict[tuple[int, str], int] = {}
    for i in range(reference.n_profiles):
        population = reference.population[i]
        for j, locus in enumerate(reference.loci):
            a, b = (int(v) for v in reference.alleles[i, j])
            if a < 0 or n_alleles[locus] == 0:
                continue
            counter = Counter(counts[(population, locus)])
            counter[a] -= 1
            counter[b] -= 1
            pool = pools.setdefault((locus, population), [])
            slots[(i, locus)] = len(pool)
            pool.append(math.log(slow_genotype_probability(counter, n_alleles[locus], a, b)))
    return pools, slots


# ---------------------------------------------------------------------- statistics
def binomial_bounds(n: int, p: float, tail: float) -> tuple[int, int]:
    """``(low, high)`` for ``X ~ Binomial(n, p)``: ``P(X < low)`` and ``P(X > high)`` are each
    at most ``tail`` (from the exact pmf), and neither bound can move inwards."""
    log_pmf = [math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
               + k * math.log(p) + (n - k) * math.log1p(-p) for k in range(n + 1)]
    pmf = [math.exp(v) for v in log_pmf]
    low, below = 0, 0.0
    while below + pmf[low] <= tail:
        below += pmf[low]
        low += 1
    high, above = n, 0.0
    while above + pmf[high] <= tail:
        above += pmf[high]
        high -= 1
    return low, high


# ---------------------------------------------------------------------- data
def reference_and_queries(n_loci, n_alleles, missing, seed, n_pop=4, concentration=1.0):
    sim = SimulatedPopulations.random(n_pop, n_loci, n_alleles, concentration, seed=seed,
                                      populations_per_unit=2)
    rng = np.random.default_rng(seed + 100)
    reference = sim.reference([12, 7, 15, 3][:n_pop] + [9] * max(0, n_pop - 4), rng, missing)
    queries = GenotypeTable.concat([sim.sample(k, 5, rng, missing, prefix=f"q{k}-")
                                    for k in range(n_pop)])
    return reference, queries
