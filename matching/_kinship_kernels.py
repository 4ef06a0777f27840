"""Numba kernels for the kinship search: sums of per-locus log10 LR lookups over many pairs.

Inputs are plain C-contiguous arrays (see :class:`matching.relationships.KinshipTables` for the
table layout). Work is split into row blocks; each ``prange`` iteration owns one block and writes
only into that block's slice of the output buffers, so threads never share a write.

Almost every pair is unrelated and fails every cutoff, so the scan first sums a coarse copy of
the tables: each entry's four channels rounded *up* to 16-bit integers and packed into one
uint64 (:func:`pack_lanes`), so one load and one integer add per locus sum all four channels at
once (the lanes cannot carry into each other: a lane holds at most ``LOCI_PER_SUM`` values of at
most ``LANE_MAX``). Rounding up makes the coarse sum an upper bound of the exact one; only a
pair whose bound reaches some cutoff is summed again exactly, in float64 and in locus order as
before, so the pairs and LRs reported are exactly those of the plain float64 scan.
"""

from __future__ import annotations

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel

# Columns of the target table visited together, so their genotype codes stay in cache while
# every row of a block is scored against them.
TILE = 2048

# Tables always have four relationship channels (unused ones padded with zeros and an
# unreachable cutoff), so one packed uint64 holds a table entry's four channels.
N_CHANNELS = 4

# Coarse (packed) sums: loci summed per uint64 before its lanes are unpacked, and the largest
# value of a lane's entry, so LOCI_PER_SUM entries never overflow 16 bits (16 * 4095 < 65536).
LOCI_PER_SUM = 16
LANE_MAX = 4095
LANE_MASK = np.uint64(0xFFFF)


def pack_lanes(values: np.ndarray, cutoffs: np.ndarray, n_loci: int):
    """The coarse copy of ``values`` (float64, flat, ``N_CHANNELS`` per entry) and the integer
    thresholds of ``cutoffs`` for a sum over ``n_loci`` loci.

    Channel ``c`` of an entry becomes ``ceil((v - low_c) * scale_c)``, at most ``LANE_MAX``,
    packed at bits ``16c``; a pair whose exact sum reaches ``cutoffs[c]`` has a coarse sum of
    at least ``thresholds[c]``. Returns ``(packed uint64 (n_entries,), thresholds int64 (4,))``.
    """
    entries = values.reshape(-1, N_CHANNELS)
    finite = np.isfinite(entries)
    low = np.where(finite, entries, np.inf).min(axis=0, initial=np.inf)
    high = np.where(finite, entries, -np.inf).max(axis=0, initial=-np.inf)
    low[~np.isfinite(low)] = 0.0
    # One below LANE_MAX leaves room for the nudge that keeps rounding upwards; a span below
    # one log10 unit is not stretched (its lanes simply use fewer of their bits).
    scale = (LANE_MAX - 1) / np.maximum(high - low, 1.0)
    with np.errstate(invalid="ignore"):
        # -inf (an impossible pair of genotypes) becomes 0, still an upper bound.
        scaled = np.where(finite, (entries - low) * scale + 1e-9, 0.0)
    lanes = np.ceil(scaled).clip(0, LANE_MAX).astype(np.uint64)
    packed = np.zeros(len(entries), dtype=np.uint64)
    for channel in range(N_CHANNELS):
        packed |= lanes[:, channel] << np.uint64(16 * channel)
    # A channel holding +inf or NaN has no finite upper bound: its pairs are all summed exactly.
    unbounded = (np.isnan(entries) | (entries == np.inf)).any(axis=0)
    thresholds = np.empty(N_CHANNELS, dtype=np.int64)
    reachable = n_loci * LANE_MAX + 1
    for channel, cutoff in enumerate(cutoffs):
        # The 1e-6 slack covers float rounding, here and in the exact sums.
        bound = (cutoff - n_loci * low[channel] - 1e-6) * scale[channel]
        if unbounded[channel] or np.isnan(bound):
            thresholds[channel] = -1
        elif abs(bound) < reachable:
            thresholds[channel] = int(np.floor(bound))
        else:
            thresholds[channel] = reachable if bound > 0 else -1
    return packed, thresholds


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
    target_index,
    query_bits,
    target_bits,
    target_typed,
    packed,
    width,
    values,
    offsets,
    strides,
    thresholds,
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
    target_index : int32 (n_target, n_loci)
        Genotype codes of the columns plus ``locus * width``: where a column's genotype sits
        in a row's packed table. With ``triangular`` rows and columns are the same profiles
        and only pairs ``j > i`` are scored.
    query_bits, target_bits : uint64 (n, n_words)
        Typed-locus bit masks (:func:`typed_bits`).
    target_typed : int64 (n_target,)
        Number of typed loci of each column.
    packed : uint64 (n_entries,)
        Coarse copy of ``values`` (:func:`pack_lanes`).
    width : int
        At least the largest stride.
    values, offsets, strides
        The flattened per-locus log10 LR tables, with ``N_CHANNELS`` relationships.
    thresholds : int64 (4,)
        Coarse-sum thresholds of the cutoffs (:func:`pack_lanes`).
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
    n_target, n_loci = target_index.shape
    rows = np.empty((n_blocks, capacity), dtype=np.int64)
    cols = np.empty((n_blocks, capacity), dtype=np.int64)
    lr = np.empty((n_blocks, capacity, N_CHANNELS), dtype=np.float64)
    loci = np.empty((n_blocks, capacity), dtype=np.int32)
    counts = np.zeros(n_blocks, dtype=np.int64)
    h0, h1, h2, h3 = thresholds[0], thresholds[1], thresholds[2], thresholds[3]
    c0, c1, c2, c3 = cutoffs[0], cutoffs[1], cutoffs[2], cutoffs[3]
    for block in numba.prange(n_blocks):
        start = block_starts[block]
        stop = block_stops[block]
        # Entry of (row genotype, column genotype 0) per locus, and the row's packed table:
        # the row's slice of every locus table side by side, small enough for the L1 cache.
        base = np.empty(n_loci, dtype=np.int64)
        row_table = np.zeros(n_loci * width, dtype=np.uint64)
        found = 0
        first_col = start + 1 if triangular else 0
        for tile_start in range(first_col, n_target, TILE):
            tile_stop = min(tile_start + TILE, n_target)
            for i in range(start, stop):
                j_start = max(tile_start, i + 1) if triangular else tile_start
                if j_start >= tile_stop:
                    continue
                for locus in range(n_loci):
                    base[locus] = offsets[locus] // N_CHANNELS + query_codes[i, locus] * strides[
                        locus]
                    row_table[locus * width : locus * width + strides[locus]] = packed[
                        base[locus] : base[locus] + strides[locus]]
                # Any column typed at this many loci shares at least min_loci with row i, so
                # the exact count is needed only below it (and for pairs kept).
                surely_enough = min_loci + n_loci - shared_typed(query_bits, i, query_bits, i)
                for j in range(j_start, tile_stop):
                    s0 = 0
                    s1 = 0
                    s2 = 0
                    s3 = 0
                    for first in range(0, n_loci, LOCI_PER_SUM):
                        lanes = np.uint64(0)
                        # Unsigned indices spare numba's negative-index wraparound checks,
                        # which otherwise double the cost of this loop.
                        for locus in range(first, min(first + LOCI_PER_SUM, n_loci)):
                            lanes += row_table[np.uint32(target_index[j, locus])]
                        s0 += np.int64(lanes & LANE_MASK)
                        s1 += np.int64((lanes >> np.uint64(16)) & LANE_MASK)
                        s2 += np.int64((lanes >> np.uint64(32)) & LANE_MASK)
                        s3 += np.int64(lanes >> np.uint64(48))
                    if s0 < h0 and s1 < h1 and s2 < h2 and s3 < h3:
                        continue
                    if target_typed[j] < surely_enough:
                        if shared_typed(query_bits, i, target_bits, j) < min_loci:
                            continue
                    t0 = 0.0
                    t1 = 0.0
                    t2 = 0.0
                    t3 = 0.0
                    for locus in range(n_loci):
                        column = target_index[j, locus] - locus * width
                        at = np.uint64((base[locus] + column) * N_CHANNELS)
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
