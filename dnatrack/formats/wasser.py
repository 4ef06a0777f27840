"""The two-row ``-999`` table of the Wasser lab's elephant familial-matching pipeline.

Layout implemented (comma- or tab-separated)::

    sample,FH67,FH71,FH19,...       <- header: the sample-id column, then one column per locus
    tusk-1,152,200,-999,...         <- first allele of each locus
    tusk-1,156,204,-999,...         <- second allele: the next row, with the same sample id

The first column holds the sample id (its header name is free). Columns named
``population`` (or ``collection``, ``pop``), ``repunit`` or ``group`` (or ``seizure``) are
per-sample metadata and must be equal in both rows of a sample; every other column is a
locus. Each sample has exactly two consecutive rows; ``-999`` (or an empty cell, or ``NA``)
is a missing allele, and a locus with one allele missing is untyped.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np

from dnatrack.errors import GenotypeFormatError
from dnatrack.files import replace_atomically
from dnatrack.formats._builder import (
    TableBuilder,
    normalise_header,
    parse_allele,
    read_delimited,
)
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

WASSER_MISSING = "-999"
_MISSING_CODES = (WASSER_MISSING, "NA")
_METADATA = {
    "population": ("population", "collection", "pop"),
    "repunit": ("repunit",),
    "group": ("group", "seizure"),
}


def _metadata_columns(header: list[str]) -> dict[str, int]:
    found = {}
    normalised = [normalise_header(cell) for cell in header]
    for key, aliases in _METADATA.items():
        for index, name in enumerate(normalised[1:], start=1):
            if name in aliases:
                found[key] = index
                break
    return found


def looks_like_wasser(header: list[str], rows: list[list[str]]) -> bool:
    """Whether a table is two rows per sample: its first two data rows share the first cell."""
    return len(header) >= 2 and len(rows) >= 2 and bool(rows[0][0]) and rows[0][0] == rows[1][0]


def read_wasser(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
) -> GenotypeTable:
    """Read a two-row ``-999`` table (see the module docstring for the layout).

    Parameters
    ----------
    path
        The file.
    panel
        When given, unknown loci and alleles outside a locus's size range are errors.
    duplicate_ids
        ``"error"`` or ``"number"`` (rename a sample id that comes back later ``id_2``…).
    """
    path = Path(path)
    table = read_delimited(path)
    header = table.header
    metadata = _metadata_columns(header)
    locus_columns = [c for c in range(1, len(header)) if c not in metadata.values()]
    if not locus_columns:
        raise GenotypeFormatError(
            "no locus columns after the sample id", path=path, line=table.header_line
        )
    loci = [header[c] for c in locus_columns]
    builder = TableBuilder(
        path, loci, panel=panel, duplicate_ids=duplicate_ids, header_line=table.header_line
    )
    rows = table.rows
    if not rows:
        raise GenotypeFormatError(
            "no genotype rows after the header", path=path, line=table.header_line
        )
    if len(rows) % 2:
        raise GenotypeFormatError(
            f"sample {rows[-1][1][0]!r} has one row; every sample needs two (one per allele)",
            path=path,
            line=rows[-1][0],
        )
    alleles = np.empty((len(loci), 2), dtype=np.int64)
    for k in range(0, len(rows), 2):
        (line, first), (second_line, second) = rows[k], rows[k + 1]
        if first[0] != second[0]:
            raise GenotypeFormatError(
                f"sample {first[0]!r} (line {line}) has one row; the next row is sample "
                f"{second[0]!r} (every sample needs two consecutive rows)",
                path=path,
                line=second_line,
                field=header[0],
            )
        for key, column in metadata.items():
            if first[column] != second[column]:
                raise GenotypeFormatError(
                    f"{key} differs between the two rows of {first[0]!r} "
                    f"({first[column]!r} on line {line}, {second[column]!r} here)",
                    path=path,
                    line=second_line,
                    field=header[column],
                )
        for j, column in enumerate(locus_columns):
            for a, (cells, cells_line) in enumerate(((first, line), (second, second_line))):
                alleles[j, a] = parse_allele(
                    cells[column], _MISSING_CODES, path=path, line=cells_line, field=loci[j]
                )
        builder.add(
            first[0], alleles, line, **{key: first[column] for key, column in metadata.items()}
        )
    return builder.build()


def write_wasser(table: GenotypeTable, path: str | os.PathLike) -> None:
    """Write ``table`` as a two-row ``-999`` CSV: ``sample``, then ``population``, ``repunit``
    and ``group`` where ``table`` has them, then one column per locus; two rows per profile."""
    extras = [
        name for name in ("population", "repunit", "group") if getattr(table, name) is not None
    ]
    metadata_names = {alias for aliases in _METADATA.values() for alias in aliases}
    for locus in table.loci:
        if normalise_header(locus) in metadata_names:
            raise ValueError(f"locus {locus!r} would be read back as a metadata column")
    with replace_atomically(path, newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["sample", *extras, *table.loci])
        for i, sample_id in enumerate(table.profile_ids):
            metadata = [getattr(table, name)[i] for name in extras]
            pairs = table.alleles[i].tolist()
            for k in (0, 1):
                alleles = [WASSER_MISSING if pair[0] == MISSING else pair[k] for pair in pairs]
                writer.writerow([sample_id, *metadata, *alleles])
