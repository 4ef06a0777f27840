"""Numba kernels for the kinship search: sums of per-locus log10 LR lookups over many pairs.

Inputs are plain C-contiguous arrays (see :class:`matching.relationships.KinshipTables` for the
table layout). Work is split into row blocks; each ``prange`` iteration owns one block and writes
only into that block's slice of the output buffers, so threads never share a write.
"""

from __future__ import annotations

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel

# Columns of the target table visited together, so their genotype codes stay in cache while
# every row of a block is scored against them.
TILE = 2048

# Tables always have four relationship channels (unused ones padded with zeros and an
# unreachable cutoff), so the inner loop keeps four sums in registers.
N_CHANNELS = 4


@kernel
def popcount64(x):
    """Number of set bits of a uint64."""
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return np.int64((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@kernel
def typed_bits(codes, missing_codes):
    """Typed-locus bit masks: uint64 (n, ceil(n_loci / 64)), bit ``l % 64`` of word
    ``l // 64`` set when locus ``l`` is typed."""
    n, n_loci = codes.shape
    n_words = max(1, (n_loci + 63) // 64)
    bits = np.zeros((n, n_words), dtype=np.uint64)
    for i in range(n):
        for locus in range(n_loci):
            if codes[i, locus] != missing_codes[locus]:
                bits[i, locus // 64] |= np.uint64(1) << np.uint64(locus % 64)
    return bits


@kernel
def shared_typed(bits, i, other_bits, j):
    """Number of loci typed in both row ``i`` of ``bits`` and row ``j`` of ``other_bits``."""
    count = 0
    for word in range(bits.shape[1]):
        count += popcount64(bits[i, word] & other_bits[j, word])
    return count


@parallel_kernel
def scan_pairs(
    query_codes,
    target_columns,
    query_bits,
    target_bits,
    target_typed,
    values,
    offsets,
    strides,
    cutoffs,
    min_loci,
    block_starts,
    block_stops,
    triangular,
    capacity,
):
    """Pairs whose summed log10 LR reaches the cutoff of at least one relationship.

    Parameters
    ----------
    query_codes : int32 (n_query, n_loci)
        Genotype codes of the rows.
    target_columns : int32 (n_target, n_loci)
        Genotype codes of the columns times ``N_CHANNELS`` (their offset within a table
        row). With ``triangular`` rows and columns are the same profiles and only pairs
        ``j > i`` are scored.
    query_bits, target_bits : uint64 (n, n_words)
        Typed-locus bit masks (:func:`typed_bits`).
    target_typed : int64 (n_target,)
        Number of typed loci of each column.
    values, offsets, strides
        The flattened per-locus log10 LR tables, with ``N_CHANNELS`` relationships.
    cutoffs : float64 (4,)
        A pair is kept when ``log10 LR ≥ cutoffs[r]`` for some ``r``.
    min_loci : int
        Minimum number of loci typed in both profiles.
    block_starts, block_stops : int64 (n_blocks,)
        Row ranges, one per ``prange`` iteration.
    capacity : int
        Rows of output per block; a block finding more reports its full count and must be run
        again with a larger capacity.

    Returns
    -------
    rows, cols : int64 (n_blocks, capacity)
    lr : float64 (n_blocks, capacity, 4)
    loci : int32 (n_blocks, capacity)
    counts : int64 (n_blocks,)
        Pairs found per block (may exceed ``capacity``).
    """
    n_blocks = block_starts.shape[0]
    n_target, n_loci = target_columns.shape
    rows = np.empty((n_blocks, capacity), dtype=np.int64)
    cols = np.empty((n_blocks, capacity), dtype=np.int64)
    lr = np.empty((n_blocks, capacity, N_CHANNELS), dtype=np.float64)
    loci = np.empty((n_blocks, capacity), dtype=np.int32)
    counts = np.zeros(n_blocks, dtype=np.int64)
    c0, c1, c2, c3 = cutoffs[0], cutoffs[1], cutoffs[2], cutoffs[3]
    for block in numba.prange(n_blocks):
        start = block_starts[block]
        stop = block_stops[block]
        base = np.empty(n_loci, dtype=np.uint64)
        found = 0
        first_col = start + 1 if triangular else 0
        for tile_start in range(first_col, n_target, TILE):
            tile_stop = min(tile_start + TILE, n_target)
            for i in range(start, stop):
                j_start = max(tile_start, i + 1) if triangular else tile_start
                if j_start >= tile_stop:
                    continue
                for locus in range(n_loci):
                    base[locus] = np.uint64(
                        offsets[locus] + query_codes[i, locus] * strides[locus] * N_CHANNELS
                    )
                # Any column typed at this many loci shares at least min_loci with row i, so
                # the exact count is needed only below it (and for pairs kept).
                surely_enough = min_loci + n_loci - shared_typed(query_bits, i, query_bits, i)
                for j in range(j_start, tile_stop):
                    if target_typed[j] < surely_enough:
                        if shared_typed(query_bits, i, target_bits, j) < min_loci:
                            continue
                    # Unsigned indices spare numba's negative-index wraparound checks, which
                    # otherwise double the cost of this loop.
                    t0 = 0.0
                    t1 = 0.0
                    t2 = 0.0
                    t3 = 0.0
                    for locus in range(n_loci):
                        at = base[locus] + np.uint64(target_columns[j, locus])
                        t0 += values[at]
                        t1 += values[at + np.uint64(1)]
                        t2 += values[at + np.uint64(2)]
                        t3 += values[at + np.uint64(3)]
                    if t0 >= c0 or t1 >= c1 or t2 >= c2 or t3 >= c3:
                        if found < capacity:
                            rows[block, found] = i
                            cols[block, found] = j
                            loci[block, found] = shared_typed(query_bits, i, target_bits, j)
                            lr[block, found, 0] = t0
                            lr[block, found, 1] = t1
                            lr[block, found, 2] = t2
                            lr[block, found, 3] = t3
                        found += 1
        counts[block] = found
    return rows, cols, lr, loci, counts
