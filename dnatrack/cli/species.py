"""``dnatrack species``: what an item is, from a mitochondrial barcode read (DESIGN 5.6)."""

from __future__ import annotations

import argparse
import sys

from dnatrack.cli._common import progress_bar, write_rows

# Below this many queries identification takes about a second; no progress bar.
PROGRESS_MIN_QUERIES = 200

_TABLE_COLUMNS = (
    ("query", "query"), ("verdict", "verdict"), ("call", "call"), ("identity", "identity %"),
    ("query_coverage", "cover %"), ("aligned_length", "aligned"), ("strand", "strand"),
    ("runner_up", "runner-up"), ("margin", "margin"),
)


def register(subparsers) -> None:
    from matching.species import DEFAULT_TRIM_CUTOFF, QUERY_FORMATS, IdentificationParameters

    defaults = IdentificationParameters()
    parser = subparsers.add_parser(
        "species",
        help="identify the species of barcode reads (FASTA, FASTQ, ABI traces)",
        description=(
            "Align mitochondrial barcode reads to reference barcodes of one marker, on both "
            "strands, and call each read's species: identified, ambiguous (another species "
            "within the margin, or a span of the gene too conserved to tell species apart) or "
            "no match (below the identity threshold). Species that "
            "barcodes cannot tell apart are called as their group (cattle). Without "
            "--references the bundled set is used."
        ),
    )
    parser.add_argument("queries", nargs="*", metavar="QUERY",
                        help="FASTA, FASTQ or ABI (.ab1) files of reads")
    parser.add_argument("--references", action="append", metavar="FILE",
                        help="reference barcodes (FASTA file or folder) replacing the bundled "
                             "set; repeatable")
    parser.add_argument("--add-references", action="append", metavar="FILE",
                        help="reference barcodes added to the set (a record id already in it "
                             "replaces that record); repeatable")
    parser.add_argument("--manifest", metavar="TSV",
                        help="tab-separated record/species/marker labels for the reference "
                             "files (default: from their headers)")
    parser.add_argument("--groups", metavar="TSV",
                        help="tab-separated species/group pairs reported as one group")
    parser.add_argument("--marker", default=defaults.marker,
                        help=f"marker to align to (default {defaults.marker})")
    parser.add_argument("--min-identity", type=float, default=defaults.min_identity,
                        metavar="PERCENT",
                        help=f"identity needed for a call (default {defaults.min_identity:g})")
    parser.add_argument("--min-margin", type=float, default=defaults.min_margin,
                        metavar="POINTS",
                        help="identity lead over any other species needed "
                             f"(default {defaults.min_margin:g})")
    parser.add_argument("--min-length", type=int, default=defaults.min_aligned_length,
                        metavar="BP", help="aligned columns needed "
                        f"(default {defaults.min_aligned_length})")
    parser.add_argument("--min-coverage", type=float, default=defaults.min_query_coverage,
                        metavar="PERCENT", help="percent of a read a reference's alignment must "
                        f"cover to rank (default {defaults.min_query_coverage:g})")
    parser.add_argument("--sister-divergence", type=float, default=defaults.sister_divergence,
                        metavar="PERCENT", help="least whole-marker divergence assumed between "
                        "a covered species and a relative missing from the set, for judging "
                        f"conserved spans (default {defaults.sister_divergence:g})")
    parser.add_argument("--max-sister-probability", type=float,
                        default=defaults.max_sister_probability, metavar="P",
                        help="largest chance that a relative that far apart differs as little "
                        "from the best reference over a read's span, for a call "
                        f"(default {defaults.max_sister_probability:g})")
    parser.add_argument("--trim-cutoff", type=float, default=DEFAULT_TRIM_CUTOFF,
                        metavar="P", help="error probability for trimming read ends of "
                        f"FASTQ and ABI reads (default {DEFAULT_TRIM_CUTOFF:g})")
    parser.add_argument("--no-trim", action="store_true", help="do not trim read ends")
    parser.add_argument("--format", dest="query_format", choices=QUERY_FORMATS,
                        help="query file format (default: from extension and content)")
    parser.add_argument("--workers", type=int, help="worker processes (default: all cores)")
    parser.add_argument("--out", metavar="FILE.csv",
                        help="write all result fields as CSV here instead of printing a table")
    parser.add_argument("--list-species", action="store_true",
                        help="print the species the reference set covers, per marker")
    parser.set_defaults(func=run_species)


def _barcode_set(args: argparse.Namespace):
    from matching.species import default_barcode_set, load_barcode_set, read_groups

    if args.references:
        barcodes = load_barcode_set(args.references, manifest=args.manifest,
                                    marker=args.marker)
    else:
        barcodes = default_barcode_set()
    if args.add_references:
        added = load_barcode_set(args.add_references, manifest=args.manifest,
                                 marker=args.marker)
        barcodes = barcodes.with_references(added, replace_existing=True)
    if args.groups:
        barcodes = barcodes.with_groups(read_groups(args.groups))
    return barcodes


def _print_table(results, barcodes, marker: str) -> None:
    rows = [r.as_row() for r in results]
    cells = [[str(row[key]) for key, _ in _TABLE_COLUMNS] for row in rows]
    headers = [title for _, title in _TABLE_COLUMNS]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(headers)]
    print(f"reference set {barcodes.name} v{barcodes.version} ({marker}), "
          f"sha256 {barcodes.content_hash}")
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def run_species(args: argparse.Namespace) -> int:
    from matching.species import (
        RESULT_COLUMNS,
        VERDICTS,
        IdentificationParameters,
        SpeciesIdentifier,
        read_queries,
    )

    barcodes = _barcode_set(args)
    if args.list_species:
        for row in barcodes.summary():
            group = f" [{row['group']}]" if row["group"] else ""
            print(f"{row['marker']}\t{row['species']}{group}\t{row['references']} reference(s)")
        if not args.queries:
            return 0
    if not args.queries:
        raise ValueError("give at least one QUERY file (or --list-species)")
    parameters = IdentificationParameters(
        marker=args.marker,
        min_identity=args.min_identity,
        min_margin=args.min_margin,
        min_aligned_length=args.min_length,
        min_query_coverage=args.min_coverage,
        sister_divergence=args.sister_divergence,
        max_sister_probability=args.max_sister_probability,
    )
    identifier = SpeciesIdentifier(barcodes, parameters)
    trim_cutoff = None if args.no_trim else args.trim_cutoff
    queries = [q for path in args.queries
               for q in read_queries(path, file_format=args.query_format,
                                     trim_cutoff=trim_cutoff)]
    if len(queries) >= PROGRESS_MIN_QUERIES:
        with progress_bar(len(queries), "identifying", unit="read") as update:
            results = identifier.identify_many(queries, workers=args.workers, progress=update)
    else:
        results = identifier.identify_many(queries, workers=args.workers)
    if args.out:
        write_rows(args.out, (r.as_row() for r in results), RESULT_COLUMNS)
        counts = {v: sum(r.verdict == v for r in results) for v in VERDICTS}
        print(f"{len(results)} reads: " + ", ".join(f"{n} {v}" for v, n in counts.items())
              + f"; written to {args.out}", file=sys.stderr)
    else:
        _print_table(results, barcodes, parameters.marker)
    return 0
