"""Site-mixture geographic assignment: kernels against twins, honest leave-one-out, accuracy
against the centroid baselines on a simulated isolation-by-distance set."""

from __future__ import annotations

import numpy as np
import pytest

from dnatrack.reference import ReferenceSet
from matching import _geo_kernels as kernels
from matching.assignment import AssignmentModel
from matching.geo import (
    DECISION_CELLS,
    GeographicModel,
    GeoSurfaces,
    Grid,
    SiteMixtureModel,
    SiteMixtureSettings,
    great_circle_km,
    latitude_longitude,
    leave_one_out_site_log_likelihoods,
    point_loss,
    region_threshold,
    site_log_likelihoods,
    site_posterior,
    site_region_threshold,
    unit_vectors,
    weighted_centres,
)
from tests.simulated_populations import SimulatedPopulations
from tests.test_geo import cline_populations, reference_set

SETTINGS = SiteMixtureSettings(count_bandwidth_km=250.0, temperature=0.5, spread_km=150.0,
                               centre_power=1.5)


@pytest.fixture(scope="module")
def cline():
    sim = cline_populations(n_side=4, seed=2)
    reference = reference_set(sim, 15, np.random.default_rng(2), missing=0.05)
    return sim, reference


# ---------------------------------------------------------------------- kernels and twins
def brute_force_centre(weights, lat, lon, power):
    """Minimise Σ w d^q by a dense lat/lon search around the sites, refined twice."""
    lat_lo, lat_hi, lon_lo, lon_hi = lat.min() - 1, lat.max() + 1, lon.min() - 1, lon.max() + 1
    best = None
    for _ in range(3):
        grid_lat, grid_lon = np.meshgrid(np.linspace(lat_lo, lat_hi, 121),
                                         np.linspace(lon_lo, lon_hi, 121), indexing="ij")
        distance = great_circle_km(grid_lat[..., None], grid_lon[..., None], lat, lon)
        objective = (weights * distance**power).sum(axis=-1)
        k = np.unravel_index(np.argmin(objective), objective.shape)
        best = grid_lat[k], grid_lon[k]
        step_lat, step_lon = (lat_hi - lat_lo) / 120, (lon_hi - lon_lo) / 120
        lat_lo, lat_hi = best[0] - 2 * step_lat, best[0] + 2 * step_lat
        lon_lo, lon_hi = best[1] - 2 * step_lon, best[1] + 2 * step_lon
    return best


@pytest.mark.parametrize("power", [1.0, 1.5, 2.0])
def test_weighted_centres_minimise_the_weighted_distance(power):
    rng = np.random.default_rng(int(power * 10))
    lat, lon = rng.uniform(-10, 10, 7), rng.uniform(15, 35, 7)
    weights = rng.dirichlet(np.full(7, 0.7), size=5)
    weights[0] = np.eye(7)[3]  # all weight on one site: the centre is that site
    centre_lat, centre_lon = weighted_centres(weights, lat, lon, power)
    assert great_circle_km(centre_lat[0], centre_lon[0], lat[3], lon[3]) < 1e-3
    for k in range(1, 5):
        expected = brute_force_centre(weights[k], lat, lon, power)
        found = (weights[k] * great_circle_km(centre_lat[k], centre_lon[k], lat, lon) ** power)
        best = (weights[k] * great_circle_km(*expected, lat, lon) ** power)
        # As good as the brute-force optimum (the objective is flat near a median, so the
        # points themselves may differ by some km).
        assert found.sum() <= best.sum() * (1 + 1e-4)
    if power == 2.0:  # the centroid: the normalised mean of the unit vectors
        mean = weights @ unit_vectors(lat, lon)
        np.testing.assert_allclose(np.c_[centre_lat, centre_lon],
                                   np.c_[latitude_longitude(mean / np.linalg.norm(
                                       mean, axis=1, keepdims=True))], atol=1e-9)


def numpy_tail_mass(weights, cell_kernel, log_area, cell):
    density = (weights @ cell_kernel) * np.exp(log_area)
    posterior = density / density.sum(axis=1, keepdims=True)
    target = posterior[np.arange(len(cell)), cell]
    return np.where(posterior <= target[:, None], posterior, 0.0).sum(axis=1)


@pytest.mark.parametrize("n_sites", [1, 4, 9])
def test_tail_mass_cells_equals_numpy_twin(n_sites):
    rng = np.random.default_rng(n_sites)
    weights = rng.dirichlet(np.ones(n_sites), size=6)
    weights[0, :] = 0.0
    weights[0, 0] = 1.0
    cell_kernel = rng.random((n_sites, 30)) ** 3
    log_area = np.log(rng.uniform(0.5, 2.0, 30))
    cell = rng.integers(0, 30, size=6)
    fast = kernels.tail_mass_cells(weights, cell_kernel, log_area, cell)
    np.testing.assert_allclose(fast, numpy_tail_mass(weights, cell_kernel, log_area, cell),
                               rtol=1e-12, atol=1e-15)
    assert kernels.tail_mass_cells(weights[:0], cell_kernel, log_area, cell[:0]).shape == (0,)
    # A cell where the surface is zero has tail zero: no region holds it.
    cell_kernel[:, 7] = 0.0
    assert kernels.tail_mass_cells(weights, cell_kernel, log_area, np.full(6, 7)).max() == 0.0


def test_tail_mass_decides_which_credible_regions_hold_a_cell():
    rng = np.random.default_rng(3)
    grid = Grid(np.linspace(0, 5, 6), np.linspace(0, 4, 5), np.ones((5, 4), bool))
    weights = rng.dirichlet(np.ones(3), size=4)
    cell_kernel = rng.random((3, 20))
    log_area = np.log(grid.area_km2)
    density = (weights @ cell_kernel) * grid.area_km2
    surfaces = GeoSurfaces(grid, np.arange(4), np.log(density / density.sum(axis=1,
                                                                           keepdims=True)))
    for cell in range(20):
        tail = kernels.tail_mass_cells(weights, cell_kernel, log_area, np.full(4, cell))
        for level in (0.3, 0.5, 0.9):
            held = surfaces.credible_regions(level)[:, cell]
            np.testing.assert_array_equal(held, tail > 1 - level + 1e-12)


def test_region_threshold_is_the_split_conformal_quantile():
    tail = np.linspace(0.01, 0.95, 29)
    threshold = region_threshold(tail, 0.9)
    # ⌊30 · 0.1⌋ = 3: the 3rd smallest; a new exchangeable animal falls below it with
    # probability 3/30, so the region holds it with probability 0.9.
    assert threshold == tail[2]
    assert (tail >= threshold).sum() == 27
    assert region_threshold(tail[:8], 0.9) == 0.0


def test_site_region_threshold_holds_left_out_sites():
    """Sites whose animals are alike: a threshold fitted on the pooled animals holds a new
    site's animals less often than asked; the site-aware one holds each left-out site's
    animals at least as often as asked, counted by brute force over the sites."""
    rng = np.random.default_rng(7)
    site = np.repeat(np.arange(12), 10)
    tail = np.clip(rng.beta(2, 5, 12)[site] * rng.uniform(0.3, 1.0, len(site)), 0, 1)
    plain = region_threshold(tail, 0.9)
    site_aware = site_region_threshold(tail, site, 0.9)
    assert site_aware <= plain
    held = sum((tail[site == s] >= site_region_threshold(tail[site != s], site[site != s],
                                                         0.9)).sum() for s in range(12))
    pooled = sum((tail[site == s] >= region_threshold(tail[site != s], 0.9)).sum()
                 for s in range(12))
    assert held >= pooled


# ---------------------------------------------------------------------- leave-one-out honesty
def without(reference: ReferenceSet, keep: np.ndarray) -> AssignmentModel:
    table = reference.table.take(keep)
    return AssignmentModel.from_table(table, {p: p for p in table.unique_populations()})


def test_leave_one_animal_out_is_the_model_without_the_animal(cline):
    """The left-out animal's alleles are in nothing that places it: its leave-one-out site
    likelihoods, posterior and point are those of a model fitted without it."""
    _, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    model = SiteMixtureModel.fit(geo, settings=SETTINGS)
    validation = model.leave_one_out("animal")
    log_likelihood = leave_one_out_site_log_likelihoods(geo, SETTINGS.count_bandwidth_km,
                                                        "animal")
    checked = 0
    for i in range(0, reference.table.n_profiles, 17):
        keep = np.arange(reference.table.n_profiles) != i
        sites = without(reference, keep)
        if not np.array_equal(sites.n_alleles, geo.sites.n_alleles):
            continue  # the animal carries an allele no other animal has: the prior differs
        reduced = GeographicModel(sites, geo.site_lat, geo.site_lon, geo.grid, 1.0)
        animal = reference.table.take([i])
        np.testing.assert_allclose(
            log_likelihood[i], site_log_likelihoods(reduced, animal,
                                                    SETTINGS.count_bandwidth_km)[0],
            rtol=1e-10)
        alone = SiteMixtureModel(reduced, SETTINGS, {}, "given", model.region_kernel_km)
        placed = alone.assign(animal)
        assert great_circle_km(placed.point_lat[0], placed.point_lon[0],
                               validation.surfaces.point_lat[i],
                               validation.surfaces.point_lon[i]) < 1e-6
        np.testing.assert_allclose(placed.posterior[0], validation.surfaces.posterior[i],
                                   atol=1e-12)
        checked += 1
    assert checked >= 8


def test_leave_one_site_out_is_the_model_without_the_site(cline):
    _, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    log_likelihood = leave_one_out_site_log_likelihoods(geo, SETTINGS.count_bandwidth_km,
                                                        "site")
    site = geo.sites.reference_population
    for s in (0, 5, 15):
        keep = site != s
        sites = without(reference, keep)
        assert np.array_equal(sites.n_alleles, geo.sites.n_alleles)
        others = np.arange(len(geo.sites.populations)) != s
        reduced = GeographicModel(sites, geo.site_lat[others], geo.site_lon[others], geo.grid,
                                  1.0)
        members = reference.table.take(np.flatnonzero(~keep))
        expected = site_log_likelihoods(reduced, members, SETTINGS.count_bandwidth_km)
        np.testing.assert_allclose(log_likelihood[~keep][:, others], expected, rtol=1e-10)
        assert np.isneginf(log_likelihood[~keep, s]).all()
    # Left out with its site, an animal's point never uses that site's position: moving the
    # site moves none of its animals' points.
    validation = SiteMixtureModel.fit(geo, leave_out="site",
                                      settings=SETTINGS).leave_one_out("site")
    shifted_lat = geo.site_lat.copy()
    shifted_lat[0] += 3.0
    shifted = GeographicModel(geo.sites, shifted_lat, geo.site_lon, geo.grid, 1.0)
    shifted_validation = SiteMixtureModel.fit(shifted, leave_out="site",
                                              settings=SETTINGS).leave_one_out("site")
    members = site == 0
    np.testing.assert_allclose(shifted_validation.surfaces.point_lat[members],
                               validation.surfaces.point_lat[members], atol=1e-9)
    np.testing.assert_allclose(shifted_validation.surfaces.point_lon[members],
                               validation.surfaces.point_lon[members], atol=1e-9)
    assert not np.allclose(shifted_validation.surfaces.point_lat[site == 1],
                           validation.surfaces.point_lat[site == 1])


# ---------------------------------------------------------------------- accuracy
def isolation_by_distance_populations(n_sites=12, n_loci=10, n_alleles=8, seed=1):
    """Sites scattered over a 12° square whose allele frequencies drift with position (log
    frequencies linear in latitude and longitude) plus site-specific noise: neighbours are
    alike, far sites differ, and no site is a copy of another."""
    rng = np.random.default_rng(seed)
    lat = rng.uniform(-6, 6, n_sites)
    lon = 25 + rng.uniform(-6, 6, n_sites)
    centred = np.c_[lat - lat.mean(), lon - lon.mean()]
    slopes = rng.normal(0, 0.25, size=(n_loci, n_alleles, 2))
    logits = np.einsum("lak,sk->sla", slopes, centred)
    logits += rng.normal(0, 0.3, size=logits.shape)
    frequencies = np.exp(logits)
    frequencies /= frequencies.sum(axis=2, keepdims=True)
    names = [f"site{s}" for s in range(n_sites)]
    return SimulatedPopulations(frequencies, names, names, lat, lon)


@pytest.mark.parametrize("leave_out", ["animal", "site"])
def test_beats_the_posterior_weighted_centroid_on_an_isolation_by_distance_set(leave_out):
    """Eight animals at each of twelve sites, ten loci: lower median and 90th percentile
    leave-one-out error than the posterior-weighted site centroid, and the 90% region,
    calibrated on the other folds, holds the site for at least 85% of the animals."""
    sim = isolation_by_distance_populations()
    reference = reference_set(sim, 8, np.random.default_rng(1), missing=0.05)
    model = SiteMixtureModel.from_reference(reference, leave_out=leave_out, n_cells=12)
    summary = model.leave_one_out(leave_out).summary()
    overall = summary["overall"]
    weighted = summary["baselines"]["posterior_weighted_centroid"]["overall"]
    assert overall["median_km"] < weighted["median_km"]
    assert overall["p90_km"] < weighted["p90_km"]
    assert overall["coverage90"] >= 0.85
    assert overall["n"] == reference.table.n_profiles
    assert set(summary["per_site"]) == set(sim.names)


def test_settings_errors():
    with pytest.raises(ValueError, match="temperature"):
        SiteMixtureSettings(0.0, 0.0, 0.0, 2.0)
    with pytest.raises(ValueError, match="temperature"):
        SiteMixtureSettings(0.0, np.inf, 0.0, 2.0)
    with pytest.raises(ValueError, match="centre_power"):
        SiteMixtureSettings(0.0, 1.0, 0.0, 3.0)
    with pytest.raises(ValueError, match="bandwidths"):
        SiteMixtureSettings(-1.0, 1.0, 0.0, 2.0)


def test_leave_out_must_be_animal_or_site(cline):
    _, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    with pytest.raises(ValueError, match="leave_out"):
        SiteMixtureModel.fit(geo, leave_out="population", settings=SETTINGS)


def test_seizure_placements(cline):
    """Joint: the samples' site log-likelihoods add before the posterior is formed; pooled:
    the samples' own site weights are averaged."""
    sim, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    model = SiteMixtureModel(geo, SETTINGS, {}, "given", 150.0)
    samples = sim.sample(5, 6, np.random.default_rng(9), missing=0.05, prefix="q-",
                         label=False)
    groups = ["S"] * 4 + ["T"] * 2
    log_likelihood = site_log_likelihoods(geo, samples, SETTINGS.count_bandwidth_km)
    own = site_posterior(log_likelihood, SETTINGS, model.site_distance_km)
    joint = model.seizure_surfaces(samples, groups)
    expected = site_posterior(np.array([log_likelihood[:4].sum(axis=0),
                                        log_likelihood[4:].sum(axis=0)]), SETTINGS,
                              model.site_distance_km)
    lat, lon = weighted_centres(expected, geo.site_lat, geo.site_lon, SETTINGS.centre_power)
    np.testing.assert_allclose(joint.point_lat, lat)
    np.testing.assert_allclose(joint.point_lon, lon)
    assert list(joint.names) == ["S", "T"]
    pooled = model.seizure_surfaces(samples, groups, method="pooled")
    density = np.array([own[:4].mean(axis=0), own[4:].mean(axis=0)]) @ model.cell_kernel
    density *= geo.grid.area_km2
    np.testing.assert_allclose(pooled.posterior, density / density.sum(axis=1, keepdims=True),
                               rtol=1e-10)
    with pytest.raises(ValueError, match="method"):
        model.seizure_surfaces(samples, groups, method="mean")
    with pytest.raises(ValueError, match="groups"):
        model.seizure_surfaces(samples, groups[:3])


# ---------------------------------------------------------------------- robust point losses
def test_point_losses_closed_forms():
    d = np.array([0.0, 50.0, 100.0, 300.0])
    np.testing.assert_allclose(point_loss(d, "huber", 100.0), [0.0, 12.5, 50.0, 250.0])
    np.testing.assert_allclose(point_loss(d, "welsch", 100.0),
                               1 - np.exp(-0.5 * (d / 100.0) ** 2))
    with pytest.raises(ValueError, match="loss"):
        point_loss(d, "power", 1.0)
    with pytest.raises(ValueError, match="loss_scale_km"):
        SiteMixtureSettings(0.0, 1.0, 0.0, 2.0, "huber", 0.0)
    with pytest.raises(ValueError, match="loss must be"):
        SiteMixtureSettings(0.0, 1.0, 0.0, 2.0, "tukey", 10.0)


@pytest.mark.parametrize("loss, scale", [("huber", 150.0), ("welsch", 300.0)])
def test_robust_point_minimises_expected_loss_against_brute_force(cline, loss, scale):
    """The point of a Huber or Welsch estimate has the least expected loss among the
    decision points (summed site by site, not by the model's matrix product) and is within
    a lattice step's worth of the minimum over a dense independent grid."""
    _, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    settings = SiteMixtureSettings(0.0, 1.0, 0.0, 2.0, loss, scale)
    model = SiteMixtureModel(geo, settings, {}, "given", 150.0)
    rng = np.random.default_rng(11)
    weights = rng.dirichlet(np.full(len(geo.site_lat), 0.3), size=6)
    lat, lon = model.place(weights)

    def expected(w, a, o):
        return sum(w[s] * float(point_loss(great_circle_km(a, o, geo.site_lat[s],
                                                           geo.site_lon[s]), loss, scale))
                   for s in range(len(w)))

    point_lat, point_lon = model.decision_points
    dense_lat, dense_lon = np.meshgrid(np.linspace(point_lat.min(), point_lat.max(), 150),
                                       np.linspace(point_lon.min(), point_lon.max(), 150),
                                       indexing="ij")
    dense_distance = great_circle_km(dense_lat.ravel()[:, None], dense_lon.ravel()[:, None],
                                     geo.site_lat[None, :], geo.site_lon[None, :])
    for k, w in enumerate(weights):
        found = expected(w, lat[k], lon[k])
        each_point = sum(w[s] * point_loss(great_circle_km(point_lat, point_lon,
                                                           geo.site_lat[s], geo.site_lon[s]),
                                           loss, scale) for s in range(len(w)))
        best = each_point.min()
        assert found == pytest.approx(best, rel=1e-12)
        dense = (point_loss(dense_distance, loss, scale) @ w).min()
        assert found <= dense * 1.03 + 1e-9
    # All weight on one site: the estimate is that site.
    one = np.eye(len(geo.site_lat))[[3]]
    lat, lon = model.place(one)
    assert great_circle_km(lat[0], lon[0], geo.site_lat[3], geo.site_lon[3]) < 1e-9


def test_huber_estimate_lies_between_geometric_median_and_centroid(cline):
    """Huber with a tiny scale is the geometric median, with a huge one the centroid (of
    the decision points nearest them)."""
    _, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    rng = np.random.default_rng(12)
    weights = rng.dirichlet(np.ones(len(geo.site_lat)), size=5)
    lattice = Grid.around(geo.site_lat, geo.site_lon, DECISION_CELLS)
    step = float(great_circle_km(lattice.lat_edges[0], lattice.lon_edges[0],
                                 lattice.lat_edges[1], lattice.lon_edges[1]))
    for scale, power in ((1e-3, 1.0), (1e6, 2.0)):
        model = SiteMixtureModel(geo, SiteMixtureSettings(0, 1, 0, 2, "huber", scale), {},
                                 "given", 1.0)
        lat, lon = model.place(weights)
        exact_lat, exact_lon = weighted_centres(weights, geo.site_lat, geo.site_lon, power)
        assert great_circle_km(lat, lon, exact_lat, exact_lon).max() < 2 * step


def test_harrell_davis_weights_equal_scipys_estimate():
    from scipy.stats.mstats import hdquantiles

    from matching.geo import harrell_davis_weights

    values = np.random.default_rng(5).gamma(2.0, 100.0, size=57)
    for q in (0.5, 0.9):
        weights = harrell_davis_weights(len(values), q)
        assert weights.sum() == pytest.approx(1.0)
        assert np.sort(values) @ weights == pytest.approx(float(hdquantiles(values, [q])[0]))


def test_shrink_and_expansion_move_the_point(cline):
    _, reference = cline
    geo = GeographicModel.from_reference(reference, bandwidth_km=1.0, n_cells=12)
    model = SiteMixtureModel(geo, SETTINGS, {}, "given", 150.0)
    weights = np.random.default_rng(3).dirichlet(np.ones(len(geo.site_lat)), size=6)
    plain = np.c_[model.place(weights)]
    # Shrinking all the way is the weighted centroid under the same weights.
    full = SiteMixtureSettings(**{**SETTINGS.to_dict(), "shrink": 1.0})
    np.testing.assert_allclose(np.c_[model.place(weights, full)],
                               np.c_[weighted_centres(weights, geo.site_lat, geo.site_lon, 2.0)],
                               atol=1e-6)
    # Expanding by κ moves the point κ times as far from the sites' centre (in unit vectors).
    centre = unit_vectors(geo.site_lat, geo.site_lon).mean(axis=0)
    centre /= np.linalg.norm(centre)
    wide = SiteMixtureSettings(**{**SETTINGS.to_dict(), "expansion": 1.5})
    moved = unit_vectors(*model.place(weights, wide))
    expected = centre + 1.5 * (unit_vectors(plain[:, 0], plain[:, 1]) - centre)
    np.testing.assert_allclose(moved, expected / np.linalg.norm(expected, axis=1, keepdims=True),
                               atol=1e-9)
    assert SiteMixtureSettings.from_dict(wide.to_dict()) == wide
    old = {k: v for k, v in SETTINGS.to_dict().items() if k not in ("shrink", "expansion")}
    assert SiteMixtureSettings.from_dict(old) == SETTINGS
    with pytest.raises(ValueError, match="expansion"):
        SiteMixtureSettings(0, 1, 0, 2, expansion=0.0)
    with pytest.raises(ValueError, match="shrink"):
        SiteMixtureSettings(0, 1, 0, 2, shrink=1.5)
