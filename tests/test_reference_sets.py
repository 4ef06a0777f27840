"""The bundled simulated reference sets: shape, metadata, realistic diversity, structure.

Diversity and differentiation are recomputed here from the genotypes with plain numpy, not with
the engine's statistics, and compared with the ranges the generator was tuned to (expected
heterozygosity of microsatellites: savanna and forest elephants 0.6-0.8, white rhino 0.3-0.5,
black rhino 0.5-0.7).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math

import numpy as np
import pytest

from dnatrack.panels import load_panel
from dnatrack.reference import ReferenceSet, load_reference_set
from reference_data import list_reference_sets, reference_set_path
from reference_data import make_reference_sets as generator


@dataclasses.dataclass(frozen=True)
class Expected:
    species: str
    panel: str
    n_populations: int
    n_animals: int
    taxon_level: str
    expected_heterozygosity: tuple[float, float]


EXPECTED = {
    "savanna_elephant_simulated": Expected(
        "African savanna elephant", "elephant_16str", 15, 450, "species", (0.6, 0.8)
    ),
    "forest_elephant_simulated": Expected(
        "African forest elephant", "elephant_16str", 12, 322, "species", (0.6, 0.8)
    ),
    "white_rhino_simulated": Expected("white rhino", "rhino_str", 10, 295, "species", (0.3, 0.5)),
    "black_rhino_simulated": Expected(
        "black rhino", "rhino_str", 13, 352, "subspecies", (0.5, 0.7)
    ),
}
REGIONS = {"East Africa", "Southern Africa", "West Africa", "Central Africa"}
NAMES = sorted(EXPECTED)


@pytest.fixture(scope="module")
def sets() -> dict[str, ReferenceSet]:
    return {name: load_reference_set(name) for name in NAMES}


# ------------------------------------------------------------------ independent statistics
def allele_counts(alleles: np.ndarray) -> list[dict[int, int]]:
    """Per locus, allele → copies among the typed genotypes of ``alleles`` (n, L, 2)."""
    counts = []
    for j in range(alleles.shape[1]):
        typed = alleles[:, j, :][alleles[:, j, 0] >= 0].ravel()
        values, copies = np.unique(typed, return_counts=True)
        counts.append(dict(zip(values.tolist(), copies.tolist(), strict=True)))
    return counts


def expected_heterozygosity(alleles: np.ndarray) -> np.ndarray:
    """Nei's unbiased gene diversity per locus, (2n/(2n-1))(1 - Σp²), float (L,)."""
    values = []
    for counts in allele_counts(alleles):
        copies = np.array(list(counts.values()), dtype=float)
        total = copies.sum()
        values.append(total / (total - 1) * (1 - ((copies / total) ** 2).sum()))
    return np.array(values)


def observed_heterozygosity(alleles: np.ndarray) -> float:
    typed = alleles[:, :, 0] >= 0
    return float((alleles[:, :, 0] != alleles[:, :, 1])[typed].mean())


def frequency_spread(alleles: np.ndarray, labels: np.ndarray) -> float:
    """Σ over loci, populations and alleles of n_pop · (p_pop,a − p̄_a)²: large when the
    populations' allele frequencies differ."""
    total = 0.0
    for j in range(alleles.shape[1]):
        typed = alleles[:, j, 0] >= 0
        genes = alleles[typed, j, :]
        gene_labels = np.repeat(labels[typed], 2)
        genes = genes.ravel()
        values = np.unique(genes)
        overall = (genes[:, None] == values).mean(axis=0)
        for label in np.unique(gene_labels):
            mine = genes[gene_labels == label]
            p = (mine[:, None] == values).mean(axis=0)
            total += mine.size * ((p - overall) ** 2).sum()
    return total


def mean_within_population_diversity(reference: ReferenceSet) -> float:
    table = reference.table
    return float(np.mean([
        expected_heterozygosity(table.alleles[table.population == pop]).mean()
        for pop in table.unique_populations()
    ]))


# ------------------------------------------------------------------ shape and metadata
def test_all_four_sets_are_bundled():
    assert set(NAMES) <= set(list_reference_sets())


@pytest.mark.parametrize("name", NAMES)
def test_set_loads_with_its_stated_shape(sets, name):
    reference, expected = sets[name], EXPECTED[name]
    assert reference.name == name
    assert reference.species == expected.species
    assert reference.panel == expected.panel
    assert len(reference.populations) == expected.n_populations
    assert f"at {expected.n_populations} localities" in reference.description
    assert len(reference.table) == expected.n_animals
    sizes = [int((reference.table.population == p.name).sum()) for p in reference.populations]
    assert min(sizes) >= 20 and max(sizes) <= 40


@pytest.mark.parametrize("name", NAMES)
def test_set_conforms_to_its_panel(sets, name):
    reference = sets[name]
    panel = load_panel(reference.panel)
    assert reference.table.loci == panel.locus_names
    panel.validate(reference.table)
    for j, locus in enumerate(panel.loci):
        sizes = reference.table.alleles_at(j)
        # Sizes are flank + repeat_unit × repeat count, so they share the parity of the unit.
        assert np.all((sizes - sizes[0]) % locus.repeat_unit == 0)


@pytest.mark.parametrize("name", NAMES)
def test_set_is_marked_simulated(sets, name):
    reference = sets[name]
    assert reference.simulated is True
    assert "simulated" in reference.name
    assert "(simulated)" in reference.citation()
    assert "SIMULATED" in reference.description
    meta = reference.metadata["generator"]
    assert meta["program"].startswith("msprime ")
    assert meta["script"] == "reference_data/make_reference_sets.py"
    assert "SMM" in meta["mutation_model"]
    for key in ("mutation_rate", "deme_size_Ne", "migration_m0", "migration_scale_km", "seed"):
        assert isinstance(meta[key], int | float) and meta[key] > 0


@pytest.mark.parametrize("name", NAMES)
def test_localities_are_named_places_in_africa(sets, name):
    reference = sets[name]
    expected_levels = [EXPECTED[name].taxon_level, "region", "country"]
    assert reference.repunit_levels == expected_levels
    for info in reference.populations:
        assert info.locality and " " not in info.name
        # Africa's extreme points: 37.3°N, 34.8°S, 17.5°W, 51.4°E.
        assert -35.0 <= info.lat <= 37.5 and -17.6 <= info.lon <= 51.5, info
        assert info.repunits["region"] in REGIONS
        assert info.repunits["country"]
    assert set(reference.table.population) == {p.name for p in reference.populations}


def test_black_rhino_reporting_units_are_the_three_subspecies(sets):
    units = set(sets["black_rhino_simulated"].repunit_of("subspecies").values())
    assert units == {f"Diceros bicornis {s}" for s in ("michaeli", "minor", "bicornis")}


@pytest.mark.parametrize("name", NAMES)
def test_content_hash_is_stable_across_loads(sets, name):
    again = load_reference_set(name)
    assert again.content_hash == sets[name].content_hash
    assert len(again.content_hash) == 64


def test_content_hashes_differ_between_sets(sets):
    assert len({reference.content_hash for reference in sets.values()}) == len(sets)


@pytest.mark.parametrize("name", NAMES)
def test_a_little_data_is_missing(sets, name):
    untyped = 1 - sets[name].table.typed.mean()
    assert 0.005 < untyped < 0.04
    assert sets[name].table.n_typed.min() >= len(sets[name].table.loci) - 4


@pytest.mark.parametrize("name", NAMES)
def test_genotype_files_are_small(name):
    assert (reference_set_path(name) / "genotypes.csv").stat().st_size < 200_000


# ------------------------------------------------------------------ diversity and structure
@pytest.mark.parametrize("name", NAMES)
def test_heterozygosity_is_realistic_for_the_species(sets, name):
    reference = sets[name]
    low, high = EXPECTED[name].expected_heterozygosity
    within = mean_within_population_diversity(reference)
    assert low <= within <= high
    # Random mating inside each deme: observed heterozygosity agrees with expected.
    observed = np.mean([
        observed_heterozygosity(reference.table.alleles[reference.table.population == pop])
        for pop in reference.table.unique_populations()
    ])
    assert abs(observed - within) < 0.03


def test_white_rhino_is_the_least_diverse(sets):
    diversity = {name: mean_within_population_diversity(sets[name]) for name in NAMES}
    assert min(diversity, key=diversity.get) == "white_rhino_simulated"


@pytest.mark.parametrize("name", NAMES)
def test_populations_are_differentiated(sets, name):
    table = sets[name].table
    pops = table.population
    total = expected_heterozygosity(table.alleles).mean()
    within = mean_within_population_diversity(sets[name])
    gst = (total - within) / total  # Nei's G_ST
    assert 0.02 < gst < 0.2

    # Frequencies differ between populations by far more than relabelling animals at random
    # (which keeps only sampling noise) makes them differ.
    observed = frequency_spread(table.alleles, pops)
    rng = np.random.default_rng(7)
    shuffled = [frequency_spread(table.alleles, rng.permutation(pops)) for _ in range(20)]
    assert observed > 2 * max(shuffled)


def test_savanna_and_forest_elephants_are_clearly_apart(sets):
    savanna = sets["savanna_elephant_simulated"].table.alleles
    forest = sets["forest_elephant_simulated"].table.alleles
    both = np.concatenate([savanna, forest])
    species = np.array(["savanna"] * len(savanna) + ["forest"] * len(forest))

    # The species differ more than the populations inside either species do.
    pooled = expected_heterozygosity(both).mean()
    within = np.mean([expected_heterozygosity(savanna).mean(),
                      expected_heterozygosity(forest).mean()])
    between_species = (pooled - within) / pooled
    for name in ("savanna_elephant_simulated", "forest_elephant_simulated"):
        total = expected_heterozygosity(sets[name].table.alleles).mean()
        among_populations = (total - mean_within_population_diversity(sets[name])) / total
        assert between_species > among_populations

    # Leave-one-out species call from allele frequencies (each animal's own alleles removed).
    counts = {"savanna": allele_counts(savanna), "forest": allele_counts(forest)}
    n_alleles = [len(counts["savanna"][j].keys() | counts["forest"][j].keys())
                 for j in range(both.shape[1])]
    correct = 0
    for genotype, truth in zip(both, species, strict=True):
        scores = {}
        for label, per_locus in counts.items():
            log_likelihood = 0.0
            for j, (a, b) in enumerate(genotype):
                if a < 0:
                    continue
                own = (label == truth)
                copies = dict(per_locus[j])
                total = sum(copies.values())
                if own:
                    copies[a] -= 1
                    copies[b] -= 1
                    total -= 2
                for allele in (a, b):
                    p = (copies.get(allele, 0) + 1 / n_alleles[j]) / (total + 1)
                    log_likelihood += math.log(p)
            scores[label] = log_likelihood
        correct += max(scores, key=scores.get) == truth
    assert correct / len(both) > 0.99


# ------------------------------------------------------------------ the generator script
def test_great_circle_distance_closed_forms():
    quarter_meridian = generator.great_circle_km(0.0, 0.0, 90.0, 0.0)
    assert quarter_meridian == pytest.approx(math.pi * generator.EARTH_RADIUS_KM / 2)
    one_degree = generator.great_circle_km(-1.0, 36.0, -1.0, 37.0)
    assert one_degree == pytest.approx(
        generator.EARTH_RADIUS_KM * math.acos(
            math.sin(math.radians(-1)) ** 2
            + math.cos(math.radians(-1)) ** 2 * math.cos(math.radians(1))
        ),
        rel=1e-9,
    )


def test_migration_falls_with_distance():
    localities = generator.SAVANNA_LOCALITIES
    matrix = generator.migration_matrix(localities, 0.01, 500.0)
    assert np.allclose(matrix, matrix.T) and np.all(np.diag(matrix) == 0)
    names = [loc.population for loc in localities]
    amboseli, tsavo, etosha = (names.index(n) for n in ("Amboseli", "Tsavo", "Etosha"))
    assert matrix[amboseli, tsavo] > 100 * matrix[amboseli, etosha]
    distance = generator.great_circle_km(
        localities[amboseli].lat, localities[amboseli].lon,
        localities[tsavo].lat, localities[tsavo].lon,
    )
    assert matrix[amboseli, tsavo] == pytest.approx(0.01 * math.exp(-distance / 500.0))


@pytest.mark.parametrize("panel_name", ["elephant_16str", "rhino_str"])
def test_repeat_windows_lie_inside_the_panel_ranges(panel_name):
    for locus in load_panel(panel_name).loci:
        window = generator.repeat_window(locus)
        sizes = window.size(np.arange(window.lo, window.hi + 1))
        assert locus.min_size <= sizes.min() and sizes.max() <= locus.max_size
        assert window.lo >= generator.MIN_REPEATS and window.unit == locus.repeat_unit


def test_generator_refuses_an_unknown_set(capsys):
    with pytest.raises(SystemExit) as stop:
        generator.main(["--only", "dodo_simulated"])
    assert stop.value.code == 2
    assert "no design for 'dodo_simulated'" in capsys.readouterr().err


needs_msprime = pytest.mark.skipif(
    importlib.util.find_spec("msprime") is None, reason="msprime (a development extra) missing"
)


@needs_msprime
def test_generator_is_deterministic_under_its_seed():
    small = dataclasses.replace(
        generator.design("black_rhino_simulated"),
        localities=generator.BLACK_RHINO_LOCALITIES[:4],
        animals_per_locality=(5, 8),
    )
    first, second = generator.simulate(small), generator.simulate(small)
    assert np.array_equal(first.table.alleles, second.table.alleles)
    assert list(first.table.profile_ids) == list(second.table.profile_ids)
    other = generator.simulate(dataclasses.replace(small, seed=small.seed + 1))
    assert not np.array_equal(first.table.alleles, other.table.alleles)


@needs_msprime
def test_rerunning_the_generator_reproduces_the_bundled_set(tmp_path, capsys):
    import msprime

    name = "white_rhino_simulated"
    bundled = load_reference_set(name)
    recorded = bundled.metadata["generator"]["program"]
    if recorded != f"msprime {msprime.__version__}":
        pytest.skip(f"bundled set made with {recorded}; random streams may differ")
    assert generator.main(["--only", name, "--out", str(tmp_path)]) == 0
    assert f"{name}: {len(bundled.table)} animals" in capsys.readouterr().out
    remade = ReferenceSet.load(tmp_path / name)
    assert np.array_equal(remade.table.alleles, bundled.table.alleles)
    assert remade.content_hash == bundled.content_hash
