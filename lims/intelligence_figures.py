"""Intelligence figures drawn on the server as SVG with matplotlib's object API (no pyplot, no
global state): seizures per year by weight class, and the network of linked seizures.

Each figure prints what it rests on (how many seizures, which years) and the caveat that raw
seizure counts are not trends in trafficking, so a copy taken out of the page still says so.
"""

from __future__ import annotations

import io

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lims.reports.figures import RELATIONSHIP_COLOURS
from matching.intelligence import COUNTS_CAVEAT, UNKNOWN_WEIGHT, WEIGHT_CLASSES

# Okabe–Ito colours, light to dark by weight class; grey for unknown weights.
CLASS_COLOURS = ("#F0E442", "#E69F00", "#56B4E9", "#0072B2", "#D55E00", "#999999")


def _svg(figure: Figure, title: str, data: dict) -> str:
    """The figure as SVG; its title and data statement are also the SVG's <title> and
    <desc> (the drawn text is glyph outlines, which screen readers and searches miss)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg",
                   metadata={"Date": None, "Title": title, "Description": statement(data)})
    return buffer.getvalue()


def statement(data: dict) -> str:
    """``"12 seizures you may see, 2019–2024. Raw seizure counts are not …"``."""
    years = data["years"]
    span = f"{years[0]}–{years[-1]}" if years else "no dated seizures"
    return f"{data['seizures']} seizures you may see, {span}. {COUNTS_CAVEAT}"


def _footer(figure: Figure, data: dict) -> None:
    figure.text(0.01, 0.01, statement(data), fontsize=7, wrap=True, va="bottom")


def trends_svg(trends: dict) -> str:
    """Stacked bars: seizures per year, one colour per weight class (all commodities)."""
    rows, data = trends["rows"], trends["data"]
    years = sorted({row["year"] for row in rows})
    classes = [name for name, _, _ in WEIGHT_CLASSES] + [UNKNOWN_WEIGHT]
    figure = Figure(figsize=(7.5, 3.6))
    axes = figure.add_axes((0.08, 0.28, 0.62, 0.64))
    bottoms = [0] * len(years)
    for klass, colour in zip(classes, CLASS_COLOURS, strict=True):
        heights = [
            sum(r["seizures"] for r in rows if r["year"] == year and r["weight_class"] == klass)
            for year in years
        ]
        if any(heights):
            axes.bar([str(y) for y in years], heights, bottom=bottoms, color=colour,
                     edgecolor="black", linewidth=0.4, label=klass)
            bottoms = [b + h for b, h in zip(bottoms, heights, strict=True)]
    axes.set_ylabel("Seizures recorded")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_title("Recorded seizures per year by weight class", fontsize=10)
    if years:
        axes.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8, frameon=False)
    else:
        axes.text(0.5, 0.5, "No coded, dated seizures", ha="center", transform=axes.transAxes)
    _footer(figure, data)
    return _svg(figure, "Recorded seizures per year by weight class", data)


def network_svg(network: dict) -> str:
    """The network of linked seizures: nodes placed by a seeded spring layout, labelled with
    reference, date and port; edges coloured by the strongest relationship, labelled with the
    number of linking pairs."""
    import networkx as nx

    graph = nx.Graph()
    for node in network["nodes"]:
        graph.add_node(node["id"])
    for edge in network["edges"]:
        graph.add_edge(edge["source"], edge["target"])
    figure = Figure(figsize=(8, 6))
    axes = figure.add_axes((0.02, 0.16, 0.96, 0.78))
    axes.set_axis_off()
    axes.set_title("Seizures linked by DNA (same animal, parent–offspring, siblings)",
                   fontsize=10)
    if not graph.number_of_nodes():
        axes.text(0.5, 0.5, "No linked seizures", ha="center", transform=axes.transAxes)
    else:
        positions = nx.spring_layout(graph, seed=1)
        # Room for the labels under the outermost nodes.
        axes.margins(0.22)
        nodes = {node["id"]: node for node in network["nodes"]}
        for edge in network["edges"]:
            (x1, y1), (x2, y2) = positions[edge["source"]], positions[edge["target"]]
            colour = RELATIONSHIP_COLOURS.get(edge["strongest"].replace("_", " ")
                                              .replace("parent offspring", "parent–offspring"),
                                              "#555555")
            axes.plot([x1, x2], [y1, y2], color=colour, linewidth=1 + min(edge["n_pairs"], 6),
                      zorder=1)
            axes.text((x1 + x2) / 2, (y1 + y2) / 2, str(edge["n_pairs"]), fontsize=7,
                      ha="center", va="center", zorder=3,
                      bbox={"boxstyle": "round", "fc": "white", "ec": colour, "lw": 0.5})
        for node_id, (x, y) in positions.items():
            node = nodes[node_id]
            size = 60 + min((node.get("quantity_kg") or 0) / 5, 400)
            axes.scatter([x], [y], s=size, color="#444444", zorder=2)
            label = "\n".join(part for part in (node["reference"], node.get("seized_on"),
                                                node.get("port")) if part)
            axes.text(x, y - 0.07, label, fontsize=7, ha="center", va="top", zorder=4)
    legend = [f"{name}" for name in RELATIONSHIP_COLOURS]
    for index, name in enumerate(legend):
        figure.text(0.02 + index * 0.22, 0.085, "━ " + name,
                    color=RELATIONSHIP_COLOURS[name], fontsize=8)
    _footer(figure, network["data"])
    return _svg(figure, "Seizures linked by DNA", network["data"])


def origins_svg(origins: dict) -> str:
    """Seizure locations (squares) joined to their most likely origins (dots) with the 90%
    credible regions shaded, over the outline of Africa (and east to 125° E when seizures lie
    beyond it)."""
    from matplotlib.patches import Rectangle

    from matching.geo_plots import draw_africa

    figure = Figure(figsize=(7.5, 6))
    axes = figure.add_axes((0.06, 0.14, 0.9, 0.8))
    draw_africa(axes)
    east = max([55.0] + [row["longitude"] + 5 for row in origins["seizures"]
                         if row["longitude"] is not None])
    axes.set_xlim(-20, min(east, 125.0))
    axes.set_ylim(-36, 38)
    axes.set_aspect("equal")
    for row in origins["seizures"]:
        for lat0, lat1, lon0, lon1 in row["region90"]:
            axes.add_patch(Rectangle((lon0, lat0), lon1 - lon0, lat1 - lat0, color="#0072B2",
                                     alpha=0.25, linewidth=0, zorder=2))
        axes.plot([row["origin_lon"]], [row["origin_lat"]], "o", color="#D55E00", zorder=4)
        if row["latitude"] is not None and row["longitude"] is not None:
            axes.plot([row["longitude"]], [row["latitude"]], "s", color="#222222", zorder=4)
            axes.plot([row["longitude"], row["origin_lon"]], [row["latitude"], row["origin_lat"]],
                      color="#555555", linewidth=0.8, linestyle="--", zorder=3)
            axes.annotate(row["reference"], (row["longitude"], row["latitude"]), fontsize=7,
                          xytext=(4, 4), textcoords="offset points", zorder=5)
    axes.set_title("Seizure locations (■) and most likely origins (●, 90% region shaded)",
                   fontsize=10)
    _footer(figure, origins["data"])
    return _svg(figure, "Seizure locations and assigned origins", origins["data"])
