"""The leave-one-out error map of a geographic validation, as PNG and SVG.

Drawn over the bundled Natural Earth outline of Africa (``reference_data/maps``), offline: each
reference site is a disc coloured by the median leave-one-out error of its animals, and a thin
line joins it to where each of its animals was placed. The title gives the overall median and
90th percentile error beside both centroid baselines, and the 90%-region coverage.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from matching.geo import GeoValidation, SiteMixtureModel
from reference_data import data_path

logger = logging.getLogger(__name__)

OUTLINE_FILE = ("maps", "africa_countries.geo.json")


def africa_outline() -> tuple[tuple[np.ndarray, ...], ...]:
    """Country outlines as rings of ``(lon, lat)`` (float64 arrays, shape (n, 2)): one tuple of
    rings per country, outer rings first."""
    collection = json.loads(data_path(*OUTLINE_FILE).read_text())
    countries = []
    for feature in collection["features"]:
        rings = []
        for polygon in feature["geometry"]["coordinates"]:
            rings.extend(np.asarray(ring, dtype=np.float64) for ring in polygon)
        countries.append(tuple(rings))
    return tuple(countries)


def draw_africa(axes) -> None:
    """The outline of Africa's countries under whatever ``axes`` will show, on a sea colour."""
    axes.set_facecolor("#e9f1f7")
    for country in africa_outline():
        for ring in country:
            axes.add_patch(Polygon(ring, closed=True, facecolor="#f7f5ef", edgecolor="#8a8f99",
                                   linewidth=0.5, zorder=1))


def leave_one_out_error_figure(validation: GeoValidation, model: SiteMixtureModel) -> Figure:
    """The error map of ``validation`` (a :meth:`SiteMixtureModel.leave_one_out` result)."""
    geo = model.geo
    site_lat, site_lon = geo.site_lat, geo.site_lon
    points_lat, points_lon = validation.surfaces.estimate_lat, validation.surfaces.estimate_lon
    lon_lo = max(min(site_lon.min(), points_lon.min()) - 6, -20.0)
    lon_hi = min(max(site_lon.max(), points_lon.max()) + 6, 55.0)
    lat_lo = max(min(site_lat.min(), points_lat.min()) - 5, -36.0)
    lat_hi = min(max(site_lat.max(), points_lat.max()) + 5, 38.0)
    mid_lat = math.radians((lat_lo + lat_hi) / 2)
    width = 6.0
    height = min(width * (lat_hi - lat_lo) / ((lon_hi - lon_lo) * math.cos(mid_lat)), 7.5)
    figure = Figure(figsize=(width, max(height, 3.0) + 1.2))
    axes = figure.add_axes((0.1, 0.1, 0.72, 0.72))
    draw_africa(axes)
    site = validation.site
    segments = np.stack([np.c_[site_lon[site], site_lat[site]], np.c_[points_lon, points_lat]],
                        axis=1)
    axes.add_collection(LineCollection(segments, colors="#555555", linewidths=0.3, alpha=0.5,
                                       zorder=2))
    axes.scatter(points_lon, points_lat, s=3, color="#0072B2", zorder=3,
                 label="placed animals (left out)")
    median_error = np.array([np.median(validation.error_km[site == s]) if (site == s).any()
                             else np.nan for s in range(len(site_lat))])
    discs = axes.scatter(site_lon, site_lat, c=median_error, s=60, cmap="viridis",
                         edgecolors="black", linewidths=0.6, zorder=4, label="reference sites")
    axes.set_xlim(lon_lo, lon_hi)
    axes.set_ylim(lat_lo, lat_hi)
    axes.set_aspect(1.0 / math.cos(mid_lat))
    axes.set_xlabel("longitude (°E)", fontsize=8)
    axes.set_ylabel("latitude (°N)", fontsize=8)
    axes.tick_params(labelsize=7)
    axes.legend(loc="lower left", fontsize=6.5, framealpha=0.8)
    colourbar = figure.colorbar(discs, cax=figure.add_axes((0.85, 0.18, 0.025, 0.6)))
    colourbar.set_label("median error of the site's animals (km)", fontsize=7)
    colourbar.ax.tick_params(labelsize=6)
    summary = validation.summary()
    overall, baselines = summary["overall"], summary["baselines"]
    best = baselines["most_likely_site_centroid"]["overall"]
    weighted = baselines["posterior_weighted_centroid"]["overall"]
    figure.suptitle(
        f"{geo.sites.name}: leave-one-{validation.leave_out}-out error, median / 90th pct km\n"
        f"dnatrack {overall['median_km']:.0f} / {overall['p90_km']:.0f}, 90% region holds the "
        f"site for {overall['coverage90']:.0%}\nmost likely site's centroid "
        f"{best['median_km']:.0f} / {best['p90_km']:.0f} · posterior-weighted centroid "
        f"{weighted['median_km']:.0f} / {weighted['p90_km']:.0f}", fontsize=7.5)
    return figure


def plot_leave_one_out_errors(validation: GeoValidation, model: SiteMixtureModel,
                              directory: str | Path) -> list[Path]:
    """Write ``geo_loo_error.png`` and ``geo_loo_error.svg`` into ``directory`` (made if
    absent); returns their paths."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    figure = leave_one_out_error_figure(validation, model)
    paths = [folder / "geo_loo_error.png", folder / "geo_loo_error.svg"]
    figure.savefig(paths[0], dpi=150, bbox_inches="tight")
    figure.savefig(paths[1], bbox_inches="tight")
    logger.info("wrote the leave-one-out error map to %s", ", ".join(map(str, paths)))
    return paths
