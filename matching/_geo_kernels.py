"""Numba kernel for geographic assignment: leave-one-out scoring against smoothed surfaces.

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

from matching._numba import parallel_kernel

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
