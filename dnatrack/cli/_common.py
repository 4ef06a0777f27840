"""Helpers shared by the subcommands: reading inputs, writing tables, progress bars."""

from __future__ import annotations

import csv
import json
import operator
import os
import sys
from collections.abc import Iterable, Mapping
from contextlib import contextmanager

from dnatrack.files import replace_atomically
from dnatrack.genotypes import GenotypeTable


def add_format_option(parser, flag: str = "--from", dest: str = "input_format") -> None:
    parser.add_argument(
        flag, dest=dest, metavar="FMT", default=None,
        help="input format (default: from the file extension and header)",
    )


def read_table(path: str, input_format: str | None = None, **options) -> GenotypeTable:
    """A genotype file in any readable format."""
    from dnatrack.formats import read_genotypes

    return read_genotypes(path, format=input_format, **options)


def write_rows(path: str | os.PathLike, rows: Iterable[Mapping], columns: list[str]) -> int:
    """Write dict rows as CSV with a header (missing keys as empty cells); returns the count."""
    pick = operator.itemgetter(*columns) if len(columns) > 1 else (
        lambda row: (row[columns[0]],))
    count = 0

    def values(row: Mapping):
        nonlocal count
        count += 1
        try:
            return pick(row)
        except KeyError:
            return [row.get(column, "") for column in columns]

    # csv.writer's own loop over the rows (as DictWriter writes them: the same dialect, missing
    # keys and None as empty cells, other keys ignored), several times faster for long tables.
    with replace_atomically(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(map(values, rows))
    return count


def write_columns(path: str | os.PathLike, columns: Mapping[str, list]) -> int:
    """Write equal-length columns as CSV with a header, as :func:`write_rows` writes the same
    rows; returns the number of rows."""
    with replace_atomically(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))
    return len(next(iter(columns.values()), []))


def write_json(path: str | os.PathLike, data) -> None:
    with replace_atomically(path) as handle:
        handle.write(json.dumps(data, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(total: int, description: str, unit: str = "row"):
    """A tqdm bar on standard error (silent when it is not a terminal); yields ``update``."""
    if not sys.stderr.isatty():
        # tqdm would draw nothing; not importing it saves a tenth of a second of start-up.
        yield lambda n=1: None
        return
    from tqdm import tqdm

    bar = tqdm(total=total, desc=description, unit=unit, disable=None, file=sys.stderr,
               leave=False)
    try:
        yield bar.update
    finally:
        bar.close()


def parse_assignments(values: list[str] | None, option: str) -> dict[str, float]:
    """``NAME=NUMBER`` command-line pairs as a dict; ``ValueError`` naming the option."""
    parsed = {}
    for value in values or []:
        name, sep, number = value.partition("=")
        try:
            if not sep:
                raise ValueError
            parsed[name.strip()] = float(number)
        except ValueError:
            raise ValueError(f"{option} expects NAME=NUMBER, got {value!r}") from None
    return parsed
