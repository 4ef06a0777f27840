"""Array helpers for species identification: base codes, k-mer seeds, best ungapped segments.

Plain numpy, not numba: the alignments themselves run in Biopython's C aligner and take
milliseconds per query, so these helpers (microseconds) are never the bottleneck. They take
C-contiguous arrays of explicit dtypes, like the numba kernels elsewhere in ``matching``.

Bases are coded A=0, C=1, G=2, T=3; anything else (an ambiguous base) is :data:`AMBIGUOUS` = 4.
"""

from __future__ import annotations

import numpy as np

AMBIGUOUS = 4

_BASE_CODE = np.full(256, AMBIGUOUS, dtype=np.uint8)
for _code, _base in enumerate(b"ACGT"):
    _BASE_CODE[_base] = _code


def encode_bases(sequence: str) -> np.ndarray:
    """Base codes of an upper-case DNA string.

    Returns
    -------
    ndarray of uint8, shape (len(sequence),)
        0..3 for A, C, G, T; :data:`AMBIGUOUS` for any other letter.
    """
    return _BASE_CODE[np.frombuffer(sequence.encode("ascii"), dtype=np.uint8)]


def kmer_codes(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k-mers of a coded sequence as integers, with the positions where they start.

    Parameters
    ----------
    codes : ndarray of uint8, shape (n,)
        Base codes from :func:`encode_bases`.
    k : int
        k-mer length, 1..31.

    Returns
    -------
    values : ndarray of int64, shape (m,)
        Each k-mer read as a base-4 number (first base most significant); k-mers holding an
        ambiguous base are left out.
    starts : ndarray of int64, shape (m,)
        0-based start of each k-mer in the sequence, increasing.
    """
    if len(codes) < k:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    unambiguous = (windows < AMBIGUOUS).all(axis=1)
    shifts = 2 * np.arange(k - 1, -1, -1, dtype=np.int64)
    values = (windows[unambiguous].astype(np.int64) << shifts).sum(axis=1)
    return values, np.flatnonzero(unambiguous).astype(np.int64)


def kmer_index(codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """A reference's distinct k-mers, sorted, each with the first position where it occurs.

    Returns
    -------
    values : ndarray of int64, shape (u,)
        Distinct k-mer values in increasing order.
    starts : ndarray of int64, shape (u,)
        Start of the first occurrence of each.
    """
    values, starts = kmer_codes(codes, k)
    distinct, first = np.unique(values, return_index=True)
    return distinct, starts[first]


def seed_diagonal(
    query_values: np.ndarray,
    query_starts: np.ndarray,
    index_values: np.ndarray,
    index_starts: np.ndarray,
    tolerance: int,
) -> tuple[int, int]:
    """The diagonal (reference position minus query position) most shared k-mers lie on.

    Parameters
    ----------
    query_values, query_starts : ndarray of int64, shape (m,)
        The query's k-mers (:func:`kmer_codes`).
    index_values, index_starts : ndarray of int64, shape (u,)
        The reference's k-mer index (:func:`kmer_index`).
    tolerance : int
        Shared k-mers within this many positions of the best diagonal count for it (small
        indels shift the diagonal).

    Returns
    -------
    diagonal : int
        The most common diagonal (the smallest of equally common ones); 0 when no k-mer is
        shared.
    support : int
        Shared k-mers on that diagonal, give or take ``tolerance``.
    """
    if len(query_values) == 0 or len(index_values) == 0:
        return 0, 0
    slot = np.minimum(np.searchsorted(index_values, query_values), len(index_values) - 1)
    shared = index_values[slot] == query_values
    if not shared.any():
        return 0, 0
    diagonals = index_starts[slot[shared]] - query_starts[shared]
    lowest = diagonals.min()
    counts = np.bincount(diagonals - lowest)
    diagonal = int(np.argmax(counts)) + int(lowest)
    support = int((np.abs(diagonals - diagonal) <= tolerance).sum())
    return diagonal, support


def best_segment(scores: np.ndarray) -> tuple[float, int, int]:
    """The contiguous run of ``scores`` with the largest sum (Kadane's maximum subarray).

    Parameters
    ----------
    scores : ndarray of float64, shape (n,)

    Returns
    -------
    total : float
        The largest sum; 0.0 (an empty run) when every score is negative.
    start, end : int
        The run is ``scores[start:end]``; of equally good runs, the one ending first, and of
        those the shortest.
    """
    if len(scores) == 0:
        return 0.0, 0, 0
    prefix = np.concatenate(([0.0], np.cumsum(scores, dtype=np.float64)))
    lowest_before = np.minimum.accumulate(prefix)
    gains = prefix - lowest_before
    end = int(np.argmax(gains))
    total = float(gains[end])
    if total <= 0.0:
        return 0.0, 0, 0
    start = end - int(np.argmax(prefix[end::-1] == lowest_before[end]))
    return total, start, end


def diagonal_scores(
    reference: np.ndarray,
    query: np.ndarray,
    diagonal: int,
    match_score: float,
    mismatch_score: float,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Column scores of the ungapped alignment of ``query`` to ``reference`` on one diagonal.

    Query position ``i`` faces reference position ``i + diagonal``; only the overlap is scored.
    A column with an ambiguous base scores 0, as Biopython's aligner scores its wildcard.

    Parameters
    ----------
    reference, query : ndarray of uint8
        Base codes.
    diagonal : int
    match_score, mismatch_score : float

    Returns
    -------
    scores : ndarray of float64, shape (overlap,)
    identical : ndarray of bool, shape (overlap,)
        Columns where both bases are unambiguous and equal.
    query_offset : int
        Query position of the first column.
    """
    first = max(0, -diagonal)
    last = min(len(query), len(reference) - diagonal)
    if last <= first:
        return np.empty(0), np.empty(0, dtype=bool), first
    q = query[first:last]
    r = reference[first + diagonal : last + diagonal]
    unambiguous = (q < AMBIGUOUS) & (r < AMBIGUOUS)
    identical = unambiguous & (q == r)
    scores = np.where(identical, match_score, np.where(unambiguous, mismatch_score, 0.0))
    return scores.astype(np.float64), identical, first
