"""Regenerate the bundled simulated reference sets with msprime.

Run from the repository root (msprime is a development extra: ``pip install -e '.[dev]'``)::

    python -m reference_data.make_reference_sets            # all four sets
    python -m reference_data.make_reference_sets --only white_rhino_simulated --out /tmp/sets

Each set is a stepping-stone model of real sampling localities (parks and reserves, with
approximate coordinates): one deme of constant size per locality, and between every two demes a
migration rate that falls with their great-circle distance, ``m0 · exp(-d / scale)``. Every
locus is an independent coalescent tree (``sequence_length=1``, one replicate per locus) under
which repeat numbers mutate by msprime's stepwise model (:class:`msprime.SMM`), bounded to a
per-locus window; an allele's size in base pairs is ``flank + repeat_unit × repeat count``, the
window being placed inside the panel's size range (the same window for every set typed on the
panel). Each species starts every locus from its own ancestral repeat number, a small shift from
the middle of the window; species typed on one panel, such as savanna and forest elephants, are
simulated separately, so their genealogies are independent and their allele frequencies differ
as those of long-separated species do. A few loci per animal are then set untyped.

Everything is fixed by the seeds below, so a rerun with the same msprime version writes the same
genotypes. Only this script imports msprime; the ``reference_data`` package never does.
"""

from __future__ import annotations

import argparse
import math
import sys
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Locus, Panel, load_panel
from dnatrack.reference import PopulationInfo, ReferenceSet
from reference_data import data_path

EARTH_RADIUS_KM = 6371.0

#: Smallest repeat number a simulated allele may have.
MIN_REPEATS = 6
#: Most repeat numbers an SMM window spans (fewer where the panel range is narrower).
MAX_WINDOW_REPEATS = 36


@dataclass(frozen=True)
class Locality:
    """One sampling locality: a deme of the model and a population of the reference set.

    ``population`` is the label used in the genotypes (no spaces, so that every genotype format
    can carry it); ``code`` prefixes the animal ids; ``repunits`` maps each reporting-unit level
    to this locality's unit.
    """

    population: str
    code: str
    locality: str
    lat: float
    lon: float
    repunits: dict[str, str]


@dataclass(frozen=True)
class SetDesign:
    """Everything that defines one simulated reference set.

    Attributes
    ----------
    name, species, panel, description
        As stored in the reference set (``name`` must contain "simulated").
    localities
        The demes, in the order the populations are listed.
    deme_size
        Diploid effective size ``Ne`` of every deme.
    mutation_rate
        SMM mutation rate per locus per generation.
    migration_rate
        ``m0``: the backward migration rate between two demes at distance 0.
    migration_scale_km
        ``scale`` of the kernel ``m0 · exp(-d / scale)``.
    ancestral_shift
        The largest shift (repeats) of this species' ancestral repeat number from the panel-wide
        value at each locus.
    animals_per_locality
        Inclusive range of the number of animals sampled per locality.
    missing_rate
        Probability that a locus of an animal is untyped.
    id_prefix
        First part of every animal id (``<prefix>-<code>-<number>``).
    default_repunit_level
        Reporting-unit level used by default in assignment summaries.
    seed
        Seeds every random choice of the set.
    """

    name: str
    species: str
    panel: str
    description: str
    localities: tuple[Locality, ...]
    deme_size: int
    mutation_rate: float
    migration_rate: float
    migration_scale_km: float
    ancestral_shift: int
    animals_per_locality: tuple[int, int]
    missing_rate: float
    id_prefix: str
    default_repunit_level: str
    seed: int


@dataclass(frozen=True)
class RepeatWindow:
    """Where a locus's simulated alleles live: sizes ``flank + unit × n`` for ``lo ≤ n ≤ hi``."""

    flank: int
    unit: int
    lo: int
    hi: int

    @property
    def ancestral(self) -> int:
        """The panel-wide ancestral repeat number: the middle of the window."""
        return (self.lo + self.hi) // 2

    def size(self, repeats: np.ndarray) -> np.ndarray:
        """Allele sizes (bp) of repeat numbers, same shape as ``repeats``."""
        return self.flank + self.unit * repeats


def great_circle_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Haversine distance in km between two points given in decimal degrees."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    half_dphi = (phi2 - phi1) / 2
    half_dlambda = math.radians(lon2 - lon1) / 2
    a = math.sin(half_dphi) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(half_dlambda) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(a))


def migration_matrix(
    localities: Sequence[Locality], rate: float, scale_km: float
) -> np.ndarray:
    """Migration rates between every two demes, falling with their great-circle distance.

    Returns
    -------
    numpy.ndarray of float64, shape (k, k)
        ``rate · exp(-d_ij / scale_km)`` off the diagonal, 0 on it; symmetric.
    """
    k = len(localities)
    matrix = np.zeros((k, k))
    for i in range(k):
        for j in range(k):
            if i != j:
                a, b = localities[i], localities[j]
                distance = great_circle_km(a.lat, a.lon, b.lat, b.lon)
                matrix[i, j] = rate * math.exp(-distance / scale_km)
    return matrix


def repeat_window(locus: Locus) -> RepeatWindow:
    """The SMM window of a locus, placed inside the panel's size range.

    The position inside a wide range comes from a checksum of the locus name, so it is the same
    for every set typed on the panel and differs between loci.
    """
    if locus.repeat_unit is None:
        raise ValueError(f"locus {locus.name!r} has no repeat unit; only STR loci can be simulated")
    unit = locus.repeat_unit
    room = (locus.max_size - locus.min_size) // unit
    span = min(MAX_WINDOW_REPEATS, room)
    if span < 4:
        raise ValueError(f"locus {locus.name!r}: size range too narrow to simulate")
    offset = zlib.crc32(locus.name.encode()) % (room - span + 1)
    flank = locus.min_size + unit * (offset - MIN_REPEATS)
    return RepeatWindow(flank=flank, unit=unit, lo=MIN_REPEATS, hi=MIN_REPEATS + span)


def _smm_repeats(tree_sequence, window: RepeatWindow, root: int, rate: float, seed: int):
    """Repeat numbers of the sample nodes after SMM mutation from ``root`` (int64 array)."""
    import msprime

    states = window.hi - window.lo + 1
    root_distribution = np.zeros(states)
    root_distribution[root - window.lo] = 1.0
    model = msprime.SMM(lo=window.lo, hi=window.hi, root_distribution=root_distribution)
    mutated = msprime.sim_mutations(
        tree_sequence, rate=rate, model=model, random_seed=seed, discrete_genome=True
    )
    if mutated.num_sites == 0:
        return np.full(mutated.num_samples, root, dtype=np.int64)
    variant = next(mutated.variants())
    allele_repeats = np.array([int(allele) for allele in variant.alleles], dtype=np.int64)
    return allele_repeats[variant.genotypes]


def simulate(design: SetDesign, panel: Panel | None = None) -> ReferenceSet:
    """Simulate one reference set from its design (needs msprime).

    Parameters
    ----------
    design
        The set to make.
    panel
        The marker panel; the bundled panel named by ``design.panel`` when ``None``.

    Returns
    -------
    ReferenceSet
        ``n_animals × n_loci`` genotypes in base pairs, populations in ``design`` order.
    """
    import msprime

    panel = panel or load_panel(design.panel)
    rng = np.random.default_rng(design.seed)
    low, high = design.animals_per_locality
    animals = rng.integers(low, high + 1, size=len(design.localities))
    windows = [repeat_window(locus) for locus in panel.loci]
    roots = [
        w.ancestral + int(rng.integers(-design.ancestral_shift, design.ancestral_shift + 1))
        for w in windows
    ]
    ancestry_seed, *mutation_seeds = rng.integers(1, 2**31 - 1, size=1 + len(windows))

    demography = msprime.Demography()
    for locality in design.localities:
        demography.add_population(name=locality.population, initial_size=design.deme_size)
    demography.migration_matrix[:] = migration_matrix(
        design.localities, design.migration_rate, design.migration_scale_km
    )
    samples = {
        locality.population: int(n)
        for locality, n in zip(design.localities, animals, strict=True)
    }
    replicates = list(msprime.sim_ancestry(
        samples=samples,
        demography=demography,
        sequence_length=1,
        ploidy=2,
        num_replicates=len(windows),
        random_seed=int(ancestry_seed),
    ))

    n_animals = int(animals.sum())
    alleles = np.empty((n_animals, len(windows), 2), dtype=np.int64)
    for j, (tree_sequence, window, root, seed) in enumerate(
        zip(replicates, windows, roots, mutation_seeds, strict=True)
    ):
        repeats = _smm_repeats(tree_sequence, window, root, design.mutation_rate, int(seed))
        # msprime numbers an individual's two sample nodes consecutively, in sample order.
        alleles[:, j, :] = window.size(repeats).reshape(n_animals, 2)

    untyped = rng.random((n_animals, len(windows))) < design.missing_rate
    alleles[untyped] = MISSING

    first = replicates[0]
    deme_names = [deme.metadata["name"] for deme in first.populations()]
    population = [deme_names[first.node(nodes[0]).population]
                  for nodes in (ind.nodes for ind in first.individuals())]
    code = {locality.population: locality.code for locality in design.localities}
    counters: dict[str, int] = {}
    profile_ids = []
    for pop in population:
        counters[pop] = counters.get(pop, 0) + 1
        profile_ids.append(f"{design.id_prefix}-{code[pop]}-{counters[pop]:03d}")

    table = GenotypeTable(alleles, profile_ids, panel.locus_names, population=population)
    return ReferenceSet(
        name=design.name,
        species=design.species,
        table=table,
        populations=tuple(
            PopulationInfo(
                name=locality.population,
                locality=locality.locality,
                lat=locality.lat,
                lon=locality.lon,
                repunits=dict(locality.repunits),
            )
            for locality in design.localities
        ),
        version="1",
        panel=panel.name,
        simulated=True,
        description=design.description,
        default_repunit_level=design.default_repunit_level,
        metadata={
            "generator": {
                "program": f"msprime {msprime.__version__}",
                "script": "reference_data/make_reference_sets.py",
                "ancestry": "structured coalescent, one independent replicate per locus "
                "(sequence_length=1), diploid samples",
                "mutation_model": "msprime.SMM (stepwise +/-1 repeat), bounded window per "
                "locus, point-mass root at the species' ancestral repeat number",
                "allele_size": "flank + repeat_unit * repeat count",
                "mutation_rate": design.mutation_rate,
                "deme_size_Ne": design.deme_size,
                "migration": "m0 * exp(-great_circle_km / scale_km) between every two demes",
                "migration_m0": design.migration_rate,
                "migration_scale_km": design.migration_scale_km,
                "ancestral_shift_max_repeats": design.ancestral_shift,
                "missing_rate": design.missing_rate,
                "seed": design.seed,
            }
        },
    )


# ---------------------------------------------------------------------------------- localities
def _units(species: str, region: str, country: str, *, level: str = "species") -> dict[str, str]:
    return {level: species, "region": region, "country": country}


_SAVANNA = "Loxodonta africana"
_FOREST = "Loxodonta cyclotis"
_WHITE = "Ceratotherium simum simum"
_MICHAELI = "Diceros bicornis michaeli"
_MINOR = "Diceros bicornis minor"
_BICORNIS = "Diceros bicornis bicornis"
_EAST, _SOUTH, _WEST, _CENTRAL = "East Africa", "Southern Africa", "West Africa", "Central Africa"

SAVANNA_LOCALITIES = (
    Locality("Amboseli", "AMB", "Amboseli National Park", -2.65, 37.26,
             _units(_SAVANNA, _EAST, "Kenya")),
    Locality("Tsavo", "TSV", "Tsavo East National Park", -2.98, 38.47,
             _units(_SAVANNA, _EAST, "Kenya")),
    Locality("Samburu", "SAM", "Samburu National Reserve", 0.62, 37.53,
             _units(_SAVANNA, _EAST, "Kenya")),
    Locality("Serengeti", "SER", "Serengeti National Park", -2.33, 34.83,
             _units(_SAVANNA, _EAST, "Tanzania")),
    Locality("Ruaha", "RUA", "Ruaha National Park", -7.65, 34.90,
             _units(_SAVANNA, _EAST, "Tanzania")),
    Locality("Selous", "SEL", "Selous Game Reserve (Nyerere National Park)", -8.90, 37.90,
             _units(_SAVANNA, _EAST, "Tanzania")),
    Locality("Queen_Elizabeth", "QEN", "Queen Elizabeth National Park", -0.20, 29.90,
             _units(_SAVANNA, _EAST, "Uganda")),
    Locality("Niassa", "NIA", "Niassa National Reserve", -12.20, 37.60,
             _units(_SAVANNA, _SOUTH, "Mozambique")),
    Locality("South_Luangwa", "SLU", "South Luangwa National Park", -13.10, 31.60,
             _units(_SAVANNA, _SOUTH, "Zambia")),
    Locality("Hwange", "HWA", "Hwange National Park", -18.80, 26.50,
             _units(_SAVANNA, _SOUTH, "Zimbabwe")),
    Locality("Chobe", "CHO", "Chobe National Park", -18.60, 24.40,
             _units(_SAVANNA, _SOUTH, "Botswana")),
    Locality("Etosha", "ETO", "Etosha National Park", -18.90, 16.00,
             _units(_SAVANNA, _SOUTH, "Namibia")),
    Locality("Kruger", "KRU", "Kruger National Park", -24.00, 31.50,
             _units(_SAVANNA, _SOUTH, "South Africa")),
    Locality("Pendjari", "PEN", "Pendjari National Park", 11.05, 1.60,
             _units(_SAVANNA, _WEST, "Benin")),
    Locality("Zakouma", "ZAK", "Zakouma National Park", 10.85, 19.80,
             _units(_SAVANNA, _CENTRAL, "Chad")),
)

FOREST_LOCALITIES = (
    Locality("Lope", "LOP", "Lopé National Park", -0.50, 11.50,
             _units(_FOREST, _CENTRAL, "Gabon")),
    Locality("Minkebe", "MIN", "Minkébé National Park", 1.70, 12.80,
             _units(_FOREST, _CENTRAL, "Gabon")),
    Locality("Odzala", "ODZ", "Odzala-Kokoua National Park", 0.78, 14.87,
             _units(_FOREST, _CENTRAL, "Republic of the Congo")),
    Locality("Nouabale_Ndoki", "NND", "Nouabalé-Ndoki National Park", 2.40, 16.60,
             _units(_FOREST, _CENTRAL, "Republic of the Congo")),
    Locality("Dzanga_Sangha", "DZS", "Dzanga-Sangha Special Reserve", 2.90, 16.30,
             _units(_FOREST, _CENTRAL, "Central African Republic")),
    Locality("Lobeke", "LOB", "Lobéké National Park", 2.25, 15.75,
             _units(_FOREST, _CENTRAL, "Cameroon")),
    Locality("Dja", "DJA", "Dja Faunal Reserve", 3.00, 13.00,
             _units(_FOREST, _CENTRAL, "Cameroon")),
    Locality("Salonga", "SAL", "Salonga National Park", -1.90, 21.10,
             _units(_FOREST, _CENTRAL, "Democratic Republic of the Congo")),
    Locality("Okapi", "OKA", "Okapi Wildlife Reserve", 1.40, 28.60,
             _units(_FOREST, _CENTRAL, "Democratic Republic of the Congo")),
    Locality("Tai", "TAI", "Taï National Park", 5.80, -7.30,
             _units(_FOREST, _WEST, "Côte d'Ivoire")),
    Locality("Sapo", "SAP", "Sapo National Park", 5.40, -8.80,
             _units(_FOREST, _WEST, "Liberia")),
    Locality("Gola", "GOL", "Gola Rainforest National Park", 7.45, -11.00,
             _units(_FOREST, _WEST, "Sierra Leone")),
)

WHITE_RHINO_LOCALITIES = (
    Locality("Hluhluwe_iMfolozi", "HIP", "Hluhluwe-iMfolozi Park", -28.22, 31.95,
             _units(_WHITE, _SOUTH, "South Africa")),
    Locality("Kruger", "KRU", "Kruger National Park (south)", -24.90, 31.50,
             _units(_WHITE, _SOUTH, "South Africa")),
    Locality("Pilanesberg", "PIL", "Pilanesberg National Park", -25.25, 27.10,
             _units(_WHITE, _SOUTH, "South Africa")),
    Locality("Madikwe", "MAD", "Madikwe Game Reserve", -24.80, 26.30,
             _units(_WHITE, _SOUTH, "South Africa")),
    Locality("Hlane", "HLA", "Hlane Royal National Park", -26.25, 31.90,
             _units(_WHITE, _SOUTH, "Eswatini")),
    Locality("Matobo", "MAT", "Matobo National Park", -20.50, 28.50,
             _units(_WHITE, _SOUTH, "Zimbabwe")),
    Locality("Khama", "KHA", "Khama Rhino Sanctuary", -22.37, 26.67,
             _units(_WHITE, _SOUTH, "Botswana")),
    Locality("Moremi", "MOR", "Moremi Game Reserve (Okavango Delta)", -19.20, 23.40,
             _units(_WHITE, _SOUTH, "Botswana")),
    Locality("Waterberg", "WAT", "Waterberg Plateau Park", -20.40, 17.30,
             _units(_WHITE, _SOUTH, "Namibia")),
    Locality("Lake_Nakuru", "NAK", "Lake Nakuru National Park", -0.37, 36.08,
             _units(_WHITE, _EAST, "Kenya")),
)

BLACK_RHINO_LOCALITIES = (
    Locality("Masai_Mara", "MAR", "Masai Mara National Reserve", -1.50, 35.10,
             _units(_MICHAELI, _EAST, "Kenya", level="subspecies")),
    Locality("Lake_Nakuru", "NAK", "Lake Nakuru National Park", -0.37, 36.08,
             _units(_MICHAELI, _EAST, "Kenya", level="subspecies")),
    Locality("Ol_Pejeta", "OLP", "Ol Pejeta Conservancy", 0.00, 36.90,
             _units(_MICHAELI, _EAST, "Kenya", level="subspecies")),
    Locality("Tsavo_West", "TSW", "Ngulia Rhino Sanctuary, Tsavo West National Park",
             -3.00, 38.20, _units(_MICHAELI, _EAST, "Kenya", level="subspecies")),
    Locality("Ngorongoro", "NGO", "Ngorongoro Conservation Area", -3.20, 35.50,
             _units(_MICHAELI, _EAST, "Tanzania", level="subspecies")),
    Locality("Liwonde", "LIW", "Liwonde National Park", -14.85, 35.35,
             _units(_MINOR, _SOUTH, "Malawi", level="subspecies")),
    Locality("Bubye_Valley", "BUB", "Bubye Valley Conservancy", -21.50, 30.40,
             _units(_MINOR, _SOUTH, "Zimbabwe", level="subspecies")),
    Locality("Kruger", "KRU", "Kruger National Park", -24.00, 31.50,
             _units(_MINOR, _SOUTH, "South Africa", level="subspecies")),
    Locality("Mkhuze", "MKH", "Mkhuze Game Reserve", -27.65, 32.20,
             _units(_MINOR, _SOUTH, "South Africa", level="subspecies")),
    Locality("Hluhluwe_iMfolozi", "HIP", "Hluhluwe-iMfolozi Park", -28.22, 31.95,
             _units(_MINOR, _SOUTH, "South Africa", level="subspecies")),
    Locality("Etosha", "ETO", "Etosha National Park", -18.90, 16.00,
             _units(_BICORNIS, _SOUTH, "Namibia", level="subspecies")),
    Locality("Kunene", "KUN", "Kunene region (Palmwag concession)", -19.90, 13.90,
             _units(_BICORNIS, _SOUTH, "Namibia", level="subspecies")),
    Locality("Augrabies", "AUG", "Augrabies Falls National Park", -28.60, 20.30,
             _units(_BICORNIS, _SOUTH, "South Africa", level="subspecies")),
)

_SIMULATED_NOTE = (
    "SIMULATED with msprime over a stepping-stone model of real sampling localities; the "
    "genotypes are not data from real animals and must not be used as evidence."
)

DESIGNS: tuple[SetDesign, ...] = (
    SetDesign(
        name="savanna_elephant_simulated",
        species="African savanna elephant",
        panel="elephant_16str",
        description=f"Savanna elephants (Loxodonta africana) at 15 localities. {_SIMULATED_NOTE}",
        localities=SAVANNA_LOCALITIES,
        deme_size=600,
        mutation_rate=3e-4,
        migration_rate=0.015,
        migration_scale_km=600.0,
        ancestral_shift=3,
        animals_per_locality=(22, 38),
        missing_rate=0.02,
        id_prefix="SE",
        default_repunit_level="region",
        seed=20240101,
    ),
    SetDesign(
        name="forest_elephant_simulated",
        species="African forest elephant",
        panel="elephant_16str",
        description=f"Forest elephants (Loxodonta cyclotis) at 12 localities. {_SIMULATED_NOTE}",
        localities=FOREST_LOCALITIES,
        deme_size=600,
        mutation_rate=3e-4,
        migration_rate=0.006,
        migration_scale_km=600.0,
        ancestral_shift=3,
        animals_per_locality=(22, 38),
        missing_rate=0.02,
        id_prefix="FE",
        default_repunit_level="region",
        seed=20240202,
    ),
    SetDesign(
        name="white_rhino_simulated",
        species="white rhino",
        panel="rhino_str",
        description=(
            f"Southern white rhinoceros (Ceratotherium simum simum) at 10 localities. "
            f"{_SIMULATED_NOTE}"
        ),
        localities=WHITE_RHINO_LOCALITIES,
        deme_size=200,
        mutation_rate=1.5e-4,
        migration_rate=0.01,
        migration_scale_km=600.0,
        ancestral_shift=3,
        animals_per_locality=(22, 38),
        missing_rate=0.02,
        id_prefix="WR",
        default_repunit_level="region",
        seed=20240303,
    ),
    SetDesign(
        name="black_rhino_simulated",
        species="black rhino",
        panel="rhino_str",
        description=(
            f"Black rhinoceros (Diceros bicornis michaeli, minor and bicornis) at 13 localities. "
            f"{_SIMULATED_NOTE}"
        ),
        localities=BLACK_RHINO_LOCALITIES,
        deme_size=300,
        mutation_rate=3e-4,
        migration_rate=0.01,
        migration_scale_km=500.0,
        ancestral_shift=3,
        animals_per_locality=(20, 32),
        missing_rate=0.02,
        id_prefix="BR",
        default_repunit_level="subspecies",
        seed=20240404,
    ),
)


def design(name: str) -> SetDesign:
    """The design of the bundled set called ``name``."""
    for candidate in DESIGNS:
        if candidate.name == name:
            return candidate
    raise ValueError(
        f"no design for {name!r}; known: {', '.join(d.name for d in DESIGNS)}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m reference_data.make_reference_sets",
        description="Regenerate the bundled simulated reference sets (needs msprime).",
    )
    parser.add_argument(
        "--only", action="append", metavar="NAME",
        help="make only this set (repeatable); default: all",
    )
    parser.add_argument(
        "--out", type=Path, default=data_path("reference_sets"),
        help="folder to write the sets into (default: the bundled reference_sets folder)",
    )
    args = parser.parse_args(argv)
    try:
        chosen = [design(name) for name in args.only] if args.only else list(DESIGNS)
    except ValueError as error:
        parser.error(str(error))
    for item in chosen:
        reference = simulate(item)
        folder = reference.save(args.out / item.name)
        print(f"{item.name}: {len(reference.table)} animals, "
              f"{len(reference.populations)} populations -> {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
