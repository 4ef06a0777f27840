"""Numba kernels for geographic assignment: leave-one-out scoring against smoothed surfaces,
weighted centres of sites on the sphere, and the posterior tail mass of a cell (for coverage).

Grid cells play the part of populations in :mod:`matching._assignment_kernels`, with
``cell_counts`` float64 (L, W, C) the kernel-weighted sum of the sites' allele counts and
``cell_totals`` float64 (L, C) their totals. A reference animal of site ``s`` contributed
``site_weights[s, c]`` times its own alleles to cell ``c``; scoring it leave-one-out removes that
share from every cell, so unlike population assignment every column needs its own correction.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel

LOG2 = math.log(2.0)


@parallel_kernel
def leave_one_out_cell_log_likelihoods(codes, cell_counts, cell_totals, prior, site_weights,
                                       site):
    """Log-likelihood of reference animals under every cell, their own share removed.

    Parameters
    ----------
    codes : int16 (n, L, 2)
        Allele indices of reference animals (all alleles are reference alleles).
    cell_counts : float64 (L, W, C)
    cell_totals : float64 (L, C)
    prior : float64 (L,)
        ``1/A`` per locus.
    site_weights : float64 (S, C)
        Kernel weight of each site's counts in each cell.
    site : int64 (n,)
        Site of each animal.

    Returns
    -------
    float64 (n, C)
    """
    n, n_loci, _ = codes.shape
    n_cells = cell_totals.shape[1]
    out = np.zeros((n, n_cells))
    for i in numba.prange(n):
        row = out[i]
        weights = site_weights[site[i]]
        for locus in range(n_loci):
            a = codes[i, locus, 0]
            if a < 0:
                continue
            b = codes[i, locus, 1]
            for c in range(n_cells):
                w = weights[c]
                total = cell_totals[locus, c] - 2.0 * w
                norm = math.log((total + 1.0) * (total + 2.0))
                if a == b:
                    x = cell_counts[locus, a, c] - 2.0 * w + prior[locus]
                    row[c] += math.log(x) + math.log(x + 1.0) - norm
                else:
                    x_a = cell_counts[locus, a, c] - w + prior[locus]
                    x_b = cell_counts[locus, b, c] - w + prior[locus]
                    row[c] += LOG2 + math.log(x_a) + math.log(x_b) - norm
    return out


@kernel
def weighted_centres(weights, site_xyz, power, iterations):
    """Point minimising ``Σ_s w_s d_s^q`` on the sphere for each row of site weights.

    Iteratively reweighted averaging of the sites' unit vectors (Weiszfeld's algorithm for
    ``q = 1``): each step averages with weights ``w_s d_s^(q-2)``, ``d_s`` the angle from the
    current point to site ``s``, and projects back onto the sphere. ``q = 2`` is the
    weighted centroid (one step). The iteration starts from the weighted centroid and stops
    once a step moves the point by less than 1e-9 (about 6 m); a site closer than 1e-9 rad
    counts at that distance. Weiszfeld creeps only slowly towards an optimum that sits on a
    site, so the result is the iterate or the best site, whichever has the lower objective.
    Serial: one call is milliseconds of work, less than starting the threads costs, and the
    cross-validation makes many calls.

    Parameters
    ----------
    weights : float64 (n, S)
        Non-negative weights of the sites, per point (need not sum to one).
    site_xyz : float64 (S, 3)
        Unit vectors of the sites.
    power : float
        ``q`` in [1, 2].
    iterations : int
        Most reweighting steps.

    Returns
    -------
    float64 (n, 3): unit vectors of the centres.
    """
    n, n_sites = weights.shape
    out = np.zeros((n, 3))
    for i in range(n):
        x = 0.0
        y = 0.0
        z = 0.0
        for s in range(n_sites):
            x += weights[i, s] * site_xyz[s, 0]
            y += weights[i, s] * site_xyz[s, 1]
            z += weights[i, s] * site_xyz[s, 2]
        norm = math.sqrt(x * x + y * y + z * z)
        x, y, z = x / norm, y / norm, z / norm
        if power != 2.0:
            for _ in range(iterations):
                nx = 0.0
                ny = 0.0
                nz = 0.0
                for s in range(n_sites):
                    if weights[i, s] == 0.0:
                        continue
                    w = weights[i, s] * max(_angle(x, y, z, site_xyz[s]), 1e-9) ** (power - 2.0)
                    nx += w * site_xyz[s, 0]
                    ny += w * site_xyz[s, 1]
                    nz += w * site_xyz[s, 2]
                norm = math.sqrt(nx * nx + ny * ny + nz * nz)
                nx, ny, nz = nx / norm, ny / norm, nz / norm
                step = abs(nx - x) + abs(ny - y) + abs(nz - z)
                x, y, z = nx, ny, nz
                if step < 1e-9:
                    break
            best = _weighted_power_sum(weights[i], site_xyz, power, x, y, z)
            for t in range(n_sites):
                if weights[i, t] == 0.0:
                    continue
                value = _weighted_power_sum(weights[i], site_xyz, power, site_xyz[t, 0],
                                            site_xyz[t, 1], site_xyz[t, 2])
                if value < best:
                    best = value
                    x, y, z = site_xyz[t, 0], site_xyz[t, 1], site_xyz[t, 2]
        out[i, 0] = x
        out[i, 1] = y
        out[i, 2] = z
    return out


@kernel
def _angle(x, y, z, site):
    cosine = x * site[0] + y * site[1] + z * site[2]
    return math.acos(min(1.0, max(-1.0, cosine)))


@kernel
def _weighted_power_sum(weights, site_xyz, power, x, y, z):
    total = 0.0
    for s in range(len(weights)):
        if weights[s] > 0.0:
            total += weights[s] * _angle(x, y, z, site_xyz[s]) ** power
    return total


@parallel_kernel
def tail_mass_cells(weights, cell_kernel, log_area, cell):
    """Posterior mass of the cells no more probable than a given cell, per surface.

    Each surface is the mixture ``Σ_s w_s K[s, c]`` times the cell's area, normalised. A cell
    lies in the highest-posterior region at level ``q`` when the cells more probable than it
    hold less than ``q``, that is when this tail mass exceeds ``1 - q``; for the cell of an
    animal's true site it decides which regions hold it. Summing the tail (not one minus the
    mass above) keeps its precision when it is tiny.

    Parameters
    ----------
    weights : float64 (n, S)
        Site weights of each surface.
    cell_kernel : float64 (S, C)
        Kernel of each site at each in-range cell.
    log_area : float64 (C,)
        Log of each cell's area (its prior).
    cell : int64 (n,)
        The cell to test, per surface.

    Returns
    -------
    float64 (n,) in [0, 1]; 0 where the cell has density zero.
    """
    n, n_sites = weights.shape
    n_cells = cell_kernel.shape[1]
    out = np.zeros(n)
    for i in numba.prange(n):
        density = np.zeros(n_cells)
        for s in range(n_sites):
            w = weights[i, s]
            if w == 0.0:
                continue
            for c in range(n_cells):
                density[c] += w * cell_kernel[s, c]
        total = 0.0
        for c in range(n_cells):
            density[c] *= math.exp(log_area[c])
            total += density[c]
        target = density[cell[i]]
        if target == 0.0:
            continue
        tail = 0.0
        for c in range(n_cells):
            if density[c] <= target:
                tail += density[c]
        out[i] = tail / total
    return out
