"""Assignment on scenarios simulated with known truth (``dnatrack.simulate``)."""

from __future__ import annotations

import numpy as np
import pytest

from dnatrack.reference import PopulationInfo, ReferenceSet, load_reference_set
from dnatrack.simulate import ScenarioSpec, SeizureSpec, simulate
from matching.assignment import AssignmentModel
from matching.geo import GeographicModel, great_circle_km
from matching.mixture import estimate_mixture
from reference_data import list_reference_sets
from tests.assignment_formulas import binomial_bounds
from tests.simulated_populations import SimulatedPopulations

SOURCES = {"S1": "pop0", "S2": "pop3", "S3": "pop5", "S4": "pop7"}


@pytest.fixture(scope="module")
def scenario():
    """Eight populations; seizures each from one source, the last from ``pop7``, which the
    assignment reference leaves out."""
    sim = SimulatedPopulations.random(8, 14, 8, concentration=0.8, seed=90,
                                      populations_per_unit=2)
    table = sim.reference(40, np.random.default_rng(91), missing=0.03)
    populations = tuple(PopulationInfo(name, repunits={"unit": unit})
                        for name, unit in zip(sim.names, sim.repunits, strict=True))
    full = ReferenceSet("eight_simulated", "test", table, populations, simulated=True,
                        default_repunit_level="unit")
    spec = ScenarioSpec(
        seizures=tuple(SeizureSpec(name, {source: 1.0}, 25) for name, source in SOURCES.items()),
        same_animal_pairs=1, parent_offspring_pairs=1, full_sibling_pairs=0,
        half_sibling_pairs=0, pairs_across_seizures=False,
    )
    result = simulate(full, spec, seed=5)
    sampled = table.take(table.population != "pop7")
    model = AssignmentModel.from_table(sampled, {p: u for p, u in
                                                 zip(sim.names, sim.repunits, strict=True)})
    return result, model


def test_seizures_are_assigned_to_their_true_source(scenario):
    result, model = scenario
    assignment = model.assign(result.observed, exclusion_simulations=10_000, seed=1)
    mixture = estimate_mixture(assignment, seed=2)
    truth = dict(zip(result.true_genotypes.profile_ids, result.true_genotypes.population,
                     strict=True))
    for g, seizure in enumerate(mixture.groups):
        source = SOURCES[seizure]
        members = mixture.group_index == g
        if source not in model.populations:
            continue
        k = model.populations.index(source)
        assert np.argmax(mixture.posterior_mean[g]) == k
        assert mixture.em_proportions[g, k] > 0.85
        true_here = np.array([truth[pid] for pid in assignment.profile_ids[members]])
        inferred = np.array(model.populations)[assignment.best[members]]
        assert (inferred == true_here).mean() > 0.85


def test_items_of_an_unsampled_source_are_flagged(scenario):
    result, model = scenario
    assignment = model.assign(result.observed, exclusion_simulations=10_000, seed=1)
    unsampled_seizure = np.asarray(result.observed.group) == "S4"
    assert assignment.unsampled[unsampled_seizure].mean() >= 0.85
    # Items of sampled sources are flagged at alpha = 0.01: a count beyond the binomial
    # bound holds probability below 1e-4.
    n_sampled = int((~unsampled_seizure).sum())
    assert assignment.unsampled[~unsampled_seizure].sum() <= binomial_bounds(n_sampled, 0.01,
                                                                             1e-4)[1]


BUNDLED = "black_rhino_simulated"


@pytest.mark.skipif(BUNDLED not in list_reference_sets(),
                    reason=f"bundled reference set {BUNDLED} not present")
def test_geographic_assignment_of_simulated_seizures_on_a_bundled_set():
    reference = load_reference_set(BUNDLED)
    geo = GeographicModel.from_reference(reference, n_cells=40)
    sites = [p.name for p in reference.populations][:4]
    spec = ScenarioSpec(seizures=tuple(SeizureSpec(f"S{k}", {site: 1.0}, 20)
                                       for k, site in enumerate(sites)))
    result = simulate(reference, spec, seed=3)
    surfaces = geo.seizure_surfaces(result.observed)
    for k, site in enumerate(sites):
        info = reference.population_info(site)
        error = great_circle_km(surfaces.best_lat[k], surfaces.best_lon[k], info.lat, info.lon)
        assert error < 400
    validation = geo.leave_one_out("animal").summary()
    extent = great_circle_km(geo.site_lat[:, None], geo.site_lon[:, None], geo.site_lat,
                             geo.site_lon)
    assert validation["overall"]["median_km"] < np.median(extent) / 2
