"""Scenarios with known truth, simulated from a reference set (DESIGN 5.7).

A scenario is a set of seizures whose items (tusks, horns) come from animals drawn from chosen
source populations of a :class:`~dnatrack.reference.ReferenceSet`. Some items are related on
purpose: two items of one animal (a tusk pair, a horn and its carcass), a parent and its
offspring, full siblings and half siblings, placed in different seizures (or the same one, by
option). Every item is then "genotyped" with errors: untyped loci, allelic dropout and miscalls.

The observed genotypes carry only what a laboratory would know (item id and seizure); the truth
(each item's animal and source population, the relationships, every error) is kept apart in
the :class:`Scenario` and in the truth files written by :func:`write_scenario`.

The model, so that consumers can compute what to expect:

* A founder animal's genotype at a locus is two allele copies drawn independently, with
  replacement, from the copies observed in its population at that locus, i.e. from the
  reference point frequencies ``n_a / n``. A locus untyped in the whole population stays
  untyped.
* An offspring gets one allele, chosen at random, from each of its two parents; a parent's
  mate is an unsampled founder of the same population. Full siblings share both parents, half
  siblings one, the other parents being different unsampled founders. All related animals of a
  pair belong to one population, drawn from the source proportions of the first item's seizure.
* Each typed locus of each item, independently: untyped with probability ``missing_rate``;
  otherwise, if heterozygous, read as one of its two homozygotes (allelic dropout) with
  probability ``dropout_rate``; otherwise one of its two alleles is replaced by a different
  allele seen at that locus anywhere in the reference (a miscall) with probability
  ``miscall_rate`` (no miscall is possible at a locus with a single allele). A locus gets at
  most one error.

Everything is drawn from one :class:`numpy.random.Generator` seeded with ``seed``, so a seed
gives the same scenario every time.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from dnatrack import __version__
from dnatrack.formats import FORMATS, writable_formats, write_genotypes
from dnatrack.genotypes import ALLELE_DTYPE, MISSING, GenotypeTable
from dnatrack.reference import ReferenceSet

RELATIONSHIPS = ("same_animal", "parent_offspring", "full_sibling", "half_sibling")
ERROR_KINDS = ("missing", "dropout", "miscall")
#: Stages reported to the ``progress`` callback of :func:`simulate`, in order.
SIMULATION_STAGES = ("placement", "founders", "offspring", "genotyping errors", "truth records")

DEFAULT_N_SEIZURES = 3
DEFAULT_ITEMS_PER_SEIZURE = 20

TRUTH_FOLDER = "truth"
SUMMARY_FILE = "truth.json"


def _check_count(name: str, value, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def _check_rate(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must lie in [0, 1], got {value}")
    return float(value)


def _normalised_sources(owner: str, sources) -> dict[str, float]:
    """Population → proportion, from positive weights (normalised to sum to one)."""
    if not isinstance(sources, Mapping) or not sources:
        raise ValueError(f"{owner}: sources must map at least one population to a weight")
    weights = {}
    for population, weight in sources.items():
        if not isinstance(population, str) or not population:
            raise ValueError(f"{owner}: population names must be non-empty strings")
        if (
            isinstance(weight, bool)
            or not isinstance(weight, numbers.Real)
            or not math.isfinite(weight)
            or weight <= 0
        ):
            raise ValueError(
                f"{owner}: the weight of source {population!r} must be a positive number, "
                f"got {weight!r}"
            )
        weights[population] = float(weight)
    total = sum(weights.values())
    return {population: weight / total for population, weight in weights.items()}


@dataclass(frozen=True)
class SeizureSpec:
    """One seizure to simulate.

    Parameters
    ----------
    name : str
        Seizure name; item ids start with it (``SZ01-T003``).
    sources : mapping of str to float
        Source population → weight; weights are normalised to proportions. Each unrelated item
        comes from a population drawn with these proportions.
    n_items : int
        Items in the seizure, related ones included. Each item is one animal's; two items of
        one seizure are of the same animal only when a same-animal pair is placed there.
    """

    name: str
    sources: Mapping[str, float]
    n_items: int

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("a seizure name must be a non-empty string")
        object.__setattr__(self, "name", self.name.strip())
        owner = f"seizure {self.name!r}"
        object.__setattr__(self, "sources", _normalised_sources(owner, self.sources))
        object.__setattr__(self, "n_items", _check_count(f"{owner}: n_items", self.n_items, 1))

    def to_dict(self) -> dict:
        return {"name": self.name, "sources": dict(self.sources), "n_items": self.n_items}


@dataclass(frozen=True)
class ScenarioSpec:
    """What to simulate. The defaults make a small scenario from any reference set.

    Parameters
    ----------
    seizures : tuple of SeizureSpec, optional
        The seizures, explicitly. When ``None``, ``n_seizures`` seizures named ``SZ01``… of
        ``items_per_seizure`` items each are made, all drawing from ``sources``.
    n_seizures : int, optional
        Number of seizures when ``seizures`` is not given (default 3).
    items_per_seizure : int, optional
        Items per seizure when ``seizures`` is not given (default 20).
    sources : mapping of str to float, optional
        Population → weight for every seizure when ``seizures`` is not given. When ``None``,
        each seizure draws from one population of the reference chosen at random (different
        populations for different seizures while there are enough).
    same_animal_pairs, parent_offspring_pairs, full_sibling_pairs, half_sibling_pairs : int
        Number of related item pairs of each kind (tusk pairs are same-animal pairs).
    pairs_across_seizures : bool
        True (default): the two items of a related pair go to different seizures; False: to
        the same seizure.
    missing_rate, dropout_rate, miscall_rate : float
        Genotyping error rates per item and locus, in [0, 1] (see the module docstring).
    item_prefix : str, optional
        Letter(s) between the seizure name and the item number: ``"H"`` (horn) for a rhino
        reference set and ``"T"`` (tusk) otherwise when ``None``.
    """

    seizures: tuple[SeizureSpec, ...] | None = None
    n_seizures: int | None = None
    items_per_seizure: int | None = None
    sources: Mapping[str, float] | None = None
    same_animal_pairs: int = 2
    parent_offspring_pairs: int = 2
    full_sibling_pairs: int = 2
    half_sibling_pairs: int = 2
    pairs_across_seizures: bool = True
    missing_rate: float = 0.02
    dropout_rate: float = 0.01
    miscall_rate: float = 0.005
    item_prefix: str | None = None

    def __post_init__(self) -> None:
        if self.seizures is not None:
            given = [
                name
                for name in ("n_seizures", "items_per_seizure", "sources")
                if getattr(self, name) is not None
            ]
            if given:
                raise ValueError(f"give either seizures or {', '.join(given)}, not both")
            seizures = tuple(self.seizures)
            if not seizures:
                raise ValueError("seizures must list at least one seizure")
            for seizure in seizures:
                if not isinstance(seizure, SeizureSpec):
                    raise ValueError(f"seizures must be SeizureSpec records, got {seizure!r}")
            names = [s.name for s in seizures]
            repeated = sorted({name for name in names if names.count(name) > 1})
            if repeated:
                raise ValueError(f"seizure names must be unique; repeated: {', '.join(repeated)}")
            object.__setattr__(self, "seizures", seizures)
        for name in ("n_seizures", "items_per_seizure"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, _check_count(name, getattr(self, name), 1))
        if self.sources is not None:
            object.__setattr__(self, "sources", _normalised_sources("sources", self.sources))
        for name in self._pair_fields():
            object.__setattr__(self, name, _check_count(name, getattr(self, name)))
        if not isinstance(self.pairs_across_seizures, bool):
            raise ValueError("pairs_across_seizures must be True or False")
        for name in ("missing_rate", "dropout_rate", "miscall_rate"):
            object.__setattr__(self, name, _check_rate(name, getattr(self, name)))
        if self.item_prefix is not None and not (
            isinstance(self.item_prefix, str) and self.item_prefix.isalnum()
        ):
            raise ValueError(f"item_prefix must be letters or digits, got {self.item_prefix!r}")

    @staticmethod
    def _pair_fields() -> tuple[str, ...]:
        return tuple(f"{relationship}_pairs" for relationship in RELATIONSHIPS)

    @property
    def pair_counts(self) -> dict[str, int]:
        """Relationship → number of related pairs asked for."""
        return {
            relationship: getattr(self, f"{relationship}_pairs") for relationship in RELATIONSHIPS
        }

    def to_dict(self) -> dict:
        """The parameters as plain JSON-ready values."""
        return {
            "seizures": None
            if self.seizures is None
            else [seizure.to_dict() for seizure in self.seizures],
            "n_seizures": self.n_seizures,
            "items_per_seizure": self.items_per_seizure,
            "sources": None if self.sources is None else dict(self.sources),
            **{name: getattr(self, name) for name in self._pair_fields()},
            "pairs_across_seizures": self.pairs_across_seizures,
            "missing_rate": self.missing_rate,
            "dropout_rate": self.dropout_rate,
            "miscall_rate": self.miscall_rate,
            "item_prefix": self.item_prefix,
        }


# ---------------------------------------------------------------------------------- truth records
@dataclass(frozen=True)
class GenotypingError:
    """One error put into an item's observed genotype.

    ``true_alleles`` and ``observed_alleles`` are sorted allele pairs; ``(-1, -1)`` is untyped.
    """

    item_id: str
    locus: str
    kind: str
    true_alleles: tuple[int, int]
    observed_alleles: tuple[int, int]


@dataclass(frozen=True)
class ItemTruth:
    """What is true of one item: its seizure, animal, source population and errors.

    ``errors`` lists ``(locus, kind)`` for every locus given an error, in locus order.
    """

    item_id: str
    seizure: str
    animal_id: str
    population: str
    errors: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class AnimalTruth:
    """One simulated animal: its population, its parents (none for a founder) and its items."""

    animal_id: str
    population: str
    parents: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


@dataclass(frozen=True)
class RelationshipTruth:
    """Two items related on purpose, and the animals they come from."""

    item1: str
    item2: str
    relationship: str
    animal1: str
    animal2: str


@dataclass(frozen=True)
class SeizureTruth:
    """A seizure as simulated: its source proportions and its items' true populations.

    ``item_populations`` counts items by true population; related items placed here may come
    from a population that is not one of the seizure's sources.
    """

    name: str
    sources: dict[str, float]
    n_items: int
    item_populations: dict[str, int]


@dataclass(eq=False)
class Scenario:
    """A simulated scenario: observed genotypes and the truth behind them.

    Attributes
    ----------
    observed : GenotypeTable
        The items as genotyped, errors included: ids such as ``SZ01-T003``, ``group`` = seizure,
        no population.
    true_genotypes : GenotypeTable
        The same items (same rows) without errors, with ``population`` = true source.
    animals : GenotypeTable
        Every simulated animal, unsampled parents included, with ``population``.
    items, animal_records, relationships, seizures, errors
        The truth records.
    spec : ScenarioSpec
        The parameters as resolved (explicit seizures and item prefix).
    seed : int
        The generator seed; the same seed and spec give the same scenario.
    reference : dict
        Name, version, species and content hash of the reference set.
    """

    observed: GenotypeTable
    true_genotypes: GenotypeTable
    animals: GenotypeTable
    items: tuple[ItemTruth, ...]
    animal_records: tuple[AnimalTruth, ...]
    relationships: tuple[RelationshipTruth, ...]
    seizures: tuple[SeizureTruth, ...]
    errors: tuple[GenotypingError, ...]
    spec: ScenarioSpec
    seed: int
    reference: dict = field(default_factory=dict)

    def error_counts(self) -> dict[str, int]:
        """Error kind → number of item loci given that error."""
        counts = dict.fromkeys(ERROR_KINDS, 0)
        for error in self.errors:
            counts[error.kind] += 1
        return counts

    def relationship_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(RELATIONSHIPS, 0)
        for record in self.relationships:
            counts[record.relationship] += 1
        return counts


# ---------------------------------------------------------------------------------- simulation
def simulate(
    reference: ReferenceSet,
    spec: ScenarioSpec | None = None,
    *,
    seed: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Scenario:
    """Simulate seizures of items with known truth from ``reference``.

    Parameters
    ----------
    reference : ReferenceSet
        Source populations and their allele frequencies.
    spec : ScenarioSpec, optional
        What to simulate; ``ScenarioSpec()`` when ``None``.
    seed : int, optional
        Non-negative seed of the random generator. When ``None`` a fresh one is drawn; it is
        kept in :attr:`Scenario.seed` so the scenario can be made again.
    progress : callable, optional
        Called with each name of :data:`SIMULATION_STAGES` when that stage is done.

    Returns
    -------
    Scenario

    Examples
    --------
    >>> import numpy as np
    >>> from dnatrack.reference import PopulationInfo, ReferenceSet
    >>> table = GenotypeTable(np.full((4, 2, 2), 100) + np.arange(4)[:, None, None],
    ...                       ["a", "b", "c", "d"], ["L1", "L2"], population=["P"] * 4)
    >>> reference = ReferenceSet("toy", "test", table, (PopulationInfo("P"),))
    >>> scenario = simulate(reference, ScenarioSpec(n_seizures=2, items_per_seizure=10), seed=1)
    >>> scenario.observed.profile_ids[:2].tolist()
    ['SZ01-T001', 'SZ01-T002']
    >>> scenario.relationship_counts()
    {'same_animal': 2, 'parent_offspring': 2, 'full_sibling': 2, 'half_sibling': 2}
    """
    spec = ScenarioSpec() if spec is None else spec
    if not isinstance(spec, ScenarioSpec):
        raise ValueError(f"spec must be a ScenarioSpec, got {type(spec).__name__}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)
    seed = _check_count("seed", seed)
    if reference.table.n_profiles == 0 or reference.table.n_loci == 0:
        raise ValueError(f"reference set {reference.name!r} has no genotypes to draw from")
    report = progress or (lambda stage: None)
    rng = np.random.default_rng(seed)

    spec = _resolve(spec, reference, rng)
    plan = _plan_animals(spec, rng)
    report("placement")

    table = reference.table
    alleles = np.full((len(plan.population), table.n_loci, 2), MISSING, dtype=ALLELE_DTYPE)
    _draw_founders(alleles, plan, reference, rng)
    report("founders")
    _transmit(alleles, plan, rng)
    animal_ids = _numbered("A", len(plan.population))
    animals = GenotypeTable(alleles, animal_ids, table.loci, population=plan.population)
    report("offspring")

    order = _item_order(plan, len(spec.seizures), rng)
    item_animal = np.asarray(plan.item_animal, dtype=np.intp)[order]
    item_seizure = np.asarray(plan.item_seizure, dtype=np.intp)[order]
    item_ids = _item_ids(spec, item_seizure)
    seizure_names = np.array([s.name for s in spec.seizures], dtype=object)[item_seizure]
    item_population = animals.population[item_animal]
    true_genotypes = GenotypeTable(
        animals.alleles[item_animal],
        item_ids,
        table.loci,
        population=item_population,
        group=seizure_names,
    )
    observed_alleles, error_masks = _genotyping_errors(true_genotypes.alleles, spec, table, rng)
    observed = GenotypeTable(observed_alleles, item_ids, table.loci, group=seizure_names)
    report("genotyping errors")

    new_position = np.empty_like(order)
    new_position[order] = np.arange(order.size)
    relationships = tuple(
        RelationshipTruth(
            item1=item_ids[new_position[first]],
            item2=item_ids[new_position[second]],
            relationship=relationship,
            animal1=animal_ids[plan.item_animal[first]],
            animal2=animal_ids[plan.item_animal[second]],
        )
        for first, second, relationship in plan.pairs
    )
    errors = _error_records(observed, true_genotypes, error_masks)
    items = _item_records(true_genotypes, animals.profile_ids[item_animal], errors)
    animal_records = _animal_records(animals, plan, item_ids, item_animal)
    seizures = _seizure_records(spec, true_genotypes)
    report("truth records")
    return Scenario(
        observed=observed,
        true_genotypes=true_genotypes,
        animals=animals,
        items=items,
        animal_records=animal_records,
        relationships=relationships,
        seizures=seizures,
        errors=errors,
        spec=spec,
        seed=seed,
        reference={
            "name": reference.name,
            "version": reference.version,
            "species": reference.species,
            "simulated": reference.simulated,
            "content_hash": reference.content_hash,
        },
    )


def _resolve(spec: ScenarioSpec, reference: ReferenceSet, rng: np.random.Generator) -> ScenarioSpec:
    """The spec with explicit seizures and item prefix, checked against the reference."""
    available = reference.table.unique_populations()
    if spec.seizures is not None:
        seizures = spec.seizures
    else:
        n_seizures = spec.n_seizures or DEFAULT_N_SEIZURES
        n_items = spec.items_per_seizure or DEFAULT_ITEMS_PER_SEIZURE
        width = max(2, len(str(n_seizures)))
        if spec.sources is not None:
            sources_of = [spec.sources] * n_seizures
        else:
            # Distinct populations for distinct seizures while the reference has enough.
            shuffled = [available[i] for i in rng.permutation(len(available))]
            sources_of = [{shuffled[i % len(shuffled)]: 1.0} for i in range(n_seizures)]
        seizures = tuple(
            SeizureSpec(f"SZ{i + 1:0{width}d}", sources_of[i], n_items) for i in range(n_seizures)
        )
    for seizure in seizures:
        for population in seizure.sources:
            if population in available:
                continue
            listed = {p.name for p in reference.populations}
            reason = (
                "has no genotyped animals"
                if population in listed
                else f"is not a population (have {', '.join(available)})"
            )
            raise ValueError(
                f"seizure {seizure.name!r}: source {population!r} of reference set "
                f"{reference.name!r} {reason}"
            )
    prefix = spec.item_prefix
    if prefix is None:
        prefix = "H" if "rhino" in reference.species.lower() else "T"
    return replace(
        spec,
        seizures=seizures,
        n_seizures=None,
        items_per_seizure=None,
        sources=None,
        item_prefix=prefix,
    )


@dataclass
class _AnimalPlan:
    """Who the animals are and which items they give, before any genotype is drawn.

    ``parents`` holds ``(first, second)`` animal indices, ``(-1, -1)`` for founders;
    ``pairs`` holds ``(first item, second item, relationship)`` with item indices into
    ``item_animal``/``item_seizure``.
    """

    population: list[str] = field(default_factory=list)
    parents: list[tuple[int, int]] = field(default_factory=list)
    item_animal: list[int] = field(default_factory=list)
    item_seizure: list[int] = field(default_factory=list)
    pairs: list[tuple[int, int, str]] = field(default_factory=list)

    def founder(self, population: str) -> int:
        self.population.append(population)
        self.parents.append((-1, -1))
        return len(self.population) - 1

    def offspring(self, first_parent: int, second_parent: int) -> int:
        self.population.append(self.population[first_parent])
        self.parents.append((first_parent, second_parent))
        return len(self.population) - 1

    def item(self, animal: int, seizure: int) -> int:
        self.item_animal.append(animal)
        self.item_seizure.append(seizure)
        return len(self.item_animal) - 1


def _draw_population(seizure: SeizureSpec, rng: np.random.Generator, size: int) -> list[str]:
    names = list(seizure.sources)
    proportions = np.array([seizure.sources[name] for name in names])
    return [names[i] for i in rng.choice(len(names), size=size, p=proportions)]


def _plan_animals(spec: ScenarioSpec, rng: np.random.Generator) -> _AnimalPlan:
    """Place the related pairs, then fill every seizure with unrelated founders."""
    capacities = np.array([s.n_items for s in spec.seizures], dtype=np.int64)
    counts = spec.pair_counts
    relationships = [name for name in RELATIONSHIPS for _ in range(counts[name])]
    placement = _place_pairs(capacities, len(relationships), spec.pairs_across_seizures, rng)
    plan = _AnimalPlan()
    for (first_seizure, second_seizure), relationship in zip(placement, relationships, strict=True):
        population = _draw_population(spec.seizures[first_seizure], rng, 1)[0]
        if relationship == "same_animal":
            first = second = plan.founder(population)
        elif relationship == "parent_offspring":
            first = plan.founder(population)
            second = plan.offspring(first, plan.founder(population))
        elif relationship == "full_sibling":
            parents = (plan.founder(population), plan.founder(population))
            first, second = plan.offspring(*parents), plan.offspring(*parents)
        else:
            shared = plan.founder(population)
            first = plan.offspring(shared, plan.founder(population))
            second = plan.offspring(shared, plan.founder(population))
        plan.pairs.append(
            (plan.item(first, first_seizure), plan.item(second, second_seizure), relationship)
        )
    used = np.bincount(placement.ravel(), minlength=len(capacities))
    for index, seizure in enumerate(spec.seizures):
        for population in _draw_population(seizure, rng, int(capacities[index] - used[index])):
            plan.item(plan.founder(population), index)
    return plan


def _pairs_fit_across(capacities: np.ndarray, n_pairs: int) -> bool:
    """Whether ``n_pairs`` pairs can have their two items in different seizures of these sizes.

    They can exactly when ``sum(min(c, n_pairs)) >= 2 n_pairs``: no seizure may take both
    items of a pair, so none takes more than ``n_pairs`` items, and the construction in
    :func:`_place_pairs` succeeds whenever the slots suffice.
    """
    return int(np.minimum(capacities, n_pairs).sum()) >= 2 * n_pairs


def _max_pairs_across(capacities: np.ndarray) -> int:
    """Most pairs that fit across seizures (fewer always fit when more do: bisect)."""
    low, high = 0, int(capacities.sum()) // 2
    while low < high:
        middle = (low + high + 1) // 2
        if _pairs_fit_across(capacities, middle):
            low = middle
        else:
            high = middle - 1
    return low


def _place_pairs(
    capacities: np.ndarray, n_pairs: int, across: bool, rng: np.random.Generator
) -> np.ndarray:
    """Seizure indices ``(n_pairs, 2)`` of the two items of each related pair.

    Across seizures, ``2 n_pairs`` item slots are drawn without replacement, at most
    ``n_pairs`` from any seizure; sorting them and pairing slot ``i`` with slot ``i + n_pairs``
    then never puts both items of a pair in one seizure.
    """
    seizure_index = np.arange(len(capacities))
    if across:
        if not _pairs_fit_across(capacities, n_pairs):
            raise ValueError(
                f"{n_pairs} related pairs split across seizures do not fit in seizures of "
                f"{', '.join(map(str, capacities))} items: at most "
                f"{_max_pairs_across(capacities)} do"
                + (" (a single seizure cannot split a pair)" if len(capacities) == 1 else "")
            )
        slots = np.repeat(seizure_index, np.minimum(capacities, n_pairs))
        chosen = np.sort(rng.choice(slots, size=2 * n_pairs, replace=False))
        placement = np.stack([chosen[:n_pairs], chosen[n_pairs:]], axis=1)
        placement = placement[rng.permutation(n_pairs)]
        swap = rng.random(n_pairs) < 0.5
        placement[swap] = placement[swap, ::-1]
        return placement
    slots = np.repeat(seizure_index, capacities // 2)
    if n_pairs > slots.size:
        raise ValueError(
            f"{n_pairs} related pairs kept within seizures do not fit in seizures of "
            f"{', '.join(map(str, capacities))} items: at most {slots.size} do"
        )
    chosen = rng.choice(slots, size=n_pairs, replace=False)
    return np.stack([chosen, chosen], axis=1)


def _draw_founders(
    alleles: np.ndarray, plan: _AnimalPlan, reference: ReferenceSet, rng: np.random.Generator
) -> None:
    """Fill founders' rows with allele copies drawn from their population's observed copies."""
    table = reference.table
    population = np.array(plan.population, dtype=object)
    is_founder = np.array([parents[0] < 0 for parents in plan.parents], dtype=bool)
    for name in table.unique_populations():
        rows = np.flatnonzero(is_founder & (population == name))
        if rows.size == 0:
            continue
        reference_rows = table.alleles[table.population == name]
        for locus in range(table.n_loci):
            copies = reference_rows[:, locus, :].ravel()
            copies = copies[copies >= 0]
            if copies.size:
                alleles[rows, locus, :] = copies[rng.integers(copies.size, size=(rows.size, 2))]


def _transmit(alleles: np.ndarray, plan: _AnimalPlan, rng: np.random.Generator) -> None:
    """Give every offspring one random allele of each parent (parents are founders)."""
    parents = np.array(plan.parents, dtype=np.intp).reshape(-1, 2)
    children = np.flatnonzero(parents[:, 0] >= 0)
    if children.size == 0:
        return
    n_loci = alleles.shape[1]
    for k in (0, 1):
        inherited = rng.integers(2, size=(children.size, n_loci, 1))
        from_parent = np.take_along_axis(alleles[parents[children, k]], inherited, axis=2)
        alleles[children, :, k] = from_parent[:, :, 0]


def _item_order(plan: _AnimalPlan, n_seizures: int, rng: np.random.Generator) -> np.ndarray:
    """Item indices grouped by seizure and shuffled within it, so position tells nothing."""
    seizure = np.asarray(plan.item_seizure, dtype=np.intp)
    return np.concatenate(
        [rng.permutation(np.flatnonzero(seizure == index)) for index in range(n_seizures)]
    )


def _numbered(prefix: str, n: int) -> list[str]:
    width = max(5, len(str(n)))
    return [f"{prefix}{i + 1:0{width}d}" for i in range(n)]


def _item_ids(spec: ScenarioSpec, item_seizure: np.ndarray) -> list[str]:
    ids = []
    for index, seizure in enumerate(spec.seizures):
        width = max(3, len(str(seizure.n_items)))
        count = int((item_seizure == index).sum())
        ids += [f"{seizure.name}-{spec.item_prefix}{k + 1:0{width}d}" for k in range(count)]
    return ids


def _genotyping_errors(
    true_alleles: np.ndarray, spec: ScenarioSpec, table: GenotypeTable, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Observed alleles ``(n_items, n_loci, 2)`` and a bool mask per error kind.

    Every random draw is made for every item and locus, whatever the rates, so that changing
    one rate does not reshuffle the other errors.
    """
    shape = true_alleles.shape[:2]
    typed = true_alleles[:, :, 0] >= 0
    heterozygous = typed & (true_alleles[:, :, 0] != true_alleles[:, :, 1])
    locus_alleles = [table.alleles_at(locus) for locus in range(table.n_loci)]
    can_miscall = np.array([values.size >= 2 for values in locus_alleles], dtype=bool)

    missing = typed & (rng.random(shape) < spec.missing_rate)
    dropout = heterozygous & ~missing & (rng.random(shape) < spec.dropout_rate)
    kept_allele = rng.integers(2, size=(*shape, 1))
    miscall = (
        typed & ~missing & ~dropout & can_miscall[None, :] & (rng.random(shape) < spec.miscall_rate)
    )
    miscalled_copy = rng.integers(2, size=shape)
    replacement_draw = rng.random(shape)

    observed = true_alleles.copy()
    observed[missing] = MISSING
    kept = np.take_along_axis(true_alleles, kept_allele, axis=2)
    observed[dropout] = kept[dropout]
    for locus, values in enumerate(locus_alleles):
        rows = np.flatnonzero(miscall[:, locus])
        if rows.size == 0:
            continue
        copy = miscalled_copy[rows, locus]
        old_index = np.searchsorted(values, true_alleles[rows, locus, copy])
        # A uniform choice among the locus's other alleles: draw among n - 1, skip the old one.
        new_index = np.floor(replacement_draw[rows, locus] * (values.size - 1)).astype(np.intp)
        new_index += new_index >= old_index
        observed[rows, locus, copy] = values[new_index]
    return observed, {"missing": missing, "dropout": dropout, "miscall": miscall}


def _error_records(
    observed: GenotypeTable, true_genotypes: GenotypeTable, masks: dict[str, np.ndarray]
) -> tuple[GenotypingError, ...]:
    kind_of = np.full(observed.alleles.shape[:2], -1, dtype=np.int8)
    for index, kind in enumerate(ERROR_KINDS):
        kind_of[masks[kind]] = index
    records = []
    for item, locus in np.argwhere(kind_of >= 0):
        true_pair = true_genotypes.alleles[item, locus]
        observed_pair = observed.alleles[item, locus]
        records.append(
            GenotypingError(
                item_id=observed.profile_ids[item],
                locus=observed.loci[locus],
                kind=ERROR_KINDS[kind_of[item, locus]],
                true_alleles=(int(true_pair[0]), int(true_pair[1])),
                observed_alleles=(int(observed_pair[0]), int(observed_pair[1])),
            )
        )
    return tuple(records)


def _item_records(
    true_genotypes: GenotypeTable, animal_ids: np.ndarray, errors: tuple[GenotypingError, ...]
) -> tuple[ItemTruth, ...]:
    errors_of: dict[str, list[tuple[str, str]]] = {}
    for error in errors:
        errors_of.setdefault(error.item_id, []).append((error.locus, error.kind))
    return tuple(
        ItemTruth(
            item_id=item_id,
            seizure=true_genotypes.group[i],
            animal_id=animal_ids[i],
            population=true_genotypes.population[i],
            errors=tuple(errors_of.get(item_id, ())),
        )
        for i, item_id in enumerate(true_genotypes.profile_ids)
    )


def _animal_records(
    animals: GenotypeTable, plan: _AnimalPlan, item_ids: list[str], item_animal: np.ndarray
) -> tuple[AnimalTruth, ...]:
    animal_ids = animals.profile_ids
    items_of: dict[int, list[str]] = {}
    for item_id, animal in zip(item_ids, item_animal, strict=True):
        items_of.setdefault(int(animal), []).append(item_id)
    return tuple(
        AnimalTruth(
            animal_id=animal_ids[index],
            population=plan.population[index],
            parents=() if parents[0] < 0 else (animal_ids[parents[0]], animal_ids[parents[1]]),
            items=tuple(items_of.get(index, ())),
        )
        for index, parents in enumerate(plan.parents)
    )


def _seizure_records(spec: ScenarioSpec, true_genotypes: GenotypeTable) -> tuple[SeizureTruth, ...]:
    records = []
    for seizure in spec.seizures:
        populations = true_genotypes.population[true_genotypes.group == seizure.name]
        names, counts = np.unique(populations.astype(str), return_counts=True)
        records.append(
            SeizureTruth(
                name=seizure.name,
                sources=dict(seizure.sources),
                n_items=int(populations.size),
                item_populations={str(n): int(c) for n, c in zip(names, counts, strict=True)},
            )
        )
    return tuple(records)


# ---------------------------------------------------------------------------------- writing
def _genotype_file(stem: str, format: str) -> str:
    return stem + FORMATS[format].extensions[0]


def _alleles_text(pair: tuple[int, int]) -> list[str]:
    return ["", ""] if pair[0] == MISSING else [str(pair[0]), str(pair[1])]


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def check_scenario_target(folder: str | os.PathLike, format: str) -> Path:
    """Raise ``ValueError`` unless :func:`write_scenario` may write ``format`` into ``folder``.

    Lets a caller fail before a long simulation rather than after it.
    """
    if format not in writable_formats():
        raise ValueError(
            f"cannot write format {format!r}; writable: {', '.join(writable_formats())}"
        )
    target = Path(folder)
    if target.exists():
        if not target.is_dir():
            raise ValueError(f"{target}: exists and is not a folder")
        if any(target.iterdir()) and not (target / TRUTH_FOLDER / SUMMARY_FILE).is_file():
            raise ValueError(f"{target}: not empty and not an earlier simulation's output")
    return target


def write_scenario(
    scenario: Scenario, folder: str | os.PathLike, format: str = "wide"
) -> dict[str, Path]:
    """Write a scenario's genotypes and truth into ``folder``.

    Files (CSV files have a header row; a missing allele is an empty cell):

    ``genotypes.<ext>``
        The observed items, in ``format`` (group = seizure, no population).
    ``truth/true_genotypes.<ext>``
        The items without errors, with their true population.
    ``truth/animal_genotypes.<ext>``
        Every animal, unsampled parents included, with its population.
    ``truth/items.csv``
        ``item_id, seizure, animal_id, population, errors`` (``locus:kind`` joined by ``;``).
    ``truth/animals.csv``
        ``animal_id, population, parent1, parent2, items`` (item ids joined by ``;``).
    ``truth/relationships.csv``
        ``item1, item2, relationship, animal1, animal2``.
    ``truth/errors.csv``
        ``item_id, locus, kind, true_allele1, true_allele2, observed_allele1, observed_allele2``.
    ``truth/seizures.csv``
        ``seizure, population, proportion, items``: one row per source population (and per
        other population an item of the seizure comes from, with proportion 0).
    ``truth/truth.json``
        Seed, parameters, reference set, counts, format and file names.

    ``folder`` must be absent, empty, or a folder written by this function earlier (which is
    then replaced). Everything is written to a temporary folder first and moved into place at
    the end, so a failure leaves nothing half-written.

    Returns
    -------
    dict of str to Path
        File role (``"genotypes"``, ``"items"``…) → path.
    """
    target = check_scenario_target(folder, format)
    target.parent.mkdir(parents=True, exist_ok=True)
    names = {
        "genotypes": _genotype_file("genotypes", format),
        "true_genotypes": f"{TRUTH_FOLDER}/" + _genotype_file("true_genotypes", format),
        "animal_genotypes": f"{TRUTH_FOLDER}/" + _genotype_file("animal_genotypes", format),
        "items": f"{TRUTH_FOLDER}/items.csv",
        "animals": f"{TRUTH_FOLDER}/animals.csv",
        "relationships": f"{TRUTH_FOLDER}/relationships.csv",
        "errors": f"{TRUTH_FOLDER}/errors.csv",
        "seizures": f"{TRUTH_FOLDER}/seizures.csv",
        "summary": f"{TRUTH_FOLDER}/{SUMMARY_FILE}",
    }
    # mkdtemp makes a private (0700) folder; the output inside it gets the usual permissions.
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        staging = scratch / target.name
        staging.mkdir()
        _write_files(scenario, staging, names, format)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {role: target / name for role, name in names.items()}


def _write_files(scenario: Scenario, root: Path, names: dict[str, str], format: str) -> None:
    (root / TRUTH_FOLDER).mkdir()
    write_genotypes(scenario.observed, root / names["genotypes"], format=format)
    write_genotypes(scenario.true_genotypes, root / names["true_genotypes"], format=format)
    write_genotypes(scenario.animals, root / names["animal_genotypes"], format=format)
    _write_csv(
        root / names["items"],
        ["item_id", "seizure", "animal_id", "population", "errors"],
        (
            [
                i.item_id,
                i.seizure,
                i.animal_id,
                i.population,
                ";".join(f"{locus}:{kind}" for locus, kind in i.errors),
            ]
            for i in scenario.items
        ),
    )
    _write_csv(
        root / names["animals"],
        ["animal_id", "population", "parent1", "parent2", "items"],
        (
            [a.animal_id, a.population, *(a.parents or ("", "")), ";".join(a.items)]
            for a in scenario.animal_records
        ),
    )
    _write_csv(
        root / names["relationships"],
        ["item1", "item2", "relationship", "animal1", "animal2"],
        ([r.item1, r.item2, r.relationship, r.animal1, r.animal2] for r in scenario.relationships),
    )
    _write_csv(
        root / names["errors"],
        [
            "item_id",
            "locus",
            "kind",
            "true_allele1",
            "true_allele2",
            "observed_allele1",
            "observed_allele2",
        ],
        (
            [
                e.item_id,
                e.locus,
                e.kind,
                *_alleles_text(e.true_alleles),
                *_alleles_text(e.observed_alleles),
            ]
            for e in scenario.errors
        ),
    )
    seizure_rows = []
    for seizure in scenario.seizures:
        populations = list(seizure.sources) + sorted(
            set(seizure.item_populations) - set(seizure.sources)
        )
        seizure_rows += [
            [
                seizure.name,
                population,
                repr(seizure.sources.get(population, 0.0)),
                seizure.item_populations.get(population, 0),
            ]
            for population in populations
        ]
    _write_csv(
        root / names["seizures"], ["seizure", "population", "proportion", "items"], seizure_rows
    )
    summary = {
        "dnatrack_version": __version__,
        "seed": scenario.seed,
        "reference": scenario.reference,
        "parameters": scenario.spec.to_dict(),
        "counts": {
            "seizures": len(scenario.seizures),
            "items": scenario.observed.n_profiles,
            "animals": scenario.animals.n_profiles,
            "loci": scenario.observed.n_loci,
            "relationships": scenario.relationship_counts(),
            "errors": scenario.error_counts(),
        },
        "genotype_format": format,
        "files": names,
    }
    (root / names["summary"]).write_text(json.dumps(summary, indent=2) + "\n")
