"""The result of an analysis, typed and versioned, as stored and exchanged.

:class:`AnalysisResult` holds what :func:`matching.analysis.analyse` found — identity and
kinship pairs, links between groups (seizures, animals), the reference set whose frequencies
weighed each profile, per-profile population assignment, mixture proportions, geographic
surfaces — with the scope of the search (pairs compared, thresholds applied), every parameter,
the software and the reference sets' content hashes. It holds numbers, not words: reports put
them into words when they are shown (:mod:`lims.reports.layout`).

:meth:`AnalysisResult.to_json` writes layout :data:`RESULT_FORMAT`; :meth:`AnalysisResult.from_json`
reads it and every earlier stored layout:

- 3 (the LIMS's untyped results before this module): missing likelihood ratios as ``""``,
  match probabilities possibly as text, genotypes as ``"230/238"`` text, links' relationship
  counts keyed by their printed label, no scope;
- 4: this module's.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Version of the result layout (3: the LIMS's untyped results; 4: :class:`AnalysisResult`).
RESULT_FORMAT = 4
#: Layouts :meth:`AnalysisResult.from_json` reads.
READABLE_FORMATS = (3, 4)
#: How layout 3 printed the relationships it keyed link counts by.
_V3_LABELS = {
    "same animal": "same_animal",
    "parent–offspring": "parent_offspring",
    "full siblings": "full_sibling",
    "half siblings": "half_sibling",
}


class ResultLayoutError(ValueError):
    """A stored result in a layout no reader knows."""


def canonical_json(payload: Any) -> bytes:
    """Sorted keys, no insignificant whitespace, UTF-8 (as the custody ledger hashes)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars made Python numbers and non-finite floats made ``None``
    (JSON has no NaN or infinity, and PostgreSQL refuses them)."""
    if isinstance(value, dict):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@functools.cache
def _field_names(kind: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(kind))


@functools.cache
def _field_kinds(kind: type) -> tuple[tuple[str, Any], ...]:
    hints = typing.get_type_hints(kind)
    return tuple((name, hints[name]) for name in _field_names(kind))


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts (:func:`dataclasses.asdict` in one
    pass with :func:`json_ready`, which a result of thousands of rows needs)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # fields added after a layout was written are left out while unset, so that an
        # older record writes back what was stored
        later = getattr(type(value), "LATER_FIELDS", ())
        return {name: plain(getattr(value, name)) for name in _field_names(type(value))
                if not (name in later and getattr(value, name) is None)}
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return json_ready(value)


# ----------------------------------------------------------------------------- records
@dataclass
class Subject:
    """What the analysis was asked about: a seizure, a case, a file."""

    kind: str
    reference: str
    case_reference: str | None = None
    case_title: str | None = None
    agency: str | None = None


@dataclass
class Node:
    """A seizure, source animal or other group of profiles that pairs link.

    ``visible`` is false for a record the requester may not read (only ``kind``,
    ``reference`` and ``agency`` are then shown).
    """

    kind: str
    reference: str
    agency: str | None = None
    visible: bool = True
    in_subject: bool = False
    case: str | None = None
    country: str | None = None
    place: str | None = None
    seized_on: str | None = None


@dataclass
class ProfileOrigin:
    """Where a profile comes from: its node's key, its description ("tusk T3 of seizure
    KE-SZ-1") and the node."""

    node: str
    description: str
    info: Node


@dataclass
class SubjectProfile:
    barcode: str
    origin: str
    node: str
    loci_typed: int


@dataclass
class PairLocus:
    locus: str
    alleles1: list[int] | None
    alleles2: list[int] | None
    compared: bool
    identical: bool
    log10_lr: float | None = None
    match_probability: float | None = None


@dataclass
class PairIdentity:
    stringency: str
    loci_identical: int
    loci_dropout: int
    loci_mismatch: int


@dataclass
class Pair:
    """A pair reported by the identity or kinship search, the subject's profile first.

    A pair into a record the requester may not read (``visible`` false) keeps only
    ``sample1``, the two nodes and the relationship.
    """

    visible: bool
    sample1: str
    node1: str
    node2: str
    relationship: str
    sample2: str | None = None
    origin1: str | None = None
    origin2: str | None = None
    evidence: str | None = None
    frequency_reference: str | None = None
    species: str | None = None
    theta: float | None = None
    loci_compared: int | None = None
    log10_lr: float | None = None
    log10_lr_by_relationship: dict[str, float | None] = field(default_factory=dict)
    rmp: float | None = None
    identity: PairIdentity | None = None
    loci: list[PairLocus] = field(default_factory=list)


@dataclass
class Link:
    """Two nodes linked by pairs; ``relationships`` counts them by relationship."""

    node1: str
    node2: str
    n_pairs: int
    same_animal: bool
    relationships: dict[str, int]
    max_log10_lr: float | None
    visible: bool


@dataclass
class FrequencySet:
    reference: str
    species: str
    theta: float
    theta_source: str
    samples: list[str]
    lowest_posterior: float | None = None


@dataclass
class UncertainSet:
    barcode: str
    reference: str
    posterior: float


@dataclass
class Frequencies:
    """Which reference set's frequencies and θ weighed which subject profiles, and why."""

    statement: str
    sets: list[FrequencySet]
    uncertain: list[UncertainSet] = field(default_factory=list)


@dataclass
class Threshold:
    """The log10 LR cutoffs one relationship's pairs had to pass with one reference set's
    frequencies, over the numbers of loci a pair may compare (``None`` where none could)."""

    lowest: float | None
    highest: float | None
    at_loci: dict[str, float | None] = field(default_factory=dict)


@dataclass
class Scope:
    """How much the search compared and the thresholds that applied: a request on a seizure
    compares fewer pairs than one on its whole case, so its calibrated cutoffs are lower and it
    may report more relatives of the same link."""

    subject_profiles: int
    background_profiles: int
    pairs_compared: int
    min_loci: int
    relationships: list[str]
    expected_false_pairs: float | None = None
    thresholds: dict[str, dict[str, Threshold]] = field(default_factory=dict)
    identity: dict[str, Any] | None = None


@dataclass
class Searched:
    released_profiles: int
    subject_profiles: int


@dataclass
class AssignmentRow:
    barcode: str
    origin: str
    population: str
    posterior: float
    repunit: str | None
    repunit_posterior: float | None
    z_score: float | None
    exclusion_p_value: float | None
    unsampled_source: bool | None
    loci_typed: int
    top: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Assignment:
    reference: str
    repunit_level: str
    populations: list[dict[str, Any]]
    rows: list[AssignmentRow]


@dataclass
class MixtureShare:
    pi: float
    lo95: float | None
    hi95: float | None
    em: float | None
    population: str | None = None
    repunit: str | None = None


@dataclass
class MixtureGroup:
    node: str
    group: str
    n_samples: int
    populations: list[MixtureShare]
    repunits: list[MixtureShare]


@dataclass
class Surface:
    node: str
    group: str
    best_lat: float
    best_lon: float
    max_posterior: float
    area50_km2: float | None
    area90_km2: float | None
    posterior: list[float]
    region50: list[int]
    region90: list[int]


@dataclass
class Grid:
    """The map grid: cell edges in degrees, and the cells (row-major indices) in range."""

    lat_edges: list[float]
    lon_edges: list[float]
    in_range: list[int]


@dataclass
class GeoSample:
    """One subject profile's most likely point and posterior regions (``matching.geo``'s
    :data:`~matching.geo.GEO_COLUMNS`)."""

    indiv: str
    geo_lat: float | None = None
    geo_lon: float | None = None
    geo_max_posterior: float | None = None
    geo_area50_km2: float | None = None
    geo_area90_km2: float | None = None


@dataclass
class Geographic:
    method: str
    grid: Grid
    sites: list[dict[str, Any]]
    surfaces: list[Surface]
    samples: list[GeoSample]


@dataclass
class Power:
    """Power of one relationship's calibrated cutoff: the share of simulated true pairs it
    finds at ``loci`` loci compared (the nearest calibrated count below the search's)."""

    loci: int
    cutoff: float | None
    power: float | None
    power_se: float | None = None
    #: With the pairs' loci compared weighed in: the power at all ``loci``, and the pairs'
    #: mean number of loci typed in both profiles.
    power_at_all_loci: float | None = None
    mean_loci_compared: float | None = None

    LATER_FIELDS: typing.ClassVar[tuple[str, ...]] = ("power_at_all_loci", "mean_loci_compared")


@dataclass
class Parameters:
    """Everything the engine was given, by stage: the settings, θ per reference set, and each
    engine's own ``parameters()`` (``None`` for a stage that did not run)."""

    settings: dict[str, Any] = field(default_factory=dict)
    theta: dict[str, dict[str, Any]] | None = None
    kinship: dict[str, dict[str, Any]] | None = None
    identity: dict[str, Any] | None = None
    assignment: dict[str, Any] | None = None
    mixture: dict[str, Any] | None = None
    geographic: dict[str, Any] | None = None


@dataclass
class AnalysisResult:
    """Everything an analysis found and everything that determined it (see the module)."""

    #: What :meth:`to_json` writes beyond the fields (documents describing the layout add it).
    json_added: typing.ClassVar[dict[str, type]] = {"content_sha256": str}

    subject: Subject
    analyses: list[str]
    reference_sets: list[dict[str, Any]]
    panel: dict[str, Any] | None
    software: dict[str, str]
    searched: Searched
    frequencies: Frequencies | None = None
    scope: Scope | None = None
    #: Per reference set and relationship.
    kinship_power: dict[str, dict[str, Power]] | None = None
    subject_profiles: list[SubjectProfile] = field(default_factory=list)
    pairs: list[Pair] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    networks: list[list[str]] = field(default_factory=list)
    within_node_pairs: int = 0
    nodes: dict[str, Node] = field(default_factory=dict)
    assignment: Assignment | None = None
    mixture: list[MixtureGroup] | None = None
    geographic: Geographic | None = None
    parameters: Parameters = field(default_factory=Parameters)
    parameters_sha256: str = ""
    notes: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)
    #: Provenance the caller adds (the LIMS: the custody ledger's head when the run started).
    ledger_head: dict[str, Any] | None = None
    format: int = RESULT_FORMAT

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        """The result as JSON-ready data (layout :data:`RESULT_FORMAT`), with the SHA-256 of
        its analytical content (``content_sha256``, :meth:`content_sha256`)."""
        data = plain(self)
        data["content_sha256"] = _content_sha256(data)
        return data

    def content_sha256(self) -> str:
        """SHA-256 of the analytical content: everything but the provenance that differs
        between two runs of the same analysis (software versions, the ledger's head)."""
        return _content_sha256(plain(self))

    @classmethod
    def from_json(cls, data: dict) -> AnalysisResult:
        """A stored result of any layout in :data:`READABLE_FORMATS`;
        :class:`ResultLayoutError` for another."""
        if not isinstance(data, dict):
            raise ResultLayoutError("a stored result is a JSON object")
        layout = data.get("format")
        if layout not in READABLE_FORMATS:
            raise ResultLayoutError(f"result layout {layout!r} is not one of "
                                    f"{', '.join(map(str, READABLE_FORMATS))}")
        if layout == 3:
            data = _from_layout_3(data)
        return load_as(cls, data)


def _content_sha256(data: dict) -> str:
    content = {key: value for key, value in data.items()
               if key not in ("content_sha256", "software", "ledger_head")}
    return hashlib.sha256(canonical_json(content)).hexdigest()


def upgrade(data: dict) -> dict:
    """A stored result of any readable layout in the current one."""
    if isinstance(data, dict) and data.get("format") == RESULT_FORMAT:
        return data
    return AnalysisResult.from_json(data).to_json()


# ----------------------------------------------------------------------------- reading
def load_as(kind: Any, value: Any) -> Any:
    """``value`` (JSON data) as ``kind`` (a dataclass, ``list[...]``, ``dict[str, ...]``, an
    optional, or a plain JSON type); keys a dataclass does not have are ignored (the words a
    report adds)."""
    if value is None:
        return None
    if dataclasses.is_dataclass(kind):
        return kind(**{name: load_as(hint, value[name])
                       for name, hint in _field_kinds(kind) if name in value})
    origin = typing.get_origin(kind)
    arguments = typing.get_args(kind)
    if origin in (typing.Union, types.UnionType):
        return load_as(next(a for a in arguments if a is not type(None)), value)
    if origin is list:
        return [load_as(arguments[0], item) for item in value]
    if origin is dict:
        return {key: load_as(arguments[1], item) for key, item in value.items()}
    if kind is float and isinstance(value, int | str):
        return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value: Any) -> float | None:
    """A layout-3 number: ``""`` for missing, possibly text."""
    if value is None or value == "":
        return None
    return float(value)


def _alleles(text: str | None) -> list[int] | None:
    if not text or "/" not in text:
        return None
    first, second = text.split("/")
    return [int(first), int(second)]


def _from_layout_3(data: dict) -> dict:
    """Layout 3 as layout 4: numbers made numbers, genotypes parsed, link counts keyed by
    relationship, each pair's species from its frequencies' reference set, the scope rebuilt
    from the recorded parameters."""
    data = json.loads(json.dumps(data))
    species = {r["name"]: r["species"] for r in data.get("reference_sets") or []}
    first_species = next(iter(species.values()), None)
    for pair in data.get("pairs") or []:
        pair["log10_lr"] = _number(pair.get("log10_lr"))
        pair["rmp"] = _number(pair.get("rmp"))
        pair["log10_lr_by_relationship"] = {
            name: _number(value)
            for name, value in (pair.get("log10_lr_by_relationship") or {}).items()}
        if pair.get("visible"):
            pair["species"] = species.get(pair.get("frequency_reference"), first_species)
        for locus in pair.get("loci") or []:
            locus["alleles1"] = _alleles(locus.pop("genotype1", None))
            locus["alleles2"] = _alleles(locus.pop("genotype2", None))
            locus["log10_lr"] = _number(locus.get("log10_lr"))
            locus["match_probability"] = _number(locus.get("match_probability"))
    for link in data.get("links") or []:
        link["relationships"] = {_V3_LABELS.get(label, label): n
                                 for label, n in (link.get("relationships") or {}).items()}
    data["scope"] = _scope_of_layout_3(data)
    data["format"] = RESULT_FORMAT
    return data


def _scope_of_layout_3(data: dict) -> dict | None:
    searched = data.get("searched")
    parameters = data.get("parameters") or {}
    settings = parameters.get("settings") or {}
    if not searched or not ({"identity", "kinship"} & set(data.get("analyses") or [])):
        return None
    subject = int(searched["subject_profiles"])
    background = int(searched["released_profiles"]) - subject
    return dataclasses.asdict(Scope(
        subject_profiles=subject,
        background_profiles=background,
        pairs_compared=int(subject * (subject - 1) // 2 + subject * background),
        min_loci=int(settings.get("min_loci", 0)),
        relationships=list(settings.get("relationships") or []),
        thresholds=thresholds_of(parameters.get("kinship")),
        identity=parameters.get("identity"),
    ))


def thresholds_of(kinship_parameters: dict | None) -> dict[str, dict[str, Threshold]]:
    """Per reference set and relationship, the cutoffs a kinship search applied
    (``cutoffs_applied`` of :meth:`matching.kinship.KinshipSearch.parameters`)."""
    thresholds: dict[str, dict[str, Threshold]] = {}
    for reference, searched in (kinship_parameters or {}).items():
        applied = searched.get("cutoffs_applied") or {}
        per_relationship = {}
        for relationship, by_loci in applied.items():
            values = [value for value in by_loci.values() if value is not None]
            per_relationship[relationship] = Threshold(
                lowest=min(values) if values else None,
                highest=max(values) if values else None,
                at_loci={str(m): value for m, value in by_loci.items()})
        thresholds[reference] = per_relationship
    return thresholds
