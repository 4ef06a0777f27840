"""Identity ("direct match") search at CODIS-style stringencies, without comparing all pairs.

Per locus typed in both profiles, a pair is *identical*, *dropout-compatible* (a homozygote
against a heterozygote carrying that allele) or *mismatching*.

- **high** stringency: identical at every compared locus;
- **moderate**: dropout-compatible loci allowed (up to ``max_dropouts``) and up to
  ``max_mismatches`` mismatching loci;

both with at least ``min_loci`` loci compared.

The loci are split into ``B = max_mismatches + 1 + tolerance`` blocks of similar
discriminating power. Profiles are bucketed by their genotypes on each block (a hash of the
block), and only pairs sharing a bucket are verified. A pair whose loci that are not exactly
identical (mismatching, dropout-compatible, or untyped in either profile) number at most
``B − 1`` agrees exactly on some block, so it is always found (pigeonhole); ``tolerance`` is how
many dropout-compatible or untyped loci the guarantee covers on top of the mismatches. With
``exhaustive=True`` every pair is compared instead (the slow, complete twin).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dnatrack.genotypes import AlleleCoding, GenotypeTable
from matching import _identity_kernels as kernels
from matching.relationships import genotype_codes

STRINGENCIES = ("high", "moderate")
# Candidate pairs per parallel chunk of runs; small enough to balance two or more threads.
PAIRS_PER_CHUNK = 2_000_000


@dataclass(frozen=True)
class IdentityCriteria:
    """What counts as a match.

    Parameters
    ----------
    stringency : {"high", "moderate"}
    max_mismatches : int, optional
        Mismatching loci allowed at moderate stringency (default 2; always 0 at high).
    min_loci : int
        Minimum loci typed in both profiles (default 8).
    max_dropouts : int, optional
        Dropout-compatible loci allowed at moderate stringency (default: any number;
        always 0 at high).
    tolerance : int
        Untyped or dropout-compatible loci the block search is guaranteed to tolerate on top of
        the mismatches (default 2). Larger values mean more, smaller blocks: complete for more
        pairs, slower.
    """

    stringency: str = "moderate"
    max_mismatches: int | None = None
    min_loci: int = 8
    max_dropouts: int | None = None
    tolerance: int = 2

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
        if self.tolerance < 0:
            raise ValueError("tolerance must not be negative")

    @property
    def mismatches_allowed(self) -> int:
        if self.stringency == "high":
            return 0
        return 2 if self.max_mismatches is None else self.max_mismatches

    def dropouts_allowed(self, n_loci: int) -> int:
        if self.stringency == "high":
            return 0
        return n_loci if self.max_dropouts is None else self.max_dropouts

    @property
    def n_blocks(self) -> int:
        return self.mismatches_allowed + 1 + self.tolerance

    def as_dict(self) -> dict:
        return {
            "stringency": self.stringency,
            "max_mismatches": self.mismatches_allowed,
            "max_dropouts": self.max_dropouts if self.stringency == "moderate" else 0,
            "min_loci": self.min_loci,
            "tolerance": self.tolerance,
        }


@dataclass(eq=False)
class IdentityHits:
    """Matching pairs; ``query_index < target_index`` index the searched table."""

    query_index: np.ndarray
    target_index: np.ndarray
    loci_compared: np.ndarray
    identical: np.ndarray
    dropout: np.ndarray
    mismatch: np.ndarray

    def __len__(self) -> int:
        return len(self.query_index)

    @classmethod
    def from_rows(cls, rows: np.ndarray) -> IdentityHits:
        rows = rows[np.lexsort((rows[:, 1], rows[:, 0]))] if len(rows) else rows
        return cls(*(rows[:, k].copy() for k in range(6)))

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


def locus_blocks(codes: np.ndarray, missing_codes: np.ndarray, n_blocks: int) -> list[list[int]]:
    """Split loci into ``n_blocks`` groups of similar discriminating power.

    A locus's power is ``−log Σ f_g²`` over its observed genotype frequencies (the chance two
    random profiles share a genotype there); loci are dealt, most powerful first, to the block
    with the least power so far.
    """
    n_loci = codes.shape[1]
    n_blocks = max(1, min(n_blocks, n_loci))
    power = np.zeros(n_loci)
    for locus in range(n_loci):
        typed = codes[:, locus][codes[:, locus] != missing_codes[locus]]
        if typed.size:
            freqs = np.bincount(typed) / typed.size
            power[locus] = -np.log(max(float(np.sum(freqs**2)), 1e-300))
    blocks: list[list[int]] = [[] for _ in range(n_blocks)]
    totals = np.zeros(n_blocks)
    for locus in np.argsort(-power, kind="stable"):
        target = int(np.argmin(totals))
        blocks[target].append(int(locus))
        totals[target] += power[locus]
    return [sorted(block) for block in blocks if block]


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
        Defaults to moderate stringency, 2 mismatches, 8 loci.
    new : ndarray of bool, shape (n_profiles,), optional
        Incremental search: only pairs involving at least one ``True`` profile are reported.
    exhaustive : bool
        Compare every pair (quadratic; the reference the block search is tested against).
    progress : callable, optional
        Called with 1 after each block (or row chunk, when exhaustive).
    """
    criteria = criteria or IdentityCriteria()
    coding = AlleleCoding.from_tables(table)
    alleles = coding.encode(table)
    codes = genotype_codes(alleles, coding.n_alleles)
    missing = (coding.n_alleles * (coding.n_alleles + 1) // 2).astype(np.int32)
    is_new = np.zeros(0, dtype=np.bool_) if new is None else np.asarray(new, dtype=np.bool_)
    if new is not None and is_new.shape != (table.n_profiles,):
        raise ValueError("new must be one flag per profile")
    limits = (
        criteria.min_loci,
        criteria.mismatches_allowed,
        criteria.dropouts_allowed(table.n_loci),
    )
    if table.n_profiles < 2 or table.n_loci == 0:
        return IdentityHits.from_rows(np.empty((0, 6), dtype=np.int64))
    if exhaustive:
        return _exhaustive(alleles, codes, missing, is_new, limits, progress)

    blocks = locus_blocks(codes, missing, criteria.n_blocks)
    block_loci = np.array([locus for block in blocks for locus in block], dtype=np.int64)
    block_starts = np.cumsum([0] + [len(block) for block in blocks]).astype(np.int64)
    found = []
    for block in range(len(blocks)):
        keys = kernels.block_keys(codes, missing, block_loci, block_starts, block)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        boundaries = np.flatnonzero(np.diff(sorted_keys)) + 1
        run_starts = np.concatenate([[0], boundaries, [len(keys)]]).astype(np.int64)
        sizes = np.diff(run_starts)
        keep = (sizes > 1) & (sorted_keys[run_starts[:-1]] != kernels.NO_KEY)
        found.append(
            _verify_block(order, run_starts[:-1][keep], sizes[keep], is_new, alleles, codes, missing,
                          block_loci, block_starts, block, limits)
        )
        if progress is not None:
            progress(1)
    rows = np.concatenate(found) if found else np.empty((0, 6), dtype=np.int64)
    return IdentityHits.from_rows(rows)


def _verify_block(order, starts, sizes, is_new, alleles, codes, missing, block_loci,
                  block_starts, block, limits) -> np.ndarray:
    """Verify the candidate pairs of one block's runs; returns rows (i, j, counts…)."""
    if len(starts) == 0:
        return np.empty((0, 6), dtype=np.int64)
    # The runs laid end to end in a new order array, so run r is run_order[bounds[r]:bounds[r+1]].
    run_order = np.concatenate([order[s : s + m] for s, m in zip(starts, sizes, strict=True)])
    bounds = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    pairs = sizes.astype(np.float64) * (sizes - 1) / 2
    cumulative = np.cumsum(pairs)
    n_chunks = max(1, int(np.ceil(cumulative[-1] / PAIRS_PER_CHUNK)))
    cuts = np.searchsorted(cumulative, np.arange(1, n_chunks) * cumulative[-1] / n_chunks)
    chunk_starts = np.unique(np.concatenate([[0], cuts + 1, [len(sizes)]])).astype(np.int64)
    chunk_starts = chunk_starts[chunk_starts <= len(sizes)]
    capacity = 256
    while True:
        out, counts = kernels.verify_runs(
            run_order.astype(np.int64), bounds, chunk_starts, is_new, alleles, codes, missing,
            block_loci, block_starts, block, *limits, capacity,
        )
        if counts.max(initial=0) <= capacity:
            break
        capacity = int(counts.max())
    keep = np.arange(capacity)[None, :] < counts[:, None]
    return out[keep]


def _exhaustive(alleles, codes, missing, is_new, limits, progress) -> IdentityHits:
    n = codes.shape[0]
    rows_per_call = 4096
    parts = []
    for start in range(0, n, rows_per_call):
        stop = min(start + rows_per_call, n)
        capacity = 16
        while True:
            out, counts = kernels.exhaustive_pairs(
                alleles, codes, missing, is_new, *limits, start, stop, capacity
            )
            if counts.max(initial=0) <= capacity:
                break
            capacity = int(counts.max())
        parts.append(out[np.arange(capacity)[None, :] < counts[:, None]])
        if progress is not None:
            progress(1)
    return IdentityHits.from_rows(np.concatenate(parts))
