"""Numba kernels for the near-identity search: genotype codes, deletion keys, candidate rows,
verification.

A *genotype code* packs the two allele sizes of a locus, smaller first, into one ``int32``
(``low << 16 | high``), -1 when the locus is untyped: two codes are equal exactly when the
genotypes are, and dropout compatibility is read from the code without the allele table.

A *key* is a hash of a profile's genotypes at a list of loci. Keys are packed with the profile
index into one ``uint64`` (hash in the high bits, index in the low ``index_bits``), so one plain
sort groups profiles by key and keeps each group in index order. Profiles without a key (an
untyped key locus, or too few typed loci to ever match) get the all-ones hash, which sorts last
and is never a candidate group.
"""

from __future__ import annotations

import numba
import numpy as np

from matching._numba import kernel, parallel_kernel

ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@parallel_kernel
def genotype_codes(alleles):
    """Genotype code per profile and locus.

    Parameters
    ----------
    alleles : ndarray of int16, shape (n_profiles, n_loci, 2)
        Allele sizes or codes (0 to 32767), negative when missing.

    Returns
    -------
    codes : ndarray of int32, shape (n_profiles, n_loci)
        ``low << 16 | high``; -1 where either allele is missing.
    codes_by_locus : ndarray of int32, shape (n_loci, n_profiles)
        The same, locus-major (keys read a few loci of every profile).
    """
    n, n_loci = alleles.shape[0], alleles.shape[1]
    codes = np.empty((n, n_loci), dtype=np.int32)
    codes_by_locus = np.empty((n_loci, n), dtype=np.int32)
    for i in numba.prange(n):
        for locus in range(n_loci):
            a = np.int32(alleles[i, locus, 0])
            b = np.int32(alleles[i, locus, 1])
            code = np.int32(-1) if a < 0 or b < 0 else (min(a, b) << 16) | max(a, b)
            codes[i, locus] = code
            codes_by_locus[locus, i] = code
    return codes, codes_by_locus


@kernel
def _mix(state, code):
    """SplitMix64 step: folds one genotype code into the running hash."""
    z = state + np.uint64(code) + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@kernel
def _key_hash(codes_by_locus, key_loci, profile):
    """Hash of a profile's genotypes at ``key_loci``; ``(False, 0)`` when one is untyped."""
    state = np.uint64(0)
    for k in range(key_loci.shape[0]):
        code = codes_by_locus[key_loci[k], profile]
        if code < 0:
            return False, state
        state = _mix(state, code)
    return True, state


@parallel_kernel
def packed_keys(codes_by_locus, key_loci, profiles, index_bits):
    """Packed keys of ``profiles`` on ``key_loci``.

    Parameters
    ----------
    codes_by_locus : ndarray of int32, shape (n_loci, n_profiles)
        Genotype codes (:func:`genotype_codes`), locus-major so a key reads only its loci.
    key_loci : ndarray of int64, shape (k,)
    profiles : ndarray of int64, shape (m,)
        Profiles to key (those that can match at all).
    index_bits : int
        Low bits holding the profile index; ``2**index_bits >= n_profiles``.

    Returns
    -------
    ndarray of uint64, shape (m,)
        ``hash << index_bits | profile``; the hash is all ones when the profile has no key.
    """
    shift = np.uint64(index_bits)
    no_key = ALL_ONES >> shift
    out = np.empty(profiles.shape[0], dtype=np.uint64)
    for k in numba.prange(profiles.shape[0]):
        profile = profiles[k]
        typed, state = _key_hash(codes_by_locus, key_loci, profile)
        top = no_key
        if typed:
            top = state >> shift
            if top == no_key:
                top = no_key - np.uint64(1)  # the all-ones hash means "no key" only
        out[k] = (top << shift) | np.uint64(profile)
    return out


@kernel
def hash_set(hashes):
    """Open-addressing table (linear probing) holding ``hashes``; empty slots are all ones.

    ``hashes`` are key hashes (already well mixed, never all ones), so their low bits index the
    table directly. The table is at least eight times as large as the set: nearly every lookup
    of an absent key (most of them) ends at its first slot.
    """
    size = 8
    while size < 8 * hashes.shape[0]:
        size *= 2
    table = np.full(size, ALL_ONES, dtype=np.uint64)
    slot_mask = np.uint64(size - 1)
    for value in hashes:
        slot = np.int64(value & slot_mask)
        while table[slot] != ALL_ONES and table[slot] != value:
            slot = (slot + 1) & (size - 1)
        table[slot] = value
    return table


@parallel_kernel
def share_a_key(codes_by_locus, key_loci, profiles, index_bits, table):
    """True for each of ``profiles`` whose key on ``key_loci`` is in ``table``
    (:func:`hash_set` of key hashes shifted right by ``index_bits``)."""
    shift = np.uint64(index_bits)
    size = table.shape[0]
    slot_mask = np.uint64(size - 1)
    found = np.zeros(profiles.shape[0], dtype=np.bool_)
    for k in numba.prange(profiles.shape[0]):
        typed, state = _key_hash(codes_by_locus, key_loci, profiles[k])
        if not typed:
            continue
        top = state >> shift
        slot = np.int64(top & slot_mask)
        while table[slot] != ALL_ONES:
            if table[slot] == top:
                found[k] = True
                break
            slot = (slot + 1) & (size - 1)
    return found


@kernel
def candidate_groups(sorted_packed, index_bits, is_new):
    """Groups of two or more profiles sharing a key, and the work rows over them.

    Parameters
    ----------
    sorted_packed : ndarray of uint64, shape (m,)
        Packed keys (:func:`packed_keys`), sorted.
    index_bits : int
    is_new : ndarray of bool, shape (n_profiles,) or (0,)
        Empty for a full search.

    Returns
    -------
    members : ndarray of int64, shape (n_members,)
        Profiles of the groups, group after group.
    row_position, row_low, row_high : ndarray of int64, shape (n_rows,)
        Row ``r`` pairs ``members[row_position[r]]`` with ``members[row_low[r]:row_high[r]]``.
        In a full search every member but the last of its group is a row, paired with the
        members after it. Otherwise only new profiles are rows, paired with their whole group
        (the verifier skips the profile itself and new profiles before it, so each pair is seen
        once).
    """
    n = sorted_packed.shape[0]
    shift = np.uint64(index_bits)
    no_key = ALL_ONES >> shift
    mask = (np.uint64(1) << shift) - np.uint64(1)
    incremental = is_new.shape[0] > 0
    # A position belongs to a group when a neighbour has the same key (and it has one).
    in_group = np.zeros(n, dtype=np.bool_)
    for p in range(1, n):
        top = sorted_packed[p] >> shift
        if top == (sorted_packed[p - 1] >> shift) and top != no_key:
            in_group[p - 1] = True
            in_group[p] = True
    n_members = 0
    for p in range(n):
        n_members += in_group[p]
    members = np.empty(n_members, dtype=np.int64)
    group_stop = np.empty(n_members, dtype=np.int64)
    member = 0
    for p in range(n):
        if in_group[p]:
            members[member] = np.int64(sorted_packed[p] & mask)
            member += 1
    # Group ends, scanning backwards: a group ends where the next member's key differs.
    stop = n_members
    member = n_members - 1
    next_top = no_key
    for p in range(n - 1, -1, -1):
        if not in_group[p]:
            continue
        if (sorted_packed[p] >> shift) != next_top and member + 1 < n_members:
            stop = member + 1
        group_stop[member] = stop
        next_top = sorted_packed[p] >> shift
        member -= 1
    n_rows = 0
    for member in range(n_members):
        if incremental:
            n_rows += is_new[members[member]]
        else:
            n_rows += member + 1 < group_stop[member]
    row_position = np.empty(n_rows, dtype=np.int64)
    row_low = np.empty(n_rows, dtype=np.int64)
    row_high = np.empty(n_rows, dtype=np.int64)
    row = 0
    group_start = 0
    for member in range(n_members):
        if member > 0 and group_stop[member - 1] != group_stop[member]:
            group_start = member
        if incremental:
            if not is_new[members[member]]:
                continue
            row_low[row] = group_start
        else:
            if member + 1 == group_stop[member]:
                continue
            row_low[row] = member + 1
        row_position[row] = member
        row_high[row] = group_stop[member]
        row += 1
    return members, row_position, row_low, row_high


@parallel_kernel
def gather_rows(codes, members):
    """``codes[members]`` as a new C-contiguous array (parallel; numpy's row gather is serial)."""
    n_loci = codes.shape[1]
    out = np.empty((members.shape[0], n_loci), dtype=codes.dtype)
    for m in numba.prange(members.shape[0]):
        source = members[m]
        for locus in range(n_loci):
            out[m, locus] = codes[source, locus]
    return out


@kernel
def typed_and_equal(first, second, locus):
    return first[locus] >= 0 and first[locus] == second[locus]


@kernel
def first_found_on_key(first, second, block_loci, block_starts, block, deleted):
    """True when key ``(block, deleted)`` is the first key, in search order, on which two
    profiles (their genotype code rows ``first`` and ``second``) genuinely agree, so the pair is
    verified there and nowhere else.

    A locus is *bad* for the pair unless it is typed and identical in both. Keys are searched
    block by block; a block of two or more loci has one key per locus (the block with that locus
    deleted), which a pair shares exactly when the block's other loci are all good; a block of one
    locus has one key (the locus itself). ``deleted`` indexes ``block_loci``, -1 for a one-locus
    block.
    """
    low, high = block_starts[block], block_starts[block + 1]
    for k in range(low, high):
        if k != deleted and not typed_and_equal(first, second, block_loci[k]):
            return False  # a hash collision, not an agreement on the key's loci
    if deleted >= 0 and deleted != low:
        # Every key of a block with no bad locus is shared; the block's first key owns the pair.
        if typed_and_equal(first, second, block_loci[deleted]):
            return False
    for earlier in range(block):
        begin, end = block_starts[earlier], block_starts[earlier + 1]
        tolerated = 1 if end - begin > 1 else 0
        bad = 0
        for k in range(begin, end):
            if not typed_and_equal(first, second, block_loci[k]):
                bad += 1
                if bad > tolerated:
                    break
        if bad <= tolerated:
            return False  # shared a key of an earlier block, verified there
    return True


@kernel
def compare_pair(first, second):
    """(compared, identical, dropout-compatible, mismatching) loci of two profiles, from their
    genotype code rows.

    Written without branches, so LLVM vectorises it over loci: most candidate pairs are
    rejected here, and a branchy early exit mispredicts more than it saves.
    """
    compared = identical = dropout = mismatch = 0
    for locus in range(first.shape[0]):
        gi = first[locus]
        gj = second[locus]
        both = (gi >= 0) & (gj >= 0)
        same = gi == gj
        low_i, high_i = gi >> 16, gi & 0xFFFF
        low_j, high_j = gj >> 16, gj & 0xFFFF
        shares_homozygote = ((low_i == high_i) & ((low_j == low_i) | (high_j == low_i))) | (
            (low_j == high_j) & ((low_i == low_j) | (high_i == low_j))
        )
        compared += both
        identical += both & same
        dropout += both & ~same & shares_homozygote
        mismatch += both & ~same & ~shares_homozygote
    return compared, identical, dropout, mismatch


@kernel
def accepts(compared, dropout, mismatch, min_loci, max_mismatches, max_dropouts):
    return compared >= min_loci and mismatch <= max_mismatches and dropout <= max_dropouts


@parallel_kernel
def verify_rows(
    members,
    member_codes,
    row_position,
    row_low,
    row_high,
    chunk_first,
    chunk_stop,
    is_new,
    block_loci,
    block_starts,
    block,
    deleted,
    min_loci,
    max_mismatches,
    max_dropouts,
    capacity,
):
    """Verify the candidate pairs of one key's groups (see :func:`candidate_groups`).

    ``member_codes[m]`` is the genotype code row of ``members[m]``: gathered in group order, so
    the rows of a group are read from consecutive memory. Chunk ``c`` (one ``prange`` iteration
    with its own output rows) handles rows ``chunk_first[c]..chunk_stop[c]-1``. A matching pair
    is reported only from the first key it genuinely shares (:func:`first_found_on_key`), so it
    is reported once. Output columns: i, j (i < j, profile indices), compared, identical, dropout,
    mismatch; ``counts[c]`` may exceed ``capacity``, in which case the caller repeats the call
    with more room.
    """
    n_chunks = chunk_first.shape[0]
    out = np.empty((n_chunks, capacity, 6), dtype=np.int64)
    counts = np.zeros(n_chunks, dtype=np.int64)
    incremental = is_new.shape[0] > 0
    for chunk in numba.prange(n_chunks):
        found = 0
        for row in range(chunk_first[chunk], chunk_stop[chunk]):
            p = row_position[row]
            first = member_codes[p]
            for q in range(row_low[row], row_high[row]):
                if q == p:
                    continue
                if incremental and q < p and is_new[members[q]]:
                    continue  # a pair of two new profiles is taken from the earlier one's row
                second = member_codes[q]
                compared, identical, dropout, mismatch = compare_pair(first, second)
                # Matching is rare and cheap to test; which key owns the pair is asked after.
                if accepts(compared, dropout, mismatch, min_loci, max_mismatches, max_dropouts) \
                        and first_found_on_key(first, second, block_loci, block_starts, block,
                                               deleted):
                    if found < capacity:
                        out[chunk, found, 0] = min(members[p], members[q])
                        out[chunk, found, 1] = max(members[p], members[q])
                        out[chunk, found, 2] = compared
                        out[chunk, found, 3] = identical
                        out[chunk, found, 4] = dropout
                        out[chunk, found, 5] = mismatch
                    found += 1
        counts[chunk] = found
    return out, counts


@parallel_kernel
def exhaustive_pairs(codes, is_new, min_loci, max_mismatches, max_dropouts, row_start, row_stop,
                     capacity):
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
            compared, identical, dropout, mismatch = compare_pair(codes[i], codes[j])
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


@kernel
def _close_match_counts(codes, i, j, max_mismatched):
    """Loci typed in both profiles ``i`` and ``j`` and how many of them are identical; stops
    early (returning ``typed = -1``) once more than ``max_mismatched`` typed loci differ."""
    typed = 0
    identical = 0
    for locus in range(codes.shape[1]):
        a = codes[i, locus]
        b = codes[j, locus]
        if a < 0 or b < 0:
            continue
        typed += 1
        if a == b:
            identical += 1
        elif typed - identical > max_mismatched:
            return -1, 0
    return typed, identical


@kernel
def _close_match(typed, identical, n_loci, min_fraction_matching, min_fraction_typed):
    """rubias's rule: typed / n_loci ≥ min_fraction_typed and identical / typed ≥
    min_fraction_matching (never true with nothing typed in both)."""
    return (typed > 0 and typed / n_loci >= min_fraction_typed
            and identical / typed >= min_fraction_matching)


@parallel_kernel
def close_matching_rows(codes, rows, min_fraction_matching, min_fraction_typed, max_mismatched,
                        capacity):
    """Pairs ``(i, j)``, ``j > i``, matching closely, for each ``i`` of ``rows``, by brute
    force.

    Parameters
    ----------
    codes : ndarray of int32, shape (n_profiles, n_loci)
        Genotype codes (:func:`genotype_codes`), -1 where untyped.
    rows : ndarray of int64, shape (n_rows,)
        First profiles of the pairs (in an order that balances threads: row ``i`` has
        ``n − i − 1`` pairs to compare).
    min_fraction_matching, min_fraction_typed : float
    max_mismatched : int
        Typed loci that may differ in a reported pair (``n_loci · (1 − min_fraction_matching)``
        bounds it, since ``typed ≤ n_loci``); a pair is dropped as soon as it has more.
    capacity : int
        Pairs kept per row.

    Returns
    -------
    found : ndarray of int64, shape (n_rows, capacity, 3)
        ``(j, typed, identical)`` of each row's first ``capacity`` pairs, ``j`` increasing.
    counts : ndarray of int64, shape (n_rows,)
        Pairs of each row; a row with more than ``capacity`` must be run again with more room.
    """
    n, n_loci = codes.shape
    found = np.empty((len(rows), capacity, 3), dtype=np.int64)
    counts = np.zeros(len(rows), dtype=np.int64)
    for r in numba.prange(len(rows)):
        i = rows[r]
        k = 0
        for j in range(i + 1, n):
            typed, identical = _close_match_counts(codes, i, j, max_mismatched)
            if _close_match(typed, identical, n_loci, min_fraction_matching, min_fraction_typed):
                if k < capacity:
                    found[r, k, 0] = j
                    found[r, k, 1] = typed
                    found[r, k, 2] = identical
                k += 1
        counts[r] = k
    return found, counts
