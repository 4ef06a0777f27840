"""Figures of assignment results, written as PNG and SVG beside the CSV tables (``--plots``).

Plots only draw what the result records already hold; no statistic is computed here. Figures
are built on :class:`matplotlib.figure.Figure` with the Agg canvas, never through ``pyplot``,
so nothing depends on a display or on global plotting state.

- :func:`plot_confusion`: self-assignment confusion matrices (populations, reporting units);
- :func:`plot_z_scores`: histograms of ``z_score`` (rubias's) and ``z_score_exact``;
- :func:`plot_mixture`: reporting-unit proportions of each mixture with 95% intervals;
- :func:`plot_assessment`: simulated against estimated proportions of ``assess-reference``.

Geographic figures (the leave-one-out error map of :mod:`matching.geo`) belong in this module
too, as functions of the same shape: ``plot_…(result, directory) -> list[Path]``.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from matching.assignment import Assignment, SelfAssignment
from matching.mixture import MixtureEstimate, ReferenceAssessment

logger = logging.getLogger(__name__)

FORMATS = ("png", "svg")


def save_figure(figure: Figure, directory: str | Path, name: str) -> list[Path]:
    """Write ``figure`` as ``directory/name.png`` and ``.svg``; returns the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    paths = []
    for extension in FORMATS:
        path = directory / f"{name}.{extension}"
        # No creation date in the SVG, so the same result gives the same file.
        metadata = {"Date": None} if extension == "svg" else None
        figure.savefig(path, dpi=150, bbox_inches="tight", metadata=metadata)
        paths.append(path)
    logger.info("wrote figure %s", directory / name)
    return paths


def _matrix_axes(figure: Figure, matrix: np.ndarray, labels, title: str) -> None:
    axes = figure.add_subplot()
    totals = matrix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = np.where(totals > 0, matrix / np.maximum(totals, 1), np.nan)
    image = axes.imshow(shares, cmap="viridis", vmin=0.0, vmax=1.0)
    figure.colorbar(image, ax=axes, label="share of the row's animals")
    ticks = np.arange(len(labels))
    size = 8 if len(labels) <= 20 else 4
    axes.set_xticks(ticks, labels, rotation=90, fontsize=size)
    axes.set_yticks(ticks, labels, fontsize=size)
    if len(labels) <= 12:
        for i in range(len(labels)):
            for j in range(len(labels)):
                if matrix[i, j]:
                    axes.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                              color="white" if shares[i, j] < 0.6 else "black")
    axes.set_xlabel("assigned to")
    axes.set_ylabel("own")
    axes.set_title(title)


def plot_confusion(result: SelfAssignment, directory: str | Path) -> list[Path]:
    """Confusion matrices of a self-assignment, by reporting unit and by population."""
    paths = []
    units = result.assignment.repunit_names
    side = max(4.0, 0.3 * len(units) + 2)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    _matrix_axes(figure, result.repunit_confusion, units,
                 f"Self-assignment to reporting units: {result.repunit_accuracy:.1%} correct")
    paths += save_figure(figure, directory, "confusion_repunits")
    populations = result.assignment.populations
    side = max(4.0, 0.18 * len(populations) + 2)
    figure = Figure(figsize=(side + 1.5, side), layout="constrained")
    _matrix_axes(figure, result.confusion, populations,
                 f"Self-assignment to populations: {result.accuracy:.1%} correct")
    paths += save_figure(figure, directory, "confusion_populations")
    return paths


def plot_z_scores(assignment: Assignment, directory: str | Path) -> list[Path]:
    """Histograms of both z-scores with the standard normal density for reference."""
    figure = Figure(figsize=(9, 3.8), layout="constrained")
    scores = (("z_score (rubias)", assignment.z_score),
              ("z_score_exact", assignment.z_score_exact))
    for k, (label, values) in enumerate(scores, start=1):
        axes = figure.add_subplot(1, 2, k)
        finite = values[np.isfinite(values)]
        if finite.size:
            axes.hist(finite, bins=min(60, max(10, finite.size // 20)), density=True,
                      color="tab:blue", alpha=0.7)
            grid = np.linspace(min(finite.min(), -4), max(finite.max(), 4), 200)
            axes.plot(grid, np.exp(-grid ** 2 / 2) / math.sqrt(2 * math.pi), color="black",
                      lw=1, label="standard normal")
            axes.legend(fontsize=7)
            axes.set_title(f"{label}: mean {finite.mean():.2f}, "
                           f"sd {finite.std(ddof=1) if finite.size > 1 else math.nan:.2f}",
                           fontsize=9)
        else:
            axes.set_title(f"{label}: none finite", fontsize=9)
        axes.set_xlabel("z")
    return save_figure(figure, directory, "z_scores")


def plot_mixture(estimate: MixtureEstimate, directory: str | Path) -> list[Path]:
    """Reporting-unit proportions of each mixture: posterior mean with its 95% interval,
    EM, and the bootstrap-corrected value where computed."""
    units = estimate.repunit_names
    mean = estimate.repunit_posterior_mean
    low, high = estimate.repunit_credible_interval()
    n_groups = len(estimate.groups)
    figure = Figure(figsize=(7, max(2.5, 0.25 * len(units) * n_groups + 1.5)),
                    layout="constrained")
    axes = figure.add_subplot()
    rows = np.arange(len(units))
    height = 0.8 / n_groups
    for g, group in enumerate(estimate.groups):
        y = rows + g * height
        axes.errorbar(mean[g], y, xerr=[mean[g] - low[g], high[g] - mean[g]], fmt="o", ms=3,
                      capsize=2, label=f"{group} (n = {estimate.group_sizes[g]})")
        if estimate.bootstrap_repunit is not None:
            axes.plot(estimate.bootstrap_repunit[g], y, "x", color="black", ms=4)
    axes.set_yticks(rows + 0.4 - height / 2, units, fontsize=7 if len(units) > 15 else 9)
    axes.invert_yaxis()
    axes.set_xlim(-0.02, 1.02)
    axes.set_xlabel("reporting-unit proportion (posterior mean, 95% interval"
                    + ("; x bootstrap-corrected)" if estimate.bootstrap_repunit is not None
                       else ")"))
    axes.legend(fontsize=7, loc="lower right")
    return save_figure(figure, directory, "mixture_proportions")


def plot_assessment(assessment: ReferenceAssessment, directory: str | Path) -> list[Path]:
    """Simulated against estimated reporting-unit proportions, one panel per unit, with the
    bias, RMSE and interval coverage of each."""
    units = assessment.repunit_names
    columns = min(4, len(units))
    rows = math.ceil(len(units) / columns)
    figure = Figure(figsize=(3.0 * columns, 2.8 * rows), layout="constrained")
    mean = assessment.estimate.repunit_posterior_mean
    low, high = assessment.intervals
    summary = assessment.summary_records()
    for r, unit in enumerate(units):
        axes = figure.add_subplot(rows, columns, r + 1)
        truth = assessment.true_repunit[:, r]
        covered = assessment.covered[:, r]
        axes.errorbar(truth, mean[:, r], yerr=[mean[:, r] - low[:, r], high[:, r] - mean[:, r]],
                      fmt="none", ecolor="lightgray", lw=0.8)
        axes.plot(truth[covered], mean[covered, r], "o", ms=3, color="tab:blue")
        axes.plot(truth[~covered], mean[~covered, r], "o", ms=3, color="tab:red")
        top = max(float(high[:, r].max()), float(truth.max()), 0.05)
        axes.plot([0, top], [0, top], color="black", lw=0.8)
        row = summary[r]
        axes.set_title(f"{unit}\nbias {row['bias']:+.3f}, RMSE {row['rmse']:.3f}, "
                       f"coverage {row['coverage']:.0%}", fontsize=8)
        axes.tick_params(labelsize=7)
    figure.supxlabel("simulated proportion")
    figure.supylabel("posterior mean (red: interval misses)")
    figure.suptitle(f"assess-reference ({assessment.method}): {len(assessment.true_repunit)} "
                    f"mixtures of {assessment.mixture_size}, "
                    f"{assessment.level:.0%} interval coverage {assessment.coverage:.1%}",
                    fontsize=10)
    return save_figure(figure, directory, "assessment")
