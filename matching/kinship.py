"""Kinship search: every pair of profiles whose relationship LR passes a cutoff (DESIGN 5.4).

For each pair the engine sums per-locus ``log10 LR`` tables (:mod:`matching.relationships`) for
all relationships at once, over the loci typed in both profiles, and keeps the pairs where some
relationship reaches its cutoff with at least ``min_loci`` loci compared. Rows are processed in
blocks in parallel (numba ``prange``) or as Dask tasks; the output is the list of pairs, never
the N×N matrix. A coarse first pass over 16-bit upper bounds of the tables, all four
relationships in one integer add per locus, leaves only the few pairs that may pass to be
summed exactly (:mod:`matching._kinship_kernels`), so results equal the plain float64 scan.

Which frequencies score a pair
------------------------------
Pooled reference frequencies with θ = F_ST (``frequencies="pooled"``) treat every pair as drawn
from one unknown subpopulation: safe, but θ of 0.05–0.1 costs relatives most of their LR. With
``frequencies="population"`` (the default of ``dnatrack match`` and the LIMS,
:data:`DEFAULT_FREQUENCIES`) each profile is assigned to its most likely reference population
and a pair is scored with the frequencies of each of its two profiles' populations (shrunk
towards the pooled ones with F_ST, :func:`matching.relationships.population_frequencies`) and a
within-population θ (:data:`DEFAULT_WITHIN_THETA`, NRC II's 0.01), keeping the *smaller* LR of
the two. Scoring an unrelated pair with a population it does not come from makes its shared
alleles look rarer than they are, so the smaller of the two LRs guards against the one wrong
assignment; structure then no longer inflates false pairs, and relatives keep their evidence.
The search runs each population's rows against all profiles with that population's tables
(twice the work of one triangular scan) and keeps the pairs that pass on both sides.

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
    genotype_alleles,
    genotype_codes,
    kinship_tables,
    population_frequencies,
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
#: How ``dnatrack match`` and the LIMS score pairs (see "Which frequencies score a pair").
DEFAULT_FREQUENCIES = "population"
#: θ within a population when pairs are scored with population frequencies (NRC II 4.10's
#: value for populations without known substructure).
DEFAULT_WITHIN_THETA = 0.01
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
        must have been made with the same frequencies, θ and error model.
    population_counts : AlleleCounts, optional
        Counts of two or more reference populations on the coding of ``counts``: pairs are
        scored with population frequencies (module docstring), ``theta`` being the F_ST that
        shrinks them towards the pooled ones.
    within_theta : float
        θ within a population, with ``population_counts``.
    """

    counts: AlleleCounts
    theta: float = 0.0
    errors: ErrorModel = field(default_factory=ErrorModel)
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS)
    cutoffs: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_CUTOFFS))
    min_loci: int = DEFAULT_MIN_LOCI
    calibration: Calibration | None = None
    population_counts: AlleleCounts | None = None
    within_theta: float = DEFAULT_WITHIN_THETA

    def __post_init__(self) -> None:
        self.relationships = tuple(self.relationships)
        if self.population_counts is not None and len(self.population_counts.populations) < 2:
            raise ValueError("population frequencies need two reference populations or more")
        if not 0.0 <= self.within_theta < 1.0:
            raise ValueError(f"within_theta must be in [0, 1), got {self.within_theta}")
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
        self._population_tables: list[KinshipTables] | None = None

    @property
    def frequencies(self) -> str:
        """``"population"`` or ``"pooled"``: which frequencies score a pair."""
        return "pooled" if self.population_counts is None else "population"

    @property
    def table_theta(self) -> float:
        """θ of the LR tables: ``theta`` for pooled frequencies, ``within_theta`` for
        population ones."""
        return self.theta if self.population_counts is None else self.within_theta

    def _check_calibration(self, calibration: Calibration) -> None:
        missing = [r for r in self.relationships if r not in calibration.relationships]
        if missing:
            raise ValueError(f"the calibration has no cutoffs for {', '.join(missing)}")
        if calibration.loci and not set(self.loci) <= set(calibration.loci):
            raise ValueError(
                "the calibration was made for other loci: "
                f"{sorted(set(self.loci) - set(calibration.loci))} are not in it"
            )
        if calibration.frequencies != self.frequencies:
            raise ValueError(f"the calibration scored pairs with {calibration.frequencies} "
                             f"frequencies, the search with {self.frequencies} ones")
        if abs(calibration.theta - self.table_theta) > 1e-12 or calibration.errors != self.errors:
            raise ValueError(
                f"the calibration was made with theta={calibration.theta} and "
                f"{calibration.errors}, the search uses theta={self.table_theta} and "
                f"{self.errors}"
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
        ``frequencies="population"`` scores pairs with the frequencies of ``reference``'s
        populations (it needs two or more); the default is the pooled frequencies.
        """
        frequencies = options.pop("frequencies", "pooled")
        if frequencies not in ("pooled", "population"):
            raise ValueError(f"frequencies must be pooled or population, got {frequencies!r}")
        loci = reference.loci
        coding = AlleleCoding.from_tables(reference)
        for table in query_tables:
            coding = coding.extend(table.select_loci(loci))
        counts = allele_counts(reference.replace(population=None), coding)
        if frequencies == "population":
            if reference.population is None or len(reference.unique_populations()) < 2:
                raise ValueError("population frequencies need a reference with two "
                                 "populations or more")
            options["population_counts"] = allele_counts(reference, coding)
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

    @property
    def population_tables(self) -> list[KinshipTables]:
        """LR tables of each reference population (population frequencies only)."""
        if self._population_tables is None:
            freqs = population_frequencies(self.population_counts, self.theta)
            n_reference = (self.counts.counts[0] > 0).sum(axis=1)
            self._population_tables = [
                kinship_tables(f, self.counts.coding.n_alleles, self.within_theta,
                               self.relationships, self.errors, n_reference_alleles=n_reference)
                for f in freqs
            ]
        return self._population_tables

    def assign_populations(self, codes: np.ndarray) -> np.ndarray:
        """Most likely reference population of each profile (int64, n_profiles), from the
        Hardy–Weinberg likelihood of its genotypes under each population's frequencies."""
        return np.argmax(self._population_log_likelihoods(codes), axis=1)

    def population_posteriors(self, codes: np.ndarray) -> np.ndarray:
        """Posterior probability of each reference population for each profile, float64
        (n_profiles, n_populations), from the same likelihoods with equal priors."""
        log_likelihood = self._population_log_likelihoods(codes)
        log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
        posterior = np.exp(log_likelihood)
        return posterior / posterior.sum(axis=1, keepdims=True)

    def _population_log_likelihoods(self, codes: np.ndarray) -> np.ndarray:
        freqs = population_frequencies(self.population_counts, self.theta)
        n_alleles = self.counts.coding.n_alleles
        log_likelihood = np.zeros((codes.shape[0], len(freqs)))
        for locus, count in enumerate(n_alleles):
            a, b = genotype_alleles(int(count))
            f = freqs[:, locus, :count]
            genotype = np.where(a == b, 1.0, 2.0) * f[:, a] * f[:, b]
            # an untyped locus (code G_l) adds nothing
            per_code = np.concatenate([np.log(genotype), np.zeros((len(freqs), 1))], axis=1)
            log_likelihood += per_code[:, codes[:, locus]].T
        return log_likelihood

    def parameters(self) -> dict:
        """Everything that determines the result, for reports and output headers."""
        return {
            "frequencies": self.frequencies,
            "within_theta": None if self.population_counts is None else self.within_theta,
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
        if self.population_counts is None:
            return _summed(self.tables, codes, rows, cols)
        population = self.assign_populations(codes)
        total = np.full((len(rows), len(self.relationships)), np.inf)
        compared = np.zeros(len(rows), dtype=np.int32)
        for side in (rows, cols):
            for k in np.unique(population[side]):
                chosen = population[side] == k
                lr, compared[chosen] = _summed(self.population_tables[k], codes, rows[chosen],
                                               cols[chosen])
                total[chosen] = np.minimum(total[chosen], lr)
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
        if self.population_counts is None:
            hits = self._scan(self.tables, query_codes, target_codes, triangular, progress,
                              dask_client)
        else:
            hits = self._population_scan(query_codes, target_codes, triangular, progress,
                                         dask_client)
        return hits.take(np.flatnonzero(hits.passes.any(axis=1)))

    def _scan(self, tables, query_codes, target_codes, triangular, progress,
              dask_client) -> PairHits:
        """Pairs whose sums over ``tables`` pass a cutoff, ``passes`` already
        :meth:`supported`."""
        task = _BlockTask(self, tables, query_codes, target_codes, triangular)
        chunks = _row_chunks(query_codes.shape[0], triangular, target_codes.shape[0])
        if dask_client is not None:
            from matching.distributed import run_blocks

            parts = run_blocks(dask_client, task, chunks, progress)
        else:
            parts = []
            for chunk in chunks:
                parts.append(task(chunk))
                if progress is not None:
                    progress(int(sum(stop - start for start, stop in chunk)))
        hits = PairHits.concat(parts)
        hits.passes = self.supported(hits.log10_lr, hits.loci_compared)
        return hits

    def _population_scan(self, query_codes, target_codes, triangular, progress,
                         dask_client) -> PairHits:
        """Pairs passing with the frequencies of both profiles' populations (smaller LR)."""
        query_population = self.assign_populations(query_codes)
        target_population = (query_population if triangular
                             else self.assign_populations(target_codes))
        n_target = target_codes.shape[0]

        def one_side(codes, population, others, report):
            """Ordered pairs (row of ``codes``, row of ``others``), each row scored with its
            own population's tables against every row of ``others``."""
            parts = []
            for k in np.unique(population):
                rows = np.flatnonzero(population == k)
                hits = self._scan(self.population_tables[k], np.ascontiguousarray(codes[rows]),
                                  others, False, report, dask_client)
                hits.query_index = rows[hits.query_index]
                parts.append(hits)
            return PairHits.concat(parts)

        first = one_side(query_codes, query_population, target_codes, progress)
        second = first if triangular else one_side(target_codes, target_population,
                                                   query_codes, None)
        if triangular:
            first = first.take(np.flatnonzero(first.query_index < first.target_index))
        # the same pair seen from the other profile's side: (j, i) in `second`
        forward = first.query_index * n_target + first.target_index
        backward = second.target_index * n_target + second.query_index
        _, a, b = np.intersect1d(forward, backward, assume_unique=True, return_indices=True)
        both = first.take(a)
        both.log10_lr = np.minimum(both.log10_lr, second.log10_lr[b])
        both.passes = self.supported(both.log10_lr, both.loci_compared)
        order = np.lexsort((both.target_index, both.query_index))
        return both.take(order)


@dataclass
class _BlockTask:
    """One call of the scan kernel over a set of row blocks (picklable for Dask)."""

    search: KinshipSearch
    kinship_tables: KinshipTables
    query_codes: np.ndarray
    target_codes: np.ndarray
    triangular: bool

    def __post_init__(self) -> None:
        self.tables = self.kinship_tables.padded(kernels.N_CHANNELS)
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
        passes = search.passes(log10_lr, loci[keep])
        # With a calibration the kernel ran at the lowest cutoffs; drop pairs that miss the
        # cutoff for their own number of loci compared.
        hit = passes.any(axis=1)
        return PairHits(
            rows[keep][hit],
            cols[keep][hit],
            log10_lr[hit],
            loci[keep][hit],
            search.relationships,
            passes[hit],
        )


def _summed(tables: KinshipTables, codes: np.ndarray, rows: np.ndarray,
            cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Summed log10 LRs (float64, n_pairs × n_relationships) and loci compared (int32) of
    pairs ``(rows[k], cols[k])`` of ``codes`` over ``tables``."""
    total = np.zeros((len(rows), len(tables.relationships)))
    compared = np.zeros(len(rows), dtype=np.int32)
    for locus in range(len(tables.strides)):
        block = tables.locus_table(locus)
        total += block[codes[rows, locus], codes[cols, locus]]
        missing = tables.strides[locus] - 1
        compared += (codes[rows, locus] != missing) & (codes[cols, locus] != missing)
    return total, compared


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
