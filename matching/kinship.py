"""Kinship search: every pair of profiles whose relationship LR passes a cutoff (DESIGN 5.4).

For each pair the engine sums per-locus ``log10 LR`` tables (:mod:`matching.relationships`) for
all relationships at once, over the loci typed in both profiles, and keeps the pairs where some
relationship reaches its cutoff with at least ``min_loci`` loci compared. Rows are processed in
blocks in parallel (numba ``prange``) or as Dask tasks; the output is the list of pairs, never
the N×N matrix. A coarse first pass over 16-bit upper bounds of the tables, all four
relationships in one integer add per locus, leaves only the few pairs that may pass to be
summed exactly (:mod:`matching._kinship_kernels`), so results equal the plain float64 scan.

Examples
--------
>>> from dnatrack.reference import load_reference_set
>>> ref = load_reference_set("savanna_elephant_simulated")          # doctest: +SKIP
>>> search = KinshipSearch.from_reference(ref.table, theta=0.047)   # doctest: +SKIP
>>> hits = search.all_pairs(seized)                                  # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from dnatrack.genotypes import AlleleCoding, GenotypeTable
from matching import _kinship_kernels as kernels
from matching.calibration import Calibration
from matching.frequencies import AlleleCounts, allele_counts, point_frequencies
from matching.relationships import (
    RELATIONSHIPS,
    ErrorModel,
    KinshipTables,
    genotype_codes,
    kinship_tables,
)

#: Default log10 LR cutoffs, used until a calibration (``dnatrack calibrate``) provides better
#: ones for a reference set and number of loci.
DEFAULT_CUTOFFS: dict[str, float] = {
    "same_animal": 6.0,
    "parent_offspring": 4.0,
    "full_sibling": 4.0,
    "half_sibling": 3.0,
}
DEFAULT_MIN_LOCI = 8
SAME_ANIMAL = "same_animal"
ROWS_PER_BLOCK = 64
# Pairs per chunk of row blocks: a few seconds of work, so progress moves and Dask tasks are
# large enough to amortise their overhead.
PAIRS_PER_CHUNK = 2e8


@dataclass(eq=False)
class PairHits:
    """Pairs found by a search.

    Attributes
    ----------
    query_index, target_index : ndarray of int64, shape (n_pairs,)
        Row of each pair in the query and target tables (the same table for all-pairs).
    log10_lr : ndarray of float64, shape (n_pairs, n_relationships)
    loci_compared : ndarray of int32, shape (n_pairs,)
    relationships : tuple of str
    passes : ndarray of bool, shape (n_pairs, n_relationships)
        Which relationships the pair may be called (:meth:`KinshipSearch.supported`).
    """

    query_index: np.ndarray
    target_index: np.ndarray
    log10_lr: np.ndarray
    loci_compared: np.ndarray
    relationships: tuple[str, ...]
    passes: np.ndarray

    def __len__(self) -> int:
        return len(self.query_index)

    @classmethod
    def empty(cls, relationships: tuple[str, ...]) -> PairHits:
        return cls(
            np.empty(0, np.int64),
            np.empty(0, np.int64),
            np.empty((0, len(relationships))),
            np.empty(0, np.int32),
            relationships,
            np.empty((0, len(relationships)), dtype=bool),
        )

    @classmethod
    def concat(cls, parts: Sequence[PairHits]) -> PairHits:
        """Join partial results, ordered by (query, target)."""
        first = parts[0]
        joined = cls(
            np.concatenate([p.query_index for p in parts]),
            np.concatenate([p.target_index for p in parts]),
            np.concatenate([p.log10_lr for p in parts]),
            np.concatenate([p.loci_compared for p in parts]),
            first.relationships,
            np.concatenate([p.passes for p in parts]),
        )
        order = np.lexsort((joined.target_index, joined.query_index))
        return joined.take(order)

    def take(self, rows: np.ndarray) -> PairHits:
        return PairHits(
            self.query_index[rows],
            self.target_index[rows],
            self.log10_lr[rows],
            self.loci_compared[rows],
            self.relationships,
            self.passes[rows],
        )

    @property
    def best_relationship(self) -> np.ndarray:
        """Index of the most likely relationship among those passing their cutoff."""
        passing = np.where(self.passes, self.log10_lr, -np.inf)
        return np.argmax(passing, axis=1) if len(self) else np.empty(0, np.int64)

    def records(self, query_ids: np.ndarray, target_ids: np.ndarray) -> list[dict]:
        """One dict per pair: ``sample1, sample2, relationship, log10_lr, loci_compared`` and
        ``log10_lr_<relationship>`` for every relationship tested."""
        best = self.best_relationship
        out = []
        for k in range(len(self)):
            row = {
                "sample1": str(query_ids[self.query_index[k]]),
                "sample2": str(target_ids[self.target_index[k]]),
                "relationship": self.relationships[best[k]],
                "log10_lr": round(float(self.log10_lr[k, best[k]]), 6),
                "loci_compared": int(self.loci_compared[k]),
            }
            for r, name in enumerate(self.relationships):
                row[f"log10_lr_{name}"] = round(float(self.log10_lr[k, r]), 6)
            out.append(row)
        return out


@dataclass
class KinshipSearch:
    """A configured kinship search against fixed allele frequencies.

    Build it with :meth:`from_reference`, then call :meth:`all_pairs` or :meth:`new_vs_existing`.

    Parameters
    ----------
    counts : AlleleCounts
        Reference allele counts (pooled into one population); the frequencies used are point
        frequencies with the NRC II floor, so alleles unseen in the reference are allowed.
    theta : float
        Co-ancestry coefficient for the Balding–Nichols formula.
    errors : ErrorModel
        Genotyping error rates folded into every locus table.
    relationships : tuple of str
        Relationships tested against "unrelated".
    cutoffs : mapping of str to float
        log10 LR cutoff per relationship (ignored when ``calibration`` is given).
    min_loci : int
        Minimum loci typed in both profiles for a pair to be reported.
    calibration : Calibration, optional
        Cutoffs per relationship and number of loci compared (``dnatrack calibrate``); it
        must have been made with the same θ and error model.
    """

    counts: AlleleCounts
    theta: float = 0.0
    errors: ErrorModel = field(default_factory=ErrorModel)
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS)
    cutoffs: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CUTOFFS))
    min_loci: int = DEFAULT_MIN_LOCI
    calibration: Calibration | None = None

    def __post_init__(self) -> None:
        self.relationships = tuple(self.relationships)
        if self.calibration is not None:
            self._check_calibration(self.calibration)
            lowest = self.calibration.cutoff_matrix(self.relationships, len(self.loci))
            usable = lowest[min(self.min_loci, len(lowest) - 1) :]
            self.cutoffs = dict(
                zip(self.relationships, usable.min(axis=0).tolist(), strict=True)
            )
        unknown = [r for r in self.relationships if r not in RELATIONSHIPS]
        if unknown or not self.relationships:
            raise ValueError(
                f"relationships must be among {', '.join(RELATIONSHIPS)}; got {unknown or 'none'}"
            )
        missing = [r for r in self.relationships if r not in self.cutoffs]
        if missing:
            raise ValueError(f"no cutoff for {', '.join(missing)}")
        if not 0.0 <= self.theta < 1.0:
            raise ValueError(f"theta must be in [0, 1), got {self.theta}")
        if self.min_loci < 1:
            raise ValueError("min_loci must be at least 1")
        if len(self.relationships) > kernels.N_CHANNELS:
            raise ValueError(f"at most {kernels.N_CHANNELS} relationships at once")
        if len(self.counts.populations) != 1:
            self.counts = self.counts.pooled()
        self._tables: KinshipTables | None = None

    def _check_calibration(self, calibration: Calibration) -> None:
        missing = [r for r in self.relationships if r not in calibration.relationships]
        if missing:
            raise ValueError(f"the calibration has no cutoffs for {', '.join(missing)}")
        if calibration.loci and not set(self.loci) <= set(calibration.loci):
            raise ValueError(
                "the calibration was made for other loci: "
                f"{sorted(set(self.loci) - set(calibration.loci))} are not in it"
            )
        if abs(calibration.theta - self.theta) > 1e-12 or calibration.errors != self.errors:
            raise ValueError(
                f"the calibration was made with theta={calibration.theta} and "
                f"{calibration.errors}, the search uses theta={self.theta} and {self.errors}"
            )

    def cutoffs_for(self, loci_compared: np.ndarray) -> np.ndarray:
        """Cutoff applied to pairs compared at ``loci_compared`` loci, float64
        (n_pairs, n_relationships)."""
        loci_compared = np.asarray(loci_compared, dtype=np.int64)
        if self.calibration is None:
            return np.broadcast_to(self.cutoff_array, (len(loci_compared), len(self.relationships)))
        matrix = self.calibration.cutoff_matrix(self.relationships, len(self.loci))
        return matrix[loci_compared]

    def passes(self, log10_lr: np.ndarray, loci_compared: np.ndarray) -> np.ndarray:
        """Which relationships reach their cutoff, bool (n_pairs, n_relationships)."""
        return log10_lr >= self.cutoffs_for(loci_compared)

    def supported(self, log10_lr: np.ndarray, loci_compared: np.ndarray) -> np.ndarray:
        """Which relationships a pair may be called, bool (n_pairs, n_relationships): those
        reaching their cutoff, the same animal only when its LR also beats every other
        relationship tested (DESIGN 8) — a duplicate is more likely the same animal than a
        sibling, or it is not called one."""
        supported = self.passes(log10_lr, loci_compared)
        if SAME_ANIMAL in self.relationships and len(self.relationships) > 1:
            same = self.relationships.index(SAME_ANIMAL)
            others = np.delete(log10_lr, same, axis=1).max(axis=1)
            supported[:, same] &= log10_lr[:, same] > others
        return supported

    @classmethod
    def from_reference(
        cls,
        reference: GenotypeTable,
        *query_tables: GenotypeTable,
        **options,
    ) -> KinshipSearch:
        """A search using the pooled allele frequencies of ``reference``.

        ``query_tables`` are the tables that will be searched: their alleles unseen in the
        reference are added to the coding (with the frequency floor) so they can be scored.
        """
        loci = reference.loci
        coding = AlleleCoding.from_tables(reference)
        for table in query_tables:
            coding = coding.extend(table.select_loci(loci))
        counts = allele_counts(reference.replace(population=None), coding)
        return cls(counts, **options)

    @property
    def loci(self) -> tuple[str, ...]:
        return self.counts.loci

    @property
    def cutoff_array(self) -> np.ndarray:
        return np.array([self.cutoffs[r] for r in self.relationships], dtype=np.float64)

    @property
    def tables(self) -> KinshipTables:
        if self._tables is None:
            freqs = point_frequencies(self.counts, floor=True)[0]
            # Reference alleles come first in the coding; the rest are seen only in queries.
            n_reference = (self.counts.counts[0] > 0).sum(axis=1)
            self._tables = kinship_tables(
                freqs, self.counts.coding.n_alleles, self.theta, self.relationships,
                self.errors, n_reference_alleles=n_reference,
            )
        return self._tables

    def parameters(self) -> dict:
        """Everything that determines the result, for reports and output headers."""
        return {
            "theta": self.theta,
            **self.errors.as_dict(),
            "relationships": list(self.relationships),
            "cutoffs": {r: self.cutoffs[r] for r in self.relationships},
            "min_loci": self.min_loci,
            "cutoffs_applied": self.applied_cutoffs(),
            "loci": list(self.loci),
            "calibration": None if self.calibration is None else {
                "reference": self.calibration.reference,
                "false_positive_rate": self.calibration.false_positive_rate,
                "cutoffs": self.calibration.to_dict()["cutoffs"],
            },
        }

    def applied_cutoffs(self) -> dict[str, dict[str, float | None]]:
        """The cutoff applied to a pair for each number of loci compared it may have, from
        ``min_loci`` to all loci: ``{relationship: {"m": cutoff}}`` (``None`` where no pair
        is reported)."""
        counts = np.arange(self.min_loci, len(self.loci) + 1)
        matrix = self.cutoffs_for(counts)
        return {
            name: {str(m): (float(c) if np.isfinite(c) else None)
                   for m, c in zip(counts.tolist(), matrix[:, r].tolist(), strict=True)}
            for r, name in enumerate(self.relationships)
        }

    def codes(self, table: GenotypeTable) -> np.ndarray:
        """Genotype codes (int32, n × n_loci) of ``table`` at this search's loci."""
        try:
            aligned = table.select_loci(self.loci)
        except KeyError as error:
            raise ValueError(f"the genotypes lack a reference locus: {error.args[0]}") from None
        coding = self.counts.coding
        try:
            allele_codes = coding.encode(aligned)
        except ValueError as error:
            raise ValueError(
                f"{error}; build the search with this table as a query table "
                "(KinshipSearch.from_reference(reference, table))"
            ) from None
        return genotype_codes(allele_codes, coding.n_alleles)

    def score_pairs(
        self, table: GenotypeTable, rows: np.ndarray, cols: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """log10 LRs (float64, n_pairs × n_relationships) and loci compared (int32) of chosen
        pairs of ``table``, whatever their LR — e.g. pairs another search found."""
        codes = self.codes(table)
        rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)
        tables = self.tables
        total = np.zeros((len(rows), len(self.relationships)))
        compared = np.zeros(len(rows), dtype=np.int32)
        for locus in range(len(self.loci)):
            block = tables.locus_table(locus)
            total += block[codes[rows, locus], codes[cols, locus]]
            missing = tables.strides[locus] - 1
            compared += (codes[rows, locus] != missing) & (codes[cols, locus] != missing)
        return total, compared

    # ------------------------------------------------------------------ searches
    def all_pairs(
        self,
        table: GenotypeTable,
        progress: Callable[[int], None] | None = None,
        dask_client=None,
    ) -> PairHits:
        """Every pair ``(i, j)``, ``i < j``, of ``table`` passing a cutoff.

        ``progress`` is called with the number of rows finished after each chunk; with a Dask
        ``dask_client`` the same row blocks run as tasks on the cluster.
        """
        codes = self.codes(table)
        return self._search(codes, codes, True, progress, dask_client)

    def new_vs_existing(
        self,
        new: GenotypeTable,
        existing: GenotypeTable,
        progress: Callable[[int], None] | None = None,
        dask_client=None,
        include_new_pairs: bool = True,
    ) -> PairHits:
        """Pairs between ``new`` profiles and ``existing`` ones (and among the new ones).

        Indices refer to the concatenation ``new`` then ``existing`` in both columns when
        ``include_new_pairs`` is true; otherwise ``query_index`` is a row of ``new`` and
        ``target_index`` a row of ``existing``.
        """
        new_codes = self.codes(new)
        existing_codes = self.codes(existing)
        cross = self._search(new_codes, existing_codes, False, progress, dask_client)
        if not include_new_pairs:
            return cross
        shifted = PairHits(
            cross.query_index,
            cross.target_index + len(new),
            cross.log10_lr,
            cross.loci_compared,
            cross.relationships,
            cross.passes,
        )
        among_new = self._search(new_codes, new_codes, True, None, dask_client)
        return PairHits.concat([among_new, shifted])

    def _search(self, query_codes, target_codes, triangular, progress, dask_client) -> PairHits:
        n_query = query_codes.shape[0]
        if n_query == 0 or target_codes.shape[0] == 0:
            return PairHits.empty(self.relationships)
        task = _BlockTask(self, query_codes, target_codes, triangular)
        chunks = _row_chunks(n_query, triangular, target_codes.shape[0])
        if dask_client is not None:
            from matching.distributed import run_blocks

            parts = run_blocks(dask_client, task, chunks, progress)
        else:
            parts = []
            for chunk in chunks:
                parts.append(task(chunk))
                if progress is not None:
                    progress(int(sum(stop - start for start, stop in chunk)))
        return PairHits.concat(parts)


@dataclass
class _BlockTask:
    """One call of the scan kernel over a set of row blocks (picklable for Dask)."""

    search: KinshipSearch
    query_codes: np.ndarray
    target_codes: np.ndarray
    triangular: bool

    def __post_init__(self) -> None:
        self.tables = self.search.tables.padded(kernels.N_CHANNELS)
        n_rel = len(self.search.relationships)
        # Padding channels get a cutoff no sum reaches.
        self.cutoffs = np.full(kernels.N_CHANNELS, np.inf)
        self.cutoffs[:n_rel] = self.search.cutoff_array
        n_loci = self.target_codes.shape[1]
        self.packed, self.thresholds = kernels.pack_lanes(
            self.tables.values, self.cutoffs, n_loci)
        self.width = int(self.tables.strides.max(initial=1))
        self.target_index = np.ascontiguousarray(
            self.target_codes + (np.arange(n_loci) * self.width)[None, :], dtype=np.int32)
        missing = (self.tables.strides - 1).astype(np.int32)
        self.query_bits = kernels.typed_bits(self.query_codes, missing)
        self.target_bits = (
            self.query_bits if self.triangular else kernels.typed_bits(self.target_codes, missing)
        )
        self.target_typed = (self.target_codes != missing[None, :]).sum(axis=1).astype(np.int64)

    def __call__(self, blocks: list[tuple[int, int]]) -> PairHits:
        search = self.search
        tables = self.tables
        starts = np.array([b[0] for b in blocks], dtype=np.int64)
        stops = np.array([b[1] for b in blocks], dtype=np.int64)
        capacity = 1024
        while True:
            rows, cols, lr, loci, counts = kernels.scan_pairs(
                self.query_codes,
                self.target_index,
                self.query_bits,
                self.target_bits,
                self.target_typed,
                self.packed,
                self.width,
                tables.values,
                tables.offsets,
                tables.strides,
                self.thresholds,
                self.cutoffs,
                search.min_loci,
                starts,
                stops,
                self.triangular,
                capacity,
            )
            if counts.max(initial=0) <= capacity:
                break
            capacity = int(counts.max())  # rerun with room for the busiest block
        keep = np.arange(capacity)[None, :] < counts[:, None]
        log10_lr = lr[keep][:, : len(search.relationships)]
        passes = search.supported(log10_lr, loci[keep])
        # With a calibration the kernel ran at the lowest cutoffs; drop pairs that miss the
        # cutoff for their own number of loci compared, or whose only passing relationship is
        # the same animal while another is more likely.
        hit = passes.any(axis=1)
        return PairHits(
            rows[keep][hit],
            cols[keep][hit],
            log10_lr[hit],
            loci[keep][hit],
            search.relationships,
            passes[hit],
        )


def _row_chunks(n_rows: int, triangular: bool, n_target: int) -> list[list[tuple[int, int]]]:
    """Row blocks grouped into chunks of similar work, for progress reporting and Dask tasks.

    For a triangular scan, row ``i`` has ``n − i − 1`` pairs; each block is paired with its
    mirror from the other end so every chunk (and each thread's contiguous share of a chunk)
    gets about the same number of pairs.
    """
    blocks = [(s, min(s + ROWS_PER_BLOCK, n_rows)) for s in range(0, n_rows, ROWS_PER_BLOCK)]
    if triangular:
        order = []
        lo, hi = 0, len(blocks) - 1
        while lo <= hi:
            order.append(blocks[lo])
            if hi != lo:
                order.append(blocks[hi])
            lo, hi = lo + 1, hi - 1
        blocks = order
    pairs_per_block = max(n_target, 1) * ROWS_PER_BLOCK / (2 if triangular else 1)
    per_chunk = max(2, int(math.ceil(PAIRS_PER_CHUNK / pairs_per_block)))
    per_chunk += per_chunk % 2  # keep mirror pairs together
    return [blocks[k : k + per_chunk] for k in range(0, len(blocks), per_chunk)]
