"""Geographic assignment: distances, grid, smoothing, kernels against twins, and accuracy."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from dnatrack.reference import PopulationInfo, ReferenceSet
from matching._geo_kernels import leave_one_out_cell_log_likelihoods
from matching.geo import (
    EARTH_RADIUS_KM,
    GeographicModel,
    GeoSurfaces,
    Grid,
    cross_validation_log_likelihood,
    great_circle_km,
    smoothing_weights,
)
from tests.assignment_formulas import slow_genotype_probability
from tests.simulated_populations import SimulatedPopulations


# ---------------------------------------------------------------------- simulated cline
def cline_populations(n_side=4, spacing=2.0, n_loci=12, n_alleles=6, seed=1):
    """Sites on a lattice whose allele frequencies change smoothly with position."""
    rng = np.random.default_rng(seed)
    lat, lon = np.meshgrid(np.arange(n_side) * spacing, 20 + np.arange(n_side) * spacing,
                           indexing="ij")
    lat, lon = lat.ravel(), lon.ravel()
    beta = rng.normal(0, 0.5, size=(n_loci, n_alleles, 2))
    centred = np.c_[lat - lat.mean(), lon - lon.mean()]
    logits = np.einsum("lak,sk->sla", beta, centred)
    logits += rng.normal(0, 0.1, size=logits.shape)
    freqs = np.exp(logits)
    freqs /= freqs.sum(axis=2, keepdims=True)
    names = [f"site{s}" for s in range(len(lat))]
    return SimulatedPopulations(freqs, names, names, lat, lon)


def reference_set(sim, n_per_site, rng, missing=0.0):
    table = sim.reference(n_per_site, rng, missing)
    populations = tuple(PopulationInfo(n, lat=float(a), lon=float(o))
                        for n, a, o in zip(sim.names, sim.lat, sim.lon, strict=True))
    return ReferenceSet("cline_simulated", "test", table, populations, simulated=True)


@pytest.fixture(scope="module")
def cline():
    sim = cline_populations()
    rng = np.random.default_rng(2)
    reference = reference_set(sim, 15, rng, missing=0.05)
    model = GeographicModel.from_reference(reference, n_cells=20)
    return sim, reference, model, rng


# ---------------------------------------------------------------------- geometry
def test_great_circle_closed_forms():
    one_degree = 2 * math.pi * EARTH_RADIUS_KM / 360
    assert great_circle_km(0, 0, 0, 1) == pytest.approx(one_degree, rel=1e-12)
    assert great_circle_km(0, 10, 1, 10) == pytest.approx(one_degree, rel=1e-12)
    assert great_circle_km(90, 0, 0, 45) == pytest.approx(math.pi * EARTH_RADIUS_KM / 2)
    assert great_circle_km(0, 0, 0, 180) == pytest.approx(math.pi * EARTH_RADIUS_KM)
    assert great_circle_km(12.5, 30.1, 12.5, 30.1) == 0.0
    # At latitude φ a degree of longitude is shorter, but the chord is a great circle: check
    # against the spherical law of cosines.
    phi = math.radians(60)
    expected = EARTH_RADIUS_KM * math.acos(
        math.sin(phi) ** 2 + math.cos(phi) ** 2 * math.cos(math.radians(10))
    )
    assert great_circle_km(60, 0, 60, 10) == pytest.approx(expected, rel=1e-9)


def test_whole_globe_cell_areas_sum_to_the_sphere():
    grid = Grid(np.linspace(-90, 90, 19), np.linspace(-180, 180, 37), np.ones((18, 36), bool))
    assert grid.area_km2.sum() == pytest.approx(4 * math.pi * EARTH_RADIUS_KM**2, rel=1e-12)
    band = grid.area_km2[grid.cell_rows == 9].sum()  # 0° to 10° N
    assert band == pytest.approx(2 * math.pi * EARTH_RADIUS_KM**2 * math.sin(math.radians(10)))


def test_grid_around_sites_covers_them_and_respects_range():
    lat = np.array([0.0, 4.0, 8.0])
    lon = np.array([20.0, 22.0, 30.0])
    grid = Grid.around(lat, lon, n_cells=10, range_km=300)
    assert grid.lat_edges[0] < lat.min() and grid.lat_edges[-1] > lat.max()
    assert grid.lon_edges[0] < lon.min() and grid.lon_edges[-1] > lon.max()
    nearest = great_circle_km(grid.lat[:, None], grid.lon[:, None], lat, lon).min(axis=1)
    assert (nearest <= 300).all()
    assert grid.n_cells < grid.in_range.size
    mapped = grid.to_array(np.arange(grid.n_cells, dtype=float))
    assert np.isnan(mapped[~grid.in_range]).all()
    ring = grid.cell_ring(0)
    assert ring[0] == ring[-1] and len(ring) == 5
    with pytest.raises(ValueError, match="n_cells"):
        Grid.around(lat, lon, n_cells=1)
    with pytest.raises(ValueError, match="range_km"):
        Grid.around(lat, lon, range_km=-5)


def test_smoothing_weights():
    distance = np.array([[0.0, 100.0, 300.0], [np.inf, 5000.0, 50.0]])
    weights = smoothing_weights(distance, 100.0)
    np.testing.assert_allclose(weights[0], [1.0, math.exp(-0.5), math.exp(-4.5)])
    assert weights[1, 0] == 0.0  # an excluded site
    assert weights[1, 1] == pytest.approx(math.exp(-1250.0), abs=0)


def test_far_from_every_site_the_predictive_tends_to_the_prior(cline):
    sim, reference, model, rng = cline
    far = Grid(np.array([60.0, 61.0]), np.array([100.0, 101.0]), np.ones((1, 1), bool))
    remote = GeographicModel(model.sites, model.site_lat, model.site_lon, far,
                             model.bandwidth_km)
    queries = sim.sample(0, 3, rng, prefix="far-", label=False)
    counts, totals = remote.cell_counts
    assert totals.max() < 1e-12
    expected = np.zeros(3)
    for i in range(3):
        for j in range(queries.n_loci):
            a, b = queries.alleles[i, j]
            if a >= 0:
                prior = model.sites.prior[j]
                expected[i] += math.log((prior * (prior + 1) if a == b else 2 * prior**2) / 2)
    np.testing.assert_allclose(remote.cell_log_likelihoods(queries)[:, 0], expected, rtol=1e-9)


# ---------------------------------------------------------------------- smoothing and twins
def slow_site_counters(reference):
    counters = {}
    for i in range(reference.n_profiles):
        for j, locus in enumerate(reference.loci):
            a, b = (int(v) for v in reference.alleles[i, j])
            counter = counters.setdefault((reference.population[i], locus), Counter())
            if a >= 0:
                counter[a] += 1
                counter[b] += 1
    return counters


def test_cell_log_likelihoods_match_slow_smoothing(cline):
    sim, reference, model, rng = cline
    queries = sim.sample(5, 4, rng, missing=0.2, prefix="q-", label=False)
    fast = model.cell_log_likelihoods(queries)
    counters = slow_site_counters(reference.table)
    n_alleles = {locus: len(reference.table.alleles_at(locus)) for locus in reference.table.loci}
    h = model.bandwidth_km
    cells = np.random.default_rng(0).choice(model.grid.n_cells, size=6, replace=False)
    for c in cells:
        lat, lon = model.grid.lat[c], model.grid.lon[c]
        kernel = {}
        for name, info in ((p.name, p) for p in reference.populations):
            d = float(great_circle_km(lat, lon, info.lat, info.lon))
            kernel[name] = math.exp(-0.5 * (d / h) ** 2)
        for i in range(len(queries)):
            expected = 0.0
            for j, locus in enumerate(queries.loci):
                a, b = (int(v) for v in queries.alleles[i, j])
                if a < 0:
                    continue
                smoothed = Counter()
                for name, k in kernel.items():
                    for allele, count in counters[(name, locus)].items():
                        smoothed[allele] += k * count
                expected += math.log(slow_genotype_probability(smoothed, n_alleles[locus], a, b))
            assert fast[i, c] == pytest.approx(expected, abs=1e-9)


def numpy_leave_one_out(model, codes, site):
    """Twin of the leave-one-out kernel: take the animal out of its site, smooth again."""
    out = np.empty((len(codes), model.grid.n_cells))
    prior = model.sites.prior
    for i in range(len(codes)):
        counts = model.sites.kernel_counts.copy()
        for locus in range(codes.shape[1]):
            a, b = codes[i, locus]
            if a >= 0:
                counts[locus, a, site[i]] -= 1
                counts[locus, b, site[i]] -= 1
        cell_counts = counts @ model.site_weights
        cell_totals = counts.sum(axis=1) @ model.site_weights
        total = np.zeros(model.grid.n_cells)
        for locus in range(codes.shape[1]):
            a, b = codes[i, locus]
            if a < 0:
                continue
            n = cell_totals[locus]
            x_a = cell_counts[locus, a] + prior[locus]
            x_b = cell_counts[locus, b] + prior[locus]
            numerator = x_a * (x_a + 1) if a == b else 2 * x_a * x_b
            total += np.log(numerator / ((n + 1) * (n + 2)))
        out[i] = total
    return out


@pytest.mark.parametrize(("n_loci", "n_alleles", "missing"),
                         [(6, 5, 0.1), (8, 2, 0.3), (3, 1, 0.0), (4, 4, 0.9)])
def test_leave_one_out_kernel_equals_numpy_twin(n_loci, n_alleles, missing):
    sim = cline_populations(n_side=3, n_loci=n_loci, n_alleles=n_alleles, seed=n_loci)
    reference = reference_set(sim, 6, np.random.default_rng(n_loci), missing)
    model = GeographicModel.from_reference(reference, bandwidth_km=180.0, n_cells=8)
    codes = model.sites.encode(reference.table)
    site = np.array([model.sites.populations.index(p) for p in reference.table.population])
    counts, totals = model.cell_counts
    fast = leave_one_out_cell_log_likelihoods(codes, counts, totals, model.sites.prior,
                                              model.site_weights, site)
    np.testing.assert_allclose(fast, numpy_leave_one_out(model, codes, site), rtol=1e-11,
                               atol=1e-10)
    empty = leave_one_out_cell_log_likelihoods(codes[:0], counts, totals, model.sites.prior,
                                               model.site_weights, site[:0])
    assert empty.shape == (0, model.grid.n_cells)


def test_cross_validation_matches_slow_computation(cline):
    """Each animal scored at its own site from every site's kernel-weighted counts, its own
    alleles removed."""
    sim, reference, model, _ = cline
    table = reference.table
    counters = slow_site_counters(table)
    n_alleles = {locus: len(table.alleles_at(locus)) for locus in table.loci}
    bandwidths = np.array([150.0, 400.0])
    fast = cross_validation_log_likelihood(model.sites, model.site_lat, model.site_lon,
                                           bandwidths)
    for k, h in enumerate(bandwidths):
        total = 0.0
        for s, name in enumerate(model.sites.populations):
            kernel = {}
            for t, other in enumerate(model.sites.populations):
                d = float(great_circle_km(model.site_lat[s], model.site_lon[s],
                                          model.site_lat[t], model.site_lon[t]))
                kernel[other] = math.exp(-0.5 * (d / h) ** 2)
            for i in np.flatnonzero(table.population == name):
                for j, locus in enumerate(table.loci):
                    a, b = (int(v) for v in table.alleles[i, j])
                    if a < 0:
                        continue
                    smoothed = Counter()
                    for other, weight in kernel.items():
                        for allele, count in counters[(other, locus)].items():
                            smoothed[allele] += weight * count
                    smoothed[a] -= 1
                    smoothed[b] -= 1
                    total += math.log(
                        slow_genotype_probability(smoothed, n_alleles[locus], a, b))
        assert fast[k] == pytest.approx(total, abs=1e-7)
    assert model.bandwidth_km == model.cv_bandwidths_km[np.argmax(model.cv_log_likelihood)]


# ---------------------------------------------------------------------- surfaces
def test_credible_regions_are_smallest_highest_posterior_sets():
    rng = np.random.default_rng(5)
    grid = Grid(np.linspace(0, 5, 6), np.linspace(0, 4, 5), np.ones((5, 4), bool))
    posterior = rng.dirichlet(np.full(20, 0.5), size=3)
    surfaces = GeoSurfaces(grid, np.array(["a", "b", "c"]), np.log(posterior))
    for level in (0.5, 0.9):
        regions = surfaces.credible_regions(level)
        for k in range(3):
            order = np.argsort(-posterior[k])
            n_needed = int(np.searchsorted(np.cumsum(posterior[k][order]), level - 1e-12) + 1)
            assert set(np.flatnonzero(regions[k])) == set(order[:n_needed].tolist())
            assert posterior[k][regions[k]].sum() >= level - 1e-12
        np.testing.assert_allclose(surfaces.region_area_km2(level),
                                   regions.astype(float) @ grid.area_km2)
    cells = surfaces.region_cells(0, 0.5)
    assert [c["posterior"] for c in cells] == sorted((c["posterior"] for c in cells),
                                                     reverse=True)
    geojson = surfaces.to_geojson()
    assert geojson["type"] == "FeatureCollection"
    assert len(geojson["features"]) == 3 * 3
    point = geojson["features"][0]
    assert point["geometry"]["type"] == "Point"
    best = surfaces.best_cell[0]
    assert point["geometry"]["coordinates"] == [grid.lon[best], grid.lat[best]]
    region = geojson["features"][1]
    assert region["geometry"]["type"] == "MultiPolygon"
    assert region["properties"]["n_cells"] == surfaces.credible_regions(0.5)[0].sum()
    with pytest.raises(ValueError, match="credible level"):
        surfaces.credible_regions(0.0)


# ---------------------------------------------------------------------- accuracy
def test_samples_are_placed_near_their_true_site(cline):
    sim, reference, model, rng = cline
    site = 5
    queries = sim.sample(site, 12, rng, missing=0.05, prefix="q-", label=False)
    surfaces = model.assign(queries)
    np.testing.assert_allclose(surfaces.posterior.sum(axis=1), 1.0)
    error = great_circle_km(surfaces.best_lat, surfaces.best_lon, sim.lat[site], sim.lon[site])
    spacing = great_circle_km(0, 20, 2, 20)  # lattice spacing, ~222 km
    assert np.median(error) < spacing
    seizure = model.seizure_surfaces(queries, groups=["S"] * 12)
    seizure_error = great_circle_km(seizure.best_lat[0], seizure.best_lon[0],
                                    sim.lat[site], sim.lon[site])
    assert seizure_error < spacing / 2
    # The seizure's 90% region is much smaller than a single sample's and holds the site.
    region = seizure.credible_regions(0.9)[0]
    near_site = great_circle_km(model.grid.lat, model.grid.lon, sim.lat[site],
                                sim.lon[site]) < spacing / 2
    assert (region & near_site).any()
    assert seizure.region_area_km2(0.9)[0] < np.median(surfaces.region_area_km2(0.9)) / 2
    pooled = model.seizure_surfaces(queries, groups=["S"] * 12, method="pooled")
    np.testing.assert_allclose(pooled.posterior[0], surfaces.posterior.mean(axis=0),
                               rtol=1e-10)
    records = surfaces.records()
    assert records[0]["indiv"] == "q-0"
    assert records[0]["geo_area50_km2"] <= records[0]["geo_area90_km2"]


def test_leave_one_out_error_in_km(cline):
    sim, reference, model, _ = cline
    spacing = float(great_circle_km(0, 20, 2, 20))
    site_pairs = great_circle_km(sim.lat[:, None], sim.lon[:, None], sim.lat, sim.lon)
    random_placement = float(np.median(site_pairs))  # error of placing at a random site
    for leave_out in ("animal", "site"):
        validation = model.leave_one_out(leave_out)
        summary = validation.summary()
        assert summary["overall"]["n"] == len(reference.table)
        assert summary["overall"]["median_km"] < spacing
        assert summary["overall"]["median_km"] < random_placement / 3
        assert set(summary["per_site"]) == set(sim.names)
        assert summary["overall"]["median_km"] == pytest.approx(np.median(validation.error_km))


def test_geographic_model_errors(cline):
    sim, reference, model, _ = cline
    one_site = ReferenceSet(
        "one_simulated", "test", reference.table,
        tuple(PopulationInfo(p.name, lat=p.lat if p.name == "site0" else math.nan,
                             lon=p.lon if p.name == "site0" else math.nan)
              for p in reference.populations), simulated=True,
    )
    with pytest.raises(ValueError, match="at least two populations with coordinates"):
        GeographicModel.from_reference(one_site)
    with pytest.raises(ValueError, match="bandwidth"):
        GeographicModel.from_reference(reference, bandwidth_km=-1.0)
    with pytest.raises(ValueError, match="candidate bandwidths"):
        GeographicModel.from_reference(reference, candidate_bandwidths_km=[0.0, 10.0])
    with pytest.raises(ValueError, match="method"):
        model.seizure_surfaces(reference.table.take([0]), groups=["a"], method="mean")
    with pytest.raises(ValueError, match="group labels"):
        model.seizure_surfaces(reference.table.take([0]))
    with pytest.raises(ValueError, match="leave_out"):
        model.leave_one_out("population")
    partial = ReferenceSet(
        "partial_simulated", "test", reference.table,
        tuple(PopulationInfo(p.name, lat=math.nan if p.name == "site3" else p.lat,
                             lon=math.nan if p.name == "site3" else p.lon)
              for p in reference.populations), simulated=True,
    )
    reduced = GeographicModel.from_reference(partial, bandwidth_km=200.0, n_cells=10)
    assert reduced.excluded_populations == ("site3",)
    assert "site3" not in reduced.sites.populations
