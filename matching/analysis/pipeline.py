"""One analysis, for the LIMS's match requests and ``dnatrack analyze`` alike.

:func:`analyse` takes the subject's profiles (a seizure's, a case's, a file's), the background
profiles they are searched against (every other released profile, another file) and any
number of reference sets. It searches the subject's profiles among themselves and against the
background for the same animal and relatives (:func:`matching.pair_search.find_pairs`), each
profile with the frequencies and θ of the reference set it is assigned to
(:func:`~matching.analysis.references.frequency_groups`), links the groups the pairs join
(seizures, animals), and, as asked, assigns the subject's profiles to the reference
populations, estimates each group's mixture proportions and places each group on the map.

Who the profiles are is the caller's: ``describe`` names each profile's group (its node) and
origin. The result (:class:`~matching.analysis.result.AnalysisResult`) shows every node in
full; the LIMS then holds back what the requester may not read (need-to-know) before storing.

Everything the engine is given — settings, θ, error rates, cutoffs, the reference sets'
content hashes, the software versions — is recorded in the result, with the scope of the
search (pairs compared, thresholds applied), so a report can cite it and the numbers can be
reproduced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel
from dnatrack.reference import ReferenceSet
from matching.analysis.references import (
    FrequencyGroup,
    assignment_model,
    combine_references,
    frequencies_record,
    frequency_groups,
    panel_record,
    percent,
    reference_record,
    shared_loci,
    software_versions,
)
from matching.analysis.result import (
    AnalysisResult,
    Assignment,
    AssignmentRow,
    Frequencies,
    Geographic,
    GeoSample,
    Grid,
    Link,
    MixtureGroup,
    MixtureShare,
    Node,
    Pair,
    PairIdentity,
    PairLocus,
    Parameters,
    Power,
    ProfileOrigin,
    Scope,
    Searched,
    Subject,
    SubjectProfile,
    Surface,
    canonical_json,
    json_ready,
    load_as,
    plain,
    thresholds_of,
)
from matching.analysis.settings import ANALYSES, AnalysisError, AnalysisSettings
from matching.assignment import AssignmentModel
from matching.calibration import DEFAULT_EXPECTED_FALSE_PAIRS, Calibration
from matching.geo import GeographicModel
from matching.identity import IdentityCriteria
from matching.kinship import DEFAULT_CUTOFFS, KinshipSearch
from matching.links import link_seizures
from matching.match_probability import match_probabilities
from matching.mixture import estimate_mixture
from matching.pair_search import (
    FoundPairs,
    Scoring,
    calibration_mismatch,
    find_pairs,
    identical_loci,
    loci_compared_shares,
    locus_log10_lrs,
    low_power_warning,
    pairs_compared,
    power_summary,
    search_calibration,
    theta_for,
)
from matching.relationships import ErrorModel

#: Share of the job's progress bar each stage takes (they add up to one).
STAGE_WEIGHTS = {
    "loading released profiles": 0.05,
    "calibrating cutoffs": 0.15,
    "kinship and identity search": 0.35,
    "population assignment": 0.15,
    "mixture proportions": 0.1,
    "geographic assignment": 0.15,
    "assembling the results": 0.05,
}

Progress = Callable[[float, str], None]
#: Origins of profiles by id (the subject's first, then those of background profiles paired
#: with them).
Describe = Callable[[Collection[str]], Mapping[str, ProfileOrigin]]


def groups_describer(groups: Mapping[str, str], kind: str = "group") -> Describe:
    """A :data:`Describe` for profiles grouped by name (``profile id -> group``, as a file's
    seizure column gives them): node ``"<kind>:<group>"``, a profile without a group its
    own."""

    def describe(ids: Collection[str]) -> dict[str, ProfileOrigin]:
        origins = {}
        for pid in ids:
            group = groups.get(pid) or pid
            origins[pid] = ProfileOrigin(f"{kind}:{group}", f"sample {pid} of {kind} {group}",
                                         Node(kind=kind, reference=group))
        return origins

    return describe


class _Stages:
    """Turns stage names and their inner progress into one fraction for the job."""

    def __init__(self, report: Progress | None, stages: Sequence[str]) -> None:
        self.report = report or (lambda fraction, stage: None)
        weights = np.array([STAGE_WEIGHTS[name] for name in stages])
        self.share = dict(zip(stages, weights / weights.sum(), strict=True))
        self.start = dict(zip(stages, np.concatenate([[0.0], np.cumsum(weights / weights.sum())
                                                      [:-1]]), strict=True))

    def enter(self, stage: str, inner: float = 0.0) -> None:
        fraction = self.start[stage] + self.share[stage] * min(max(inner, 0.0), 1.0)
        self.report(float(min(fraction, 1.0)), stage)

    def counter(self, stage: str, total: int, scale: float = 1.0) -> Callable[[int], None]:
        """A progress callback of the engine (called with rows finished) for ``stage``."""
        done = [0]

        def advance(rows: int) -> None:
            done[0] += rows
            self.enter(stage, scale * done[0] / max(total, 1))

        return advance


def stages_of(analyses: Sequence[str]) -> list[str]:
    """The stages an analysis of ``analyses`` goes through, in order."""
    chosen = set(analyses)
    stages = ["loading released profiles"]
    if {"identity", "kinship"} & chosen:
        # identity calls weigh the same-animal LR against its calibrated cutoff too
        stages.extend(["calibrating cutoffs", "kinship and identity search"])
    if {"assignment", "mixture"} & chosen:
        stages.append("population assignment")
    if "mixture" in chosen:
        stages.append("mixture proportions")
    if "geographic" in chosen:
        stages.append("geographic assignment")
    stages.append("assembling the results")
    return stages


@dataclass(eq=False)
class GroupSearch:
    """The search of one frequency group's profiles, with that group's frequencies and θ."""

    group: FrequencyGroup
    search: KinshipSearch
    found: FoundPairs


@dataclass(frozen=True)
class SearchOptions:
    """How the pair search scores and cuts beyond :class:`AnalysisSettings` (the options of
    ``dnatrack match``; a match request uses the defaults).

    Attributes
    ----------
    frequencies : {"population", "pooled"}, optional
        Frequencies a pair is scored with (:class:`~matching.pair_search.Scoring`; default
        by the reference's number of populations).
    within_theta : float, optional
        θ within a population, with population frequencies.
    cutoffs : mapping of str to float, optional
        log10 LR cutoffs replacing the defaults; with no ``calibration`` given they are used
        as they are (not calibrated).
    calibration : Calibration, optional
        A calibration to use for every set (it must fit each: :class:`AnalysisError`
        naming ``calibration_name`` otherwise).
    calibration_name : str
        What errors call ``calibration`` (its file).
    expected_false_pairs : float
        Operating point of the cutoffs calibrated now.
    dask_client : optional
        Run the kinship search's blocks on this Dask cluster.
    kinship_progress, identity_progress : callable, optional
        Called with the rows (kinship) or blocks (identity) finished, instead of the
        analysis's progress.
    calibration_cache : path, optional
        Folder of calibrations made earlier (:func:`~matching.calibration.cached_calibrate`),
        reused when one fits this search exactly.
    """

    frequencies: str | None = None
    within_theta: float | None = None
    cutoffs: Mapping[str, float] | None = None
    calibration: Calibration | None = None
    calibration_name: str = "the calibration"
    expected_false_pairs: float = DEFAULT_EXPECTED_FALSE_PAIRS
    dask_client: object = None
    kinship_progress: Callable[[int], None] | None = None
    identity_progress: Callable[[int], None] | None = None
    calibration_cache: Path | str | None = None


@dataclass(eq=False)
class PairSearch:
    """The pair search of an analysis: each frequency group's search, and the pairs kept.

    Attributes
    ----------
    searches : list of GroupSearch
    chosen : list of (dict, int)
        Each pair's row once and the index of the search it is reported from
        (:func:`chosen_pairs`), in the order of its samples.
    dropped : int
        Pairs of profiles of different sets that only one set's frequencies support.
    pairs_compared : float
        Pairs the search compares (what the cutoffs are calibrated for).
    """

    searches: list[GroupSearch]
    chosen: list[tuple[dict, int]]
    dropped: int
    pairs_compared: float

    @property
    def rows(self) -> list[dict]:
        return [row for row, _ in self.chosen]

    @property
    def identity_guarantee(self) -> int | None:
        """Loci not identical up to which every matching pair is found (the least of the
        searches'); ``None`` without the identity search."""
        values = [s.found.identity_guarantee for s in self.searches
                  if s.found.identity_guarantee is not None]
        return min(values) if values else None

    def candidates_not_called(self) -> list[dict]:
        """Identity candidates no search called the same animal, once each, in the order of
        their samples."""
        called = {frozenset((row["sample1"], row["sample2"])) for row in self.rows}
        seen: dict[frozenset[str], dict] = {}
        for searched in self.searches:
            for row in searched.found.candidates_not_called:
                key = frozenset((row["sample1"], row["sample2"]))
                if key not in called:
                    seen.setdefault(key, row)
        return sorted(seen.values(), key=lambda row: (row["sample1"], row["sample2"]))


def search_pairs(
    groups: Sequence[FrequencyGroup],
    subject: GenotypeTable,
    others: GenotypeTable,
    loci: Sequence[str],
    settings: AnalysisSettings,
    criteria: IdentityCriteria | None,
    *,
    kinship: bool,
    notes: list[str],
    reference_folder: Callable[[ReferenceSet], object] | None = None,
    options: SearchOptions | None = None,
    progress: Progress | None = None,
) -> PairSearch:
    """Search each frequency group's profiles (:func:`~matching.analysis.references.
    frequency_groups`) among themselves and against every other profile (other groups' and
    ``others``) with the group's frequencies, θ and cutoffs; the stage of :func:`analyse`
    that ``dnatrack match`` runs alone.

    Cutoffs are calibrated for the number of pairs the whole search compares (unless
    ``options`` gives a calibration or cutoffs); each choice is explained in ``notes``.
    """
    return _search_pairs(groups, subject, others, loci, settings, criteria, kinship=kinship,
                         steps=_Stages(progress, ["calibrating cutoffs",
                                                  "kinship and identity search"]),
                         notes=notes, reference_folder=reference_folder,
                         options=options or SearchOptions())


def _search_pairs(
    groups: Sequence[FrequencyGroup],
    subject: GenotypeTable,
    others: GenotypeTable,
    loci: Sequence[str],
    settings: AnalysisSettings,
    criteria: IdentityCriteria | None,
    *,
    kinship: bool,
    steps: _Stages,
    notes: list[str],
    reference_folder: Callable[[ReferenceSet], object] | None,
    options: SearchOptions,
) -> PairSearch:
    errors = settings.error_model()
    n_pairs = pairs_compared(len(subject), len(others))
    # An identity search calls a candidate the same animal when its same-animal LR passes the
    # cutoff: that cutoff is calibrated as the kinship search's are.
    calibrated = kinship or criteria is not None
    if calibrated:
        steps.enter("calibrating cutoffs")
    cutoffs = {**DEFAULT_CUTOFFS, **(options.cutoffs or {})}
    prepared = []
    for group in groups:
        reference_table = group.reference.table.select_loci(loci)
        scoring = Scoring.for_reference(reference_table, group.theta.value, errors,
                                        options.frequencies, options.within_theta)
        calibration = None
        if calibrated and options.calibration is not None:
            calibration = options.calibration
            problem = calibration_mismatch(calibration, group.reference, scoring)
            if problem:
                raise AnalysisError(f"{options.calibration_name}: {problem}")
        elif calibrated and options.cutoffs is None:
            group_notes: list[str] = []
            new, existing = _group_tables(subject, others, group)
            # calibrated for the mix of populations of the pairs this group's search compares
            calibration = search_calibration(
                group.reference, reference_table, scoring=scoring,
                relationships=settings.relationships, pairs_compared=n_pairs,
                folder=None if reference_folder is None else reference_folder(group.reference),
                notes=group_notes, new=new, existing=existing,
                expected_false_pairs=options.expected_false_pairs,
                cache_dir=options.calibration_cache,
            )
            notes.extend(note if len(groups) == 1 else f"{group.reference.name}: {note}"
                         for note in group_notes)
        prepared.append((group, reference_table, scoring, calibration))
    steps.enter("kinship and identity search")
    progress = options.kinship_progress or steps.counter("kinship and identity search",
                                                         len(subject), 0.8)
    searches = []
    for group, reference_table, scoring, calibration in prepared:
        search = KinshipSearch.from_reference(
            reference_table, subject, *([others] if len(others) else []),
            **scoring.search_options(), relationships=settings.relationships,
            cutoffs={r: cutoffs[r] for r in settings.relationships if r in cutoffs},
            min_loci=settings.min_loci, calibration=calibration,
        )
        new, existing = _group_tables(subject, others, group)
        found = find_pairs(search, new, existing, kinship=kinship, criteria=criteria,
                           dask_client=options.dask_client, kinship_progress=progress,
                           identity_progress=options.identity_progress)
        searches.append(GroupSearch(group, search, found))
    group_of = {str(subject.profile_ids[row]): k for k, group in enumerate(groups)
                for row in group.rows}
    chosen, dropped = chosen_pairs(searches, group_of)
    return PairSearch(searches, chosen, dropped, n_pairs)


def search_power(searched: GroupSearch, subject: GenotypeTable, others: GenotypeTable,
                 loci: Sequence[str]) -> dict[str, dict]:
    """Power of a frequency group's calibrated cutoffs for the pairs it compares, weighed by
    their numbers of loci typed in both profiles (:func:`~matching.pair_search.power_summary`
    with :func:`~matching.pair_search.loci_compared_shares`)."""
    new, existing = _group_tables(subject, others, searched.group)
    return power_summary(searched.search, len(loci), loci_compared_shares(new, existing))


def fixed_scale_calibration(reference: ReferenceSet, loci: Sequence[str],
                            settings: AnalysisSettings, pairs_compared: float) -> Calibration:
    """Cutoffs for searches against ``reference`` at ``loci`` calibrated for a fixed number of
    pairs (no mix of searched populations), as :func:`analyse` would calibrate them for a
    search of that size: scored with the set's θ and the settings' error model.

    Saved as a reference folder's standing calibration (``reference_folder`` of
    :func:`analyse`), it makes every search's cutoffs the same whatever the number and mix
    of profiles searched, so searching new profiles in batches reports the pairs one search
    of all of them would (the LIMS's growing network, :mod:`lims.network`).
    """
    reference_table = reference.table.select_loci(loci)
    scoring = Scoring.for_reference(reference_table, theta_for(reference, settings.theta).value,
                                    settings.error_model())
    return search_calibration(reference, reference_table, scoring=scoring,
                              relationships=settings.relationships,
                              pairs_compared=pairs_compared, folder=None, notes=[])


def _group_tables(subject: GenotypeTable, others: GenotypeTable,
                  group) -> tuple[GenotypeTable, GenotypeTable | None]:
    """A frequency group's profiles, and every other profile they are compared with (the other
    groups' and the background; ``None`` when there are none)."""
    outside = np.setdiff1d(np.arange(len(subject)), group.rows)
    rest = [table for table in (subject.take(outside), others) if len(table)]
    return subject.take(group.rows), GenotypeTable.concat(rest) if rest else None


def _missing(value) -> bool:
    return value is None or value == ""


def chosen_pairs(searches: Sequence[GroupSearch], group_of: dict[str, int]
                 ) -> tuple[list[tuple[dict, int]], int]:
    """Each pair once, as ``(row, index of the search it is reported from)``, in the order of
    its samples; and how many pairs were dropped.

    A pair of two subject profiles assigned to different reference sets was searched with
    either set's frequencies: it is kept only when both searches report it, from the one with
    the lower likelihood ratio (the one with the larger match probability when neither has an
    LR), the conservative choice.
    """
    found: dict[frozenset[str], list[tuple[dict, int]]] = {}
    for k, searched in enumerate(searches):
        for row in searched.found.rows:
            found.setdefault(frozenset((row["sample1"], row["sample2"])), []).append((row, k))
    chosen, dropped = [], 0
    for pair, reported in found.items():
        sets = {group_of[sample] for sample in pair if sample in group_of}
        if len(reported) < len(sets):
            dropped += 1
            continue
        chosen.append(min(reported, key=lambda entry: (
            math.inf if _missing(entry[0]["log10_lr"]) else entry[0]["log10_lr"],
            -entry[0].get("rmp", 0.0))))
    chosen.sort(key=lambda entry: (entry[0]["sample1"], entry[0]["sample2"]))
    return chosen, dropped


# ----------------------------------------------------------------------------- the run
def analyse(
    subject: GenotypeTable,
    background: GenotypeTable | None,
    references: Sequence[ReferenceSet],
    *,
    analyses: Sequence[str] = ANALYSES,
    settings: AnalysisSettings | None = None,
    panel: Panel | None = None,
    describe: Describe | None = None,
    about: Subject | None = None,
    reference_folder: Callable[[ReferenceSet], object] | None = None,
    progress: Progress | None = None,
) -> AnalysisResult:
    """Run ``analyses`` on the ``subject``'s profiles.

    Parameters
    ----------
    subject
        The profiles analysed (searched, assigned, placed).
    background
        Profiles the subject's are searched against (``None``: among themselves only).
    references
        One or more reference sets, sharing their loci with ``panel``; sets that share
        population names are combined with the names qualified by their set.
    analyses
        Any of :data:`~matching.analysis.settings.ANALYSES`.
    settings
        The statistical settings (defaults of :class:`AnalysisSettings`).
    panel
        The panel the profiles are typed on (recorded; limits the loci used).
    describe
        Names each profile's group (node) and origin; default each profile its own group.
    about
        What the analysis is about, as the result names it.
    reference_folder
        The folder holding a reference set's standing calibration (``None``: calibrate now).
    progress
        Called with ``(fraction done, stage name)`` as the work advances.

    Raises
    ------
    AnalysisError
        When the analysis cannot be run (too few shared loci, no subject profiles…).
    """
    settings = settings or AnalysisSettings()
    unknown = [name for name in analyses if name not in ANALYSES]
    if unknown or not analyses:
        raise AnalysisError(f"unknown analysis {unknown[0]!r}" if unknown
                            else "no analysis chosen")
    analyses = [name for name in ANALYSES if name in analyses]
    if not references:
        raise AnalysisError("no reference set chosen")
    describe = describe or groups_describer({})
    search_wanted = bool({"identity", "kinship"} & set(analyses))
    assign_wanted = bool({"assignment", "mixture"} & set(analyses))
    steps = _Stages(progress, stages_of(analyses))
    steps.enter("loading released profiles")
    loci = shared_loci(references, panel)
    if len(loci) < settings.min_loci:
        where = f"panel {panel.name} and the reference sets" if panel else "the reference sets"
        raise AnalysisError(f"only {len(loci)} loci are shared by {where}; at least "
                            f"min_loci = {settings.min_loci} are needed")
    if not len(subject):
        raise AnalysisError("the subject has no genotype profiles")
    subject_table = subject.select_loci(loci)
    others = (background.select_loci(loci) if background is not None and len(background)
              else subject_table.take(np.array([], dtype=np.int64)))
    notes: list[str] = []
    errors = settings.error_model()
    parameters: dict = {"settings": settings.as_dict(), "theta": None}
    result = AnalysisResult(
        subject=about or Subject(kind="profiles", reference="subject"),
        analyses=list(analyses),
        reference_sets=[reference_record(reference) for reference in references],
        panel=panel_record(panel, loci),
        software=software_versions(),
        searched=Searched(released_profiles=int(len(subject_table) + len(others)),
                          subject_profiles=int(len(subject_table))),
    )
    subject_ids = [str(pid) for pid in subject_table.profile_ids]
    origins = dict(describe(subject_ids))
    chosen: list[tuple[dict, int]] = []
    searches: list[GroupSearch] = []
    if search_wanted:
        frequency_sets = frequency_groups(references, loci, subject_table, settings.theta)
        result.frequencies = _load_frequencies(
            frequencies_record(frequency_sets, references, subject_table))
        parameters["theta"] = {group.reference.name: group.theta.to_dict()
                               for group in frequency_sets}
        criteria = settings.identity_criteria() if "identity" in analyses else None
        found = _search_pairs(
            frequency_sets, subject_table, others, loci, settings, criteria,
            kinship="kinship" in analyses, steps=steps, notes=notes,
            reference_folder=reference_folder, options=SearchOptions())
        searches, chosen, dropped = found.searches, found.chosen, found.dropped
        guarantee = None
        if criteria is not None:
            guarantee = min(searched.found.identity_guarantee for searched in searches)
            notes.append(
                f"identity search ({criteria.stringency} stringency): every matching pair with "
                f"at most {guarantee} loci not identical (mismatching, "
                "dropout-compatible or untyped) is found")
        if dropped:
            notes.append(
                f"{dropped} pair(s) of profiles assigned to different reference sets passed "
                "the cutoffs with one set's frequencies only and are not reported (the "
                "conservative choice)")
        parameters["kinship"] = {searched.group.reference.name: searched.search.parameters()
                                 for searched in searches} if "kinship" in analyses else None
        if "kinship" in analyses:
            result.kinship_power = load_as(dict[str, dict[str, Power]], json_ready({
                searched.group.reference.name: search_power(searched, subject_table, others, loci)
                for searched in searches}))
        parameters["identity"] = None if criteria is None else {
            **criteria.as_dict(), "guaranteed_bad_loci": guarantee}
        parameters = json_ready(parameters)
        result.scope = Scope(
            subject_profiles=len(subject_table),
            background_profiles=len(others),
            pairs_compared=int(pairs_compared(len(subject_table), len(others))),
            min_loci=settings.min_loci,
            relationships=list(settings.relationships) if "kinship" in analyses else [],
            expected_false_pairs=DEFAULT_EXPECTED_FALSE_PAIRS if "kinship" in analyses
            else None,
            thresholds=thresholds_of(parameters["kinship"]),
            identity=parameters["identity"],
        )
        paired = {row[side] for row, _ in chosen for side in ("sample1", "sample2")}
        origins.update(describe(sorted(paired - set(origins))))
    node_of = {pid: origin.node for pid, origin in origins.items()}
    subject_nodes = {node_of[pid] for pid in subject_ids}
    found_nodes = {}
    for origin in origins.values():
        found_nodes[origin.node] = dataclasses.replace(
            origin.info, in_subject=origin.node in subject_nodes)
    result.nodes = dict(sorted(found_nodes.items(), key=lambda entry: (
        entry[1].agency or "", entry[1].reference, entry[1].kind, entry[0])))
    result.subject_profiles = [
        SubjectProfile(pid, origins[pid].description, node_of[pid], int(n))
        for pid, n in zip(subject_ids, subject_table.n_typed, strict=True)]
    if search_wanted:
        rows = [row for row, _ in chosen]
        result.pairs = _pair_records(chosen, searches, origins, set(subject_ids))
        graph = link_seizures(rows, node_of)
        result.links = _link_records(graph.links, result.nodes)
        result.networks = [list(component) for component in graph.components]
        result.within_node_pairs = len(graph.within_seizure)

    # The subject's groups by key (two seizures of one reference stay two); their references
    # only label the results.
    groups = [node_of[pid] for pid in subject_ids]
    labels = {key: result.nodes[key].reference for key in groups}
    combined = None
    if "geographic" in analyses and not assign_wanted:
        combined = combine_references(references, loci)
    assignment = None
    if assign_wanted:
        steps.enter("population assignment")
        model, combined = assignment_model(references, loci)
        assignment = model.assign(
            subject_table, exclusion_simulations=settings.exclusion_simulations,
            seed=settings.seed,
            progress=steps.counter("population assignment", len(subject_table)),
        )
        parameters["assignment"] = assignment.parameters()
        if "assignment" in analyses:
            result.assignment = _assignment_record(assignment, model, combined, origins)
    if "mixture" in analyses:
        steps.enter("mixture proportions")
        mixture = estimate_mixture(assignment, groups, n_sweeps=settings.mixture_sweeps,
                                   burn_in=settings.mixture_burn_in, seed=settings.seed)
        parameters["mixture"] = mixture.parameters()
        result.mixture = _mixture_record(mixture, labels)
    if "geographic" in analyses:
        steps.enter("geographic assignment")
        geo = GeographicModel.from_reference(combined, n_cells=settings.geo_cells)
        parameters["geographic"] = geo.parameters()
        result.geographic = _geo_record(geo, subject_table, groups, labels)

    steps.enter("assembling the results")
    result.parameters = load_as(Parameters, json_ready(parameters))
    result.parameters_sha256 = hashlib.sha256(
        canonical_json(plain(result.parameters))).hexdigest()
    result.notes = notes
    result.caveats = _caveats(references, panel, errors, result)
    return result


def _load_frequencies(record: dict) -> Frequencies:
    return load_as(Frequencies, json_ready(record))


# ----------------------------------------------------------------------------- records
def _alleles(row: np.ndarray) -> list[int] | None:
    values = [int(value) for value in row]
    return None if not values or min(values) < 0 else values


def _optional(value) -> float | None:
    return None if _missing(value) else float(value)


def _pair_records(chosen: Sequence[tuple[dict, int]], searches: Sequence[GroupSearch],
                  origins: Mapping[str, ProfileOrigin], subject: set[str]) -> list[Pair]:
    """One record per pair, the subject's profile first, with the reference set whose
    frequencies and θ its numbers use, and each locus's genotypes and terms."""
    records = []
    for row, k in chosen:
        searched = searches[k]
        search, table = searched.search, searched.found.table
        reference = searched.group.reference
        first, second = row["sample1"], row["sample2"]
        if first not in subject:
            first, second = second, first
        relationship = row["relationship"]
        i, j = table.index_of(first), table.index_of(second)
        r = search.relationships.index(relationship) if relationship in search.relationships \
            else None
        per_locus = locus_log10_lrs(search, table, [i], [j])[0]
        identical = identical_loci(table, i, j)
        # Sample 1's genotype probability per locus, for a same-animal pair's identical loci.
        rmp_per_locus = match_probabilities(table.take([i]), search.counts,
                                            search.theta).per_locus[0] \
            if relationship == "same_animal" else None
        loci = []
        for n, locus in enumerate(search.loci):
            typed = bool(table.typed[i, n] and table.typed[j, n])
            loci.append(PairLocus(
                locus=locus,
                alleles1=_alleles(table.alleles[i, n]),
                alleles2=_alleles(table.alleles[j, n]),
                compared=typed,
                identical=bool(identical[n]),
                log10_lr=float(per_locus[n, r]) if (r is not None and typed) else None,
                match_probability=float(rmp_per_locus[n])
                if rmp_per_locus is not None and identical[n] else None,
            ))
        records.append(Pair(
            visible=True,
            sample1=first,
            sample2=second,
            origin1=origins[first].description,
            origin2=origins[second].description,
            node1=origins[first].node,
            node2=origins[second].node,
            relationship=relationship,
            evidence=row["evidence"],
            frequency_reference=reference.name,
            species=reference.species,
            theta=float(search.table_theta),
            loci_compared=int(row["loci_compared"]),
            log10_lr=_optional(row["log10_lr"]),
            log10_lr_by_relationship={
                name: _optional(row[f"log10_lr_{name}"]) for name in search.relationships},
            rmp=_optional(row.get("rmp")),
            identity=None if "identity" not in row else PairIdentity(
                stringency=row["identity"],
                loci_identical=int(row["loci_identical"]),
                loci_dropout=int(row["loci_dropout"]),
                loci_mismatch=int(row["loci_mismatch"]),
            ),
            loci=loci,
        ))
    return records


def _link_records(links, nodes: Mapping[str, Node]) -> list[Link]:
    """One record per link, the subject's side first, in the order of the nodes' references
    (the engine orders them by key, and keys are record ids a reader knows nothing of)."""
    records = []
    for link in links:
        first, second = link.seizure1, link.seizure2
        if nodes[second].in_subject and not nodes[first].in_subject:
            first, second = second, first
        records.append(Link(
            node1=first, node2=second, n_pairs=link.n_pairs, same_animal=link.same_animal,
            relationships=dict(link.relationships), max_log10_lr=link.max_log10_lr,
            visible=True))
    return sorted(records, key=lambda record: tuple(
        (nodes[key].reference, nodes[key].agency or "", key)
        for key in (record.node1, record.node2)))


def _assignment_record(assignment, model: AssignmentModel, reference: ReferenceSet,
                       origins: Mapping[str, ProfileOrigin]) -> Assignment:
    rows = []
    for record, posterior in zip(assignment.records(), assignment.posterior, strict=True):
        top = np.argsort(-posterior, kind="stable")[:3]
        record = json_ready(record)
        rows.append(AssignmentRow(
            barcode=str(record["indiv"]),
            origin=origins[record["indiv"]].description,
            population=record["inferred_collection"],
            posterior=record["scaled_likelihood"],
            repunit=record["inferred_repunit"],
            repunit_posterior=record["repunit_scaled_likelihood"],
            z_score=record["z_score"],
            # json_ready made a NaN (no exclusion test) None.
            exclusion_p_value=record["exclusion_p_value"],
            unsampled_source=record["unsampled_source"],
            loci_typed=record["n_non_miss_loci"],
            top=[{"population": model.populations[p], "posterior": float(posterior[p])}
                 for p in top],
        ))
    level = reference.default_repunit_level
    return Assignment(
        reference=reference.name,
        repunit_level=level or "population",
        populations=[
            {"name": p.name, "locality": p.locality,
             "repunit": p.repunits.get(level, p.name) if level else p.name}
            for p in reference.populations
        ],
        rows=rows,
    )


def json_ready_dataclass(record):
    """``record`` with its numpy numbers made Python's (through its JSON form)."""
    return load_as(type(record), plain(record))


def _mixture_record(mixture, labels: dict[str, str]) -> list[MixtureGroup]:
    """One record per group (``node`` its key, ``group`` its reference, as labels say)."""
    by_group: dict[str, MixtureGroup] = {}
    for row in mixture.proportion_records():
        key = row["mixture_collection"]
        group = by_group.setdefault(key, MixtureGroup(
            node=key, group=labels[key], n_samples=row["n_samples"], populations=[],
            repunits=[]))
        group.populations.append(MixtureShare(
            population=row["collection"], repunit=row["repunit"], pi=row["pi"],
            lo95=row["pi_lo95"], hi95=row["pi_hi95"], em=row["pi_em"]))
    for row in mixture.repunit_records():
        by_group[row["mixture_collection"]].repunits.append(MixtureShare(
            repunit=row["repunit"], pi=row["repunit_pi"], lo95=row["repunit_pi_lo95"],
            hi95=row["repunit_pi_hi95"], em=row["repunit_pi_em"]))
    for group in by_group.values():
        group.populations.sort(key=lambda entry: -entry.pi)
        group.repunits.sort(key=lambda entry: -entry.pi)
    return [json_ready_dataclass(group) for group in by_group.values()]


def _geo_record(geo: GeographicModel, samples: GenotypeTable, groups: list[str],
                labels: dict[str, str]) -> Geographic:
    """The surfaces of each group (``node`` its key, ``group`` its reference, as labels say)."""
    surfaces = geo.seizure_surfaces(samples, groups, method="pooled")
    regions50 = surfaces.credible_regions(0.5)
    regions90 = surfaces.credible_regions(0.9)
    area50, area90 = surfaces.region_area_km2(0.5), surfaces.region_area_km2(0.9)
    grid = geo.grid
    return json_ready_dataclass(Geographic(
        method="pooled: the average of the seizure's samples' posterior surfaces "
               "(a seizure may hold animals of several origins)",
        grid=Grid(
            lat_edges=grid.lat_edges.tolist(),
            lon_edges=grid.lon_edges.tolist(),
            in_range=np.flatnonzero(grid.in_range.ravel()).tolist(),
        ),
        sites=[{"name": name, "lat": float(lat), "lon": float(lon)}
               for name, lat, lon in zip(geo.sites.populations, geo.site_lat, geo.site_lon,
                                         strict=True)],
        surfaces=[
            Surface(
                node=str(name),
                group=labels[str(name)],
                best_lat=float(surfaces.best_lat[k]),
                best_lon=float(surfaces.best_lon[k]),
                max_posterior=float(surfaces.posterior[k, surfaces.best_cell[k]]),
                area50_km2=float(area50[k]),
                area90_km2=float(area90[k]),
                posterior=surfaces.posterior[k].tolist(),
                region50=np.flatnonzero(regions50[k]).tolist(),
                region90=np.flatnonzero(regions90[k]).tolist(),
            )
            for k, name in enumerate(surfaces.names)
        ],
        samples=[load_as(GeoSample, record) for record in json_ready(
            geo.assign(samples).records())],
    ))


def _caveats(references: Sequence[ReferenceSet], panel: Panel | None, errors: ErrorModel,
             result: AnalysisResult) -> list[str]:
    caveats = []
    for reference in references:
        if reference.simulated:
            caveats.append(
                f"Reference set {reference.name} is SIMULATED: its genotypes are not data from "
                "real animals. Frequencies, likelihood ratios, match probabilities and origins "
                "computed from it illustrate the method and must not be used as evidence.")
    if panel is not None:
        caveats.append(
            f"The allele size ranges of panel {panel.name} are acceptance windows for import "
            "checks, not laboratory-validated allele bins; genotypes must come from validated "
            "allele calls.")
    frequencies = result.frequencies
    if frequencies is not None:
        sets = frequencies.sets
        thetas = "; ".join(
            f"θ = {s.theta:g} ({s.theta_source})"
            + (f" with the frequencies of {s.reference}" if len(sets) > 1 else "")
            for s in sets)
        caveats.append(
            f"Co-ancestry {thetas}. Genotyping error rates folded into the likelihood ratios: "
            f"allelic dropout {errors.dropout_rate:g} per heterozygous locus, miscall "
            f"{errors.miscall_rate:g} per locus; observed genotypes that differ between the "
            "two items of a pair therefore lower, but never zero, the LR.")
        if len(sets) > 1:
            caveats.append(
                "The subject's profiles are assigned to different reference sets ("
                + ", ".join(f"{s.reference}: {len(s.samples)}" for s in sets)
                + "). Each pair's likelihood ratio and match probability use the frequencies "
                "of the set its subject profile is assigned to, named with the pair; a pair "
                "of two profiles assigned to different sets is reported only when the "
                "frequencies of both sets support it, with the lower likelihood ratio. Animals "
                "of different species are not expected to be related: such a pair calls for a "
                "species identification of both items.")
        if frequencies.uncertain:
            listed = ", ".join(f"{u.barcode} ({u.reference}, posterior "
                               f"{percent(u.posterior)})" for u in frequencies.uncertain)
            caveats.append(
                f"Which reference set profile(s) {listed} come from is uncertain: their match "
                "statistics use the frequencies of the more likely set and could differ with "
                "another set's. A species identification of these items would settle it.")
    for reference_name, typed in (result.kinship_power or {}).items():
        if not typed:
            continue
        power = plain(typed)
        first = next(iter(power.values()))
        where = (f"for the pairs' loci compared (mean {first['mean_loci_compared']:.1f} of "
                 f"{first['loci']})" if first.get("mean_loci_compared") is not None
                 else f"at {first['loci']} loci compared")
        caveats.append(
            f"Kinship cutoffs ({reference_name}) keep the expected number of unrelated pairs "
            f"reported to at most {DEFAULT_EXPECTED_FALSE_PAIRS:g} for this search; {where} "
            "they find, of true pairs: " + ", ".join(
                f"{name.replace('_', ' ')} {row['power']:.0%}" for name, row in power.items())
            + ". A relative who is not reported is not thereby excluded.")
        warning = low_power_warning(power)
        if warning:
            caveats.append(f"{reference_name}: {warning[0].upper()}{warning[1:]}.")
    caveats.append(
        "Population and geographic assignment can only point to populations and places "
        "represented in the reference sets; a sample flagged as from an unsampled source may "
        "come from elsewhere.")
    return caveats
