"""``dnatrack convert IN OUT``: any readable genotype format to any writable one."""

from __future__ import annotations

import argparse
from pathlib import Path

from dnatrack.cli._common import add_format_option


def register(subparsers) -> None:
    from dnatrack.formats import readable_formats, writable_formats

    parser = subparsers.add_parser(
        "convert",
        help="convert a genotype file to another format",
        description=(
            "Read a genotype file and write it in another format. Formats come from the file "
            "extensions (and, for .csv/.txt/.tsv input, the header) unless given. Readable: "
            f"{', '.join(readable_formats())}; writable: {', '.join(writable_formats())}. "
            "The output file is written only if the whole input reads cleanly."
        ),
    )
    parser.add_argument("input", metavar="IN", help="genotype file to read")
    parser.add_argument("output", metavar="OUT", help="genotype file to write")
    add_format_option(parser)
    parser.add_argument(
        "--to",
        dest="output_format",
        metavar="FMT",
        default=None,
        help="output format (default: from the extension; .csv gives wide)",
    )
    parser.add_argument(
        "--panel",
        default=None,
        help="bundled panel name or panel JSON file; unknown loci and alleles outside the "
        "panel's size ranges are errors",
    )
    parser.add_argument(
        "--rename-duplicates",
        action="store_true",
        help="number repeated sample ids (id, id_2, id_3 …) instead of stopping; GENEPOP "
        "files often name individuals by their population",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from dnatrack.errors import GenotypeFormatError
    from dnatrack.formats import (
        detect_format,
        output_format,
        read_genotypes,
        readable_formats,
        writable_formats,
        write_genotypes,
    )
    from dnatrack.panels import load_panel

    source = Path(args.input)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such file")
    input_format = args.input_format or detect_format(source)
    # Settle the output format before reading, so a bad OUT fails fast.
    target_format = args.output_format or output_format(args.output)
    if input_format not in readable_formats():
        raise ValueError(
            f"unknown input format {input_format!r}; readable: {', '.join(readable_formats())}"
        )
    if target_format not in writable_formats():
        raise ValueError(
            f"cannot write format {target_format!r}; writable: {', '.join(writable_formats())}"
        )
    panel = load_panel(args.panel) if args.panel else None
    try:
        table = read_genotypes(
            source,
            input_format,
            panel=panel,
            duplicate_ids="number" if args.rename_duplicates else "error",
        )
    except GenotypeFormatError as error:
        if error.field == "sample id" and not args.rename_duplicates:
            raise GenotypeFormatError(
                f"{error.reason}; use --rename-duplicates to number repeated ids",
                path=error.path,
                line=error.line,
                field=error.field,
            ) from None
        raise
    write_genotypes(table, args.output, target_format)
    n_populations = len(table.unique_populations())
    print(
        f"{source.name} ({input_format}) -> {Path(args.output).name} ({target_format}): "
        f"{table.n_profiles} profiles, {table.n_loci} loci, {n_populations} populations"
    )
    return 0
