"""Identity ("direct match") search at CODIS-style stringencies, without comparing all pairs.

Per locus typed in both profiles, a pair is *identical*, *dropout-compatible* (a homozygote
against a heterozygote carrying that allele) or *mismatching*.

- **high** stringency: identical at every compared locus;
- **moderate**: up to ``max_dropouts`` dropout-compatible loci (default
  :data:`DEFAULT_MAX_DROPOUTS`) and up to ``max_mismatches`` mismatching loci (default
  :data:`DEFAULT_MAX_MISMATCHES`);

both with at least ``min_loci`` loci compared.

A match here is a *candidate*, not a call: :func:`matching.pair_search.find_pairs` calls a
candidate the same animal only when its same-animal LR passes the cutoff and beats every other
relationship. Unbounded dropout-compatible loci would let unrelated animals through (on the
alewife baseline, pairs with 4 dropout-compatible and 2 mismatching loci of 11, log10 LR −9.8),
so the default bound is small: with dropout rates of a few percent per heterozygous locus, a
true duplicate with more than two dropouts in one profile is rare, and one that has them can
still be found with a larger ``max_dropouts``.

How candidates are found
------------------------
Call a locus *bad* for a pair unless it is typed and identical in both profiles (so a mismatch,
a dropout-compatible locus and a locus untyped in either profile are all bad). The loci are split
into ``B`` blocks of two or more loci and similar discriminating power. Each block of ``s`` loci
has ``s`` *deletion keys*: the block with one of its loci left out. A profile's value for a key
is a hash of its genotypes at the key's ``s − 1`` loci (none when one of them is untyped), so two
profiles share a key exactly when they are typed and identical on its loci. A pair with at most
one bad locus in some block therefore shares a key of that block; by pigeonhole, every pair with
at most ``2B − 1`` bad loci has such a block and is always found (``guaranteed_bad_loci``). Pairs
with more bad loci are found too when some block holds at most one of them.

Keys are searched in a fixed order (block by block, the deleted locus in block order) and a
matching pair is reported only from the first key it shares, so it is reported once without a
set of seen pairs. An incremental search (``new=``) keys only the profiles that share a key with
a new profile, and verifies only pairs with a new profile.

``B`` is chosen from the data (:func:`choose_blocks`): as many blocks as possible while every key
still separates unrelated profiles well enough that random candidates stay linear in the number
of profiles. With ``exhaustive=True`` every pair is compared instead (the slow, complete twin).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numba
import numpy as np

from dnatrack.genotypes import GenotypeTable
from matching import _identity_kernels as kernels

logger = logging.getLogger(__name__)

STRINGENCIES = ("high", "moderate")
#: Mismatching and dropout-compatible loci a moderate-stringency candidate may have by default.
DEFAULT_MAX_MISMATCHES = 2
DEFAULT_MAX_DROPOUTS = 2

# Choosing the number of blocks. Two unrelated profiles share a key's genotypes with probability
# about Π_loci Σ_g f_g² = exp(−power), power being the key's summed −ln Σ_g f_g². Among N
# profiles, about N²/2 · exp(−power) unrelated pairs share the key, and each is a candidate to
# verify. Keeping that at most c·N (c candidates per profile and key) needs
#     power ≥ ln N − ln(2c).
# With c = 12.5 this is ln N − ln 25: a 16-STR panel keeps 4 blocks at a million profiles.
RANDOM_CANDIDATES_PER_PROFILE = 12.5

# Candidate pairs per parallel chunk; at least a few chunks per thread keep threads balanced.
PAIRS_PER_CHUNK = 1_000_000
CHUNKS_PER_THREAD = 4


@dataclass(frozen=True)
class IdentityCriteria:
    """What counts as a match, and optionally how many blocks the search uses.

    Parameters
    ----------
    stringency : {"high", "moderate"}
    max_mismatches : int, optional
        Mismatching loci allowed at moderate stringency (default
        :data:`DEFAULT_MAX_MISMATCHES`; always 0 at high).
    min_loci : int
        Minimum loci typed in both profiles (default 8).
    max_dropouts : int, optional
        Dropout-compatible loci allowed at moderate stringency (default
        :data:`DEFAULT_MAX_DROPOUTS`; always 0 at high).
    n_blocks : int, optional
        Fix the number of locus blocks ``B`` of the search instead of choosing it from the data.
        More blocks find more pairs (every pair with at most ``2B − 1`` loci that are not
        identical) but verify more random candidates. Capped at half the number of loci, so
        every block has at least two loci.
    """

    stringency: str = "moderate"
    max_mismatches: int | None = None
    min_loci: int = 8
    max_dropouts: int | None = None
    n_blocks: int | None = None

    def __post_init__(self) -> None:
        if self.stringency not in STRINGENCIES:
            raise ValueError(
                f"stringency must be one of {', '.join(STRINGENCIES)}, got {self.stringency!r}"
            )
        for name in ("max_mismatches", "max_dropouts"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")
            if self.stringency == "high" and value not in (None, 0):
                raise ValueError(f"{name} must be 0 at high stringency")
        if self.min_loci < 1:
            raise ValueError("min_loci must be at least 1")
        if self.n_blocks is not None and self.n_blocks < 1:
            raise ValueError(f"n_blocks must be at least 1, got {self.n_blocks}")

    @property
    def mismatches_allowed(self) -> int:
        if self.stringency == "high":
            return 0
        return DEFAULT_MAX_MISMATCHES if self.max_mismatches is None else self.max_mismatches

    @property
    def dropouts_allowed(self) -> int:
        if self.stringency == "high":
            return 0
        return DEFAULT_MAX_DROPOUTS if self.max_dropouts is None else self.max_dropouts

    def as_dict(self) -> dict:
        return {
            "stringency": self.stringency,
            "max_mismatches": self.mismatches_allowed,
            "max_dropouts": self.dropouts_allowed,
            "min_loci": self.min_loci,
            "n_blocks": self.n_blocks,
        }


@dataclass(eq=False)
class IdentityHits:
    """Matching pairs and what the search that found them guarantees.

    Attributes
    ----------
    query_index, target_index : ndarray of int64, shape (n_pairs,)
        Rows of the searched table, ``query_index < target_index``, sorted.
    loci_compared, identical, dropout, mismatch : ndarray of int64, shape (n_pairs,)
        Loci typed in both, and how many of them are identical, dropout-compatible, mismatching.
    blocks : tuple of tuple of int
        The locus blocks (column indices) of the search; empty for an exhaustive search.
    guaranteed_bad_loci : int
        Every matching pair with at most this many loci that are not identical (mismatching,
        dropout-compatible, or untyped in either profile) is found: ``2B − 1`` for ``B`` blocks
        of two or more loci, the number of loci for an exhaustive search.
    """

    query_index: np.ndarray
    target_index: np.ndarray
    loci_compared: np.ndarray
    identical: np.ndarray
    dropout: np.ndarray
    mismatch: np.ndarray
    blocks: tuple[tuple[int, ...], ...] = ()
    guaranteed_bad_loci: int = 0

    def __len__(self) -> int:
        return len(self.query_index)

    @property
    def n_blocks(self) -> int:
        """Number of locus blocks ``B`` the search used (0 for an exhaustive search)."""
        return len(self.blocks)

    @classmethod
    def from_rows(cls, rows: np.ndarray, blocks: tuple[tuple[int, ...], ...] = (),
                  guaranteed_bad_loci: int = 0) -> IdentityHits:
        """Hits from int64 rows ``(i, j, compared, identical, dropout, mismatch)``, sorted."""
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))] if len(rows) else rows
        return cls(*(rows[:, k].copy() for k in range(6)), blocks=blocks,
                   guaranteed_bad_loci=guaranteed_bad_loci)

    def records(self, ids: np.ndarray) -> list[dict]:
        return [
            {
                "sample1": str(ids[self.query_index[k]]),
                "sample2": str(ids[self.target_index[k]]),
                "relationship": "same_animal",
                "loci_compared": int(self.loci_compared[k]),
                "loci_identical": int(self.identical[k]),
                "loci_dropout": int(self.dropout[k]),
                "loci_mismatch": int(self.mismatch[k]),
            }
            for k in range(len(self))
        ]


def locus_power(codes_by_locus: np.ndarray) -> np.ndarray:
    """Discriminating power of each locus, ``−ln Σ_g f_g²`` over observed genotype frequencies.

    ``Σ_g f_g²`` is the chance that two random profiles typed at the locus share a genotype
    there; a locus typed nowhere has power 0.

    Parameters
    ----------
    codes_by_locus : ndarray of int32, shape (n_loci, n_profiles)
        Genotype codes, locus-major, negative where untyped
        (:func:`matching._identity_kernels.genotype_codes`).

    Returns
    -------
    ndarray of float64, shape (n_loci,)
    """
    power = np.zeros(len(codes_by_locus))
    for locus, column in enumerate(codes_by_locus):
        typed = np.sort(column[column >= 0])
        if typed.size:
            boundaries = np.flatnonzero(typed[1:] != typed[:-1]) + 1
            counts = np.diff(np.concatenate([[0], boundaries, [typed.size]]))
            freqs = counts / typed.size
            power[locus] = -np.log(float(np.sum(freqs**2)))
    return power


def max_blocks(n_loci: int) -> int:
    """Most blocks with at least two loci each (one block when there is a single locus)."""
    return max(1, n_loci // 2)


def locus_blocks(power: np.ndarray, n_blocks: int) -> list[list[int]]:
    """Split loci into ``n_blocks`` blocks of similar discriminating power.

    Loci are dealt, most powerful first, to the block with the least power so far among those
    that still have room; block sizes differ by at most one, so with
    ``n_blocks <= max_blocks(n_loci)`` every block has two loci or more.

    Parameters
    ----------
    power : ndarray of float64, shape (n_loci,)
        Per-locus power (:func:`locus_power`).
    n_blocks : int
        Capped at the number of loci.

    Returns
    -------
    list of list of int
        Locus indices of each block, sorted within the block.
    """
    n_loci = len(power)
    n_blocks = max(1, min(n_blocks, n_loci))
    small, n_large = divmod(n_loci, n_blocks)  # n_large blocks get small + 1 loci
    blocks: list[list[int]] = [[] for _ in range(n_blocks)]
    sizes = np.zeros(n_blocks, dtype=np.int64)
    totals = np.zeros(n_blocks)
    short = small * n_blocks  # loci still needed to bring every block up to `small`
    large = 0  # blocks grown beyond `small`
    for dealt, locus in enumerate(np.argsort(-power, kind="stable")):
        if short == n_loci - dealt:
            room = sizes < small  # the remaining loci are needed to bring blocks up to size
        else:
            room = (sizes < small) | ((sizes == small) & (large < n_large))
        target = int(np.flatnonzero(room)[np.argmin(totals[room])])
        if sizes[target] < small:
            short -= 1
        else:
            large += 1
        blocks[target].append(int(locus))
        sizes[target] += 1
        totals[target] += power[locus]
    return [sorted(block) for block in blocks]


def weakest_key_power(power: np.ndarray, blocks: list[list[int]]) -> float:
    """Power of the weakest search key: a block less its strongest locus (a one-locus block is
    its own key)."""
    return min(
        float(power[block].sum() - (power[block].max() if len(block) > 1 else 0.0))
        for block in blocks
    )


def required_key_power(n_profiles: int) -> float:
    """Power every key needs so that random candidates per key stay near
    ``RANDOM_CANDIDATES_PER_PROFILE`` per profile (see the derivation at the top of the module).
    """
    return float(np.log(max(n_profiles, 1)) - np.log(2 * RANDOM_CANDIDATES_PER_PROFILE))


def choose_blocks(power: np.ndarray, n_profiles: int) -> list[list[int]]:
    """The most blocks (up to :func:`max_blocks`) whose every key has the power that
    :func:`required_key_power` asks for ``n_profiles`` profiles; at least two blocks when there
    are four loci or more, one block otherwise.

    More profiles need stronger keys, so the number of blocks never grows with ``n_profiles``.
    """
    n_loci = len(power)
    fewest = 2 if n_loci >= 4 else 1
    needed = required_key_power(n_profiles)
    most = max_blocks(n_loci)
    if needed > 0:
        # B keys (one per block, each a block less a locus) hold at most all the power, so B
        # blocks can satisfy the need only if B · needed <= total power: skip the larger B.
        most = min(most, int(np.floor(power.sum() / needed)))
    for n_blocks in range(most, fewest, -1):
        blocks = locus_blocks(power, n_blocks)
        if weakest_key_power(power, blocks) >= needed:
            return blocks
    return locus_blocks(power, fewest)


def guaranteed_bad_loci(blocks: list[list[int]]) -> int:
    """Most bad loci a pair may have and still be found: pigeonhole over blocks that tolerate
    one bad locus each (two loci or more) or none (a one-locus block)."""
    return sum(2 if len(block) > 1 else 1 for block in blocks) - 1


def identity_search(
    table: GenotypeTable,
    criteria: IdentityCriteria | None = None,
    *,
    new: np.ndarray | None = None,
    exhaustive: bool = False,
    progress: Callable[[int], None] | None = None,
) -> IdentityHits:
    """All pairs of profiles of ``table`` that match under ``criteria``.

    Parameters
    ----------
    table : GenotypeTable
    criteria : IdentityCriteria, optional
        Defaults to moderate stringency, 2 mismatches, 2 dropout-compatible loci, 8 loci,
        blocks chosen from the data.
    new : ndarray of bool, shape (n_profiles,), optional
        Incremental search: only pairs involving at least one ``True`` profile are reported,
        and only those are verified.
    exhaustive : bool
        Compare every pair (quadratic; the reference the block search is tested against).
    progress : callable, optional
        Called with 1 after each block (or row chunk, when exhaustive).

    Returns
    -------
    IdentityHits
        The pairs, with the blocks used and ``guaranteed_bad_loci``: every matching pair with
        at most that many loci not identical is in the result.

    Examples
    --------
    >>> alleles = [[[10, 12], [20, 22], [30, 30], [40, 44]],
    ...            [[10, 12], [20, 20], [30, 30], [40, 44]]]
    >>> table = GenotypeTable(alleles, ["tusk-A", "tusk-B"], ["a", "b", "c", "d"])
    >>> hits = identity_search(table, IdentityCriteria("moderate", min_loci=4))
    >>> len(hits), hits.n_blocks, hits.guaranteed_bad_loci
    (1, 2, 3)
    """
    criteria = criteria or IdentityCriteria()
    is_new = np.zeros(0, dtype=np.bool_) if new is None else np.asarray(new, dtype=np.bool_)
    if new is not None and is_new.shape != (table.n_profiles,):
        raise ValueError("new must be one flag per profile")
    # Identity needs only whether genotypes are equal or dropout-compatible, so the allele sizes
    # are packed into one code per locus directly, with no allele coding or frequency model.
    codes, codes_by_locus = kernels.genotype_codes(
        np.ascontiguousarray(table.alleles, dtype=np.int16)
    )
    limits = (
        criteria.min_loci,
        criteria.mismatches_allowed,
        criteria.dropouts_allowed,
    )
    empty = np.empty((0, 6), dtype=np.int64)
    if exhaustive:
        if table.n_profiles < 2 or table.n_loci == 0:
            return IdentityHits.from_rows(empty, guaranteed_bad_loci=table.n_loci)
        return _exhaustive(codes, is_new, limits, progress)
    if table.n_loci == 0:
        return IdentityHits.from_rows(empty)

    power = locus_power(codes_by_locus)
    if criteria.n_blocks is None:
        blocks = choose_blocks(power, table.n_profiles)
    else:
        blocks = locus_blocks(power, min(criteria.n_blocks, max_blocks(table.n_loci)))
    found_by = (tuple(tuple(block) for block in blocks), guaranteed_bad_loci(blocks))
    usable = (codes >= 0).sum(axis=1) >= criteria.min_loci
    if new is not None:
        if not is_new.any():
            return IdentityHits.from_rows(empty, *found_by)
        if is_new.all():
            is_new = np.zeros(0, dtype=np.bool_)  # every pair qualifies: the full search
    if usable.sum() < 2:
        return IdentityHits.from_rows(empty, *found_by)

    block_loci = np.array([locus for block in blocks for locus in block], dtype=np.int64)
    block_starts = np.cumsum([0] + [len(block) for block in blocks]).astype(np.int64)
    index_bits = max(1, (table.n_profiles - 1).bit_length())
    search = _KeySearch(codes, codes_by_locus, usable, is_new, block_loci, block_starts,
                        index_bits, limits)
    found = []
    for block in range(len(blocks)):
        first, last = int(block_starts[block]), int(block_starts[block + 1])
        deleted_loci = range(first, last) if last - first > 1 else [-1]
        for deleted in deleted_loci:
            found.append(search.key(block, deleted))
        if progress is not None:
            progress(1)
    return IdentityHits.from_rows(np.concatenate(found), *found_by)


class _KeySearch:
    """Candidates and verification for one key at a time (shared state of a search)."""

    def __init__(self, codes, codes_by_locus, usable, is_new, block_loci, block_starts,
                 index_bits, limits):
        self.codes, self.codes_by_locus = codes, codes_by_locus
        self.profiles = np.flatnonzero(usable).astype(np.int64)
        self.is_new = is_new
        self.new_profiles = self.profiles[is_new[self.profiles]] if len(is_new) else None
        self.block_loci, self.block_starts = block_loci, block_starts
        self.index_bits, self.limits = index_bits, limits
        self.capacity = 256  # output rows per chunk; raised when a chunk finds more

    def key(self, block: int, deleted: int) -> np.ndarray:
        """Verified rows ``(i, j, compared, identical, dropout, mismatch)`` of pairs first found
        on key ``(block, deleted)``; ``deleted`` indexes ``block_loci``, -1 for a one-locus
        block."""
        first, last = self.block_starts[block], self.block_starts[block + 1]
        key_loci = self.block_loci[first:last]
        if deleted >= 0:
            key_loci = np.delete(key_loci, deleted - first)
        profiles = self.profiles
        if self.new_profiles is not None:
            # Only groups holding a new profile matter: keep the profiles whose key one of the
            # new profiles has, before sorting anything.
            shift = np.uint64(self.index_bits)
            new_keys = kernels.packed_keys(self.codes_by_locus, key_loci, self.new_profiles,
                                           self.index_bits)
            hashes = np.unique(new_keys >> shift)
            hashes = hashes[hashes != kernels.ALL_ONES >> shift]
            table = kernels.hash_set(hashes)
            profiles = profiles[kernels.share_a_key(self.codes_by_locus, key_loci, profiles,
                                                    self.index_bits, table)]
        packed = kernels.packed_keys(self.codes_by_locus, key_loci, profiles, self.index_bits)
        packed.sort()
        members, *rows = kernels.candidate_groups(packed, self.index_bits, self.is_new)
        if len(rows[0]) == 0:
            return np.empty((0, 6), dtype=np.int64)
        member_codes = kernels.gather_rows(self.codes, members)
        chunk_starts = _chunk_rows(rows[2] - rows[1])
        first_rows, stop_rows = chunk_starts[:-1], chunk_starts[1:]
        verified = []
        while len(first_rows):
            out, counts = kernels.verify_rows(
                members, member_codes, *rows, first_rows, stop_rows, self.is_new,
                self.block_loci, self.block_starts, block, deleted, *self.limits, self.capacity,
            )
            done = counts <= self.capacity
            verified.append(out[done][np.arange(self.capacity)[None, :] < counts[done, None]])
            # Chunks that found more pairs than there was room for run again, with room.
            first_rows, stop_rows = first_rows[~done], stop_rows[~done]
            self.capacity = max(self.capacity, int(counts.max(initial=0)))
        return np.concatenate(verified)


def _chunk_rows(pairs_per_row: np.ndarray) -> np.ndarray:
    """Row boundaries of parallel chunks with similar numbers of candidate pairs.

    A large group spans many rows (one per member), so it is split across chunks too.
    """
    cumulative = np.cumsum(pairs_per_row, dtype=np.float64)
    total = cumulative[-1]
    wanted = max(int(np.ceil(total / PAIRS_PER_CHUNK)), CHUNKS_PER_THREAD * numba.get_num_threads())
    n_chunks = max(1, min(wanted, len(pairs_per_row)))
    cuts = np.searchsorted(cumulative, np.arange(1, n_chunks) * total / n_chunks)
    return np.unique(np.concatenate([[0], cuts + 1, [len(pairs_per_row)]])).astype(np.int64)


def _exhaustive(codes, is_new, limits, progress) -> IdentityHits:
    n = codes.shape[0]
    rows_per_call = 4096
    parts = []
    for start in range(0, n, rows_per_call):
        stop = min(start + rows_per_call, n)
        capacity = 16
        while True:
            out, counts = kernels.exhaustive_pairs(codes, is_new, *limits, start, stop,
                                                   capacity)
            if counts.max(initial=0) <= capacity:
                break
            capacity = int(counts.max())
        parts.append(out[np.arange(capacity)[None, :] < counts[:, None]])
        if progress is not None:
            progress(1)
    return IdentityHits.from_rows(np.concatenate(parts), guaranteed_bad_loci=codes.shape[1])


@dataclass(eq=False)
class CloseMatches:
    """Pairs of a baseline with closely matching genotypes, as rubias's
    ``close_matching_samples(D, gen_start_col, min_frac_non_miss, min_frac_matching)`` lists
    them (duplicate samples of one fish, or a fish sampled twice).

    Attributes
    ----------
    index1, index2 : ndarray of int64, shape (n_pairs,)
        Rows of the table, ``index1 < index2``, sorted.
    typed : ndarray of int64, shape (n_pairs,)
        Loci typed in both profiles (rubias's ``num_non_miss``).
    identical : ndarray of int64, shape (n_pairs,)
        Of those, loci with the same genotype (rubias's ``num_match``).
    min_fraction_matching, min_fraction_typed : float
        The criteria used.
    """

    index1: np.ndarray
    index2: np.ndarray
    typed: np.ndarray
    identical: np.ndarray
    min_fraction_matching: float
    min_fraction_typed: float

    def __len__(self) -> int:
        return len(self.index1)

    def records(self, ids: np.ndarray) -> list[dict]:
        return [
            {"sample1": str(ids[self.index1[k]]), "sample2": str(ids[self.index2[k]]),
             "loci_typed_in_both": int(self.typed[k]), "loci_identical": int(self.identical[k])}
            for k in range(len(self))
        ]


#: rubias's default ``min_frac_non_miss``.
DEFAULT_MIN_FRACTION_TYPED = 0.7


def close_matching_samples(
    table: GenotypeTable,
    min_fraction_matching: float,
    min_fraction_typed: float = DEFAULT_MIN_FRACTION_TYPED,
) -> CloseMatches:
    """Every pair of profiles typed in both at a fraction ``≥ min_fraction_typed`` of all loci
    and identical at a fraction ``≥ min_fraction_matching`` of those (rubias's definition: a
    locus counts as typed when both alleles of both profiles are known; genotypes are compared
    unordered; dropout-compatible loci are not identical).

    This lists near-duplicates of a baseline; it is no evidence of identity (that is
    :func:`matching.pair_search.find_pairs`, which weighs the LR). It compares every pair, which
    is fast enough for baselines of tens of thousands (the 7,301-fish Chinook baseline × 91
    SNPs in seconds).

    Parameters
    ----------
    table : GenotypeTable
    min_fraction_matching, min_fraction_typed : float
        In [0, 1].

    Returns
    -------
    CloseMatches

    Examples
    --------
    >>> alleles = [[[10, 12], [20, 22], [30, 30]], [[12, 10], [20, 22], [30, 32]]]
    >>> table = GenotypeTable(alleles, ["fish-1", "fish-2"], ["a", "b", "c"])
    >>> close_matching_samples(table, 0.6).records(table.profile_ids)
    [{'sample1': 'fish-1', 'sample2': 'fish-2', 'loci_typed_in_both': 3, 'loci_identical': 2}]
    """
    for name, value in (("min_fraction_matching", min_fraction_matching),
                        ("min_fraction_typed", min_fraction_typed)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {value}")
    codes, _ = kernels.genotype_codes(np.ascontiguousarray(table.alleles, dtype=np.int16))
    # A reported pair has identical ≥ f · typed, so at most typed · (1 − f) ≤ n_loci · (1 − f)
    # differing loci; one more than that bound keeps rounding on the safe side.
    max_mismatched = int(np.floor(table.n_loci * (1.0 - min_fraction_matching))) + 1
    rows = _close_matching_rows(codes, float(min_fraction_matching), float(min_fraction_typed),
                                max_mismatched)
    logger.info("close matching of %d profiles at %d loci (matching ≥ %g of ≥ %g typed): "
                "%d pairs", table.n_profiles, table.n_loci, min_fraction_matching,
                min_fraction_typed, len(rows))
    return CloseMatches(rows[:, 0].copy(), rows[:, 1].copy(), rows[:, 2].copy(),
                        rows[:, 3].copy(), float(min_fraction_matching),
                        float(min_fraction_typed))


def _close_matching_rows(codes: np.ndarray, min_fraction_matching: float,
                         min_fraction_typed: float, max_mismatched: int) -> np.ndarray:
    """``(i, j, typed, identical)`` of every close match, int64 (n_pairs, 4), sorted."""
    n = codes.shape[0]
    # Rows from both ends alternately, so every thread's share has about as many pairs.
    order = np.empty(n, dtype=np.int64)
    order[0::2] = np.arange((n + 1) // 2)
    order[1::2] = np.arange(n - 1, (n + 1) // 2 - 1, -1)
    rows, capacity, parts = order, 4, []
    while len(rows):
        found, counts = kernels.close_matching_rows(codes, rows, min_fraction_matching,
                                                    min_fraction_typed, max_mismatched,
                                                    capacity)
        done = counts <= capacity
        for r in np.flatnonzero(done & (counts > 0)):
            parts.append(np.column_stack([np.full(counts[r], rows[r]), found[r, : counts[r]]]))
        rows, capacity = rows[~done], int(counts.max(initial=0))  # rerun with room
    if not parts:
        return np.empty((0, 4), dtype=np.int64)
    joined = np.concatenate(parts)
    return joined[np.lexsort((joined[:, 1], joined[:, 0]))]
