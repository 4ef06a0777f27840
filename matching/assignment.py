"""Population assignment of individual samples (DESIGN 5.1, 5.5).

Each sample's genotype is scored under every reference population with the Rannala & Mountain
(1997) posterior predictive (prior ``1/A`` per allele, ``A`` the alleles at the locus over all
reference populations); posteriors use equal population priors and are summed to reporting
units. Only typed loci contribute, so STR and SNP panels and incomplete profiles are handled
alike. Reference animals can be scored leave-one-out: against their own population, their own
alleles are first taken out of the counts.

Each sample is reported under its most likely population (``inferred_collection``) and that
population's reporting unit (``inferred_repunit``), as rubias reports them; the reporting unit
with the largest summed posterior (``repunit_max_posterior``) can differ when a unit holds many
populations that each explain the sample a little.

Whether the true source is in the reference at all is judged under the sample's most likely
population and over exactly the loci it has typed. Two z-scores are reported:

- ``z_score`` is rubias's (``self_assign``, ``infer_mixture``): at each locus, the mean and the
  sample variance (``n - 1``) over the reference animals of a population of their leave-one-out
  log-likelihoods at that locus are taken; a sample's expected mean and variance are the sums of
  those over the loci it has typed, and ``z = (log L - mean) / sqrt(variance)``. Loci where the
  population has no typed animal, or a log-likelihood within ``1.49e-8`` of zero (a locus with a
  single allele; rubias's ``dplyr::near``), count as untyped for the means; a variance from one
  animal is zero. It measures the sample against how the population's own animals fit: prefer
  it beside rubias's output, and wherever populations have enough animals (tens) for a
  per-locus variance. (For samples carrying alleles no reference animal has, rubias counts
  those alleles in ``A``, so its values for such samples differ slightly; see below.)
- ``z_score_exact`` is the log-likelihood against the exact mean and variance of the posterior
  predictive's genotype distribution at the typed loci (with the sample's own alleles out when
  it is scored leave-one-out). It needs no reference animals per locus: prefer it for
  populations of few animals, where a per-locus sample variance is noise; it is the yardstick of
  the unsampled-source rule below. Reference animals fit the predictive worse than its own
  genotypes do, so rubias's yardstick (their average fit) sits lower and its z-scores higher:
  over the reference animals, mean / sd 0.39 / 0.82 against 0.26 / 0.95 on alewife, 0.12 / 1.08
  against 0.04 / 1.10 on Chinook (both means above 0 because each animal is scored under its
  most likely population).

A predictive estimated from few animals is a poor yardstick for a new animal: the animal's own
alleles are not in the counts, rare alleles are missed, and it fits worse than the predictive's
own genotypes do (with 20 animals per population, a Paetkau test simulating from the predictive
flags about 15% of animals from sampled populations at ``alpha = 0.01``). So both rules are
calibrated on the reference animals, each scored leave-one-out: against the rest of the
reference, exactly as a new sample is scored.

- The exclusion test (after Paetkau et al. 2004) simulates new animals of the population by
  taking, at each locus, the leave-one-out score of a random reference animal of that
  population; the p-value is ``(k + 1) / (N + 1)`` for ``k`` of ``N`` simulated animals scoring
  at most the sample, and the sample is flagged when it is below ``alpha``.
- Without simulations, the sample's ``z_score_exact`` is ranked among the reference animals'
  own leave-one-out ``z_score_exact``: it is flagged when
  ``(1 + #{z_i <= z}) / (m + 1) <= alpha`` (a conformal p-value over the ``m`` animals).
  With fewer than ``1/alpha - 1`` reference animals nothing can be flagged this way.

The false-flag rate to expect for samples that do come from the reference is estimated the same
way, as the share of reference animals flagged when each is scored leave-one-out against the
rest (:class:`FlagCalibration`), and is reported with every result. It holds for samples typed
and distributed over the populations like the reference animals; with few animals it is coarse,
hence its 95% interval.

Alleles a sample carries that no reference animal has are scored with count zero and the same
``1/A`` prior weight, ``A`` being left at the reference's count: a sample's score then never
depends on which other samples are assigned with it. Log-likelihoods are natural logs.

Examples
--------
>>> from dnatrack.reference import load_reference_set
>>> reference = load_reference_set("savanna_elephant_simulated")      # doctest: +SKIP
>>> model = AssignmentModel.from_reference(reference)                  # doctest: +SKIP
>>> result = model.assign(seized_tusks, seed=1)                        # doctest: +SKIP
>>> result.records()[0]["inferred_collection"]                         # doctest: +SKIP
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dnatrack.genotypes import MISSING, AlleleCoding, GenotypeTable
from dnatrack.reference import ReferenceSet
from matching import _assignment_kernels as kernels
from matching._rng_kernels import seed_state
from matching.frequencies import AlleleCounts, allele_counts

DEFAULT_EXCLUSION_SIMULATIONS = 10_000
DEFAULT_ALPHA = 0.01
DEFAULT_CHUNK_SIZE = 10_000

#: Per-sample output columns; names shared with rubias's output mean the same thing.
#: ``inferred_repunit`` is the reporting unit of ``inferred_collection`` (the most likely
#: population) and ``repunit_scaled_likelihood`` its summed posterior;
#: ``repunit_max_posterior`` is the reporting unit with the largest summed posterior and
#: ``repunit_max_posterior_scaled_likelihood`` that posterior.
RECORD_COLUMNS = [
    "indiv", "mixture_collection", "collection", "repunit", "inferred_collection",
    "inferred_repunit", "scaled_likelihood", "repunit_scaled_likelihood",
    "repunit_max_posterior", "repunit_max_posterior_scaled_likelihood", "log_likelihood",
    "z_score", "z_score_exact", "exclusion_p_value", "unsampled_source", "n_non_miss_loci",
    "n_miss_loci",
]

#: rubias's ``dplyr::near`` tolerance: a per-locus log-likelihood this close to zero is taken
#: for an untyped locus when the per-locus means and variances are formed.
RUBIAS_ZERO_TOLERANCE = 1.4901161193847656e-08


@dataclass(eq=False)
class AssignmentModel:
    """Reference allele counts arranged for the assignment kernels.

    Parameters
    ----------
    counts : AlleleCounts
        Allele copies per population, against the coding of the reference's own alleles.
    repunits : sequence of str, length n_populations
        Reporting unit of each population (the population's own name when there are none).
    reference : GenotypeTable
        The reference animals the counts come from: scored leave-one-out, they calibrate the
        unsampled-source flag.
    name : str
        Name of the reference, for reports.

    Notes
    -----
    A locus no reference animal is typed at carries no information and is ignored.
    """

    counts: AlleleCounts
    repunits: tuple[str, ...]
    reference: GenotypeTable
    name: str = ""
    n_alleles: np.ndarray = field(init=False, repr=False)
    prior: np.ndarray = field(init=False, repr=False)
    kernel_counts: np.ndarray = field(init=False, repr=False)
    kernel_totals: np.ndarray = field(init=False, repr=False)
    # Leave-one-out scores of the reference animals, by (exclusion simulations, seed).
    _leave_one_out_scores: dict = field(init=False, repr=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.repunits = tuple(str(r) for r in self.repunits)
        n_pop = len(self.counts.populations)
        if n_pop == 0:
            raise ValueError("the reference has no populations")
        if len(self.repunits) != n_pop:
            raise ValueError(f"{len(self.repunits)} reporting units for {n_pop} populations")
        if self.reference.loci != self.counts.loci:
            raise ValueError("the reference genotypes and the allele counts have different loci")
        self.n_alleles = self.counts.coding.n_alleles.astype(np.int64)
        self.prior = np.where(self.n_alleles > 0, 1.0 / np.maximum(self.n_alleles, 1), 1.0)
        # Two slots past the reference's alleles hold the (zero) counts of alleles seen only in
        # queries; a genotype can carry at most two such alleles.
        n_loci = len(self.loci)
        width = int(self.n_alleles.max(initial=0)) + 2
        kernel_counts = np.zeros((n_loci, width, n_pop), dtype=np.float64)
        raw = self.counts.counts.transpose(1, 2, 0).astype(np.float64)
        kernel_counts[:, : raw.shape[1], :] = raw
        self.kernel_counts = np.ascontiguousarray(kernel_counts)
        self.kernel_totals = np.ascontiguousarray(self.kernel_counts.sum(axis=1))

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_reference(
        cls, reference: ReferenceSet, repunit_level: str | None = None
    ) -> AssignmentModel:
        """Model of a :class:`~dnatrack.reference.ReferenceSet` (reporting units at
        ``repunit_level``, the set's default level when ``None``)."""
        units = reference.repunit_of(repunit_level)
        return cls.from_table(reference.table, units, name=reference.name)

    @classmethod
    def from_table(
        cls,
        table: GenotypeTable,
        repunits: Mapping[str, str] | None = None,
        name: str = "",
    ) -> AssignmentModel:
        """Model of a genotype table with population labels.

        ``repunits`` maps population to reporting unit; by default the table's ``repunit``
        column, else each population is its own unit.
        """
        if table.population is None:
            raise ValueError(f"{name or 'reference'}: the genotypes have no population labels")
        populations = table.unique_populations()
        if "" in populations:
            raise ValueError(f"{name or 'reference'}: some animals have an empty population")
        if repunits is None:
            repunits = _repunits_from_column(table, name)
        absent = [p for p in populations if p not in repunits]
        if absent:
            raise ValueError(f"no reporting unit for populations {absent}")
        coding = AlleleCoding.from_tables(table)
        counts = allele_counts(table, coding, populations)
        return cls(counts, tuple(repunits[p] for p in populations), table, name)

    # ------------------------------------------------------------------ properties
    @property
    def loci(self) -> tuple[str, ...]:
        return self.counts.loci

    @property
    def populations(self) -> tuple[str, ...]:
        return self.counts.populations

    @cached_property
    def repunit_names(self) -> tuple[str, ...]:
        """Distinct reporting units, in order of first appearance."""
        return tuple(dict.fromkeys(self.repunits))

    @cached_property
    def population_repunit(self) -> np.ndarray:
        """Index into :attr:`repunit_names` of each population, int64 (n_populations,)."""
        index = {unit: k for k, unit in enumerate(self.repunit_names)}
        return np.array([index[u] for u in self.repunits], dtype=np.int64)

    @cached_property
    def tables(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``log_x, log_x1, log_norm`` lookup tables (see :mod:`matching._assignment_kernels`)."""
        return kernels.log_tables(self.kernel_counts, self.kernel_totals, self.prior)

    @cached_property
    def exact_locus_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Exact mean and variance of each locus's log-likelihood under the posterior
        predictive, float64 (L, P) each."""
        return kernels.locus_log_moments(
            self.kernel_counts, self.kernel_totals, self.prior, self.n_alleles
        )

    @cached_property
    def rubias_locus_moments(self) -> tuple[np.ndarray, np.ndarray]:
        """rubias's per-locus mean and sample variance (``n - 1``) of the reference animals'
        leave-one-out log-likelihoods, by population, float64 (L, P) each (module docstring).
        """
        values, start, size, _ = self.leave_one_out_pools
        n_loci, n_pop = size.shape
        pool = np.repeat(np.arange(n_loci * n_pop), size.ravel())
        kept = (np.abs(values) > RUBIAS_ZERO_TOLERANCE).astype(np.float64)
        n = np.bincount(pool, weights=kept, minlength=n_loci * n_pop)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(n > 0, np.bincount(pool, weights=values * kept,
                                               minlength=n_loci * n_pop) / n, 0.0)
            squares = np.bincount(pool, weights=(values - mean[pool]) ** 2 * kept,
                                  minlength=n_loci * n_pop)
            variance = np.where(n > 1, squares / (n - 1), 0.0)
        return mean.reshape(n_loci, n_pop), variance.reshape(n_loci, n_pop)

    @cached_property
    def reference_population(self) -> np.ndarray:
        """Population (index) of each reference animal, int64 (n_reference,)."""
        index = {p: k for k, p in enumerate(self.populations)}
        return np.array([index[p] for p in self.reference.population], dtype=np.int64)

    @cached_property
    def leave_one_out_pools(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The reference animals' leave-one-out scores per locus, pooled by population:
        ``values, start, size, slot`` (see :func:`~matching._assignment_kernels.
        leave_one_out_pools`)."""
        return kernels.leave_one_out_pools(
            self.encode(self.reference), self.reference_population, self.kernel_counts,
            self.kernel_totals, self.prior, len(self.populations),
        )

    # ------------------------------------------------------------------ encoding
    @cached_property
    def _reference_codes(self) -> np.ndarray:
        return self._encode(self.reference)

    def encode(self, table: GenotypeTable) -> np.ndarray:
        """Allele indices of ``table`` at the model's loci, int16 (n, L, 2), -1 untyped.

        The reference's are encoded once (leave-one-out scores, flag calibration and
        self-assignment all need them); callers must not write into the array.

        Loci of the model the table lacks are untyped; loci of the table the model lacks are
        ignored. Alleles absent from the reference go to the two zero-count slots past the
        reference's alleles (distinct alleles to distinct slots).
        """
        if table is self.reference:
            return self._reference_codes
        return self._encode(table)

    def _encode(self, table: GenotypeTable) -> np.ndarray:
        aligned = self._aligned(table)
        codes = self.counts.coding.extend(aligned).encode(aligned)
        limit = self.n_alleles.astype(np.int16)[None, :]
        first, second = codes[:, :, 0], codes[:, :, 1]
        first_unseen, second_unseen = first >= limit, second >= limit
        mapped = np.empty_like(codes)
        mapped[:, :, 0] = np.where(first_unseen, limit, first)
        second_slot = np.where(first_unseen & (first != second), limit + 1, limit)
        mapped[:, :, 1] = np.where(second_unseen, second_slot, second)
        mapped[:, self.n_alleles == 0, :] = MISSING
        return np.ascontiguousarray(mapped, dtype=np.int16)

    def _aligned(self, table: GenotypeTable) -> GenotypeTable:
        if table.loci == self.loci:
            return table
        shared = [locus for locus in self.loci if locus in set(table.loci)]
        if not shared:
            raise ValueError(
                f"the samples share no locus with the reference {self.name!r} "
                f"(reference loci: {', '.join(self.loci[:5])}…)"
            )
        alleles = np.full((table.n_profiles, len(self.loci), 2), MISSING, dtype=np.int16)
        for j, locus in enumerate(self.loci):
            if locus in shared:
                alleles[:, j, :] = table.alleles[:, table.locus_index(locus), :]
        return GenotypeTable(alleles, table.profile_ids, self.loci)

    def own_populations(self, table: GenotypeTable) -> np.ndarray:
        """Index of each profile's population for leave-one-out scoring, int64 (n,).

        Every profile must be a reference animal: same id, population and genotypes.
        """
        return self.reference_population[self.reference_rows(table)]

    def reference_rows(self, table: GenotypeTable) -> np.ndarray:
        """Row of each profile among the reference animals, int64 (n,).

        Every profile must be a reference animal: same id, population and genotypes.
        """
        lookup = {pid: i for i, pid in enumerate(self.reference.profile_ids)}
        rows = np.array([lookup.get(pid, -1) for pid in table.profile_ids], dtype=np.int64)
        if (rows < 0).any():
            pid = table.profile_ids[np.flatnonzero(rows < 0)[0]]
            raise ValueError(f"profile {pid!r} is not a reference animal; "
                             "leave-one-out applies to reference animals only")
        differs = (self._aligned(table).alleles != self.reference.alleles[rows]).any(axis=(1, 2))
        if differs.any():
            pid = table.profile_ids[np.flatnonzero(differs)[0]]
            raise ValueError(f"profile {pid!r}: genotypes differ from the reference animal's")
        reference_population = self.reference.population[rows]
        if table.population is not None and (table.population != reference_population).any():
            pid = table.profile_ids[np.flatnonzero(table.population != reference_population)[0]]
            raise ValueError(f"profile {pid!r}: population differs from the reference's")
        return rows

    # ------------------------------------------------------------------ scoring
    def log_likelihoods(self, codes: np.ndarray, own: np.ndarray | None = None) -> np.ndarray:
        """Natural log-likelihood of encoded samples under each population, float64 (n, P).

        ``own`` (int64, n) gives the population to score leave-one-out (-1 for none).
        """
        codes = np.ascontiguousarray(codes, dtype=np.int16)
        if own is None:
            own = np.full(codes.shape[0], -1, dtype=np.int64)
        log_x, log_x1, log_norm = self.tables
        return kernels.population_log_likelihoods(
            codes, log_x, log_x1, log_norm, self.kernel_counts, self.kernel_totals, self.prior,
            np.ascontiguousarray(own, dtype=np.int64),
        )

    def z_scores(
        self, codes: np.ndarray, log_likelihood: np.ndarray, population: np.ndarray,
    ) -> np.ndarray:
        """rubias's z-score of each sample's log-likelihood under ``population[i]``, float64
        (n,): against the sums over its typed loci of :attr:`rubias_locus_moments`.

        NaN where that variance is zero (no typed locus, or none that varies).
        """
        mean_table, variance_table = self.rubias_locus_moments
        typed = codes[:, :, 0] >= 0
        mean = (typed * mean_table.T[population]).sum(axis=1)
        variance = (typed * variance_table.T[population]).sum(axis=1)
        return _standardised(log_likelihood[np.arange(len(population)), population], mean,
                             variance)

    def exact_z_scores(
        self, codes: np.ndarray, log_likelihood: np.ndarray, population: np.ndarray,
        own: np.ndarray,
    ) -> np.ndarray:
        """z-score of each sample's log-likelihood under ``population[i]`` against the exact
        moments of the posterior predictive at its typed loci, float64 (n,).

        NaN where the expected variance is zero (no typed locus, or only fixed loci).
        """
        mean_table, variance_table = self.exact_locus_moments
        mean, variance = kernels.sample_log_moments(
            codes, population, own, mean_table, variance_table, self.kernel_counts,
            self.kernel_totals, self.prior, self.n_alleles,
        )
        return _standardised(log_likelihood[np.arange(len(population)), population], mean,
                             variance)

    def exclusion_p_values(
        self, codes: np.ndarray, log_likelihood: np.ndarray, population: np.ndarray,
        reference_row: np.ndarray, n_simulations: int, seed: int, decided_at: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Exclusion p-values under ``population[i]`` and the simulated animals each rests
        on, float64 (n,) and int64 (n,).

        The null scores are those of new animals of the population, resampled locus by locus
        from the reference animals' leave-one-out scores (see the module docstring). Each
        population's ``n_simulations`` animals are drawn once (from its own random stream, so
        the result does not depend on which samples are scored together) and summed over
        exactly the loci each sample has typed. A reference animal scored leave-one-out
        (``reference_row[i] >= 0``, -1 otherwise) against its own population gets draws of its
        own that leave out its own scores, from a stream fixed by its reference row. A
        sample's draws are counted, or an animal's drawn, only until ``decided_at`` of them
        score at most it (:func:`_decided_at`).
        """
        n = len(population)
        observed = log_likelihood[np.arange(n), population]
        base = seed_state(seed)
        values, start, size, slot = self.leave_one_out_pools
        p_values = np.empty(n)
        drawn = np.full(n, n_simulations, dtype=np.int64)
        loo = population == self._own(reference_row)
        if loo.any():
            rows = reference_row[loo]
            p_values[loo], drawn[loo] = kernels.leave_one_out_exclusion_p_values(
                np.ascontiguousarray(codes[loo]), np.ascontiguousarray(observed[loo]),
                np.ascontiguousarray(population[loo]), np.ascontiguousarray(slot[rows]),
                values, start, size, self.kernel_counts, self.kernel_totals, self.prior,
                self.n_alleles, int(n_simulations), base,
                # Streams 0..P-1 belong to the populations' shared draws.
                np.ascontiguousarray(len(self.populations) + rows, dtype=np.int64),
                int(decided_at),
            )
        shared = np.flatnonzero(~loo)
        typed = codes[shared, :, 0] >= 0
        for p in np.unique(population[shared]):
            of_population = population[shared] == p
            rows = shared[of_population]
            simulated = kernels.resample_population(
                values, start, size, self.kernel_counts, self.kernel_totals, self.prior,
                self.n_alleles, int(p), int(n_simulations), base,
            )
            p_values[rows], drawn[rows] = kernels.shared_exclusion_p_values(
                np.ascontiguousarray(simulated.T), np.ascontiguousarray(typed[of_population]),
                np.ascontiguousarray(observed[rows]), int(decided_at),
            )
        return p_values, drawn

    def _own(self, reference_row: np.ndarray) -> np.ndarray:
        """Population scored leave-one-out for each sample (-1 for none), int64 (n,)."""
        return np.where(reference_row >= 0,
                        self.reference_population[np.maximum(reference_row, 0)], -1)

    # ------------------------------------------------------------------ public entry
    def assign(
        self,
        samples: GenotypeTable,
        *,
        leave_one_out: bool = False,
        exclusion_simulations: int = DEFAULT_EXCLUSION_SIMULATIONS,
        seed: int = 0,
        alpha: float = DEFAULT_ALPHA,
        exclusion_stop_early: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        dask_client=None,
        progress: Callable[[int], None] | None = None,
    ) -> Assignment:
        """Assign every sample to the reference populations.

        Parameters
        ----------
        samples : GenotypeTable
        leave_one_out : bool
            Score reference animals against their own population without their own alleles.
        exclusion_simulations : int
            Simulated new animals per population for the exclusion test (0 to skip it and
            flag by z-score rank); every reference animal gets as many for the calibration.
        seed : int
            Seed of the simulations. Each population's simulated animals come from their own
            stream, and a reference animal scored leave-one-out from a stream of its reference
            row, so results do not depend on which samples are assigned together.
        alpha : float
            Significance level for flagging unsampled sources; the false-flag rate to expect
            is estimated on the reference (:class:`FlagCalibration`).
        exclusion_stop_early : bool
            Stop a sample's (or reference animal's) exclusion simulations once enough of them
            fit no better to settle its p-value at ``alpha`` or above (:func:`_decided_at`):
            flags and the p-values below ``alpha`` are those of the full run, larger p-values
            rest on the simulations drawn until then. ``False`` uses all.
        chunk_size : int
            Rows per chunk (the unit of progress reports and of Dask tasks).
        dask_client : dask.distributed.Client or str, optional
            Run the chunks on this cluster; results are identical to the local run.
        progress : callable, optional
            Called with the number of rows of each finished chunk.

        Returns
        -------
        Assignment
        """
        _check_settings(exclusion_simulations, seed, alpha, chunk_size)
        n_simulations = int(exclusion_simulations)
        decided_at = _decided_at(n_simulations, alpha, exclusion_stop_early)
        codes = self.encode(samples)
        reference_row = (
            self.reference_rows(samples) if leave_one_out
            else np.full(samples.n_profiles, -1, dtype=np.int64)
        )
        joined = self._score(codes, reference_row, n_simulations, seed, decided_at, chunk_size,
                             dask_client, progress)
        if leave_one_out and np.array_equal(np.sort(reference_row),
                                            np.arange(self.reference.n_profiles)):
            # The whole reference scored leave-one-out is the calibration itself.
            in_reference_order = {key: np.empty_like(values) for key, values in joined.items()}
            for key, values in joined.items():
                in_reference_order[key][reference_row] = values
            self._leave_one_out_scores.setdefault(
                _calibration_key(n_simulations, seed, decided_at), in_reference_order
            )
        calibration = self.flag_calibration(n_simulations, seed, alpha,
                                            stop_early=exclusion_stop_early,
                                            chunk_size=chunk_size, dask_client=dask_client)
        return Assignment(
            profile_ids=samples.profile_ids,
            populations=self.populations,
            repunit_names=self.repunit_names,
            population_repunit=self.population_repunit,
            log_likelihood=joined["log_likelihood"],
            n_typed=(codes[:, :, 0] >= 0).sum(axis=1),
            n_loci=len(self.loci),
            z_score=joined["z_score"],
            z_score_exact=joined["z_score_exact"],
            exclusion_p_value=joined["exclusion_p_value"],
            calibration=calibration,
            population=samples.population,
            repunit=samples.repunit,
            group=samples.group,
            leave_one_out=leave_one_out,
            seed=seed,
        )

    def flag_calibration(
        self,
        exclusion_simulations: int,
        seed: int,
        alpha: float,
        *,
        stop_early: bool = True,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        dask_client=None,
        progress: Callable[[int], None] | None = None,
    ) -> FlagCalibration:
        """The unsampled-source flag calibrated on the reference animals, each scored
        leave-one-out against the rest with the same settings as the samples.

        The scores are kept on the model, so they are computed once per number of
        simulations, seed and stopping count (the z-scores once); :meth:`assign` calls this,
        and a caller that wants to show progress over the reference animals can call it
        first. ``progress`` is called with the number of animals of each finished chunk (not
        at all when already computed).
        """
        _check_settings(exclusion_simulations, seed, alpha, chunk_size)
        exclusion_simulations = int(exclusion_simulations)
        decided_at = _decided_at(exclusion_simulations, alpha, stop_early)
        key = _calibration_key(exclusion_simulations, seed, decided_at)
        scores = self._leave_one_out_scores.get(key)
        if scores is None and exclusion_simulations == 0 and self._leave_one_out_scores:
            # The z-scores of any earlier run are the same.
            scores = next(iter(self._leave_one_out_scores.values()))
        if scores is None:
            rows = np.arange(self.reference.n_profiles, dtype=np.int64)
            scores = self._score(self.encode(self.reference), rows, exclusion_simulations, seed,
                                 decided_at, chunk_size, dask_client, progress)
            self._leave_one_out_scores[key] = scores
        scored = np.isfinite(scores["z_score_exact"])
        p_values = scores["exclusion_p_value"][scored]
        return FlagCalibration(
            alpha=alpha,
            exclusion_simulations=exclusion_simulations,
            loo_z_scores=np.sort(scores["z_score_exact"][scored]),
            loo_p_values=p_values if exclusion_simulations > 0 else np.full_like(p_values, np.nan),
            loo_simulations_drawn=scores["exclusion_simulations_drawn"][scored],
            stops_early=decided_at <= exclusion_simulations,
        )

    def _score(
        self, codes: np.ndarray, reference_row: np.ndarray, n_simulations: int, seed: int,
        decided_at: int, chunk_size: int, dask_client,
        progress: Callable[[int], None] | None,
    ) -> dict[str, np.ndarray]:
        """Log-likelihoods, z-scores and exclusion p-values of encoded samples, chunk by
        chunk, locally or on Dask."""
        task = _AssignmentTask(self, codes, reference_row, n_simulations, seed, decided_at)
        n = codes.shape[0]
        chunks = [[(start, min(start + chunk_size, n))] for start in range(0, n, chunk_size)]
        if dask_client is not None:
            from matching.distributed import run_blocks

            parts = run_blocks(dask_client, task, chunks, progress)
        else:
            parts = []
            for chunk in chunks:
                parts.append(task(chunk))
                if progress is not None:
                    progress(sum(stop - start for start, stop in chunk))
        return _join_parts(parts, n, len(self.populations))


def _standardised(observed: np.ndarray, mean: np.ndarray, variance: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(variance > 0, (observed - mean) / np.sqrt(variance), np.nan)


def _check_settings(exclusion_simulations, seed, alpha, chunk_size) -> None:
    """Reject bad settings before any work."""
    if isinstance(exclusion_simulations, bool) or not isinstance(
        exclusion_simulations, int | np.integer
    ) or exclusion_simulations < 0:
        raise ValueError(
            f"exclusion_simulations must be a whole number ≥ 0, got {exclusion_simulations!r}"
        )
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie strictly between 0 and 1, got {alpha}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive whole number, got {chunk_size!r}")
    seed_state(seed)


def _decided_at(exclusion_simulations: int, alpha: float, stop_early: bool) -> int:
    """Fewest simulated animals scoring at most an animal that settle its p-value at
    ``alpha`` or above: ``k`` of them give ``(k + 1) / (N + 1) >= alpha`` whatever the rest
    of the ``N`` draw, so the flag is decided. ``N + 1`` (never reached) without stopping."""
    if not stop_early:
        return exclusion_simulations + 1
    k = max(math.ceil(alpha * (exclusion_simulations + 1)) - 1, 0)
    while (k + 1) / (exclusion_simulations + 1) < alpha:
        k += 1
    while k > 0 and k / (exclusion_simulations + 1) >= alpha:
        k -= 1
    return max(k, 1)


def _calibration_key(exclusion_simulations: int, seed: int,
                     decided_at: int) -> tuple[int, int, int]:
    """z-scores depend on neither the seed nor the stopping count."""
    if exclusion_simulations == 0:
        return 0, 0, 0
    return exclusion_simulations, seed, decided_at


def _repunits_from_column(table: GenotypeTable, name: str) -> dict[str, str]:
    if table.repunit is None:
        return {p: p for p in table.unique_populations()}
    units: dict[str, str] = {}
    for pop, unit in zip(table.population, table.repunit, strict=True):
        if units.setdefault(pop, unit) != unit:
            raise ValueError(
                f"{name or 'reference'}: population {pop!r} is in reporting units "
                f"{units[pop]!r} and {unit!r}"
            )
    return units


@dataclass(eq=False)
class _AssignmentTask:
    """Scores row ranges of one encoded input; picklable, so it runs as a Dask task."""

    model: AssignmentModel
    codes: np.ndarray
    reference_row: np.ndarray
    exclusion_simulations: int
    seed: int
    decided_at: int

    def __call__(self, blocks: Sequence[tuple[int, int]]) -> dict[str, np.ndarray]:
        rows = np.concatenate([np.arange(start, stop) for start, stop in blocks])
        codes = np.ascontiguousarray(self.codes[rows])
        reference_row = np.ascontiguousarray(self.reference_row[rows])
        own = self.model._own(reference_row)
        log_likelihood = self.model.log_likelihoods(codes, own)
        best = np.argmax(log_likelihood, axis=1).astype(np.int64)
        z_score = self.model.z_scores(codes, log_likelihood, best)
        z_score_exact = self.model.exact_z_scores(codes, log_likelihood, best, own)
        if self.exclusion_simulations > 0:
            p_value, drawn = self.model.exclusion_p_values(
                codes, log_likelihood, best, reference_row, self.exclusion_simulations, self.seed,
                self.decided_at,
            )
        else:
            p_value, drawn = np.full(len(rows), np.nan), np.zeros(len(rows), dtype=np.int64)
        return {
            "rows": rows,
            "log_likelihood": log_likelihood,
            "z_score": z_score,
            "z_score_exact": z_score_exact,
            "exclusion_p_value": p_value,
            "exclusion_simulations_drawn": drawn,
        }


def _join_parts(parts: list[dict], n: int, n_pop: int) -> dict[str, np.ndarray]:
    joined = {
        "log_likelihood": np.empty((n, n_pop)),
        "z_score": np.empty(n),
        "z_score_exact": np.empty(n),
        "exclusion_p_value": np.empty(n),
        "exclusion_simulations_drawn": np.empty(n, dtype=np.int64),
    }
    for part in parts:
        for key, values in joined.items():
            values[part["rows"]] = part[key]
    return joined


@dataclass(frozen=True, eq=False)
class FlagCalibration:
    """The unsampled-source flag, calibrated on the reference animals scored leave-one-out.

    Each reference animal with a finite ``z_score_exact`` is scored against the rest of the
    reference exactly as a new sample is scored (module docstring). Its exclusion p-value
    already reflects that; for the z-score rule the animals' ``z_score_exact`` values are the
    yardstick (rubias's ``z_score`` is not used: its per-locus means include the animal
    itself). The share of
    them the rule flags estimates the false-flag rate for samples that do come from the
    reference and are typed like its animals.

    Attributes
    ----------
    alpha : float
    exclusion_simulations : int
        Simulated animals per exclusion test; 0 when the rule ranks z-scores instead.
    loo_z_scores : ndarray of float64, shape (m,)
        The reference animals' leave-one-out ``z_score_exact``, sorted.
    loo_p_values : ndarray of float64, shape (m,)
        Their exclusion p-values (NaN without simulations).
    loo_simulations_drawn : ndarray of int64, shape (m,), optional
        Simulated animals each of their p-values rests on.
    stops_early : bool
        Whether an animal's simulations stopped once its flag was decided.
    """

    alpha: float
    exclusion_simulations: int
    loo_z_scores: np.ndarray
    loo_p_values: np.ndarray
    loo_simulations_drawn: np.ndarray | None = None
    stops_early: bool = False

    @property
    def n_animals(self) -> int:
        """Reference animals the calibration rests on."""
        return len(self.loo_z_scores)

    @property
    def z_rank(self) -> int:
        """How many of the reference animals' z-scores a new sample's must fall below to be
        flagged by the z-score rule: ``floor(alpha (m + 1))``, 0 when ``m`` is too small."""
        return math.floor(self.alpha * (self.n_animals + 1) * (1 + 1e-12))

    @property
    def z_threshold(self) -> float:
        """z-score below which a new sample is flagged by the z-score rule (-inf when the
        reference is too small for ``alpha``)."""
        return float(self.loo_z_scores[self.z_rank - 1]) if self.z_rank >= 1 else -math.inf

    def flags(self, z_score: np.ndarray, exclusion_p_value: np.ndarray,
              leave_one_out: bool) -> np.ndarray:
        """The rule applied to samples, bool (n,); ``leave_one_out`` when they are reference
        animals scored leave-one-out (their own z-scores are then left out of the ranking)."""
        if self.exclusion_simulations > 0:
            return exclusion_p_value < self.alpha
        scored = np.isfinite(z_score)
        at_most = np.searchsorted(self.loo_z_scores, np.where(scored, z_score, np.inf),
                                  side="right")
        others = self.n_animals
        if leave_one_out:
            at_most, others = at_most - 1, others - 1
        conformal_p = (1 + at_most) / (others + 1)
        return scored & (conformal_p <= self.alpha * (1 + 1e-12))

    @cached_property
    def n_flagged(self) -> int:
        """Reference animals the rule flags when each is scored leave-one-out."""
        return int(self.flags(self.loo_z_scores, self.loo_p_values, leave_one_out=True).sum())

    @property
    def expected_false_flag_rate(self) -> float:
        """Share of reference animals flagged (NaN without any)."""
        return self.n_flagged / self.n_animals if self.n_animals else math.nan

    @property
    def rule(self) -> str:
        """The rule in words, for reports."""
        if self.exclusion_simulations > 0:
            rule = (f"exclusion p-value < {self.alpha}, against {self.exclusion_simulations:,} "
                    "new animals resampled from the reference animals' leave-one-out scores")
            if self.stops_early:
                rule += ("; each sample's and reference animal's simulations stop once enough "
                         f"fit no better to settle its p-value at {self.alpha} or above (flags "
                         f"as with all {self.exclusion_simulations:,})")
            return rule
        if self.z_rank < 1:
            return (f"none: {self.n_animals} reference animals cannot rank z_score_exact at level "
                    f"{self.alpha} (at least {math.ceil(1 / self.alpha) - 1} needed)")
        return (f"z_score_exact < {self.z_threshold:.4f}, the {_ordinal(self.z_rank)} lowest "
                f"of the {self.n_animals} reference animals' leave-one-out z_score_exact")

    def _drawn_summary(self) -> dict | None:
        """Simulated animals the reference animals' p-values rest on."""
        if (self.exclusion_simulations == 0 or self.loo_simulations_drawn is None
                or not len(self.loo_simulations_drawn)):
            return None
        drawn = self.loo_simulations_drawn
        return {"total": int(drawn.sum()), "mean": _json_float(float(drawn.mean())),
                "animals_simulated_in_full": int((drawn == self.exclusion_simulations).sum()),
                "stopped_once_decided": self.stops_early}

    def summary(self) -> dict:
        """JSON-ready: the rule and the false-flag rate expected from the reference."""
        low, high = _wilson_interval(self.n_flagged, self.n_animals)
        return {
            "rule": self.rule,
            "reference_animals": self.n_animals,
            "reference_animals_flagged": self.n_flagged,
            "expected_false_flag_rate": _json_float(self.expected_false_flag_rate),
            "expected_false_flag_rate_95": [_json_float(low), _json_float(high)],
            "exclusion_simulations_drawn": self._drawn_summary(),
            "basis": "share of reference animals flagged when each is scored leave-one-out "
                     "against the rest of the reference by the same rule",
        }


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def _wilson_interval(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score 95% interval of a binomial share ``k / n`` (NaN for ``n = 0``)."""
    if n == 0:
        return math.nan, math.nan
    centre = (k + z * z / 2) / (n + z * z)
    half = z / (n + z * z) * math.sqrt(k * (n - k) / n + z * z / 4)
    return max(centre - half, 0.0), min(centre + half, 1.0)


@dataclass(eq=False)
class Assignment:
    """Assignment of samples to reference populations.

    Attributes
    ----------
    profile_ids : ndarray of str, shape (n,)
    populations : tuple of str, length P
    repunit_names : tuple of str, length R
    population_repunit : ndarray of int64, shape (P,)
        Reporting unit (index into ``repunit_names``) of each population.
    log_likelihood : ndarray of float64, shape (n, P)
        Natural log-likelihood under each population (leave-one-out where that applied).
    n_typed : ndarray of int64, shape (n,)
    n_loci : int
    z_score, z_score_exact, exclusion_p_value : ndarray of float64, shape (n,)
        Under the most likely population: rubias's z-score, the z-score against the exact
        predictive moments (module docstring), and the exclusion p-value (NaN when not
        simulated).
    calibration : FlagCalibration
        The unsampled-source rule and the false-flag rate to expect, from the reference.
    population, repunit, group : ndarray of str, shape (n,), optional
        The samples' own labels, when the input had them.
    leave_one_out : bool
        The samples are reference animals, each scored against the rest of the reference.
    """

    profile_ids: np.ndarray
    populations: tuple[str, ...]
    repunit_names: tuple[str, ...]
    population_repunit: np.ndarray
    log_likelihood: np.ndarray
    n_typed: np.ndarray
    n_loci: int
    z_score: np.ndarray
    z_score_exact: np.ndarray
    exclusion_p_value: np.ndarray
    calibration: FlagCalibration
    population: np.ndarray | None = None
    repunit: np.ndarray | None = None
    group: np.ndarray | None = None
    leave_one_out: bool = False
    seed: int = 0

    def __len__(self) -> int:
        return len(self.profile_ids)

    @cached_property
    def posterior(self) -> np.ndarray:
        """Posterior probability of each population with equal priors, float64 (n, P)."""
        shifted = self.log_likelihood - self.log_likelihood.max(axis=1, keepdims=True)
        weights = np.exp(shifted)
        return weights / weights.sum(axis=1, keepdims=True)

    @cached_property
    def repunit_posterior(self) -> np.ndarray:
        """Posterior summed to reporting units, float64 (n, R)."""
        summed = np.zeros((len(self), len(self.repunit_names)))
        np.add.at(summed.T, self.population_repunit, self.posterior.T)
        return summed

    @cached_property
    def best(self) -> np.ndarray:
        """Most likely population of each sample (index), int64 (n,)."""
        return np.argmax(self.log_likelihood, axis=1)

    @cached_property
    def inferred_repunit(self) -> np.ndarray:
        """Reporting unit of the most likely population (index), int64 (n,), as rubias's
        ``inferred_repunit``."""
        return self.population_repunit[self.best]

    @cached_property
    def max_posterior_repunit(self) -> np.ndarray:
        """Reporting unit with the largest summed posterior (index), int64 (n,)."""
        return np.argmax(self.repunit_posterior, axis=1)

    @property
    def alpha(self) -> float:
        return self.calibration.alpha

    @property
    def exclusion_simulations(self) -> int:
        return self.calibration.exclusion_simulations

    @cached_property
    def unsampled(self) -> np.ndarray:
        """True where no reference population explains the sample, bool (n,)."""
        return self.calibration.flags(self.z_score_exact, self.exclusion_p_value,
                                      self.leave_one_out)

    def records(self) -> list[dict]:
        """One row per sample with :data:`RECORD_COLUMNS` (rubias names where they exist)."""
        n = len(self)
        rows = np.arange(n)
        best, unit, top_unit = self.best, self.inferred_repunit, self.max_posterior_repunit
        populations = np.array(self.populations, dtype=object)
        repunits = np.array(self.repunit_names, dtype=object)

        def labels(values) -> list:
            return [""] * n if values is None else list(values)

        # Whole columns made Python values at once (tolist: float, int and bool as float(),
        # int() and bool() make them), then zipped into rows.
        columns = {
            "indiv": list(self.profile_ids),
            "mixture_collection": labels(self.group),
            "collection": labels(self.population),
            "repunit": labels(self.repunit),
            "inferred_collection": populations[best].tolist(),
            "inferred_repunit": repunits[unit].tolist(),
            "scaled_likelihood": self.posterior[rows, best].astype(np.float64).tolist(),
            "repunit_scaled_likelihood":
                self.repunit_posterior[rows, unit].astype(np.float64).tolist(),
            "repunit_max_posterior": repunits[top_unit].tolist(),
            "repunit_max_posterior_scaled_likelihood":
                self.repunit_posterior[rows, top_unit].astype(np.float64).tolist(),
            "log_likelihood": self.log_likelihood[rows, best].astype(np.float64).tolist(),
            "z_score": np.asarray(self.z_score, dtype=np.float64).tolist(),
            "z_score_exact": np.asarray(self.z_score_exact, dtype=np.float64).tolist(),
            "exclusion_p_value": np.asarray(self.exclusion_p_value, dtype=np.float64).tolist(),
            "unsampled_source": np.asarray(self.unsampled, dtype=bool).tolist(),
            "n_non_miss_loci": np.asarray(self.n_typed, dtype=np.int64).tolist(),
            "n_miss_loci": (self.n_loci - np.asarray(self.n_typed, dtype=np.int64)).tolist(),
        }
        names = list(columns)
        return [dict(zip(names, values, strict=True))
                for values in zip(*columns.values(), strict=True)]

    def parameters(self) -> dict:
        """Settings that determine the result, for reports and output headers."""
        return {
            "model": "Rannala & Mountain (1997), prior 1/A per allele, equal population priors",
            "leave_one_out": self.leave_one_out,
            "exclusion_simulations": self.exclusion_simulations,
            "seed": self.seed,
            "alpha": self.alpha,
            "unsampled_rule": self.calibration.rule,
            "unsampled_calibration": self.calibration.summary(),
        }


@dataclass(eq=False)
class SelfAssignment:
    """Leave-one-out self-assignment of a reference set: how well the panel tells sources apart.

    An animal counts as assigned to the reporting unit with the largest summed posterior
    (``repunit_max_posterior``): rubias's self-assignment is summarised that way, its
    ``scaled_likelihood`` summed over the collections of each ``inferred_repunit``
    (``repu_scaled_like`` in its documentation). :attr:`inferred_repunit_accuracy` counts the
    unit of the most likely population instead.

    Attributes
    ----------
    assignment : Assignment
        The per-sample results (each reference animal scored leave-one-out).
    true_population : ndarray of int64, shape (n,)
        Index of each animal's own population.
    """

    assignment: Assignment
    true_population: np.ndarray

    @cached_property
    def true_repunit(self) -> np.ndarray:
        """Index of each animal's own reporting unit, int64 (n,)."""
        return self.assignment.population_repunit[self.true_population]

    @cached_property
    def confusion(self) -> np.ndarray:
        """Animals of population i (row) assigned to population j (column), int64 (P, P)."""
        size = len(self.assignment.populations)
        return _confusion(self.true_population, self.assignment.best, size)

    @cached_property
    def repunit_confusion(self) -> np.ndarray:
        """The same for reporting units (summed posteriors), int64 (R, R)."""
        size = len(self.assignment.repunit_names)
        return _confusion(self.true_repunit, self.assignment.max_posterior_repunit, size)

    @property
    def accuracy(self) -> float:
        """Share of animals assigned to their own population."""
        return float(np.trace(self.confusion) / max(self.confusion.sum(), 1))

    @property
    def repunit_accuracy(self) -> float:
        """Share of animals whose largest summed posterior is on their own reporting unit."""
        return float(np.trace(self.repunit_confusion) / max(self.repunit_confusion.sum(), 1))

    @property
    def inferred_repunit_accuracy(self) -> float:
        """Share of animals whose most likely population is in their own reporting unit."""
        correct = self.assignment.inferred_repunit == self.true_repunit
        return float(correct.sum() / max(len(correct), 1))

    @property
    def population_accuracy(self) -> np.ndarray:
        """Share correctly assigned per population, float64 (P,) (NaN for an empty one)."""
        return _row_accuracy(self.confusion)

    @property
    def repunit_unit_accuracy(self) -> np.ndarray:
        """Share correctly assigned per reporting unit, float64 (R,)."""
        return _row_accuracy(self.repunit_confusion)

    def z_score_summary(self) -> dict:
        """Distribution of rubias's z-scores overall and per population with the flagged share,
        and the same for ``z_score_exact`` (under ``"exact"``)."""
        flagged = self.assignment.unsampled
        summary = self._z_distribution(self.assignment.z_score)
        summary["overall"]["flagged_share"] = (float(flagged.mean()) if len(flagged)
                                               else float("nan"))
        for k, entry in enumerate(summary["per_population"].values()):
            own = self.true_population == k
            entry["flagged_share"] = float(flagged[own].mean()) if own.any() else float("nan")
        summary["exact"] = self._z_distribution(self.assignment.z_score_exact)
        summary["rule"] = self.assignment.parameters()["unsampled_rule"]
        return summary

    def _z_distribution(self, z: np.ndarray) -> dict:
        finite = np.isfinite(z)
        quantiles = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
        overall = {
            "n": int(finite.sum()),
            "mean": float(z[finite].mean()) if finite.any() else float("nan"),
            "sd": float(z[finite].std(ddof=1)) if finite.sum() > 1 else float("nan"),
            "quantiles": {
                str(q): float(v) for q, v in zip(
                    quantiles, np.quantile(z[finite], quantiles) if finite.any()
                    else [float("nan")] * len(quantiles), strict=True)
            },
        }
        per_population = {}
        for k, name in enumerate(self.assignment.populations):
            rows = (self.true_population == k) & finite
            per_population[name] = {
                "n": int(rows.sum()),
                "mean": float(z[rows].mean()) if rows.any() else float("nan"),
            }
        return {"overall": overall, "per_population": per_population}

    def summary(self) -> dict:
        """Everything but the per-sample table, JSON-ready."""
        populations = self.assignment.populations
        units = self.assignment.repunit_names
        pop_accuracy = self.population_accuracy
        unit_accuracy = self.repunit_unit_accuracy
        return {
            "n_samples": len(self.assignment),
            "accuracy": self.accuracy,
            "repunit_accuracy": self.repunit_accuracy,
            "inferred_repunit_accuracy": self.inferred_repunit_accuracy,
            "population_accuracy": {
                p: {"n": int(self.confusion[k].sum()), "accuracy": _json_float(pop_accuracy[k]),
                    "repunit": units[self.assignment.population_repunit[k]]}
                for k, p in enumerate(populations)
            },
            "repunit_unit_accuracy": {
                u: {"n": int(self.repunit_confusion[k].sum()),
                    "accuracy": _json_float(unit_accuracy[k])}
                for k, u in enumerate(units)
            },
            "confusion": {"populations": list(populations), "counts": self.confusion.tolist()},
            "repunit_confusion": {"repunits": list(units),
                                  "counts": self.repunit_confusion.tolist()},
            "z_scores": self.z_score_summary(),
            "parameters": self.assignment.parameters(),
        }

    def confusion_records(self) -> list[dict]:
        """Long-form confusion matrix: ``collection, inferred_collection, n`` (non-zero cells)."""
        populations = self.assignment.populations
        rows, cols = np.nonzero(self.confusion)
        return [
            {"collection": populations[i], "inferred_collection": populations[j],
             "n": int(self.confusion[i, j])}
            for i, j in zip(rows, cols, strict=True)
        ]


def _confusion(truth: np.ndarray, inferred: np.ndarray, size: int) -> np.ndarray:
    matrix = np.zeros((size, size), dtype=np.int64)
    np.add.at(matrix, (truth, inferred), 1)
    return matrix


def _row_accuracy(matrix: np.ndarray) -> np.ndarray:
    totals = matrix.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(matrix) / totals, np.nan)


def _json_float(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def self_assign(
    reference: ReferenceSet | AssignmentModel,
    *,
    repunit_level: str | None = None,
    exclusion_simulations: int = 0,
    seed: int = 0,
    alpha: float = DEFAULT_ALPHA,
    exclusion_stop_early: bool = True,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    dask_client=None,
    progress: Callable[[int], None] | None = None,
) -> SelfAssignment:
    """Leave-one-out self-assignment of every animal of a reference set.

    Parameters
    ----------
    reference : ReferenceSet or AssignmentModel
    repunit_level : str, optional
        Reporting-unit level of a :class:`ReferenceSet` (its default when ``None``).
    exclusion_simulations, seed, alpha, exclusion_stop_early, chunk_size, dask_client, progress
        As for :meth:`AssignmentModel.assign`; the exclusion test is skipped by default
        (the z-scores are exact and cheap).

    Returns
    -------
    SelfAssignment
    """
    if isinstance(reference, AssignmentModel):
        if repunit_level is not None:
            raise ValueError("repunit_level applies to a ReferenceSet, not to a built model")
        model = reference
    else:
        model = AssignmentModel.from_reference(reference, repunit_level)
    units = dict(zip(model.populations, model.repunits, strict=True))
    table = model.reference.replace(repunit=[units[p] for p in model.reference.population])
    assignment = model.assign(
        table, leave_one_out=True, exclusion_simulations=exclusion_simulations, seed=seed,
        alpha=alpha, exclusion_stop_early=exclusion_stop_early, chunk_size=chunk_size,
        dask_client=dask_client, progress=progress,
    )
    index = {p: k for k, p in enumerate(model.populations)}
    truth = np.array([index[p] for p in table.population], dtype=np.int64)
    return SelfAssignment(assignment, truth)
