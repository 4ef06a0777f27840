"""Pairs that match or are related, as ``dnatrack match`` and the LIMS's match requests find them.

One search, one set of rules, whoever asks: the kinship search (:mod:`matching.kinship`) and
the identity search (:mod:`matching.identity`) run over the same profiles. The identity search
proposes candidates; one is called the same animal only when its same-animal LR passes the
cutoff and beats every other relationship (DESIGN 8), and the others are kept apart with the
reason. Each same-animal pair gets the random match probability of sample 1's genotype over the
loci where the two profiles are identical (DESIGN 5.2–5.4).

Examples
--------
>>> search = KinshipSearch.from_reference(reference.table, new, theta=0.047)  # doctest: +SKIP
>>> found = find_pairs(search, new, criteria=IdentityCriteria("moderate"))      # doctest: +SKIP
>>> found.rows[0]["relationship"], found.rows[0]["rmp"]                          # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import ReferenceSet
from matching.calibration import (
    CALIBRATION_FILE,
    DEFAULT_EXPECTED_FALSE_PAIRS,
    Calibration,
    cache_path,
    cached_calibrate,
)
from matching.identity import IdentityCriteria, identity_search
from matching.kinship import (
    DEFAULT_FREQUENCIES,
    DEFAULT_WITHIN_THETA,
    SAME_ANIMAL,
    KinshipSearch,
)
from matching.match_probability import match_probabilities
from matching.relationships import ErrorModel
from matching.theta import ThetaChoice, published_theta, select_theta

#: Seed of the calibrations made for one search, so a search is repeatable.
CALIBRATION_SEED = 1


def theta_for(reference: ReferenceSet, override: float | str | None = None) -> ThetaChoice:
    """θ for match statistics against ``reference``: the override (a number or a species
    name), else the reference species' published value, else the Weir & Cockerham estimate
    from the reference populations."""
    if override is not None:
        return select_theta(override=override)
    try:
        return ThetaChoice(published_theta(reference.species),
                           f"published value for {reference.species}")
    except ValueError:
        return select_theta(reference.table)


#: No search calls a relationship on weaker support than this log10 LR (ENFSI "strong",
#: 1,000 to 10,000), however few pairs it compares.
MINIMUM_CUTOFF = 3.0


@dataclass(frozen=True)
class Scoring:
    """How a search scores pairs, which its calibration must share.

    Attributes
    ----------
    theta : float
        F_ST of the reference (the θ of pooled frequencies; with population frequencies, the
        θ that shrinks them towards the pooled ones).
    errors : ErrorModel
    frequencies : {"population", "pooled"}
    within_theta : float
        θ within a population (population frequencies only).
    """

    theta: float
    errors: ErrorModel
    frequencies: str = DEFAULT_FREQUENCIES
    within_theta: float = DEFAULT_WITHIN_THETA

    @classmethod
    def for_reference(cls, reference: GenotypeTable, theta: float, errors: ErrorModel,
                      frequencies: str | None = None,
                      within_theta: float | None = None) -> Scoring:
        """The scoring for ``reference``: population frequencies (the default) need two
        populations or more; a reference with one is scored with pooled frequencies."""
        if frequencies is None:
            several = reference.population is not None and len(
                reference.unique_populations()) > 1
            frequencies = DEFAULT_FREQUENCIES if several else "pooled"
        return cls(theta, errors, frequencies,
                   DEFAULT_WITHIN_THETA if within_theta is None else within_theta)

    @property
    def table_theta(self) -> float:
        """θ of the LR tables."""
        return self.within_theta if self.frequencies == "population" else self.theta

    def search_options(self) -> dict:
        """Keyword arguments of :meth:`KinshipSearch.from_reference`."""
        return {"theta": self.theta, "errors": self.errors, "frequencies": self.frequencies,
                "within_theta": self.within_theta}

    def calibration_options(self) -> dict:
        """Keyword arguments of :func:`matching.calibration.calibrate`."""
        return {"theta": self.table_theta, "errors": self.errors,
                "frequencies": self.frequencies,
                "between_theta": self.theta if self.frequencies == "population" else None}

    def describe(self) -> str:
        if self.frequencies == "population":
            return (f"population frequencies (shrunk towards the pooled ones with F_ST "
                    f"{self.theta:.3g}), theta within a population {self.within_theta:.3g}")
        return f"pooled frequencies, theta {self.theta:.3g}"


def markov_cutoff(pairs_compared: float, n_relationships: int,
                  expected_false_pairs: float = DEFAULT_EXPECTED_FALSE_PAIRS) -> float:
    """A cutoff that keeps a search within ``expected_false_pairs`` false pairs without
    simulating: ``E[LR | unrelated] = 1`` for every relationship (Markov), so cutting at
    ``log10(n_relationships · pairs / E)`` bounds the expected number of unrelated pairs passing
    any relationship by ``E`` under any frequencies; never below :data:`MINIMUM_CUTOFF`. Less
    power than a calibration (:func:`search_calibration`), for searches that cannot wait for
    one."""
    pairs_compared = max(float(pairs_compared), 1.0)
    return max(MINIMUM_CUTOFF,
               float(np.log10(n_relationships * pairs_compared / expected_false_pairs)))


def calibration_mismatch(calibration: Calibration, reference: ReferenceSet,
                         scoring: Scoring) -> str:
    """Why ``calibration`` does not fit a search against ``reference`` scored with
    ``scoring`` (``""`` when it fits)."""
    if calibration.reference_hash and calibration.reference_hash != reference.content_hash:
        return f"it was made for reference {calibration.reference!r} with other genotypes"
    between = calibration.between_theta if calibration.frequencies == "population" else None
    wanted = scoring.theta if scoring.frequencies == "population" else None
    if (calibration.frequencies != scoring.frequencies
            or abs(calibration.theta - scoring.table_theta) > 1e-12
            or (between is not None and abs(between - wanted) > 1e-12)
            or calibration.errors != scoring.errors):
        return (f"it was made with {calibration.frequencies} frequencies, "
                f"theta={calibration.theta} and {calibration.errors}; the search uses "
                f"{scoring.describe()} and {scoring.errors}")
    return ""


def search_calibration(
    reference: ReferenceSet,
    reference_table: GenotypeTable,
    *,
    scoring: Scoring,
    relationships: Sequence[str],
    pairs_compared: float,
    folder: Path | None,
    notes: list[str],
    expected_false_pairs: float = DEFAULT_EXPECTED_FALSE_PAIRS,
    new: GenotypeTable | None = None,
    existing: GenotypeTable | None = None,
    minimum_cutoff: float = MINIMUM_CUTOFF,
    cache_dir: Path | str | None = None,
) -> Calibration:
    """The reference folder's standing calibration when it fits, else one made now for this
    search's number of pairs (and, with population frequencies and the searched profiles
    ``new`` and ``existing``, for their mix of population pairs: :func:`population_pair_mix`);
    each choice is explained in ``notes``.

    Parameters
    ----------
    reference : ReferenceSet
        The reference the frequencies come from (its content hash is checked).
    reference_table : GenotypeTable
        Its genotypes at the searched loci (the calibration simulates from them).
    scoring : Scoring
        How the search scores pairs.
    relationships : sequence of str
    pairs_compared : float
        Pairs the search compares; the false-positive rate per pair is
        ``expected_false_pairs`` / that number, and cutoffs are at least
        :data:`MINIMUM_CUTOFF`.
    folder : Path, optional
        The reference set's folder, which may hold ``calibration.json``.
    notes : list of str
        Appended to.
    expected_false_pairs : float
        Expected false pairs the search may report, over all relationships.
    minimum_cutoff : float
        No cutoff below this log10 LR (default :data:`MINIMUM_CUTOFF`).
    cache_dir : path, optional
        Keep the calibrations made here and reuse them for the same reference, loci,
        parameters, mix and seed (:func:`matching.calibration.cached_calibrate`).
    """
    candidate = folder / CALIBRATION_FILE if folder is not None else None
    if candidate is not None and candidate.is_file():
        standing = Calibration.load(candidate)
        problem = calibration_mismatch(standing, reference, scoring)
        if not problem:
            notes.append(f"cutoffs from the reference set's calibration ({candidate})")
            return standing
        notes.append(f"the reference set's calibration was not used: {problem}")
    pairs_compared = max(float(pairs_compared), 1.0)
    mix = None
    if scoring.frequencies == "population" and new is not None and len(new):
        loci = reference_table.loci
        mix = population_pair_mix(reference_table, scoring.theta, new.select_loci(loci),
                                  None if existing is None else existing.select_loci(loci))
    options = dict(
        relationships=tuple(relationships), pairs_compared=pairs_compared,
        expected_false_pairs=expected_false_pairs, minimum_cutoff=minimum_cutoff,
        seed=CALIBRATION_SEED, reference_name=reference.name,
        reference_hash=reference.content_hash, pair_mix=mix, **scoring.calibration_options(),
    )
    stored = None if cache_dir is None else cache_path(reference_table, cache_dir, **options)
    was_stored = stored is not None and stored.is_file()
    calibration = cached_calibrate(reference_table, cache_dir, **options)
    if stored is not None:
        notes.append(f"calibration {'loaded from' if was_stored else 'stored in'} the "
                     f"calibration cache ({stored})")
    notes.append(
        f"cutoffs calibrated for this search: at most {expected_false_pairs:g} expected false "
        f"pair(s) among {pairs_compared:.0f} pairs compared (rate per pair "
        f"{calibration.false_positive_rate:.2g}), log10 LR at least {minimum_cutoff:g}; "
        f"{scoring.describe()}; {calibration.n_simulations} simulated pairs per relationship, "
        f"seed {CALIBRATION_SEED}"
        + (f"; rates for the searched profiles' mix of populations "
           f"({calibration.notes['pairs_within_a_population']:.0%} of pairs within one, by "
           "assignment posterior)" if "pair_mix" in calibration.notes else "")
    )
    return calibration


def population_pair_mix(reference: GenotypeTable, between_theta: float, new: GenotypeTable,
                        existing: GenotypeTable | None = None) -> np.ndarray:
    """Share of a search's pairs by the reference populations of their two profiles, float64
    (n_populations, n_populations), symmetric, summing to 1: each profile is spread over the
    populations by its assignment posterior (equal priors, the population frequencies the
    search scores with), and the search compares every pair of ``new`` and every ``new`` ×
    ``existing`` pair.

    Soft assignment keeps the profiles of one unsampled population together: they share a
    similar spread, so their pairs count largely as pairs within one population, as they are.
    """
    tables = [t for t in (new, existing) if t is not None and len(t)]
    search = KinshipSearch.from_reference(reference, *tables, frequencies="population",
                                          theta=between_theta,
                                          relationships=("parent_offspring",))
    new_p = search.population_posteriors(search.codes(new))
    s_new = new_p.sum(axis=0)
    mix = (np.outer(s_new, s_new) - new_p.T @ new_p) / 2
    if existing is not None and len(existing):
        s_existing = search.population_posteriors(search.codes(existing)).sum(axis=0)
        mix += (np.outer(s_new, s_existing) + np.outer(s_existing, s_new)) / 2
    mix = np.clip((mix + mix.T) / 2, 0.0, None)
    total = mix.sum()
    if total <= 0:  # fewer than two profiles: no pairs, any mix will do
        return np.full(mix.shape, 1.0 / mix.size)
    return mix / total


def loci_compared_shares(new: GenotypeTable, existing: GenotypeTable | None = None, *,
                         max_patterns: int = 2000, sample: int = 200_000,
                         seed: int = 0) -> np.ndarray:
    """Share of a search's pairs (every pair of ``new``, every ``new`` × ``existing`` pair) by
    the number of loci typed in both profiles, float64 (n_loci + 1,), summing to 1 (all zero
    without pairs).

    Exact from the profiles' patterns of typed loci while they are at most ``max_patterns``
    (pairs of patterns weighed by how many profiles share each); otherwise estimated from
    ``sample`` pairs drawn at random."""
    n_loci = new.n_loci
    shares = np.zeros(n_loci + 1)
    n_new = len(new)
    n_existing = 0 if existing is None else len(existing)
    total = n_new * (n_new - 1) / 2 + n_new * n_existing
    if total == 0:
        return shares
    typed_new = new.typed
    typed_existing = existing.typed if n_existing else np.zeros((0, n_loci), dtype=bool)
    patterns, inverse = np.unique(np.vstack([typed_new, typed_existing]), axis=0,
                                  return_inverse=True)
    inverse = inverse.ravel()
    if len(patterns) <= max_patterns:
        count_new = np.bincount(inverse[:n_new], minlength=len(patterns)).astype(np.float64)
        count_existing = np.bincount(inverse[n_new:], minlength=len(patterns)).astype(np.float64)
        shared = patterns.astype(np.int64) @ patterns.T.astype(np.int64)
        weight = (np.outer(count_new, count_new) - np.diag(count_new)) / 2 \
            + np.outer(count_new, count_existing)
        np.add.at(shares, shared.ravel(), weight.ravel())
        return shares / shares.sum()
    typed = np.vstack([typed_new, typed_existing])
    rng = np.random.default_rng(seed)
    within = rng.random(sample) < (n_new * (n_new - 1) / 2) / total
    first = rng.integers(0, n_new, sample)
    other_new = rng.integers(0, max(n_new - 1, 1), sample)
    other_new += other_new >= first  # another new profile
    second = np.where(within, other_new, n_new + rng.integers(0, max(n_existing, 1), sample))
    second = np.minimum(second, len(typed) - 1)
    shares += np.bincount((typed[first] & typed[second]).sum(axis=1), minlength=n_loci + 1)
    return shares / shares.sum()


def power_summary(search: KinshipSearch, loci_compared: int,
                  shares: np.ndarray | None = None) -> dict[str, dict]:
    """Power of the search's calibration per relationship: ``{relationship: {"loci": m,
    "cutoff", "power", "power_se"}}`` at ``loci_compared`` loci (the nearest calibrated count
    below); empty without a calibration.

    With ``shares`` (:func:`loci_compared_shares`: the search's pairs by loci typed in both
    profiles), ``power`` is what the run should observe: the power at each loci count
    weighed by its share of the pairs, pairs compared at fewer loci than the search's
    ``min_loci`` (or than the smallest calibrated count) counting as missed; ``power_se``
    weighs the standard errors alike (the counts share simulated pairs, so they add), and
    ``power_at_all_loci`` and ``mean_loci_compared`` are added."""
    calibration = search.calibration
    if calibration is None:
        return {}
    usable = [m for m in calibration.loci_counts if m <= loci_compared]
    if not usable:
        return {}
    m = max(usable)
    summary = {
        name: {"loci": m, "cutoff": calibration.cutoffs[name][m],
               "power": calibration.power[name][m],
               "power_se": calibration.power_se.get(name, {}).get(m)}
        for name in search.relationships
    }
    if shares is None or not np.sum(shares) > 0:
        return summary
    shares = np.asarray(shares, dtype=np.float64)
    mean_loci = float(np.arange(len(shares)) @ shares / shares.sum())
    for name, row in summary.items():
        power = standard_error = 0.0
        for count, share in enumerate(shares):
            below = [k for k in calibration.loci_counts if k <= min(count, loci_compared)]
            if share == 0.0 or count < search.min_loci or not below:
                continue
            power += share * calibration.power[name][max(below)]
            standard_error += share * (calibration.power_se.get(name, {}).get(max(below))
                                       or 0.0)
        row.update({"power_at_all_loci": row["power"], "power": float(power),
                    "power_se": float(standard_error), "mean_loci_compared": mean_loci})
    return summary


def power_line(power: dict[str, dict], expected_false_pairs: float) -> str:
    """The summary line of :func:`power_summary`'s figures."""
    first = next(iter(power.values()))
    where = (f"for the pairs' loci compared (mean {first['mean_loci_compared']:.1f} of "
             f"{first['loci']})" if "mean_loci_compared" in first else f"at {first['loci']} loci")
    return (f"power {where}, at most {expected_false_pairs:g} expected false pair(s): "
            + ", ".join(f"{name.replace('_', ' ')} {row['power']:.0%}"
                        for name, row in power.items()))


#: Below this power a run says so for the relationship.
LOW_POWER = 0.5


def low_power_warning(power: dict[str, dict]) -> str:
    """One line naming the relationships whose power is below :data:`LOW_POWER` (``""`` when
    there are none)."""
    low = [f"{name.replace('_', ' ')} {row['power']:.0%}"
           for name, row in power.items() if row["power"] < LOW_POWER]
    if not low:
        return ""
    first = next(iter(power.values()))
    where = (f"for the pairs' loci compared (mean {first['mean_loci_compared']:.1f})"
             if "mean_loci_compared" in first else f"at {first['loci']} loci")
    return (f"low power: {where} the cutoffs find only {', '.join(low)} of true pairs "
            f"(below {LOW_POWER:.0%})")


@dataclass(eq=False)
class FoundPairs:
    """What :func:`find_pairs` found.

    Attributes
    ----------
    rows : list of dict
        One per pair, sorted by ``(sample1, sample2)``: ``sample1, sample2, relationship,
        log10_lr, loci_compared, evidence`` (``kinship``, ``identity`` or
        ``kinship+identity``) and ``log10_lr_<relationship>`` for every relationship tested;
        identity matches add ``identity`` (the stringency), ``loci_identical``,
        ``loci_dropout``, ``loci_mismatch``; same-animal pairs add ``rmp`` (float).
    table : GenotypeTable
        The profiles searched: the new ones, then the existing ones.
    n_new : int
        Rows of ``table`` that are new.
    identity_guarantee : int, optional
        Every identity candidate with at most this many loci not identical was weighed
        (``None`` when the identity search did not run).
    candidates_not_called : list of dict
        Identity candidates not called the same animal: ``sample1, sample2, loci_compared``,
        the identity fields, ``log10_lr_<relationship>``, ``called`` (the relationship the
        kinship search reported for the pair, or ``""``) and ``reason``.
    """

    rows: list[dict]
    table: GenotypeTable
    n_new: int
    identity_guarantee: int | None
    candidates_not_called: list[dict] = field(default_factory=list)


def pairs_compared(n_new: int, n_existing: int) -> float:
    """Pairs a search of ``n_new`` profiles among themselves and against ``n_existing``
    compares."""
    return n_new * (n_new - 1) / 2 + n_new * n_existing


def find_pairs(
    search: KinshipSearch,
    new: GenotypeTable,
    existing: GenotypeTable | None = None,
    *,
    kinship: bool = True,
    criteria: IdentityCriteria | None = None,
    dask_client=None,
    kinship_progress: Callable[[int], None] | None = None,
    identity_progress: Callable[[int], None] | None = None,
) -> FoundPairs:
    """Pairs among ``new`` and between ``new`` and ``existing`` that are related or match.

    Parameters
    ----------
    search : KinshipSearch
        Frequencies, θ, error model, relationships and cutoffs; built with ``new`` and
        ``existing`` as query tables, at their loci.
    new, existing : GenotypeTable
        Profiles at the search's loci with distinct ids; without ``existing``, all pairs of
        ``new``.
    kinship : bool
        Run the kinship search (otherwise identity matches only, still with their LRs).
    criteria : IdentityCriteria, optional
        Run the identity search with these criteria.
    dask_client : optional
        Run the kinship search's blocks on this Dask cluster.
    kinship_progress, identity_progress : callable, optional
        Called with the rows (kinship) or blocks (identity) finished.

    Returns
    -------
    FoundPairs
    """
    if not kinship and criteria is None:
        raise ValueError("neither the kinship nor the identity search was asked for")
    if existing is None:
        table = new
    else:
        clash = set(new.profile_ids) & set(existing.profile_ids)
        if clash:
            raise ValueError(f"profile {sorted(clash)[0]!r} is both new and existing")
        table = GenotypeTable.concat([new, existing])
    n_new = len(new)
    ids = table.profile_ids
    rows: dict[tuple[str, str], dict] = {}
    if kinship:
        if existing is None:
            hits = search.all_pairs(new, progress=kinship_progress, dask_client=dask_client)
        else:
            hits = search.new_vs_existing(new, existing, progress=kinship_progress,
                                          dask_client=dask_client)
        for record in hits.records(ids, ids):
            record["evidence"] = "kinship"
            rows[(record["sample1"], record["sample2"])] = record
    guarantee = None
    not_called: list[dict] = []
    if criteria is not None:
        new_flags = np.arange(len(table)) < n_new if existing is not None else None
        identity = identity_search(table, criteria, new=new_flags, progress=identity_progress)
        not_called = _merge_identity(rows, identity.records(ids), criteria.stringency, search,
                                     table)
        guarantee = identity.guaranteed_bad_loci
    _add_match_probabilities(rows, table, search)
    return FoundPairs([rows[key] for key in sorted(rows)], table, n_new, guarantee,
                      sorted(not_called, key=lambda r: (r["sample1"], r["sample2"])))


def _merge_identity(rows: dict, records: list[dict], stringency: str, search: KinshipSearch,
                    table: GenotypeTable) -> list[dict]:
    """Weigh identity candidates (DESIGN 8): a candidate is called the same animal only when
    its same-animal LR, with the error model, passes the cutoff for its loci compared and beats
    every other relationship. Called candidates join ``rows`` (a pair the kinship search also
    reported keeps its row); the others are returned with the reason they were not called."""
    index = {str(pid): k for k, pid in enumerate(table.profile_ids)}
    lr, compared = search.score_pairs(
        table, [index[r["sample1"]] for r in records], [index[r["sample2"]] for r in records])
    supported = search.supported(lr, compared)
    same = search.relationships.index(SAME_ANIMAL) if SAME_ANIMAL in search.relationships \
        else None
    not_called = []
    for record, values, loci, ok in zip(records, lr, compared, supported, strict=True):
        key = (record["sample1"], record["sample2"])
        identity_fields = {"identity": stringency,
                           **{f: record[f] for f in ("loci_identical", "loci_dropout",
                                                     "loci_mismatch")}}
        lrs = {f"log10_lr_{name}": round(float(values[r]), 6)
               for r, name in enumerate(search.relationships)}
        if same is not None and ok[same]:
            row = rows.get(key)
            if row is None:
                row = rows[key] = {"sample1": key[0], "sample2": key[1],
                                   "relationship": SAME_ANIMAL,
                                   "log10_lr": round(float(values[same]), 6),
                                   "loci_compared": record["loci_compared"],
                                   "evidence": "identity", **lrs}
            else:
                row["evidence"] = "kinship+identity"
            row.update(identity_fields)
            continue
        not_called.append({"sample1": key[0], "sample2": key[1],
                           "loci_compared": record["loci_compared"], **identity_fields, **lrs,
                           "called": rows[key]["relationship"] if key in rows else "",
                           "reason": _reason_not_same(search, values, int(loci), same)})
    return not_called


def _reason_not_same(search: KinshipSearch, log10_lr: np.ndarray, loci: int,
                     same: int | None) -> str:
    """Why an identity candidate is not called the same animal."""
    if same is None:
        return "the same animal is not among the relationships tested"
    cutoff = float(search.cutoffs_for(np.array([loci]))[0, same])
    if log10_lr[same] < cutoff:
        return (f"log10 LR same animal {log10_lr[same]:.2f} is below the cutoff "
                f"{cutoff:.2f} for {loci} loci compared")
    best = int(np.argmax(np.where(np.arange(len(log10_lr)) == same, -np.inf, log10_lr)))
    return (f"{search.relationships[best]} is at least as likely (log10 LR "
            f"{log10_lr[best]:.2f} against {log10_lr[same]:.2f} for the same animal)")


def identical_loci(table: GenotypeTable, i: int, j: int) -> np.ndarray:
    """Loci typed in profiles ``i`` and ``j`` with the same genotype, bool (n_loci,)."""
    return table.typed[i] & table.typed[j] & (table.alleles[i] == table.alleles[j]).all(axis=1)


def _add_match_probabilities(rows: dict, table: GenotypeTable, search: KinshipSearch) -> None:
    """RMP of each same-animal pair: sample1's genotype over the loci where the two profiles
    are identical (dropout-compatible and mismatching loci do not count as matching), with the
    search's reference frequencies and θ."""
    same = [key for key, row in rows.items() if row.get("relationship") == "same_animal"]
    if not same:
        return
    per_locus = match_probabilities(table, search.counts, search.theta).per_locus
    index = {str(pid): k for k, pid in enumerate(table.profile_ids)}
    for s1, s2 in same:
        i, j = index[s1], index[s2]
        rows[(s1, s2)]["rmp"] = float(np.prod(per_locus[i, identical_loci(table, i, j)]))


def locus_log10_lrs(search: KinshipSearch, table: GenotypeTable, rows: Sequence[int],
                    cols: Sequence[int]) -> np.ndarray:
    """Per-locus log10 LRs of chosen pairs of ``table``, the terms whose sum
    :meth:`KinshipSearch.score_pairs` returns (with population frequencies, those of the
    profile's population that gives the pair the smaller LR, per relationship).

    Returns
    -------
    ndarray of float64, shape (n_pairs, n_loci, n_relationships)
        Zero at loci untyped in either profile.
    """
    codes = search.codes(table)
    rows, cols = np.asarray(rows, dtype=np.int64), np.asarray(cols, dtype=np.int64)

    def terms(tables_of_pair):
        out = np.empty((len(rows), len(search.loci), len(search.relationships)))
        for k, tables in tables_of_pair:
            for locus in range(len(search.loci)):
                out[k, locus] = tables.locus_table(locus)[codes[rows[k], locus],
                                                          codes[cols[k], locus]]
        return out

    if search.population_counts is None:
        return terms([(slice(None), search.tables)])
    population = search.assign_populations(codes)
    sides = [terms([(population[side] == p, search.population_tables[p])
                    for p in np.unique(population[side])]) for side in (rows, cols)]
    smaller = sides[1].sum(axis=1) < sides[0].sum(axis=1)  # (n_pairs, n_relationships)
    return np.where(smaller[:, None, :], sides[1], sides[0])
