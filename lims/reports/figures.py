"""Report figures drawn offline with matplotlib: the network of linked seizures and the map of
a seizure's geographic origin over the outline of Africa (and, from that outline, the country
holding a point, for the words beside the map).

Figures are drawn from a stored result (never recomputed), with matplotlib's object API only
(no pyplot and no global state), so worker threads can draw at once. Each figure is a PNG
returned as bytes; :func:`data_uri` embeds it in the report's HTML, so the HTML file and the
PDF made from it are self-contained.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math

import numpy as np
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.path import Path as MplPath

from matching.geo_plots import draw_africa
from reference_data import data_path

OUTLINE_FILE = ("maps", "africa_countries.geo.json")
DPI = 150

#: Line colour of each relationship in the network (colour-blind-safe Okabe–Ito palette).
RELATIONSHIP_COLOURS = {
    "same animal": "#D55E00",
    "parent–offspring": "#0072B2",
    "full siblings": "#009E73",
    "half siblings": "#E69F00",
}


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,…`` for an ``<img src>``."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No timestamp in the file: the same figure gives the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


@functools.cache
def _outline_features() -> tuple[dict, ...]:
    return tuple(json.loads(data_path(*OUTLINE_FILE).read_text())["features"])


@functools.cache
@functools.cache
def _country_areas() -> tuple[tuple[str, tuple[tuple[MplPath, tuple[MplPath, ...]], ...]], ...]:
    """``(name, ((outer ring, holes), …))`` of each country of the outline."""
    return tuple(
        (feature["properties"]["name"],
         tuple((MplPath(polygon[0]), tuple(MplPath(hole) for hole in polygon[1:]))
               for polygon in feature["geometry"]["coordinates"]))
        for feature in _outline_features())


def country_at(lat: float, lon: float) -> str | None:
    """The name of the outline's country holding the point, or ``None`` (at sea, or outside
    the map). A hole of a polygon (Lesotho in South Africa) is not part of that country."""
    point = (lon, lat)
    for name, polygons in _country_areas():
        for outer, holes in polygons:
            if outer.contains_point(point) and not any(h.contains_point(point) for h in holes):
                return name
    return None


# ----------------------------------------------------------------------------- network
def network_png(links: list[dict], nodes: dict[str, dict], home_agency: str) -> bytes:
    """The linked seizures and animals as a small network picture.

    Parameters
    ----------
    links : list of dict
        Link records of a result (``node1``, ``node2``, ``relationships`` by label).
    nodes : dict of str to dict
        Node records by key (``reference``, ``agency``, ``visible``, ``in_subject``).
    home_agency : str
        The subject's agency: other agencies' nodes are labelled with their agency too, as
        references are unique per agency only.
    """
    keys = sorted({key for link in links for key in (link["node1"], link["node2"])},
                  key=lambda key: (not nodes[key]["in_subject"], nodes[key]["reference"],
                                   nodes[key]["agency"], key))
    pair_only = len(keys) == 2
    figure = Figure(figsize=(6.0, 2.4 if pair_only else 4.2))
    axes = figure.add_axes((0.02, 0.24 if pair_only else 0.14, 0.96,
                            0.74 if pair_only else 0.84))
    axes.set_axis_off()
    angle = np.pi / 2 - 2 * np.pi * np.arange(len(keys)) / max(len(keys), 1)
    position = {key: (math.cos(a), math.sin(a)) for key, a in zip(keys, angle, strict=True)}
    if pair_only:
        position = {keys[0]: (-1.0, 0.0), keys[1]: (1.0, 0.0)}
    for link in links:
        (x1, y1), (x2, y2) = position[link["node1"]], position[link["node2"]]
        labels = list(link["relationships"])
        strongest = next((label for label in RELATIONSHIP_COLOURS if label in labels),
                         labels[0])
        width = 1.5 + min(link["n_pairs"], 4)
        axes.plot([x1, x2], [y1, y2], color=RELATIONSHIP_COLOURS.get(strongest, "0.4"),
                  linewidth=width, solid_capstyle="round", zorder=1)
        text = ", ".join(f"{label} ×{count}" for label, count in link["relationships"].items())
        axes.text((x1 + x2) / 2, (y1 + y2) / 2, text, fontsize=7, ha="center", va="center",
                  zorder=3, bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none",
                                  "alpha": 0.85})
    for key in keys:
        node = nodes[key]
        x, y = position[key]
        axes.scatter([x], [y], s=700, zorder=2,
                     color="#1d2330" if node["in_subject"] else "white",
                     edgecolors="#1d2330", linewidths=1.5,
                     linestyle="solid" if node["visible"] else "dashed")
        label = node["reference"] if node["visible"] and node["agency"] == home_agency \
            else f"{node['reference']}\n({node['agency']})"
        axes.text(x, y - 0.24, label, fontsize=8, ha="center", va="top", zorder=3)
    axes.set_xlim(-1.6, 1.6)
    axes.set_ylim(*((-0.6, 0.35) if pair_only else (-1.55, 1.35)))
    handles = [Line2D([0], [0], color=colour, linewidth=3, label=label)
               for label, colour in RELATIONSHIP_COLOURS.items()]
    handles += [
        Line2D([0], [0], marker="o", color="white", markerfacecolor="#1d2330",
               markeredgecolor="#1d2330", markersize=9, label="this request"),
        Line2D([0], [0], marker="o", color="white", markerfacecolor="white",
               markeredgecolor="#1d2330", markersize=9, linestyle="none",
               label="linked (dashed: another agency's)"),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    return _png(figure)


# ----------------------------------------------------------------------------- map
def _cell_grid(values: np.ndarray, in_range: np.ndarray, shape: tuple[int, int],
               fill: float = np.nan) -> np.ndarray:
    grid = np.full(shape[0] * shape[1], fill, dtype=np.float64)
    grid[in_range] = values
    return grid.reshape(shape)


def origin_map_png(geographic: dict, surface: dict) -> bytes:
    """The posterior surface of one seizure's origin, its 50% and 90% credible regions, the
    reference sampling sites and the most likely point, over the outline of Africa.

    Parameters
    ----------
    geographic : dict
        The ``geographic`` record of a result (grid, sites).
    surface : dict
        One of its ``surfaces`` (posterior over in-range cells, region cell lists).
    """
    lat_edges = np.asarray(geographic["grid"]["lat_edges"])
    lon_edges = np.asarray(geographic["grid"]["lon_edges"])
    in_range = np.asarray(geographic["grid"]["in_range"], dtype=np.int64)
    shape = (len(lat_edges) - 1, len(lon_edges) - 1)
    posterior = _cell_grid(np.asarray(surface["posterior"]), in_range, shape)
    n_cells = len(in_range)
    region = np.zeros(n_cells)
    region[surface["region90"]] = 1.0
    region[surface["region50"]] = 2.0
    regions = _cell_grid(region, in_range, shape, fill=0.0)

    # The view: the grid, widened to show some context, kept inside Africa's bounds.
    lon_lo, lon_hi = max(lon_edges[0] - 8, -20.0), min(lon_edges[-1] + 8, 55.0)
    lat_lo, lat_hi = max(lat_edges[0] - 6, -36.0), min(lat_edges[-1] + 6, 38.0)
    mid_lat = math.radians((lat_lo + lat_hi) / 2)
    width = 5.6
    height = min(width * (lat_hi - lat_lo) / ((lon_hi - lon_lo) * math.cos(mid_lat)), 7.0)
    figure = Figure(figsize=(width, max(height, 3.0) + 0.6))
    axes = figure.add_axes((0.09, 0.17, 0.72, 0.8))
    draw_africa(axes)
    mesh = axes.pcolormesh(lon_edges, lat_edges, np.ma.masked_invalid(posterior),
                           cmap="Greens", alpha=0.75, zorder=2, shading="flat")
    centre_lon = (lon_edges[:-1] + lon_edges[1:]) / 2
    centre_lat = (lat_edges[:-1] + lat_edges[1:]) / 2
    if regions.max() >= 1:
        axes.contour(centre_lon, centre_lat, regions, levels=[0.5], colors="#7a1f00",
                     linewidths=1.0, linestyles="dashed", zorder=3)
    if regions.max() >= 2:
        axes.contour(centre_lon, centre_lat, regions, levels=[1.5], colors="#7a1f00",
                     linewidths=1.6, zorder=3)
    sites = geographic["sites"]
    axes.scatter([s["lon"] for s in sites], [s["lat"] for s in sites], s=10, color="black",
                 zorder=4)
    axes.scatter([surface["best_lon"]], [surface["best_lat"]], marker="*", s=160,
                 color="#D55E00", edgecolors="black", linewidths=0.6, zorder=5)
    axes.set_xlim(lon_lo, lon_hi)
    axes.set_ylim(lat_lo, lat_hi)
    axes.set_aspect(1.0 / math.cos(mid_lat))
    axes.set_xlabel("longitude (°E)", fontsize=8)
    axes.set_ylabel("latitude (°N)", fontsize=8)
    axes.tick_params(labelsize=7)
    colourbar = figure.colorbar(mesh, cax=figure.add_axes((0.84, 0.25, 0.025, 0.64)),
                                format="%.3f")
    colourbar.set_label("posterior probability per cell", fontsize=7)
    colourbar.ax.tick_params(labelsize=6)
    handles = [
        Line2D([0], [0], color="#7a1f00", linewidth=1.6, label="50% credible region"),
        Line2D([0], [0], color="#7a1f00", linewidth=1.0, linestyle="dashed",
               label="90% credible region"),
        Line2D([0], [0], marker="*", color="white", markerfacecolor="#D55E00",
               markeredgecolor="black", markersize=11, label="most likely point"),
        Line2D([0], [0], marker="o", color="white", markerfacecolor="black", markersize=4,
               label="reference sites"),
        Patch(facecolor="#f7f5ef", edgecolor="#8a8f99", label="country outlines (Natural Earth)"),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=6.5, frameon=False)
    return _png(figure)
