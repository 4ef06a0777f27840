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

Everything the engine is given — settings, θ, error rates, cutoffs, the reference sets'
content hashes, the software versions — is recorded in the result, so a report can cite it
and the numbers can be reproduced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import platform
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
from matching.geo import DEFAULT_CELLS, GeographicModel
from matching.identity import STRINGENCIES, IdentityCriteria
from matching.kinship import DEFAULT_CUTOFFS, KinshipSearch
from matching.links import link_seizures
from matching.match_probability import match_probabilities
from matching.mixture import estimate_mixture
from matching.pair_search import (
    find_pairs,
    identical_loci,
    locus_log10_lrs,
    pairs_compared,
    search_calibration,
    theta_for,
)
from matching.relationships import RELATIONSHIPS, ErrorModel
from reference_data import list_reference_sets, reference_set_path

#: Version of the result layout; reports and templates read this layout.
RESULT_FORMAT = 1

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


def _subject_rows(session: Session, table: GenotypeTable, case: Case,
                  seizure: Seizure | None) -> np.ndarray:
    """Rows of the released table that belong to the request's subject, bool (n,)."""
    if seizure is not None:
        return np.asarray(table.group == seizure.reference, dtype=bool)
    barcodes = set(session.scalars(sa.select(Sample.barcode).where(Sample.case_id == case.id)))
    return np.array([barcode in barcodes for barcode in table.profile_ids], dtype=bool)


def subject_profile_count(session: Session, case: Case, seizure: Seizure | None,
                          panel: Panel) -> int:
    """How many current released profiles on ``panel`` the subject has."""
    return int(_subject_rows(session, released_genotypes(session, panel), case, seizure).sum())


def panel_of(references: Sequence[ReferenceSet], panel_directory: str | None) -> Panel:
    """The panel the reference sets are typed on."""
    return resolve_panel(references[0].panel, panel_directory)


# ----------------------------------------------------------------------------- references
def combine_references(references: Sequence[ReferenceSet], loci: Sequence[str]) -> ReferenceSet:
    """One reference set of several (at ``loci``) for population and geographic assignment.

    Populations must have distinct names across the sets; animal ids are prefixed with their
    set's name when more than one set is combined, so they stay unique.
    """
    if len(references) == 1:
        reference = references[0]
        return dataclasses.replace(reference, table=reference.table.select_loci(loci))
    tables = []
    for reference in references:
        table = reference.table.select_loci(loci)
        tables.append(table.replace(
            profile_ids=[f"{reference.name}:{pid}" for pid in table.profile_ids]))
    populations: list[PopulationInfo] = []
    seen: dict[str, str] = {}
    for reference in references:
        for population in reference.populations:
            if population.name in seen:
                raise AnalysisError(
                    f"population {population.name!r} is in reference sets "
                    f"{seen[population.name]!r} and {reference.name!r}; they cannot be "
                    "combined")
            seen[population.name] = reference.name
            populations.append(population)
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


# ----------------------------------------------------------------------------- evidence nodes
@dataclass
class _Origin:
    """Where a profiled sample comes from, as reports name it."""

    node: str  # key of the seizure or source animal: "seizure:<ref>" / "animal:<identifier>"
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
                f"seizure:{seizure.reference}",
                f"{item.kind} {item.label} of seizure {seizure.reference}",
                sample.case_id,
            )
        else:
            animal = sample.origin_source_animal
            kind = animal.kind.replace("_", " ")
            origins[sample.barcode] = _Origin(
                f"animal:{animal.identifier}", f"{kind} {animal.identifier}", sample.case_id)
    return origins


def _nodes(session: Session, keys: set[str], readable_cases: set[int],
           subject_nodes: set[str]) -> dict[str, dict]:
    """What reports show of each seizure or source animal: its reference, kind and holding
    agency always; its case and place only when the requester may read its case."""
    seizure_refs = {key.split(":", 1)[1] for key in keys if key.startswith("seizure:")}
    animal_ids = {key.split(":", 1)[1] for key in keys if key.startswith("animal:")}
    nodes = {}
    rows = session.execute(
        sa.select(Seizure, Case, Agency)
        .join(Case, Case.id == Seizure.case_id)
        .join(Agency, Agency.id == Case.agency_id)
        .where(Seizure.reference.in_(seizure_refs))
    ).all()
    for seizure, case, agency in rows:
        visible = case.id in readable_cases
        nodes[f"seizure:{seizure.reference}"] = {
            "kind": "seizure",
            "reference": seizure.reference,
            "agency": agency.name,
            "visible": visible,
            "in_subject": f"seizure:{seizure.reference}" in subject_nodes,
            "case": case.reference if visible else None,
            "country": seizure.country if visible else None,
            "place": seizure.place if visible else None,
            "seized_on": seizure.seized_on.isoformat() if visible and seizure.seized_on else None,
        }
    rows = session.execute(
        sa.select(SourceAnimal, Case, Agency)
        .join(Case, Case.id == SourceAnimal.case_id)
        .join(Agency, Agency.id == Case.agency_id)
        .where(SourceAnimal.identifier.in_(animal_ids))
    ).all()
    for animal, case, agency in rows:
        visible = case.id in readable_cases
        nodes[f"animal:{animal.identifier}"] = {
            "kind": animal.kind,
            "reference": animal.identifier,
            "agency": agency.name,
            "visible": visible,
            "in_subject": f"animal:{animal.identifier}" in subject_nodes,
            "case": case.reference if visible else None,
            "country": None,
            "place": animal.population if visible else None,
            "seized_on": animal.found_on.isoformat() if visible and animal.found_on else None,
        }
    return nodes


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
    frequency_reference = references[0]
    loci = [locus for locus in frequency_reference.table.loci
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
        "frequency_reference": frequency_reference.name,
        "panel": panel_record(panel, loci),
        "software": software_versions(),
        "searched": {"released_profiles": int(len(released)),
                     "subject_profiles": int(len(subject_table))},
        "ledger_head": dataclasses.asdict(ledger_head(session)),
    }
    theta = theta_for(frequency_reference, settings.theta)
    errors = settings.error_model()
    parameters: dict[str, Any] = {"settings": settings.as_dict(), "theta": theta.to_dict()}
    origins = _origins(session, {str(pid) for pid in subject_table.profile_ids})
    subject_nodes = {origins[str(pid)].node for pid in subject_table.profile_ids}
    node_keys = set(subject_nodes)

    result["subject_profiles"] = [
        {"barcode": str(pid), "origin": origins[str(pid)].description,
         "node": origins[str(pid)].node, "loci_typed": int(n)}
        for pid, n in zip(subject_table.profile_ids, subject_table.n_typed, strict=True)
    ]

    if search_wanted:
        ref_table = frequency_reference.table.select_loci(loci)
        existing = others if len(others) else None
        calibration = None
        if "kinship" in analyses:
            steps.enter("calibrating cutoffs")
            calibration = search_calibration(
                frequency_reference, ref_table, theta=theta.value, errors=errors,
                relationships=settings.relationships,
                pairs_compared=pairs_compared(len(subject_table), len(others)),
                folder=reference_set_path(frequency_reference.name), notes=notes,
            )
        steps.enter("kinship and identity search")
        search = KinshipSearch.from_reference(
            ref_table, *(t for t in (subject_table, existing) if t is not None),
            theta=theta.value, errors=errors, relationships=settings.relationships,
            cutoffs={r: DEFAULT_CUTOFFS[r] for r in settings.relationships},
            min_loci=settings.min_loci, calibration=calibration,
        )
        criteria = settings.identity_criteria() if "identity" in analyses else None
        found = find_pairs(search, subject_table, existing, kinship="kinship" in analyses,
                           criteria=criteria, kinship_progress=steps.counter(
                               "kinship and identity search", len(subject_table), 0.8))
        if criteria is not None:
            notes.append(
                f"identity search ({criteria.stringency} stringency): every matching pair with "
                f"at most {found.identity_guarantee} loci not identical (mismatching, "
                "dropout-compatible or untyped) is found")
        parameters["kinship"] = search.parameters() if "kinship" in analyses else None
        parameters["identity"] = None if criteria is None else {
            **criteria.as_dict(), "guaranteed_bad_loci": found.identity_guarantee}
        origins.update(_origins(session, {
            row[side] for row in found.rows for side in ("sample1", "sample2")} - set(origins)))
        node_of = {barcode: origin.node for barcode, origin in origins.items()}
        for row in found.rows:
            node_keys.update((node_of[row["sample1"]], node_of[row["sample2"]]))
        nodes = _nodes(session, node_keys, readable_cases, subject_nodes)
        result["pairs"] = _pair_records(found, search, origins, readable_cases, set(
            str(pid) for pid in subject_table.profile_ids), frequency_reference.species)
        graph = link_seizures(found.rows, node_of)
        result["links"] = [_link_record(link, nodes) for link in graph.links]
        result["networks"] = graph.components
        result["within_node_pairs"] = len(graph.within_seizure)
    else:
        nodes = _nodes(session, node_keys, readable_cases, subject_nodes)
        result["pairs"], result["links"], result["networks"] = [], [], []
        result["within_node_pairs"] = 0
    result["nodes"] = nodes

    groups = [origins[str(pid)].node for pid in subject_table.profile_ids]
    group_labels = [nodes[g]["reference"] for g in groups]
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
        mixture = estimate_mixture(assignment, group_labels, n_sweeps=settings.mixture_sweeps,
                                   burn_in=settings.mixture_burn_in, seed=settings.seed)
        parameters["mixture"] = mixture.parameters()
        result["mixture"] = _mixture_record(mixture)
    if "geographic" in analyses:
        steps.enter("geographic assignment")
        geo = GeographicModel.from_reference(combined, n_cells=settings.geo_cells)
        parameters["geographic"] = geo.parameters()
        result["geographic"] = _geo_record(geo, subject_table, group_labels)

    steps.enter("assembling the results")
    result["parameters"] = parameters
    parameters = json_ready(parameters)
    result["parameters_sha256"] = hashlib.sha256(canonical_json(parameters)).hexdigest()
    result["notes"] = notes
    result["caveats"] = _caveats(references, panel, theta, errors, result)
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
def _pair_records(found, search: KinshipSearch, origins: dict[str, _Origin],
                  readable_cases: set[int], subject: set[str], species: str) -> list[dict]:
    """One record per pair, the subject's sample first; pairs into cases the requester may not
    read keep only the other side's node (seizure or animal) and the relationship."""
    table = found.table
    index = {str(pid): k for k, pid in enumerate(table.profile_ids)}
    rmp_per_locus = match_probabilities(table, search.counts, search.theta).per_locus
    records = []
    for row in found.rows:
        first, second = row["sample1"], row["sample2"]
        if first not in subject:
            first, second = second, first
        relationship = row["relationship"]
        other = origins[second]
        if other.case_id not in readable_cases:
            records.append({
                "visible": False,
                "sample1": first,
                "node1": origins[first].node,
                "node2": other.node,
                "relationship": relationship,
                "relationship_label": RELATIONSHIP_LABELS[relationship],
            })
            continue
        i, j = index[first], index[second]
        r = search.relationships.index(relationship) if relationship in search.relationships \
            else None
        per_locus = locus_log10_lrs(search, table, [i], [j])[0]
        identical = identical_loci(table, i, j)
        loci = []
        for k, locus in enumerate(search.loci):
            typed = bool(table.typed[i, k] and table.typed[j, k])
            loci.append({
                "locus": locus,
                "genotype1": genotype_text(table.alleles[i, k].tolist()),
                "genotype2": genotype_text(table.alleles[j, k].tolist()),
                "compared": typed,
                "identical": bool(identical[k]),
                "log10_lr": float(per_locus[k, r]) if (r is not None and typed) else None,
                "match_probability": float(rmp_per_locus[i, k])
                if relationship == "same_animal" and identical[k] else None,
            })
        log10_lr = row["log10_lr"] if row["log10_lr"] != "" else None
        verbal = None if log10_lr is None else verbal_equivalent(log10_lr)
        stated = propositions(relationship, f"{first} ({origins[first].description})",
                              f"{second} ({other.description})", species)
        record = {
            "visible": True,
            "sample1": first,
            "sample2": second,
            "origin1": origins[first].description,
            "origin2": other.description,
            "node1": origins[first].node,
            "node2": other.node,
            "relationship": relationship,
            "relationship_label": RELATIONSHIP_LABELS[relationship],
            "evidence": row["evidence"],
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


def _link_record(link, nodes: dict[str, dict]) -> dict:
    both_visible = nodes[link.seizure1]["visible"] and nodes[link.seizure2]["visible"]
    return {
        "node1": link.seizure1,
        "node2": link.seizure2,
        "n_pairs": link.n_pairs,
        "same_animal": link.same_animal,
        "relationships": {RELATIONSHIP_LABELS[r]: n for r, n in link.relationships.items()},
        "max_log10_lr": link.max_log10_lr if both_visible else None,
        "visible": both_visible,
    }


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


def _mixture_record(mixture) -> list[dict]:
    by_group: dict[str, dict] = {}
    for row in mixture.proportion_records():
        group = by_group.setdefault(row["mixture_collection"], {
            "group": row["mixture_collection"], "n_samples": row["n_samples"],
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


def _geo_record(geo: GeographicModel, samples: GenotypeTable, groups: list[str]) -> dict:
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
                "group": str(name),
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


def _caveats(references: Sequence[ReferenceSet], panel: Panel, theta, errors: ErrorModel,
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
    caveats.append(
        f"Co-ancestry θ = {theta.value:g} ({theta.source}). Genotyping error rates folded into "
        f"the likelihood ratios: allelic dropout {errors.dropout_rate:g} per heterozygous "
        f"locus, miscall {errors.miscall_rate:g} per locus; observed genotypes that differ "
        "between the two items of a pair therefore lower, but never zero, the LR.")
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
