"""Running a match request: released profiles from the database, through the engine, into the
results a report shows.

:func:`run_analysis` loads every current released profile on the reference sets' panel (all
agencies: a link into another agency's seizure must be found), takes the subject's profiles
(a seizure's, or a whole case's) as new profiles and searches them among themselves and against
all others with :func:`matching.pair_search.find_pairs`; then, as asked, assigns them to the
reference populations, estimates each seizure's mixture proportions and places each seizure on
the map. The results are assembled as JSON-ready data with need-to-know applied *before*
anything is stored: a pair or link into a case the requester may not read keeps only the other
seizure's reference and its holding agency (DESIGN 6).

Seizures and source animals are told apart by their records, never by their references:
references and animal identifiers are unique per agency only, so two agencies' "KE-001" are
two nodes, and the subject of a seizure request is the samples of that seizure's items.

The allele frequencies and θ of a subject profile's likelihood ratios and match probabilities
are those of the reference set it is assigned to (:func:`frequency_groups`): a savanna
elephant tusk is scored with savanna frequencies even when the forest set is chosen too, and
the result says which set was used for which profiles, and why.

Everything the engine is given — settings, θ, error rates, cutoffs, the reference sets'
content hashes, the software versions — is recorded in the result, so a report can cite it
and the numbers can be reproduced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import platform
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dnatrack import __version__
from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel
from dnatrack.reference import PopulationInfo, ReferenceSet, load_reference_set
from lims.access import case_ids
from lims.custody import canonical_json, ledger_head
from lims.genotyping import resolve_panel
from lims.models import (
    ANALYSES,
    Agency,
    Case,
    Item,
    MatchRequest,
    Sample,
    Seizure,
    SourceAnimal,
    User,
)
from lims.release import released_genotypes
from lims.reports.wording import (
    RELATIONSHIP_LABELS,
    format_decimal,
    format_likelihood_ratio,
    genotype_text,
    propositions,
    verbal_equivalent,
)
from matching.assignment import AssignmentModel
from matching.calibration import DEFAULT_EXPECTED_FALSE_PAIRS
from matching.geo import DEFAULT_CELLS, GeographicModel
from matching.identity import STRINGENCIES, IdentityCriteria
from matching.kinship import DEFAULT_CUTOFFS, KinshipSearch
from matching.links import link_seizures
from matching.match_probability import match_probabilities
from matching.mixture import estimate_mixture
from matching.pair_search import (
    FoundPairs,
    Scoring,
    find_pairs,
    identical_loci,
    locus_log10_lrs,
    low_power_warning,
    pairs_compared,
    power_summary,
    search_calibration,
    theta_for,
)
from matching.relationships import RELATIONSHIPS, ErrorModel
from matching.theta import ThetaChoice
from reference_data import list_reference_sets, reference_set_path

#: Version of the result layout; reports and templates read this layout (2: frequencies per
#: reference set the subject's profiles are assigned to; 3: seizures and animals keyed by
#: record, not by reference, and other agencies' records by an opaque key).
RESULT_FORMAT = 3

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


class AnalysisError(ValueError):
    """A match request that cannot be run; ``problems`` lists ``{"field", "message"}``."""

    def __init__(self, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class AnalysisSettings:
    """The statistical settings of a match request (its ``parameters``), with defaults.

    Attributes
    ----------
    theta : float or str, optional
        θ override, a number or a species name; default the reference species' published
        value (:func:`matching.pair_search.theta_for`).
    dropout_rate, miscall_rate : float
        Genotyping error rates folded into the kinship LRs.
    relationships : tuple of str
        Relationships the kinship search tests.
    min_loci : int
        Minimum loci compared for a pair to be reported.
    stringency : {"high", "moderate"}
        Identity search stringency; ``max_mismatches`` and ``max_dropouts`` as in
        :class:`~matching.identity.IdentityCriteria`.
    exclusion_simulations : int
        Simulated genotypes per sample for the exclusion test of population assignment.
    mixture_sweeps, mixture_burn_in : int
        Gibbs sweeps of the mixture estimate, and how many are discarded.
    geo_cells : int
        Map grid cells along the longer side of the reference region.
    seed : int
        Seed of every simulation (calibration excepted, which has its own fixed seed).
    """

    theta: float | str | None = None
    dropout_rate: float = ErrorModel().dropout_rate
    miscall_rate: float = ErrorModel().miscall_rate
    relationships: tuple[str, ...] = tuple(RELATIONSHIPS)
    min_loci: int = 8
    stringency: str = "moderate"
    max_mismatches: int | None = None
    max_dropouts: int | None = None
    exclusion_simulations: int = 10_000
    mixture_sweeps: int = 2_000
    mixture_burn_in: int = 100
    geo_cells: int = DEFAULT_CELLS
    seed: int = 1

    @classmethod
    def from_parameters(cls, parameters: Mapping[str, Any] | None) -> AnalysisSettings:
        """Settings from a request's ``parameters``; :class:`AnalysisError` naming every
        unknown or unfitting field (``parameters.<name>``)."""
        parameters = dict(parameters or {})
        known = {f.name: f for f in dataclasses.fields(cls)}
        problems = []
        values: dict[str, Any] = {}
        for name, value in parameters.items():
            field = f"parameters.{name}"
            if name not in known:
                problems.append({"field": field, "message": "unknown setting"})
                continue
            try:
                values[name] = _setting(name, value)
            except ValueError as error:
                problems.append({"field": field, "message": str(error)})
        if not problems:
            try:
                settings = cls(**values)
                settings.error_model()
                settings.identity_criteria()
            except ValueError as error:
                problems.append({"field": "parameters", "message": str(error)})
        if problems:
            raise AnalysisError("invalid match request parameters", problems)
        return settings

    def error_model(self) -> ErrorModel:
        return ErrorModel(self.dropout_rate, self.miscall_rate)

    def identity_criteria(self) -> IdentityCriteria:
        return IdentityCriteria(self.stringency, max_mismatches=self.max_mismatches,
                                min_loci=self.min_loci, max_dropouts=self.max_dropouts)

    def as_dict(self) -> dict:
        values = dataclasses.asdict(self)
        values["relationships"] = list(self.relationships)
        return values


def _whole(value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("must be a whole number")
    if value < minimum:
        raise ValueError(f"must be at least {minimum}")
    return value


def _rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError("must be a number")
    if not 0.0 <= value < 0.5:
        raise ValueError("must be at least 0 and below 0.5")
    return float(value)


def _setting(name: str, value: Any) -> Any:
    """One setting checked and converted; ``ValueError`` saying why it does not fit."""
    if name == "theta":
        if value is None or (isinstance(value, str) and value.strip()):
            return value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number or a species name")
        if not 0.0 <= value < 1.0:
            raise ValueError("must be at least 0 and below 1")
        return float(value)
    if name in ("dropout_rate", "miscall_rate"):
        return _rate(value)
    if name == "relationships":
        if not isinstance(value, list) or not value:
            raise ValueError("must be a non-empty list")
        unknown = [r for r in value if r not in RELATIONSHIPS]
        if unknown:
            raise ValueError(f"unknown relationship {unknown[0]!r}; one of "
                             f"{', '.join(RELATIONSHIPS)}")
        return tuple(dict.fromkeys(value))
    if name == "stringency":
        if value not in STRINGENCIES:
            raise ValueError(f"must be one of {', '.join(STRINGENCIES)}")
        return value
    if name in ("max_mismatches", "max_dropouts"):
        return None if value is None else _whole(value, 0)
    minimum = {"min_loci": 1, "exclusion_simulations": 0, "mixture_sweeps": 2,
               "mixture_burn_in": 0, "geo_cells": 2, "seed": 0}[name]
    return _whole(value, minimum)


# ----------------------------------------------------------------------------- checking
def check_reference_sets(names: Sequence[str]) -> list[ReferenceSet]:
    """The bundled reference sets ``names`` (one panel for all of them), loaded;
    :class:`AnalysisError` naming the offending entries."""
    if not isinstance(names, list | tuple) or not names:
        raise AnalysisError("no reference set chosen", [
            {"field": "reference_sets", "message": "name at least one bundled reference set"}])
    bundled = list_reference_sets()
    unknown = [name for name in names if name not in bundled]
    if unknown:
        raise AnalysisError(f"no bundled reference set {unknown[0]!r}", [
            {"field": "reference_sets",
             "message": f"{unknown[0]!r} is not a bundled reference set; one of "
                        f"{', '.join(bundled)}"}])
    if len(set(names)) != len(names):
        raise AnalysisError("a reference set is named twice", [
            {"field": "reference_sets", "message": "names a reference set twice"}])
    references = [load_reference_set(name) for name in names]
    panels = {reference.panel for reference in references}
    if len(panels) != 1 or None in panels:
        raise AnalysisError("the reference sets are typed on different panels", [
            {"field": "reference_sets",
             "message": "the chosen sets must share one panel; they use "
                        + ", ".join(f"{r.name}: {r.panel}" for r in references)}])
    return references


def check_analyses(analyses: Sequence[str]) -> list[str]:
    """The analyses asked for, in :data:`~lims.models.ANALYSES` order."""
    if not isinstance(analyses, list | tuple) or not analyses:
        raise AnalysisError("no analysis chosen", [
            {"field": "analyses", "message": f"choose from {', '.join(ANALYSES)}"}])
    unknown = [name for name in analyses if name not in ANALYSES]
    if unknown:
        raise AnalysisError(f"unknown analysis {unknown[0]!r}", [
            {"field": "analyses",
             "message": f"unknown analysis {unknown[0]!r}; one of {', '.join(ANALYSES)}"}])
    return [name for name in ANALYSES if name in analyses]


def seizure_barcodes(session: Session, seizure_id: int) -> set[str]:
    """Barcodes of the samples taken from the seizure's items and of their aliquots, at any
    depth."""
    level = session.execute(sa.select(Sample.id, Sample.barcode).where(
        Sample.item_id.in_(sa.select(Item.id).where(Item.seizure_id == seizure_id)))).all()
    barcodes: set[str] = set()
    while level:
        barcodes.update(barcode for _, barcode in level)
        level = session.execute(sa.select(Sample.id, Sample.barcode).where(
            Sample.parent_id.in_([sample_id for sample_id, _ in level]))).all()
    return barcodes


def _subject_rows(session: Session, table: GenotypeTable, case: Case,
                  seizure: Seizure | None) -> np.ndarray:
    """Rows of the released table that belong to the request's subject, bool (n,): the
    samples of a seizure's items (that seizure record, whatever another agency's seizure of
    the same reference holds) or every sample of a case."""
    if seizure is not None:
        barcodes = seizure_barcodes(session, seizure.id)
    else:
        barcodes = set(session.scalars(sa.select(Sample.barcode).where(
            Sample.case_id == case.id)))
    return np.array([barcode in barcodes for barcode in table.profile_ids], dtype=bool)


def subject_profile_count(session: Session, case: Case, seizure: Seizure | None,
                          panel: Panel) -> int:
    """How many current released profiles on ``panel`` the subject has."""
    return int(_subject_rows(session, released_genotypes(session, panel), case, seizure).sum())


def panel_of(references: Sequence[ReferenceSet], panel_directory: str | None) -> Panel:
    """The panel the reference sets are typed on."""
    return resolve_panel(references[0].panel, panel_directory)


# ----------------------------------------------------------------------------- references
def combined_population_names(references: Sequence[ReferenceSet]) -> list[dict[str, str]]:
    """Per set, each population's name in the combined set: its own name, or ``"name (set)"``
    where another chosen set has a population of that name (the black and white rhino sets
    both sample Hluhluwe-iMfolozi), so that the two stay two populations."""
    counts = Counter(p.name for reference in references for p in reference.populations)
    return [{p.name: f"{p.name} ({reference.name})" if counts[p.name] > 1 else p.name
             for p in reference.populations} for reference in references]


def combine_references(references: Sequence[ReferenceSet], loci: Sequence[str]) -> ReferenceSet:
    """One reference set of several (at ``loci``) for population and geographic assignment.

    A population name that two sets share is qualified with each set's name
    (:func:`combined_population_names`); animal ids are prefixed with their set's name when
    more than one set is combined, so they stay unique.
    """
    if len(references) == 1:
        reference = references[0]
        return dataclasses.replace(reference, table=reference.table.select_loci(loci))
    names = combined_population_names(references)
    tables = []
    populations: list[PopulationInfo] = []
    for reference, renamed in zip(references, names, strict=True):
        table = reference.table.select_loci(loci)
        tables.append(table.replace(
            profile_ids=[f"{reference.name}:{pid}" for pid in table.profile_ids],
            population=[renamed[population] for population in table.population]))
        populations.extend(dataclasses.replace(population, name=renamed[population.name])
                           for population in reference.populations)
    levels = [set(reference.repunit_levels) for reference in references]
    first_level = references[0].default_repunit_level
    return ReferenceSet(
        name=" + ".join(reference.name for reference in references),
        species=" / ".join(dict.fromkeys(reference.species for reference in references)),
        table=GenotypeTable.concat(tables),
        populations=tuple(populations),
        version=" + ".join(reference.version for reference in references),
        panel=references[0].panel,
        simulated=any(reference.simulated for reference in references),
        description="Combined reference sets: "
        + "; ".join(reference.citation() for reference in references),
        default_repunit_level=first_level if all(first_level in lv for lv in levels) else None,
    )


def reference_record(reference: ReferenceSet) -> dict:
    return {
        "name": reference.name,
        "version": reference.version,
        "species": reference.species,
        "panel": reference.panel,
        "simulated": reference.simulated,
        "content_hash": reference.content_hash,
        "animals": int(reference.table.n_profiles),
        "populations": len(reference.populations),
        "description": reference.description,
    }


def panel_record(panel: Panel, loci: Sequence[str]) -> dict:
    definition = dataclasses.asdict(panel)
    return {
        "name": panel.name,
        "species": panel.species,
        "loci_used": list(loci),
        "content_hash": hashlib.sha256(canonical_json(definition)).hexdigest(),
        "description": panel.description,
    }


def software_versions() -> dict[str, str]:
    return {
        "dnatrack": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
    }


# ----------------------------------------------------------------------------- frequencies
#: A profile assigned to its reference set with a lower posterior probability than this is
#: named in the caveats: the frequencies its match statistics use rest on an uncertain call.
CONFIDENT_SET_POSTERIOR = 0.99


@dataclass(frozen=True, eq=False)
class FrequencyGroup:
    """Subject profiles whose match statistics use one reference set's allele frequencies and θ.

    Attributes
    ----------
    reference : ReferenceSet
    theta : ThetaChoice
        θ for ``reference``'s species (or the request's override).
    rows : ndarray of int64, shape (n,)
        Rows of the subject's table assigned to ``reference``.
    posterior : ndarray of float64, shape (n,)
        Each row's posterior probability of coming from ``reference`` rather than from another
        chosen set (1 when only one set was chosen).
    """

    reference: ReferenceSet
    theta: ThetaChoice
    rows: np.ndarray
    posterior: np.ndarray


def reference_set_posterior(references: Sequence[ReferenceSet], loci: Sequence[str],
                            samples: GenotypeTable) -> np.ndarray:
    """Posterior probability of each sample coming from each reference set, float64
    (n_samples, n_sets).

    Each set's likelihood is the mean of its populations' (Rannala & Mountain, DESIGN 5.5,
    over the sets combined), and the sets have equal priors, so a set with more populations is
    not favoured for that alone.
    """
    combined = combine_references(references, loci)
    set_of = {name: k for k, renamed in enumerate(combined_population_names(references))
              for name in renamed.values()}
    model = AssignmentModel.from_table(
        combined.table, {population: references[k].name for population, k in set_of.items()},
        name=combined.name)
    log_likelihood = model.log_likelihoods(model.encode(samples))
    members = np.array([set_of[population] for population in model.populations])
    per_set = np.stack([
        np.logaddexp.reduce(log_likelihood[:, members == k], axis=1) - np.log(np.sum(members == k))
        for k in range(len(references))
    ], axis=1)
    weights = np.exp(per_set - per_set.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def frequency_groups(references: Sequence[ReferenceSet], loci: Sequence[str],
                     subject: GenotypeTable, theta_override: float | str | None
                     ) -> list[FrequencyGroup]:
    """The reference set whose allele frequencies and θ each subject profile's match statistics
    use: the set the profile is assigned to (:func:`reference_set_posterior`), whatever order
    the sets were chosen in — forest elephant frequencies applied to savanna elephants make
    shared alleles look rarer than they are and unrelated animals look related.

    Groups follow the order of ``references``; a set no profile is assigned to has none.
    """
    if len(references) == 1:
        reference = references[0]
        return [FrequencyGroup(reference, theta_for(reference, theta_override),
                               np.arange(len(subject)), np.ones(len(subject)))]
    posterior = reference_set_posterior(references, loci, subject)
    assigned = np.argmax(posterior, axis=1)
    groups = []
    for k, reference in enumerate(references):
        rows = np.flatnonzero(assigned == k)
        if len(rows):
            groups.append(FrequencyGroup(reference, theta_for(reference, theta_override),
                                         rows, posterior[rows, k]))
    return groups


def _percent(fraction: float) -> str:
    """A posterior probability as a percentage that never rounds up to a certain 100%."""
    return "above 99.99%" if fraction > 0.9999 else f"{100 * fraction:.2f}%"


def _frequencies_record(groups: Sequence[FrequencyGroup], references: Sequence[ReferenceSet],
                        subject: GenotypeTable) -> dict:
    """Which reference set supplied the frequencies and θ of which profiles' statistics, and
    why (``statement``, printed in reports)."""
    ids = [str(pid) for pid in subject.profile_ids]
    several = len(references) > 1
    sets = [{
        "reference": group.reference.name,
        "species": group.reference.species,
        "theta": group.theta.value,
        "theta_source": group.theta.source,
        "samples": [ids[row] for row in group.rows],
        "lowest_posterior": float(group.posterior.min()) if several else None,
    } for group in groups]
    uncertain = [
        {"barcode": ids[row], "reference": group.reference.name, "posterior": float(posterior)}
        for group in groups for row, posterior in zip(group.rows, group.posterior, strict=True)
        if posterior < CONFIDENT_SET_POSTERIOR
    ]
    if not several:
        [chosen] = sets
        statement = (f"Allele frequencies and θ of reference set {chosen['reference']} "
                     f"({chosen['species']}), the only set chosen.")
    elif len(sets) == 1:
        [chosen] = sets
        rest = ", ".join(r.name for r in references if r.name != chosen["reference"])
        statement = (
            f"Allele frequencies and θ of reference set {chosen['reference']} "
            f"({chosen['species']}): all {len(ids)} profiles of the subject are assigned to "
            f"it rather than to {rest} (lowest posterior probability "
            f"{_percent(chosen['lowest_posterior'])}, equal priors for the sets).")
    else:
        shares = ", ".join(f"{len(s['samples'])} to {s['reference']} ({s['species']})"
                           for s in sets)
        statement = (
            f"The subject's profiles are assigned to {len(sets)} reference sets: {shares}. "
            "Each profile's pairs use the allele frequencies and θ of the set it is assigned "
            "to; a pair of two profiles assigned to different sets is computed with both and "
            "reported only when both support it, with the lower likelihood ratio.")
    return {"statement": statement, "sets": sets, "uncertain": uncertain}


# ----------------------------------------------------------------------------- evidence nodes
#: A seizure or source animal by its record: ``("seizure", id)`` or ``("animal", id)``.
Record = tuple[str, int]


@dataclass
class _Origin:
    """Where a profiled sample comes from, as reports name it."""

    record: Record  # the seizure or source animal
    description: str  # "tusk T3 of seizure KE-SZ-1", "carcass C-12"
    case_id: int


def _origins(session: Session, barcodes: set[str]) -> dict[str, _Origin]:
    samples = session.scalars(sa.select(Sample).where(Sample.barcode.in_(barcodes))).all()
    origins = {}
    for sample in samples:
        item = sample.origin_item
        if item is not None:
            seizure = item.seizure
            origins[sample.barcode] = _Origin(
                ("seizure", seizure.id),
                f"{item.kind} {item.label} of seizure {seizure.reference}",
                sample.case_id,
            )
        else:
            animal = sample.origin_source_animal
            kind = animal.kind.replace("_", " ")
            origins[sample.barcode] = _Origin(
                ("animal", animal.id), f"{kind} {animal.identifier}", sample.case_id)
    return origins


def _nodes(session: Session, records: set[Record], readable_cases: set[int],
           subject: set[Record]) -> tuple[dict[Record, str], dict[str, dict]]:
    """What reports show of each seizure or source animal, and the key it is shown under.

    A node shows its reference, kind and holding agency always; its case and place only when
    the requester may read its case. Records the requester may read are keyed
    ``"seizure:<id>"`` / ``"animal:<id>"``, the others ``"held:<n>"`` (numbered in the order of
    holding agency and reference), so a result never carries another agency's record ids.
    Returns ``record -> key`` and ``key -> node``.
    """
    seizure_ids = {record_id for kind, record_id in records if kind == "seizure"}
    animal_ids = {record_id for kind, record_id in records if kind == "animal"}
    found: list[tuple[Record, dict]] = []
    rows = session.execute(
        sa.select(Seizure, Case, Agency)
        .join(Case, Case.id == Seizure.case_id)
        .join(Agency, Agency.id == Case.agency_id)
        .where(Seizure.id.in_(seizure_ids))
    ).all()
    for seizure, case, agency in rows:
        visible = case.id in readable_cases
        found.append((("seizure", seizure.id), {
            "kind": "seizure",
            "reference": seizure.reference,
            "agency": agency.name,
            "visible": visible,
            "in_subject": ("seizure", seizure.id) in subject,
            "case": case.reference if visible else None,
            "country": seizure.country if visible else None,
            "place": seizure.place if visible else None,
            "seized_on": seizure.seized_on.isoformat() if visible and seizure.seized_on else None,
        }))
    rows = session.execute(
        sa.select(SourceAnimal, Case, Agency)
        .join(Case, Case.id == SourceAnimal.case_id)
        .join(Agency, Agency.id == Case.agency_id)
        .where(SourceAnimal.id.in_(animal_ids))
    ).all()
    for animal, case, agency in rows:
        visible = case.id in readable_cases
        found.append((("animal", animal.id), {
            "kind": animal.kind,
            "reference": animal.identifier,
            "agency": agency.name,
            "visible": visible,
            "in_subject": ("animal", animal.id) in subject,
            "case": case.reference if visible else None,
            "country": None,
            "place": animal.population if visible else None,
            "seized_on": animal.found_on.isoformat() if visible and animal.found_on else None,
        }))
    found.sort(key=lambda entry: (entry[1]["agency"], entry[1]["reference"], entry[1]["kind"],
                                  entry[0]))
    keys: dict[Record, str] = {}
    nodes: dict[str, dict] = {}
    held = 0
    for record, node in found:
        if node["visible"]:
            key = f"{record[0]}:{record[1]}"
        else:
            held += 1
            key = f"held:{held}"
        keys[record] = key
        nodes[key] = node
    return keys, nodes


# ----------------------------------------------------------------------------- the run
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


@dataclass(eq=False)
class _GroupSearch:
    """The search of one frequency group's profiles, with that group's frequencies and θ."""

    group: FrequencyGroup
    search: KinshipSearch
    found: FoundPairs


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
) -> tuple[list[_GroupSearch], list[tuple[dict, int]], int]:
    """Search each frequency group's profiles among themselves and against every other released
    profile (other groups' included) with the group's frequencies, θ and cutoffs.

    Cutoffs are calibrated for the number of pairs the whole request compares. Returns the
    searches, the pairs kept (:func:`_chosen_pairs`) and how many were dropped.
    """
    errors = settings.error_model()
    n_pairs = pairs_compared(len(subject), len(others))
    if kinship:
        steps.enter("calibrating cutoffs")
    prepared = []
    for group in groups:
        reference_table = group.reference.table.select_loci(loci)
        scoring = Scoring.for_reference(reference_table, group.theta.value, errors)
        calibration = None
        if kinship:
            group_notes: list[str] = []
            calibration = search_calibration(
                group.reference, reference_table, scoring=scoring,
                relationships=settings.relationships, pairs_compared=n_pairs,
                folder=reference_set_path(group.reference.name), notes=group_notes,
            )
            notes.extend(note if len(groups) == 1 else f"{group.reference.name}: {note}"
                         for note in group_notes)
        prepared.append((group, reference_table, scoring, calibration))
    steps.enter("kinship and identity search")
    progress = steps.counter("kinship and identity search", len(subject), 0.8)
    searches = []
    for group, reference_table, scoring, calibration in prepared:
        search = KinshipSearch.from_reference(
            reference_table, subject, *([others] if len(others) else []),
            **scoring.search_options(), relationships=settings.relationships,
            cutoffs={r: DEFAULT_CUTOFFS[r] for r in settings.relationships},
            min_loci=settings.min_loci, calibration=calibration,
        )
        outside = np.setdiff1d(np.arange(len(subject)), group.rows)
        rest = [table for table in (subject.take(outside), others) if len(table)]
        found = find_pairs(search, subject.take(group.rows),
                           GenotypeTable.concat(rest) if rest else None, kinship=kinship,
                           criteria=criteria, kinship_progress=progress)
        searches.append(_GroupSearch(group, search, found))
    group_of = {str(subject.profile_ids[row]): k for k, group in enumerate(groups)
                for row in group.rows}
    chosen, dropped = _chosen_pairs(searches, group_of)
    return searches, chosen, dropped


def _chosen_pairs(searches: Sequence[_GroupSearch], group_of: dict[str, int]
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
            math.inf if entry[0]["log10_lr"] == "" else entry[0]["log10_lr"],
            -entry[0].get("rmp", 0.0))))
    chosen.sort(key=lambda entry: (entry[0]["sample1"], entry[0]["sample2"]))
    return chosen, dropped


def run_analysis(
    session: Session,
    request: MatchRequest,
    *,
    panel_directory: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run a match request's analyses and assemble its result.

    Parameters
    ----------
    session
        A session on the LIMS database (only read from).
    request
        The match request (its case, seizure, analyses, reference sets and parameters).
    panel_directory
        Extra panel folder (the app's ``PANEL_DIRECTORY``).
    progress
        Called with ``(fraction done, stage name)`` as the work advances.

    Returns
    -------
    dict
        JSON-ready results (layout :data:`RESULT_FORMAT`), need-to-know applied for the
        requester.

    Raises
    ------
    AnalysisError
        When the request cannot be run (no released profiles, too few shared loci…).
    """
    analyses = check_analyses(request.analyses)
    settings = AnalysisSettings.from_parameters(request.parameters)
    references = check_reference_sets(request.reference_sets)
    search_wanted = bool({"identity", "kinship"} & set(analyses))
    assign_wanted = bool({"assignment", "mixture"} & set(analyses))
    stages = ["loading released profiles"]
    if "kinship" in analyses:
        stages.append("calibrating cutoffs")
    if search_wanted:
        stages.append("kinship and identity search")
    if assign_wanted:
        stages.append("population assignment")
    if "mixture" in analyses:
        stages.append("mixture proportions")
    if "geographic" in analyses:
        stages.append("geographic assignment")
    stages.append("assembling the results")
    steps = _Stages(progress, stages)

    steps.enter("loading released profiles")
    panel = panel_of(references, panel_directory)
    loci = [locus for locus in references[0].table.loci
            if locus in panel and all(locus in r.table.loci for r in references)]
    if len(loci) < settings.min_loci:
        raise AnalysisError(
            f"only {len(loci)} loci are shared by panel {panel.name} and the reference sets; "
            f"at least min_loci = {settings.min_loci} are needed")
    released = released_genotypes(session, panel).select_loci(loci)
    case = session.get(Case, request.case_id)
    seizure = session.get(Seizure, request.seizure_id) if request.seizure_id else None
    in_subject = _subject_rows(session, released, case, seizure)
    if not in_subject.any():
        subject = f"seizure {seizure.reference}" if seizure else f"case {case.reference}"
        raise AnalysisError(f"{subject} has no released genotype profiles on panel {panel.name}")
    subject_table = released.take(np.flatnonzero(in_subject))
    others = released.take(np.flatnonzero(~in_subject))
    requester = session.get(User, request.requested_by_id)
    readable_cases = set(session.scalars(case_ids(requester)))
    notes: list[str] = []

    result: dict[str, Any] = {
        "format": RESULT_FORMAT,
        "subject": {
            "kind": "seizure" if seizure else "case",
            "reference": seizure.reference if seizure else case.reference,
            "case_reference": case.reference,
            "case_title": case.title,
            "agency": case.agency.name,
        },
        "analyses": analyses,
        "reference_sets": [reference_record(reference) for reference in references],
        "panel": panel_record(panel, loci),
        "software": software_versions(),
        "searched": {"released_profiles": int(len(released)),
                     "subject_profiles": int(len(subject_table))},
        "ledger_head": dataclasses.asdict(ledger_head(session)),
        "frequencies": None,
    }
    errors = settings.error_model()
    parameters: dict[str, Any] = {"settings": settings.as_dict(), "theta": None}
    subject_barcodes = [str(pid) for pid in subject_table.profile_ids]
    origins = _origins(session, set(subject_barcodes))
    subject_records = {origin.record for origin in origins.values()}

    if search_wanted:
        frequency_sets = frequency_groups(references, loci, subject_table, settings.theta)
        result["frequencies"] = _frequencies_record(frequency_sets, references, subject_table)
        parameters["theta"] = {group.reference.name: group.theta.to_dict()
                               for group in frequency_sets}
        criteria = settings.identity_criteria() if "identity" in analyses else None
        searches, chosen, dropped = _search_pairs(
            frequency_sets, subject_table, others, loci, settings, criteria,
            kinship="kinship" in analyses, steps=steps, notes=notes)
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
            result["kinship_power"] = {
                searched.group.reference.name: power_summary(searched.search, len(loci))
                for searched in searches}
        parameters["identity"] = None if criteria is None else {
            **criteria.as_dict(), "guaranteed_bad_loci": guarantee}
        rows = [row for row, _ in chosen]
        origins.update(_origins(session, {
            row[side] for row in rows for side in ("sample1", "sample2")} - set(origins)))
    node_key, nodes = _nodes(session, {origin.record for origin in origins.values()},
                             readable_cases, subject_records)
    node_of = {barcode: node_key[origin.record] for barcode, origin in origins.items()}
    result["subject_profiles"] = [
        {"barcode": barcode, "origin": origins[barcode].description, "node": node_of[barcode],
         "loci_typed": int(n)}
        for barcode, n in zip(subject_barcodes, subject_table.n_typed, strict=True)
    ]
    if search_wanted:
        result["pairs"] = _pair_records(chosen, searches, origins, node_of, readable_cases,
                                        set(subject_barcodes))
        graph = link_seizures(rows, node_of)
        result["links"] = _link_records(graph.links, nodes)
        result["networks"] = graph.components
        result["within_node_pairs"] = len(graph.within_seizure)
    else:
        result["pairs"], result["links"], result["networks"] = [], [], []
        result["within_node_pairs"] = 0
    result["nodes"] = nodes

    # The subject's seizures and animals, by key: the engine's groups (two of the same
    # reference stay two); their references only label the results.
    groups = [node_of[barcode] for barcode in subject_barcodes]
    labels = {key: nodes[key]["reference"] for key in groups}
    combined = None
    if assign_wanted or "geographic" in analyses:
        combined = combine_references(references, loci)
    assignment = None
    if assign_wanted:
        steps.enter("population assignment")
        model = AssignmentModel.from_reference(combined)
        assignment = model.assign(
            subject_table, exclusion_simulations=settings.exclusion_simulations,
            seed=settings.seed,
            progress=steps.counter("population assignment", len(subject_table)),
        )
        parameters["assignment"] = assignment.parameters()
        if "assignment" in analyses:
            result["assignment"] = _assignment_record(assignment, model, combined, origins)
    if "mixture" in analyses:
        steps.enter("mixture proportions")
        mixture = estimate_mixture(assignment, groups, n_sweeps=settings.mixture_sweeps,
                                   burn_in=settings.mixture_burn_in, seed=settings.seed)
        parameters["mixture"] = mixture.parameters()
        result["mixture"] = _mixture_record(mixture, labels)
    if "geographic" in analyses:
        steps.enter("geographic assignment")
        geo = GeographicModel.from_reference(combined, n_cells=settings.geo_cells)
        parameters["geographic"] = geo.parameters()
        result["geographic"] = _geo_record(geo, subject_table, groups, labels)

    steps.enter("assembling the results")
    result["parameters"] = parameters
    parameters = json_ready(parameters)
    result["parameters_sha256"] = hashlib.sha256(canonical_json(parameters)).hexdigest()
    result["notes"] = notes
    result["caveats"] = _caveats(references, panel, errors, result)
    return json_ready(result)


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers and non-finite floats made ``None``
    (JSON has no NaN or infinity, and PostgreSQL refuses them)."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# ----------------------------------------------------------------------------- records
def _pair_records(chosen: Sequence[tuple[dict, int]], searches: Sequence[_GroupSearch],
                  origins: dict[str, _Origin], node_of: dict[str, str],
                  readable_cases: set[int], subject: set[str]) -> list[dict]:
    """One record per pair, the subject's sample first, with the reference set whose frequencies
    and θ its numbers use; pairs into cases the requester may not read keep only the other
    side's node (seizure or animal) and the relationship."""
    records = []
    for row, k in chosen:
        searched = searches[k]
        search, table = searched.search, searched.found.table
        reference = searched.group.reference
        first, second = row["sample1"], row["sample2"]
        if first not in subject:
            first, second = second, first
        relationship = row["relationship"]
        other = origins[second]
        if other.case_id not in readable_cases:
            records.append({
                "visible": False,
                "sample1": first,
                "node1": node_of[first],
                "node2": node_of[second],
                "relationship": relationship,
                "relationship_label": RELATIONSHIP_LABELS[relationship],
            })
            continue
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
            loci.append({
                "locus": locus,
                "genotype1": genotype_text(table.alleles[i, n].tolist()),
                "genotype2": genotype_text(table.alleles[j, n].tolist()),
                "compared": typed,
                "identical": bool(identical[n]),
                "log10_lr": float(per_locus[n, r]) if (r is not None and typed) else None,
                "match_probability": float(rmp_per_locus[n])
                if rmp_per_locus is not None and identical[n] else None,
            })
        log10_lr = row["log10_lr"] if row["log10_lr"] != "" else None
        verbal = None if log10_lr is None else verbal_equivalent(log10_lr)
        stated = propositions(relationship, f"{first} ({origins[first].description})",
                              f"{second} ({other.description})", reference.species)
        record = {
            "visible": True,
            "sample1": first,
            "sample2": second,
            "origin1": origins[first].description,
            "origin2": other.description,
            "node1": node_of[first],
            "node2": node_of[second],
            "relationship": relationship,
            "relationship_label": RELATIONSHIP_LABELS[relationship],
            "evidence": row["evidence"],
            "frequency_reference": reference.name,
            "theta": search.table_theta,
            "loci_compared": int(row["loci_compared"]),
            "log10_lr": log10_lr,
            "lr_text": None if log10_lr is None else format_likelihood_ratio(log10_lr),
            "verbal": None if verbal is None else verbal.words,
            "conclusion": None if verbal is None else verbal.sentence(stated["first"],
                                                                      stated["second"]),
            "propositions": stated,
            "log10_lr_by_relationship": {
                name: row[f"log10_lr_{name}"] for name in search.relationships},
            "rmp": row.get("rmp"),
            "rmp_text": None if row.get("rmp") is None else format_decimal(row["rmp"]),
            "one_in_text": None if row.get("rmp") is None
            else format_decimal(1.0 / row["rmp"]),
            "identity": None if "identity" not in row else {
                "stringency": row["identity"],
                "loci_identical": int(row["loci_identical"]),
                "loci_dropout": int(row["loci_dropout"]),
                "loci_mismatch": int(row["loci_mismatch"]),
            },
            "loci": loci,
        }
        records.append(record)
    return records


def _link_records(links, nodes: dict[str, dict]) -> list[dict]:
    """One record per link, the subject's side first, in the order of the nodes' references
    (the engine orders them by key, and keys are record ids a reader knows nothing of)."""
    records = []
    for link in links:
        first, second = link.seizure1, link.seizure2
        if nodes[second]["in_subject"] and not nodes[first]["in_subject"]:
            first, second = second, first
        both_visible = nodes[first]["visible"] and nodes[second]["visible"]
        records.append({
            "node1": first,
            "node2": second,
            "n_pairs": link.n_pairs,
            "same_animal": link.same_animal,
            "relationships": {RELATIONSHIP_LABELS[r]: n for r, n in link.relationships.items()},
            "max_log10_lr": link.max_log10_lr if both_visible else None,
            "visible": both_visible,
        })
    return sorted(records, key=lambda record: tuple(
        (nodes[record[side]]["reference"], nodes[record[side]]["agency"], record[side])
        for side in ("node1", "node2")))


def _assignment_record(assignment, model: AssignmentModel, reference: ReferenceSet,
                       origins: dict[str, _Origin]) -> dict:
    rows = []
    for record, posterior in zip(assignment.records(), assignment.posterior, strict=True):
        top = np.argsort(-posterior, kind="stable")[:3]
        p_value = record["exclusion_p_value"]
        rows.append({
            "barcode": record["indiv"],
            "origin": origins[record["indiv"]].description,
            "population": record["inferred_collection"],
            "posterior": record["scaled_likelihood"],
            "repunit": record["inferred_repunit"],
            "repunit_posterior": record["repunit_scaled_likelihood"],
            "z_score": record["z_score"],
            "exclusion_p_value": None if math.isnan(p_value) else p_value,
            "unsampled_source": record["unsampled_source"],
            "loci_typed": record["n_non_miss_loci"],
            "top": [{"population": model.populations[p], "posterior": float(posterior[p])}
                    for p in top],
        })
    level = reference.default_repunit_level
    return {
        "reference": reference.name,
        "repunit_level": level or "population",
        "populations": [
            {"name": p.name, "locality": p.locality,
             "repunit": p.repunits.get(level, p.name) if level else p.name}
            for p in reference.populations
        ],
        "rows": rows,
    }


def _mixture_record(mixture, labels: dict[str, str]) -> list[dict]:
    """One record per group (``node`` its key, ``group`` its reference, as labels say)."""
    by_group: dict[str, dict] = {}
    for row in mixture.proportion_records():
        key = row["mixture_collection"]
        group = by_group.setdefault(key, {
            "node": key, "group": labels[key], "n_samples": row["n_samples"],
            "populations": [], "repunits": []})
        group["populations"].append({
            "population": row["collection"], "repunit": row["repunit"], "pi": row["pi"],
            "lo95": row["pi_lo95"], "hi95": row["pi_hi95"], "em": row["pi_em"]})
    for row in mixture.repunit_records():
        by_group[row["mixture_collection"]]["repunits"].append({
            "repunit": row["repunit"], "pi": row["repunit_pi"], "lo95": row["repunit_pi_lo95"],
            "hi95": row["repunit_pi_hi95"], "em": row["repunit_pi_em"]})
    for group in by_group.values():
        group["populations"].sort(key=lambda entry: -entry["pi"])
        group["repunits"].sort(key=lambda entry: -entry["pi"])
    return list(by_group.values())


def _geo_record(geo: GeographicModel, samples: GenotypeTable, groups: list[str],
                labels: dict[str, str]) -> dict:
    """The surfaces of each group (``node`` its key, ``group`` its reference, as labels say)."""
    surfaces = geo.seizure_surfaces(samples, groups, method="pooled")
    regions50 = surfaces.credible_regions(0.5)
    regions90 = surfaces.credible_regions(0.9)
    area50, area90 = surfaces.region_area_km2(0.5), surfaces.region_area_km2(0.9)
    grid = geo.grid
    return {
        "method": "pooled: the average of the seizure's samples' posterior surfaces "
                  "(a seizure may hold animals of several origins)",
        "grid": {
            "lat_edges": grid.lat_edges.tolist(),
            "lon_edges": grid.lon_edges.tolist(),
            "in_range": np.flatnonzero(grid.in_range.ravel()).tolist(),
        },
        "sites": [{"name": name, "lat": float(lat), "lon": float(lon)}
                  for name, lat, lon in zip(geo.sites.populations, geo.site_lat, geo.site_lon,
                                            strict=True)],
        "surfaces": [
            {
                "node": str(name),
                "group": labels[str(name)],
                "best_lat": float(surfaces.best_lat[k]),
                "best_lon": float(surfaces.best_lon[k]),
                "max_posterior": float(surfaces.posterior[k, surfaces.best_cell[k]]),
                "area50_km2": float(area50[k]),
                "area90_km2": float(area90[k]),
                "posterior": surfaces.posterior[k].tolist(),
                "region50": np.flatnonzero(regions50[k]).tolist(),
                "region90": np.flatnonzero(regions90[k]).tolist(),
            }
            for k, name in enumerate(surfaces.names)
        ],
        "samples": geo.assign(samples).records(),
    }


def _caveats(references: Sequence[ReferenceSet], panel: Panel, errors: ErrorModel,
             result: dict) -> list[str]:
    caveats = []
    for reference in references:
        if reference.simulated:
            caveats.append(
                f"Reference set {reference.name} is SIMULATED: its genotypes are not data from "
                "real animals. Frequencies, likelihood ratios, match probabilities and origins "
                "computed from it illustrate the method and must not be used as evidence.")
    caveats.append(
        f"The allele size ranges of panel {panel.name} are acceptance windows for import "
        "checks, not laboratory-validated allele bins; genotypes must come from validated "
        "allele calls.")
    frequencies = result["frequencies"]
    if frequencies is not None:
        sets = frequencies["sets"]
        thetas = "; ".join(
            f"θ = {s['theta']:g} ({s['theta_source']})"
            + (f" with the frequencies of {s['reference']}" if len(sets) > 1 else "")
            for s in sets)
        caveats.append(
            f"Co-ancestry {thetas}. Genotyping error rates folded into the likelihood ratios: "
            f"allelic dropout {errors.dropout_rate:g} per heterozygous locus, miscall "
            f"{errors.miscall_rate:g} per locus; observed genotypes that differ between the "
            "two items of a pair therefore lower, but never zero, the LR.")
        if len(sets) > 1:
            caveats.append(
                "The subject's profiles are assigned to different reference sets ("
                + ", ".join(f"{s['reference']}: {len(s['samples'])}" for s in sets)
                + "). Each pair's likelihood ratio and match probability use the frequencies "
                "of the set its subject profile is assigned to, named with the pair; a pair "
                "of two profiles assigned to different sets is reported only when the "
                "frequencies of both sets support it, with the lower likelihood ratio. Animals "
                "of different species are not expected to be related: such a pair calls for a "
                "species identification of both items.")
        if frequencies["uncertain"]:
            listed = ", ".join(f"{u['barcode']} ({u['reference']}, posterior "
                               f"{_percent(u['posterior'])})" for u in frequencies["uncertain"])
            caveats.append(
                f"Which reference set profile(s) {listed} come from is uncertain: their match "
                "statistics use the frequencies of the more likely set and could differ with "
                "another set's. A species identification of these items would settle it.")
    for reference_name, power in (result.get("kinship_power") or {}).items():
        if not power:
            continue
        loci = next(iter(power.values()))["loci"]
        caveats.append(
            f"Kinship cutoffs ({reference_name}) keep the expected number of unrelated pairs "
            f"reported to at most {DEFAULT_EXPECTED_FALSE_PAIRS:g} for this search; at {loci} "
            "loci compared they find, of true pairs: " + ", ".join(
                f"{name.replace('_', ' ')} {row['power']:.0%}" for name, row in power.items())
            + ". A relative who is not reported is not thereby excluded.")
        warning = low_power_warning(power)
        if warning:
            caveats.append(f"{reference_name}: {warning[0].upper()}{warning[1:]}.")
    hidden = [node for node in result.get("nodes", {}).values() if not node["visible"]]
    if hidden:
        caveats.append(
            f"{len(hidden)} linked seizure(s) or animal(s) are held by other agencies whose "
            "records you may not read: only their reference and holding agency are shown. "
            "Ask the holding agency for details.")
    caveats.append(
        "Population and geographic assignment can only point to populations and places "
        "represented in the reference sets; a sample flagged as from an unsampled source may "
        "come from elsewhere.")
    return caveats
