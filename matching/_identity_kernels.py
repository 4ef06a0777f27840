"""Numba kernels for the near-identity search: block keys, candidate runs, verification."""

from __future__ import annotations

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel

NO_KEY = np.uint64(0xFFFFFFFFFFFFFFFF)


@kernel
def block_keys(codes, missing_codes, block_loci, block_starts, block):
    """A 64-bit key per profile for the loci of one block; ``NO_KEY`` if any is untyped.

    Equal genotypes give equal keys; unequal ones collide only by chance (and are then
    rejected by verification).
    """
    n = codes.shape[0]
    keys = np.empty(n, dtype=np.uint64)
    first, last = block_starts[block], block_starts[block + 1]
    for i in range(n):
        key = np.uint64(0x9E3779B97F4A7C15)
        typed = True
        for k in range(first, last):
            locus = block_loci[k]
            code = codes[i, locus]
            if code == missing_codes[locus]:
                typed = False
                break
            key ^= np.uint64(code) + np.uint64(0x9E3779B97F4A7C15) + (key << np.uint64(6)) + (
                key >> np.uint64(2)
            )
            key *= np.uint64(0xBF58476D1CE4E5B9)
        if not typed:
            keys[i] = NO_KEY
        elif key == NO_KEY:
            keys[i] = np.uint64(0)  # keep the sentinel for untyped blocks only
        else:
            keys[i] = key
    return keys


@kernel
def same_on_block(codes, missing_codes, block_loci, block_starts, block, i, j):
    """True when profiles ``i`` and ``j`` are typed and identical at every locus of a block."""
    for k in range(block_starts[block], block_starts[block + 1]):
        locus = block_loci[k]
        a = codes[i, locus]
        if a == missing_codes[locus] or a != codes[j, locus]:
            return False
    return True


@kernel
def compare_pair(alleles, codes, missing_codes, i, j):
    """(compared, identical, dropout-compatible, mismatching) loci of profiles ``i``, ``j``."""
    compared = identical = dropout = mismatch = 0
    for locus in range(codes.shape[1]):
        gi = codes[i, locus]
        gj = codes[j, locus]
        if gi == missing_codes[locus] or gj == missing_codes[locus]:
            continue
        compared += 1
        if gi == gj:
            identical += 1
            continue
        a1, b1 = alleles[i, locus, 0], alleles[i, locus, 1]
        a2, b2 = alleles[j, locus, 0], alleles[j, locus, 1]
        if a1 == b1 and (a2 == a1 or b2 == a1):
            dropout += 1
        elif a2 == b2 and (a1 == a2 or b1 == a2):
            dropout += 1
        else:
            mismatch += 1
    return compared, identical, dropout, mismatch


@kernel
def accepts(compared, dropout, mismatch, min_loci, max_mismatches, max_dropouts):
    return compared >= min_loci and mismatch <= max_mismatches and dropout <= max_dropouts


@parallel_kernel
def verify_runs(
    order,
    run_starts,
    chunk_starts,
    is_new,
    alleles,
    codes,
    missing_codes,
    block_loci,
    block_starts,
    block,
    min_loci,
    max_mismatches,
    max_dropouts,
    capacity,
):
    """Verify every candidate pair inside runs of equal block keys.

    ``order`` sorts profiles by key; run ``r`` is ``order[run_starts[r]:run_starts[r+1]]``.
    Chunk ``c`` (one ``prange`` iteration, its own output rows) handles runs
    ``chunk_starts[c]..chunk_starts[c+1]``. With ``is_new`` non-empty, only pairs involving a
    new profile are considered. A pair that also agrees on an earlier block was found there and
    is skipped here. Output columns: i, j, compared, identical, dropout, mismatch.
    """
    n_chunks = chunk_starts.shape[0] - 1
    out = np.empty((n_chunks, capacity, 6), dtype=np.int64)
    counts = np.zeros(n_chunks, dtype=np.int64)
    incremental = is_new.shape[0] > 0
    for chunk in numba.prange(n_chunks):
        found = 0
        for run in range(chunk_starts[chunk], chunk_starts[chunk + 1]):
            lo, hi = run_starts[run], run_starts[run + 1]
            for p in range(lo, hi):
                for q in range(p + 1, hi):
                    i, j = order[p], order[q]
                    if i > j:
                        i, j = j, i
                    if incremental and not (is_new[i] or is_new[j]):
                        continue
                    earlier = False
                    for previous in range(block):
                        if same_on_block(codes, missing_codes, block_loci, block_starts,
                                         previous, i, j):
                            earlier = True
                            break
                    if earlier:
                        continue
                    compared, identical, dropout, mismatch = compare_pair(
                        alleles, codes, missing_codes, i, j
                    )
                    if accepts(compared, dropout, mismatch, min_loci, max_mismatches,
                               max_dropouts):
                        if found < capacity:
                            out[chunk, found, 0] = i
                            out[chunk, found, 1] = j
                            out[chunk, found, 2] = compared
                            out[chunk, found, 3] = identical
                            out[chunk, found, 4] = dropout
                            out[chunk, found, 5] = mismatch
                        found += 1
        counts[chunk] = found
    return out, counts


@parallel_kernel
def exhaustive_pairs(alleles, codes, missing_codes, is_new, min_loci, max_mismatches,
                     max_dropouts, row_start, row_stop, capacity):
    """Brute-force twin of the block search: pairs ``(i, j > i)`` for rows
    ``row_start..row_stop`` (involving a new profile, if ``is_new`` is non-empty), one output
    buffer per row."""
    n = codes.shape[0]
    n_rows = row_stop - row_start
    out = np.empty((n_rows, capacity, 6), dtype=np.int64)
    counts = np.zeros(n_rows, dtype=np.int64)
    incremental = is_new.shape[0] > 0
    for row in numba.prange(n_rows):
        i = row_start + row
        found = 0
        for j in range(i + 1, n):
            if incremental and not (is_new[i] or is_new[j]):
                continue
            compared, identical, dropout, mismatch = compare_pair(
                alleles, codes, missing_codes, i, j
            )
            if accepts(compared, dropout, mismatch, min_loci, max_mismatches, max_dropouts):
                if found < capacity:
                    out[row, found, 0] = i
                    out[row, found, 1] = j
                    out[row, found, 2] = compared
                    out[row, found, 3] = identical
                    out[row, found, 4] = dropout
                    out[row, found, 5] = mismatch
                found += 1
        counts[row] = found
    return out, counts
