"""`dnatrack panel-stats`: how informative a marker panel is on a genotype set, and θ.

Per locus: alleles, animals typed, Ho, He (``1 − Σp²`` and Nei's unbiased), PI and PI_sib;
for the panel: products of PI and PI_sib and means of the rest; θ by Weir & Cockerham over the
populations when the genotypes have two or more (see :mod:`matching.panel_stats` and
:mod:`matching.theta`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from dnatrack.cli._common import add_format_option, read_table, write_json, write_rows
from dnatrack.genotypes import GenotypeTable
from matching.panel_stats import ROW_COLUMNS, panel_stats
from matching.theta import (
    PUBLISHED_THETA,
    ThetaChoice,
    ThetaEstimate,
    ThetaNotEstimable,
    select_theta,
    weir_cockerham_theta,
)

_FREQUENCY_NOTE = (
    "point frequencies without the NRC II floor; He = 1 - sum p^2, "
    "He_Nei = 2n/(2n-1) He; panel: PI and PI_sib are products over loci, the rest are means"
)


def register(subparsers) -> None:
    published = ", ".join(f"{name} {value}" for name, value in PUBLISHED_THETA.items())
    parser = subparsers.add_parser(
        "panel-stats",
        help="per-locus and panel heterozygosity, PI, PI_sib and theta of a genotype set",
        description=(
            "Per-locus allele counts, observed and expected heterozygosity, probability of "
            "identity (PI) and of identity among siblings (PI_sib), their products over the "
            "panel, and Weir & Cockerham's theta (F_ST) across populations."
        ),
    )
    parser.add_argument(
        "genotypes",
        metavar="GENOTYPES_OR_REFERENCE",
        help="genotype file (any readable format), reference-set folder or bundled set name",
    )
    parser.add_argument(
        "--by-population",
        action="store_true",
        help="statistics per population instead of all profiles pooled",
    )
    parser.add_argument(
        "--theta",
        metavar="VALUE",
        help=(
            "theta to use downstream instead of the estimate: a number in [0, 1) or a species "
            f"with a published value ({published})"
        ),
    )
    parser.add_argument(
        "--out",
        metavar="FILE",
        help="write the table to FILE.csv or FILE.json instead of printing it",
    )
    add_format_option(parser)
    parser.set_defaults(func=run)


def _load(source: str, input_format: str | None) -> tuple[GenotypeTable, str]:
    """The genotypes of a file or reference set, and a line naming them."""
    from dnatrack.reference import load_reference_set

    if Path(source).is_file():
        table = read_table(source, input_format)
        return table, Path(source).name
    if input_format is not None:
        raise ValueError(f"--from applies to genotype files; {source} is not a file")
    reference = load_reference_set(source)
    return reference.table, reference.citation()


def run(args: argparse.Namespace) -> int:
    out = Path(args.out) if args.out else None
    if out is not None and out.suffix.lower() not in (".csv", ".json"):
        raise ValueError(f"--out {args.out}: give a .csv or .json file")
    table, label = _load(args.genotypes, args.input_format)
    stats = panel_stats(table, by_population=args.by_population)
    try:
        estimate: ThetaEstimate | None = weir_cockerham_theta(table)
        not_estimated = ""
    except ThetaNotEstimable as reason:
        estimate, not_estimated = None, str(reason)
    have_theta = estimate is not None or args.theta is not None
    chosen = select_theta(estimate, args.theta) if have_theta else None
    rows = stats.rows(estimate, chosen)

    if out is None:
        print(_render(label, table, args.by_population, rows, estimate, chosen, not_estimated))
    elif out.suffix.lower() == ".csv":
        write_rows(out, rows, list(ROW_COLUMNS))
        print(f"wrote {len(rows)} rows to {out}")
    else:
        write_json(out, {
            "input": label,
            "n_profiles": table.n_profiles,
            "loci": list(table.loci),
            "frequencies": _FREQUENCY_NOTE,
            "rows": rows,
            "theta": estimate.to_dict() if estimate else {"not_estimated": not_estimated},
            "theta_used": chosen.to_dict() if chosen else None,
        })
        print(f"wrote {len(rows)} rows to {out}")
    return 0


def _cell(value, column: str) -> str:
    if value is None:
        return "-"
    if column in ("pi", "pi_sib"):
        return f"{value:.3e}"
    if column in ("theta_wc", "theta_wc_se"):
        return f"{value:.4f}"
    if isinstance(value, float):
        return f"{value:.2f}" if column in ("n_alleles", "n_typed") else f"{value:.3f}"
    return str(value)


def _render(
    label: str,
    table: GenotypeTable,
    by_population: bool,
    rows: list[dict],
    estimate: ThetaEstimate | None,
    chosen: ThetaChoice | None,
    not_estimated: str,
) -> str:
    columns = ["population", "locus", "n_alleles", "n_typed", "ho", "he", "he_nei", "pi",
               "pi_sib"]
    titles = ["population", "locus", "alleles", "typed", "Ho", "He", "He_Nei", "PI", "PI_sib"]
    if estimate is not None:
        columns.append("theta_wc")
        titles.append("theta_WC")
    cells = [titles] + [[_cell(row.get(c), c) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    lines = [
        f"{label}: {table.n_profiles} profiles, {table.n_loci} loci, "
        f"{'by population' if by_population else 'all profiles pooled'}",
        f"({_FREQUENCY_NOTE})",
        "",
    ]
    for line in cells:
        lines.append("  ".join(
            text.ljust(width) if i < 2 else text.rjust(width)
            for i, (text, width) in enumerate(zip(line, widths, strict=True))
        ))
    lines.append("")
    if estimate is not None:
        se = "" if math.isnan(estimate.standard_error) else (
            f" ± {estimate.standard_error:.4f} (jackknife over loci)"
        )
        lines.append(
            f"theta (Weir & Cockerham 1984) over {len(estimate.populations)} populations, "
            f"{int(estimate.estimable.sum())} loci: {estimate.theta:.4f}{se}"
        )
    else:
        lines.append(f"theta not estimated: {not_estimated}")
    if chosen is not None:
        lines.append(f"theta used: {chosen.value:.4f} ({chosen.source})")
    return "\n".join(lines)
