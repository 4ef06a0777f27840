"""Long CSV: one row per sample and locus.

Columns (header names in any case; comma- or tab-separated)::

    sample,locus,allele1,allele2[,population][,repunit][,group]
    tusk-1,FH67,152,156,Kenya
    tusk-1,FH71,200,200,Kenya

Accepted header names: ``sample`` (or ``sample_id``, ``indiv``, ``id``), ``locus`` (or
``marker``), ``allele1``/``allele2`` (or ``allele_1``/``allele_2``, ``a1``/``a2``),
``population`` (or ``collection``, ``pop``), ``repunit``, ``group`` (or ``seizure``). Other
columns are ignored. Samples and loci are taken in order of first appearance; the rows of a
sample need not be adjacent. A sample with no row for a locus is untyped there; a second row
for the same sample and locus is an error, as are metadata that differ between the rows of
one sample. An empty cell, ``NA``, ``0``, ``-1``, ``-9`` or ``-999`` is a missing allele.
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

from dnatrack.errors import GenotypeFormatError
from dnatrack.files import replace_atomically
from dnatrack.formats._builder import (
    SampleLocusRows,
    normalise_header,
    parse_allele,
    read_delimited,
)
from dnatrack.formats.wide import MISSING_CODES
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

_REQUIRED = {
    "sample": ("sample", "sample_id", "indiv", "id"),
    "locus": ("locus", "marker"),
    "allele1": ("allele1", "allele_1", "a1"),
    "allele2": ("allele2", "allele_2", "a2"),
}
_METADATA = {
    "population": ("population", "collection", "pop"),
    "repunit": ("repunit",),
    "group": ("group", "seizure"),
}


def looks_like_long(header: list[str], rows: list[list[str]]) -> bool:
    """Whether a table header names the long-CSV columns."""
    names = {normalise_header(cell) for cell in header}
    return all(names.intersection(aliases) for aliases in _REQUIRED.values())


def read_long(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
) -> GenotypeTable:
    """Read a long CSV file (see the module docstring for the columns).

    Parameters
    ----------
    path
        The file.
    panel
        When given, unknown loci and alleles outside a locus's size range are errors.
    duplicate_ids
        Accepted for a uniform interface; rows sharing a sample id are one sample.
    """
    path = Path(path)
    table = read_delimited(path)
    columns = {}
    for key, aliases in _REQUIRED.items():
        columns[key] = table.column(aliases)
        if columns[key] is None:
            raise GenotypeFormatError(
                f"no {key} column (expected one of {', '.join(aliases)})",
                path=path,
                line=table.header_line,
            )
    metadata = {key: table.column(aliases) for key, aliases in _METADATA.items()}
    metadata = {key: index for key, index in metadata.items() if index is not None}
    rows = SampleLocusRows(path, panel=panel, duplicate_ids=duplicate_ids)
    locus_field = table.header[columns["locus"]]
    for line, cells in table.rows:
        locus = cells[columns["locus"]]
        alleles = tuple(
            parse_allele(cells[columns[key]], MISSING_CODES, path=path, line=line, field=locus)
            for key in ("allele1", "allele2")
        )
        rows.add(
            cells[columns["sample"]],
            locus,
            alleles,
            line,
            locus_field=locus_field,
            **{key: cells[index] for key, index in metadata.items()},
        )
    return rows.build()


def write_long(table: GenotypeTable, path: str | os.PathLike) -> None:
    """Write ``table`` as long CSV: a row for every profile at every locus (missing alleles as
    empty cells, so untyped profiles survive), with ``population``, ``repunit`` and ``group``
    columns where ``table`` has them. A ``.tsv`` path is written tab-separated."""
    extras = [
        name for name in ("population", "repunit", "group") if getattr(table, name) is not None
    ]
    delimiter = "\t" if str(path).lower().endswith(".tsv") else ","
    with replace_atomically(path, newline="") as handle:
        writer = csv.writer(handle, delimiter=delimiter, lineterminator="\n")
        writer.writerow(["sample", "locus", "allele1", "allele2", *extras])
        for i, sample_id in enumerate(table.profile_ids):
            metadata = [getattr(table, name)[i] for name in extras]
            for locus, (a, b) in zip(table.loci, table.alleles[i].tolist(), strict=True):
                alleles = ["", ""] if a == MISSING else [a, b]
                writer.writerow([sample_id, locus, *alleles, *metadata])
