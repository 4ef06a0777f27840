"""The scenario simulator: determinism, truth against genotypes, frequencies, errors, files."""

import csv
import json
import re
from collections import Counter
from functools import cache
from itertools import combinations

import numpy as np
import pytest

from dnatrack.formats import FORMATS, read_genotypes, writable_formats
from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import PopulationInfo, ReferenceSet
from dnatrack.simulate import (
    ERROR_KINDS,
    RELATIONSHIPS,
    SIMULATION_STAGES,
    ScenarioSpec,
    SeizureSpec,
    simulate,
    write_scenario,
)

POPULATIONS = ("P0", "P1", "P2")
LOCI = ("L1", "L2", "L3", "L4", "L5", "L6", "L7", "MONO")
ALLELE_SIZES = np.arange(100, 112, 2)  # six alleles per locus (MONO has only 150)
UNTYPED_IN_P2 = "L7"
# P0 lacks the three largest alleles at L1, so a founder of P0 must never carry them.
P0_L1_FREQUENCIES = np.array([0.5, 0.3, 0.2, 0.0, 0.0, 0.0])


def make_reference(n_per_population=80, seed=11, species="savanna elephant", extra=()):
    """Three populations with their own allele frequencies; a few untyped genotypes, an
    untyped locus in one population and a single-allele locus."""
    rng = np.random.default_rng(seed)
    blocks, labels = [], []
    for population in POPULATIONS:
        genotypes = np.empty((n_per_population, len(LOCI), 2), dtype=np.int64)
        for j, locus in enumerate(LOCI):
            if locus == "MONO":
                genotypes[:, j, :] = 150
                continue
            frequencies = rng.dirichlet(np.full(ALLELE_SIZES.size, 0.8))
            if (population, locus) == ("P0", "L1"):
                frequencies = P0_L1_FREQUENCIES
            genotypes[:, j, :] = rng.choice(ALLELE_SIZES, size=(n_per_population, 2), p=frequencies)
        genotypes[rng.random((n_per_population, len(LOCI))) < 0.05] = -1
        if population == "P2":
            genotypes[:, LOCI.index(UNTYPED_IN_P2), :] = -1
        blocks.append(genotypes)
        labels += [population] * n_per_population
    table = GenotypeTable(
        np.concatenate(blocks), [f"ref{i}" for i in range(len(labels))], LOCI, population=labels
    )
    populations = tuple(PopulationInfo(name) for name in (*POPULATIONS, *extra))
    return ReferenceSet("toy-simulated", species, table, populations, simulated=True)


@pytest.fixture(scope="module")
def reference():
    return make_reference()


@pytest.fixture(scope="module")
def related(reference):
    """Many related pairs of every kind with high error rates, for the truth checks."""
    spec = ScenarioSpec(
        n_seizures=4,
        items_per_seizure=200,
        sources={"P0": 1, "P1": 1, "P2": 1},
        same_animal_pairs=80,
        parent_offspring_pairs=80,
        full_sibling_pairs=80,
        half_sibling_pairs=80,
        missing_rate=0.08,
        dropout_rate=0.1,
        miscall_rate=0.06,
    )
    return simulate(reference, spec, seed=2024)


def error_free(scenario):
    """Bool (n_items, n_loci): True where no error was recorded, from the truth records."""
    clean = np.ones(scenario.observed.alleles.shape[:2], dtype=bool)
    for error in scenario.errors:
        clean[
            scenario.observed.index_of(error.item_id), scenario.observed.locus_index(error.locus)
        ] = False
    return clean


def pairs_of(scenario, relationship):
    observed = scenario.observed
    return [
        (observed.index_of(r.item1), observed.index_of(r.item2), r)
        for r in scenario.relationships
        if r.relationship == relationship
    ]


def animal_genotype(scenario, animal_id):
    return scenario.animals.alleles[scenario.animals.index_of(animal_id)]


def parents_of(scenario, animal_id):
    return {a.animal_id: a for a in scenario.animal_records}[animal_id].parents


# ------------------------------------------------------------------------------- determinism
def test_same_seed_gives_the_same_scenario_and_files(reference, tmp_path):
    spec = ScenarioSpec(items_per_seizure=30, missing_rate=0.1, dropout_rate=0.1, miscall_rate=0.1)
    first, second = simulate(reference, spec, seed=7), simulate(reference, spec, seed=7)
    assert first.observed.same_genotypes(second.observed)
    assert np.array_equal(first.observed.group, second.observed.group)
    assert first.animals.same_genotypes(second.animals)
    assert first.items == second.items
    assert first.relationships == second.relationships
    assert first.errors == second.errors
    assert first.seizures == second.seizures
    write_scenario(first, tmp_path / "a")
    write_scenario(second, tmp_path / "b")
    names = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.*"))
    assert len(names) == 9
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_different_seeds_give_different_scenarios(reference):
    first, second = simulate(reference, seed=7), simulate(reference, seed=8)
    assert not np.array_equal(first.true_genotypes.alleles, second.true_genotypes.alleles)
    assert first.relationships != second.relationships


def test_seed_is_drawn_and_kept_when_not_given(reference):
    scenario = simulate(reference)
    again = simulate(reference, seed=scenario.seed)
    assert again.observed.same_genotypes(scenario.observed)


# ------------------------------------------------------------------------ defaults and layout
def test_defaults_make_a_small_scenario(reference):
    scenario = simulate(reference, seed=1)
    observed = scenario.observed
    assert observed.n_profiles == 60
    assert observed.loci == LOCI
    assert observed.population is None  # the true source stays in the truth
    assert [s.name for s in scenario.seizures] == ["SZ01", "SZ02", "SZ03"]
    assert all(re.fullmatch(r"SZ0[123]-T\d{3}", item) for item in observed.profile_ids)
    for seizure in scenario.seizures:
        items = observed.profile_ids[observed.group == seizure.name]
        assert len(items) == seizure.n_items == 20
        assert all(item.startswith(seizure.name + "-") for item in items)
    # Without sources, each seizure draws from one population, a different one each.
    sources = [tuple(s.sources) for s in scenario.seizures]
    assert sorted(sources) == [("P0",), ("P1",), ("P2",)]
    assert scenario.relationship_counts() == dict.fromkeys(RELATIONSHIPS, 2)
    assert scenario.spec.seizures is not None and scenario.spec.item_prefix == "T"


def test_rhino_items_are_horns():
    scenario = simulate(make_reference(species="white rhino"), seed=1)
    assert scenario.observed.profile_ids[0] == "SZ01-H001"


def test_progress_reports_every_stage_in_order(reference):
    stages = []
    simulate(reference, seed=1, progress=stages.append)
    assert stages == list(SIMULATION_STAGES)


def test_item_truth_matches_tables(related):
    true = related.true_genotypes
    assert np.array_equal(true.profile_ids, related.observed.profile_ids)
    assert np.array_equal(true.group, related.observed.group)
    for i, item in enumerate(related.items):
        assert item.item_id == true.profile_ids[i]
        assert item.seizure == true.group[i]
        assert item.population == true.population[i]
        assert np.array_equal(true.alleles[i], animal_genotype(related, item.animal_id))
    records = {a.animal_id: a for a in related.animal_records}
    for item in related.items:
        assert item.item_id in records[item.animal_id].items
        assert records[item.animal_id].population == item.population
    # Every item is listed under exactly one animal.
    listed = [item for a in related.animal_records for item in a.items]
    assert sorted(listed) == sorted(true.profile_ids)


def test_pairs_are_split_across_seizures(related):
    items = {i.item_id: i for i in related.items}
    assert len(related.relationships) == 320
    for record in related.relationships:
        assert items[record.item1].seizure != items[record.item2].seizure
        assert items[record.item1].animal_id == record.animal1
        assert items[record.item2].animal_id == record.animal2
        assert items[record.item1].population == items[record.item2].population


def test_pairs_can_stay_in_one_seizure(reference):
    spec = ScenarioSpec(n_seizures=2, items_per_seizure=10, pairs_across_seizures=False)
    scenario = simulate(reference, spec, seed=3)
    items = {i.item_id: i for i in scenario.items}
    assert len(scenario.relationships) == 8
    for record in scenario.relationships:
        assert items[record.item1].seizure == items[record.item2].seizure
    assert [s.n_items for s in scenario.seizures] == [10, 10]


# ------------------------------------------------------------------------------- truth vs genotypes
def test_same_animal_items_agree_wherever_error_free(related):
    clean = error_free(related)
    observed, true = related.observed.alleles, related.true_genotypes.alleles
    compared = 0
    for first, second, record in pairs_of(related, "same_animal"):
        assert record.animal1 == record.animal2
        assert np.array_equal(true[first], true[second])
        both = (
            clean[first]
            & clean[second]
            & (observed[first, :, 0] >= 0)
            & (observed[second, :, 0] >= 0)
        )
        assert np.array_equal(observed[first][both], observed[second][both])
        compared += both.sum()
    assert compared > 400


def shares_an_allele(a, b):
    return bool(set(a.tolist()) & set(b.tolist()))


def test_parent_and_offspring_share_an_allele_wherever_error_free(related):
    clean = error_free(related)
    observed = related.observed.alleles
    compared = 0
    for first, second, record in pairs_of(related, "parent_offspring"):
        assert record.animal1 in parents_of(related, record.animal2)
        both = (
            clean[first]
            & clean[second]
            & (observed[first, :, 0] >= 0)
            & (observed[second, :, 0] >= 0)
        )
        for locus in np.flatnonzero(both):
            assert shares_an_allele(observed[first, locus], observed[second, locus])
            compared += 1
    assert compared > 400


def transmissions(scenario, child_id):
    """Check a child's true genotype takes one allele from each parent; return, for each
    heterozygous (parent, locus), whether the parent's smaller allele was passed on."""
    mother, father = parents_of(scenario, child_id)
    child = animal_genotype(scenario, child_id)
    from_first = []
    for locus in range(child.shape[0]):
        p, q = animal_genotype(scenario, mother)[locus], animal_genotype(scenario, father)[locus]
        if p[0] < 0:
            assert child[locus, 0] < 0 and q[0] < 0  # untyped in the whole population
            continue
        a, b = child[locus]
        assert (a in p and b in q) or (b in p and a in q), (child_id, locus)
        for parent in (p, q):
            # The passed allele is unknown when the child's alleles both fit this parent.
            if parent[0] != parent[1] and not (a in parent and b in parent):
                from_first.append(parent[0] in (a, b))
    return from_first


@pytest.mark.parametrize("relationship", ["full_sibling", "half_sibling"])
def test_siblings_are_mendelian_offspring_of_their_recorded_parents(related, relationship):
    clean = error_free(related)
    observed, true = related.observed.alleles, related.true_genotypes.alleles
    passed_smaller = []
    for first, second, record in pairs_of(related, relationship):
        parents1 = set(parents_of(related, record.animal1))
        parents2 = set(parents_of(related, record.animal2))
        assert len(parents1) == len(parents2) == 2
        assert len(parents1 & parents2) == (2 if relationship == "full_sibling" else 1)
        for item, animal in ((first, record.animal1), (second, record.animal2)):
            passed_smaller += transmissions(related, animal)
            assert np.array_equal(observed[item][clean[item]], true[item][clean[item]])
    # Each parent passes either allele with probability 1/2: within 5 standard deviations.
    n = len(passed_smaller)
    assert n > 500
    assert abs(np.mean(passed_smaller) - 0.5) < 5 * np.sqrt(0.25 / n)


def test_offspring_of_parent_offspring_pairs_are_mendelian(related):
    for _, _, record in pairs_of(related, "parent_offspring"):
        transmissions(related, record.animal2)
        assert parents_of(related, record.animal1) == ()  # the parent is a founder


def test_unsampled_parents_have_no_items(related):
    founders = [a for a in related.animal_records if not a.parents]
    unsampled = [a for a in founders if not a.items]
    # One mate per parent-offspring pair, two parents per full-sibling pair, three per half.
    assert len(unsampled) == 80 + 2 * 80 + 3 * 80
    assert related.animals.n_profiles == related.observed.n_profiles - 80 + len(unsampled)


# ------------------------------------------------------------------------------- errors
def test_every_recorded_error_is_visible_and_nothing_else_differs(related, reference):
    observed, true = related.observed, related.true_genotypes
    recorded = {
        (observed.index_of(e.item_id), observed.locus_index(e.locus)): e for e in related.errors
    }
    differs = {
        (int(i), int(j)) for i, j in np.argwhere((observed.alleles != true.alleles).any(axis=2))
    }
    assert differs == set(recorded)
    for (i, j), error in recorded.items():
        o, t = observed.alleles[i, j], true.alleles[i, j]
        assert tuple(t) == error.true_alleles and tuple(o) == error.observed_alleles
        assert t[0] >= 0
        if error.kind == "missing":
            assert tuple(o) == (-1, -1)
        elif error.kind == "dropout":
            assert t[0] != t[1] and o[0] == o[1] and o[0] in t
        else:
            assert error.kind == "miscall"
            assert o[0] >= 0 and sorted(o) != sorted(t)
            # Exactly one copy replaced, by an allele seen at that locus in the reference.
            added = Counter(o.tolist()) - Counter(t.tolist())
            removed = Counter(t.tolist()) - Counter(o.tolist())
            assert sum(added.values()) == sum(removed.values()) == 1
            assert next(iter(added)) in reference.table.alleles_at(j)
    by_item = {}
    for error in related.errors:
        by_item.setdefault(error.item_id, []).append((error.locus, error.kind))
    for item in related.items:
        assert list(item.errors) == by_item.get(item.item_id, [])
    assert set(related.error_counts()) == set(ERROR_KINDS)


def test_error_rates_match_their_definition(related):
    true = related.true_genotypes.alleles
    kinds = np.full(true.shape[:2], "", dtype=object)
    for error in related.errors:
        kinds[
            related.observed.index_of(error.item_id), related.observed.locus_index(error.locus)
        ] = error.kind
    typed = true[:, :, 0] >= 0
    heterozygous = typed & (true[:, :, 0] != true[:, :, 1])
    mono = np.array([locus == "MONO" for locus in LOCI])[None, :]
    spec = related.spec
    # (kind, loci at risk, rate): each kind is tried only where earlier kinds did not strike.
    cases = [
        ("missing", typed, spec.missing_rate),
        ("dropout", heterozygous & (kinds != "missing"), spec.dropout_rate),
        ("miscall", typed & ~mono & (kinds != "missing") & (kinds != "dropout"), spec.miscall_rate),
    ]
    for kind, at_risk, rate in cases:
        n = at_risk.sum()
        hits = (kinds[at_risk] == kind).sum()
        assert ((kinds == kind) & ~at_risk).sum() == 0
        assert abs(hits - n * rate) < 5 * np.sqrt(n * rate * (1 - rate)), kind
    assert not (kinds[:, LOCI.index("MONO")] == "miscall").any()


def test_locus_untyped_in_a_population_stays_untyped(related):
    true = related.true_genotypes
    column = LOCI.index(UNTYPED_IN_P2)
    in_p2 = true.population == "P2"
    assert in_p2.sum() > 100
    assert (true.alleles[in_p2, column] == -1).all()
    assert (true.alleles[~in_p2, column] > 0).all()
    assert not any(
        e.locus == UNTYPED_IN_P2 and true.population[true.index_of(e.item_id)] == "P2"
        for e in related.errors
    )


def test_no_errors_at_zero_rates_and_all_missing_at_rate_one(reference):
    clean = simulate(
        reference, ScenarioSpec(missing_rate=0, dropout_rate=0, miscall_rate=0), seed=4
    )
    assert clean.errors == ()
    assert np.array_equal(clean.observed.alleles, clean.true_genotypes.alleles)
    blank = simulate(reference, ScenarioSpec(missing_rate=1), seed=4)
    assert (blank.observed.alleles == -1).all()
    assert len(blank.errors) == blank.true_genotypes.typed.sum()


# ------------------------------------------------------------------------------- frequencies
def reference_frequencies(reference, population, locus):
    """n_a / n from the reference genotypes, written out here independently of the simulator."""
    genotypes = reference.table.alleles[reference.table.population == population, locus, :]
    copies = genotypes[genotypes >= 0]
    return {int(a): np.count_nonzero(copies == a) / copies.size for a in np.unique(copies)}


def test_founders_follow_the_reference_frequencies(reference):
    n = 20_000
    spec = ScenarioSpec(
        seizures=(SeizureSpec("BIG", {"P0": 1}, n),),
        same_animal_pairs=0,
        parent_offspring_pairs=0,
        full_sibling_pairs=0,
        half_sibling_pairs=0,
        missing_rate=0,
        dropout_rate=0,
        miscall_rate=0,
    )
    founders = simulate(reference, spec, seed=99).true_genotypes
    assert (founders.population == "P0").all()
    for j, locus in enumerate(LOCI):
        expected = reference_frequencies(reference, "P0", j)
        drawn = founders.alleles[:, j, :]
        assert (drawn > 0).all()
        assert set(np.unique(drawn).tolist()) <= set(expected)
        observed_counts = np.array([np.count_nonzero(drawn == a) for a in expected])
        expected_counts = 2 * n * np.array(list(expected.values()))
        # Pearson's statistic has mean df and sd sqrt(2 df); 6 sd is far out in the tail.
        df = len(expected) - 1
        chi_square = ((observed_counts - expected_counts) ** 2 / expected_counts).sum()
        assert chi_square < df + 6 * np.sqrt(2 * max(df, 1)), locus
        # The two copies are drawn independently: homozygotes at rate sum(p^2).
        homozygous = np.mean(drawn[:, 0] == drawn[:, 1])
        p_hom = sum(p * p for p in expected.values())
        assert abs(homozygous - p_hom) <= 5 * np.sqrt(p_hom * (1 - p_hom) / n) + 1e-12, locus
    assert set(np.unique(founders.alleles[:, 0, :]).tolist()) == {100, 102, 104}


def test_mixed_seizure_follows_source_proportions(reference):
    n = 4000
    spec = ScenarioSpec(
        seizures=(SeizureSpec("MIX", {"P0": 7, "P1": 3}, n),),
        same_animal_pairs=0,
        parent_offspring_pairs=0,
        full_sibling_pairs=0,
        half_sibling_pairs=0,
    )
    scenario = simulate(reference, spec, seed=5)
    (seizure,) = scenario.seizures
    assert seizure.sources == pytest.approx({"P0": 0.7, "P1": 0.3})
    assert sum(seizure.item_populations.values()) == n
    assert set(seizure.item_populations) == {"P0", "P1"}
    assert abs(seizure.item_populations["P0"] - 0.7 * n) < 5 * np.sqrt(n * 0.21)
    assert seizure.item_populations["P0"] == np.sum(scenario.true_genotypes.population == "P0")


# ------------------------------------------------------------------------------- validation
def brute_force_max_pairs(capacities):
    """Most pairs with items in two different seizures, by exhaustive search."""

    @cache
    def best(remaining):
        options = [
            1 + best(tuple(c - (k in (i, j)) for k, c in enumerate(remaining)))
            for i, j in combinations(range(len(remaining)), 2)
            if remaining[i] and remaining[j]
        ]
        return max(options, default=0)

    return best(tuple(capacities))


@pytest.mark.parametrize(
    "capacities", [(5,), (3, 1, 1), (2, 2, 2), (6, 1), (1, 1, 1, 1, 6), (4, 4, 1)]
)
def test_pairs_fit_across_seizures_exactly_when_possible(reference, capacities):
    most = brute_force_max_pairs(capacities)
    seizures = tuple(SeizureSpec(f"S{i}", {"P1": 1}, c) for i, c in enumerate(capacities))

    def spec(n_pairs):
        return ScenarioSpec(
            seizures=seizures,
            same_animal_pairs=0,
            parent_offspring_pairs=0,
            full_sibling_pairs=n_pairs,
            half_sibling_pairs=0,
        )

    scenario = simulate(reference, spec(most), seed=1)
    assert len(scenario.relationships) == most
    assert [s.n_items for s in scenario.seizures] == list(capacities)
    with pytest.raises(ValueError, match=f"do not fit.*at most {most} do"):
        simulate(reference, spec(most + 1), seed=1)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"same_animal_pairs": -1}, "same_animal_pairs must be at least 0"),
        ({"full_sibling_pairs": 2.5}, "full_sibling_pairs must be a whole number"),
        ({"missing_rate": 1.5}, r"missing_rate must lie in \[0, 1\]"),
        ({"dropout_rate": -0.1}, r"dropout_rate must lie in \[0, 1\]"),
        ({"miscall_rate": "0.1"}, "miscall_rate must be a number"),
        ({"n_seizures": 0}, "n_seizures must be at least 1"),
        ({"items_per_seizure": 0}, "items_per_seizure must be at least 1"),
        ({"sources": {}}, "sources must map at least one population"),
        ({"sources": {"P0": -1}}, "weight of source 'P0' must be a positive number"),
        ({"seizures": (SeizureSpec("A", {"P0": 1}, 5),), "n_seizures": 2}, "give either seizures"),
        (
            {"seizures": (SeizureSpec("A", {"P0": 1}, 5), SeizureSpec("A", {"P1": 1}, 5))},
            "seizure names must be unique; repeated: A",
        ),
        ({"seizures": ()}, "at least one seizure"),
        ({"item_prefix": "T-"}, "item_prefix must be letters or digits"),
        ({"pairs_across_seizures": "yes"}, "pairs_across_seizures must be True or False"),
    ],
)
def test_bad_spec_is_refused(options, message):
    with pytest.raises(ValueError, match=message):
        ScenarioSpec(**options)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("", {"P0": 1}, 5), "seizure name must be a non-empty string"),
        (("A", {"P0": 1}, 0), "seizure 'A': n_items must be at least 1"),
        (("A", {"P0": float("nan")}, 5), "weight of source 'P0' must be a positive number"),
        (("A", ["P0"], 5), "sources must map"),
    ],
)
def test_bad_seizure_is_refused(arguments, message):
    with pytest.raises(ValueError, match=message):
        SeizureSpec(*arguments)


def test_bad_simulation_inputs_are_refused():
    reference = make_reference(n_per_population=10, extra=("P9",))
    with pytest.raises(ValueError, match="source 'NOPE' of reference set .* is not a population"):
        simulate(reference, ScenarioSpec(sources={"NOPE": 1}), seed=1)
    with pytest.raises(ValueError, match="source 'P9' .* has no genotyped animals"):
        simulate(reference, ScenarioSpec(sources={"P9": 1}), seed=1)
    with pytest.raises(ValueError, match="seed must be at least 0"):
        simulate(reference, seed=-1)
    with pytest.raises(ValueError, match="single seizure cannot split a pair"):
        simulate(reference, ScenarioSpec(n_seizures=1), seed=1)
    with pytest.raises(ValueError, match="kept within seizures do not fit .* at most 6 do"):
        spec = ScenarioSpec(n_seizures=2, items_per_seizure=7, pairs_across_seizures=False)
        simulate(reference, spec, seed=1)
    with pytest.raises(ValueError, match="spec must be a ScenarioSpec"):
        simulate(reference, {"n_seizures": 2}, seed=1)


# ------------------------------------------------------------------------------- files
def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_written_files_agree_with_the_scenario(related, tmp_path):
    files = write_scenario(related, tmp_path / "out")
    summary = json.loads(files["summary"].read_text())
    # Several formats share .csv; the summary names the one used.
    assert summary["genotype_format"] == "wide"
    observed = read_genotypes(files["genotypes"], format="wide")
    assert observed.same_genotypes(related.observed)
    assert np.array_equal(observed.group, related.observed.group)
    true = read_genotypes(files["true_genotypes"], format="wide")
    assert true.same_genotypes(related.true_genotypes)
    animals = read_genotypes(files["animal_genotypes"], format="wide")
    assert animals.same_genotypes(related.animals)
    assert np.array_equal(animals.population, related.animals.population)

    items = read_csv(files["items"])
    assert [row["item_id"] for row in items] == list(related.observed.profile_ids)
    for row, item in zip(items, related.items, strict=True):
        assert (row["seizure"], row["animal_id"], row["population"]) == (
            item.seizure,
            item.animal_id,
            item.population,
        )
        listed = [tuple(e.split(":")) for e in row["errors"].split(";")] if row["errors"] else []
        assert listed == list(item.errors)
    relationships = read_csv(files["relationships"])
    assert [(r["item1"], r["item2"], r["relationship"]) for r in relationships] == [
        (r.item1, r.item2, r.relationship) for r in related.relationships
    ]
    animal_rows = read_csv(files["animals"])
    assert len(animal_rows) == related.animals.n_profiles
    for row, record in zip(animal_rows, related.animal_records, strict=True):
        assert tuple(p for p in (row["parent1"], row["parent2"]) if p) == record.parents
        assert tuple(i for i in row["items"].split(";") if i) == record.items
    errors = read_csv(files["errors"])
    assert len(errors) == len(related.errors)
    missing_row = next(r for r in errors if r["kind"] == "missing")
    assert missing_row["observed_allele1"] == missing_row["observed_allele2"] == ""
    seizure_rows = read_csv(files["seizures"])
    for seizure in related.seizures:
        rows = [r for r in seizure_rows if r["seizure"] == seizure.name]
        assert {r["population"]: float(r["proportion"]) for r in rows} == pytest.approx(
            {p: seizure.sources.get(p, 0.0) for p in ("P0", "P1", "P2")}
        )
        assert sum(int(r["items"]) for r in rows) == seizure.n_items

    assert summary["seed"] == 2024
    assert summary["parameters"]["missing_rate"] == 0.08
    assert summary["parameters"]["seizures"][0]["name"] == "SZ01"
    assert summary["counts"]["items"] == 800
    assert summary["counts"]["relationships"] == dict.fromkeys(RELATIONSHIPS, 80)
    assert summary["counts"]["errors"] == related.error_counts()
    assert summary["reference"]["content_hash"] == related.reference["content_hash"]
    assert summary["files"]["genotypes"] == "genotypes.csv"


def test_writing_refuses_a_foreign_folder_and_replaces_its_own(reference, tmp_path):
    scenario = simulate(reference, seed=1)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not empty and not an earlier simulation"):
        write_scenario(scenario, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]

    out = tmp_path / "out"
    write_scenario(scenario, out)
    write_scenario(simulate(reference, seed=2), out)
    assert json.loads((out / "truth" / "truth.json").read_text())["seed"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["foreign", "out"]  # no scratch left

    with pytest.raises(ValueError, match="cannot write format 'nope'"):
        write_scenario(scenario, tmp_path / "other", format="nope")
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize("format", writable_formats())
def test_genotypes_are_written_in_any_writable_format(reference, tmp_path, format):
    scenario = simulate(reference, seed=3)
    files = write_scenario(scenario, tmp_path / "out", format=format)
    assert files["genotypes"].name == "genotypes" + FORMATS[format].extensions[0]
    assert json.loads(files["summary"].read_text())["genotype_format"] == format
    for role, table in (("genotypes", scenario.observed), ("animal_genotypes", scenario.animals)):
        written = read_genotypes(files[role], format=format)
        # GENEPOP writes population by population, so rows are matched by id.
        rows = [written.index_of(profile_id) for profile_id in table.profile_ids]
        assert written.n_profiles == table.n_profiles
        assert written.take(rows).same_genotypes(table), role
