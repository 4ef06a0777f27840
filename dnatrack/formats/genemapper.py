"""GeneMapper-style genotype export tables (read only).

One row per sample and marker, tab- or comma-separated, as exported from a genotyping
table::

    Sample Name	Panel	Marker	Dye	Allele 1	Allele 2	Allele 3	Size 1	Height 1 ...
    tusk-1	Elephant16	FH67	B	152	156		152.31	1834 ...
    tusk-1	Elephant16	FH71	B	200			200.12	2210 ...

The columns used are ``Sample Name``, ``Marker`` and ``Allele 1``, ``Allele 2``, … (as many
as the export has); all others (``Dye``, ``Size n``, ``Height n``…) are ignored. Header
names are matched ignoring case and spacing. Per row, the called alleles are the non-empty
``Allele n`` cells: none is an untyped locus, one a homozygote, two a heterozygote, and three
or more an error. Allele calls must be whole numbers (``152`` or ``152.0``); bin labels such
as ``OL`` (off-ladder) and sizes with a fraction are errors. A second row for the same
sample and marker is an error.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats._builder import (
    SampleLocusRows,
    normalise_header,
    parse_allele,
    read_delimited,
)
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

_ALLELE_COLUMN = re.compile(r"allele ?(\d+)")
_COUNT_WORDS = {3: "three", 4: "four", 5: "five", 6: "six"}


def _allele_columns(header: list[str]) -> list[int]:
    """Indices of the ``Allele n`` columns, ordered by ``n``."""
    numbered = []
    for index, cell in enumerate(header):
        match = _ALLELE_COLUMN.fullmatch(normalise_header(cell))
        if match:
            numbered.append((int(match[1]), index))
    return [index for _, index in sorted(numbered)]


def looks_like_genemapper(header: list[str], rows: list[list[str]]) -> bool:
    """Whether a table header has GeneMapper's ``Sample Name``, ``Marker`` and ``Allele 1``."""
    names = {normalise_header(cell) for cell in header}
    return {"sample name", "marker"} <= names and bool(_allele_columns(header))


def read_genemapper(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
) -> GenotypeTable:
    """Read a GeneMapper-style genotype table (see the module docstring).

    Parameters
    ----------
    path
        The file.
    panel
        When given, unknown markers and alleles outside a locus's size range are errors.
    duplicate_ids
        Accepted for a uniform interface; rows sharing a sample name are one sample.
    """
    path = Path(path)
    table = read_delimited(path)
    sample_column = table.column(("sample name",))
    marker_column = table.column(("marker",))
    allele_columns = _allele_columns(table.header)
    for column, name in ((sample_column, "Sample Name"), (marker_column, "Marker")):
        if column is None:
            raise GenotypeFormatError(f"no {name!r} column", path=path, line=table.header_line)
    if not allele_columns:
        raise GenotypeFormatError(
            "no allele columns ('Allele 1', 'Allele 2', …)", path=path, line=table.header_line
        )
    rows = SampleLocusRows(path, panel=panel, duplicate_ids=duplicate_ids)
    marker_field = table.header[marker_column]
    for line, cells in table.rows:
        marker = cells[marker_column]
        called = [(table.header[c], cells[c]) for c in allele_columns if cells[c]]
        if len(called) > 2:
            count = _COUNT_WORDS.get(len(called), str(len(called)))
            raise GenotypeFormatError(
                f"{count} alleles at locus {marker!r} ({', '.join(text for _, text in called)})",
                path=path,
                line=line,
                field=called[2][0],
            )
        alleles = [
            parse_allele(text, (), path=path, line=line, field=column) for column, text in called
        ]
        if len(alleles) == 1:
            alleles *= 2
        genotype = (alleles[0], alleles[1]) if alleles else (MISSING, MISSING)
        rows.add(cells[sample_column], marker, genotype, line, locus_field=marker_field)
    return rows.build()
