"""STRUCTURE files (``.str``, ``.structure``): whitespace-separated, one or two rows per individual.

Layout::

    locus1 locus2 locus3                 <- optional marker-name row (one name per locus)
    ind1  3  1  152 -9  200              <- label, extra columns, alleles
    ind1  3  1  156 -9  204              <- two-row layout: the second allele of each locus

In the **two-row** layout each individual has two consecutive rows with the same label, one
allele per locus in each. In the **one-row** layout each row holds both alleles of every
locus, side by side (``a1 a2`` for locus 1, then locus 2…). ``-9`` is a missing allele.

Between the label and the alleles come optional *extra columns* (STRUCTURE's POPDATA,
POPFLAG, LOCDATA, PHENOTYPE, EXTRACOLS…). The first extra column is taken as the population
unless ``pop_column`` says otherwise. How the reader tells them apart when not told:

- marker-name row: present when the first row is shorter than the rows after it, or when its
  last field is not an integer (a data row always ends with an allele);
- layout: two-row when there is an even number of rows and every pair of consecutive rows
  (1-2, 3-4…) shares its label, else one-row;
- number of extra columns: with a marker-name row of ``L`` names it is what is left of a row
  after the label and the ``L`` (two-row) or ``2L`` (one-row) alleles. Without one, in the
  two-row layout, the leading columns that are equal in both rows of every individual are
  extra columns (so a first locus at which every individual is homozygous or missing would be
  mistaken for one: pass ``extra_columns``); in the one-row layout, the leading columns holding
  any non-integer are extra columns, plus one more if that leaves an odd number of allele
  columns (so POPDATA and POPFLAG, both integers, need ``extra_columns=2``).

Loci without names are called ``locus1``, ``locus2``….
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dnatrack.errors import GenotypeFormatError
from dnatrack.files import replace_atomically
from dnatrack.formats._builder import (
    TableBuilder,
    check_writable,
    parse_allele,
    read_nonblank_lines,
)
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

STRUCTURE_MISSING = "-9"


def _is_integer(text: str) -> bool:
    return text.lstrip("+-").isdigit()


def read_structure(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
    two_row: bool | None = None,
    marker_names: bool | None = None,
    extra_columns: int | None = None,
    pop_column: int | None = None,
    missing: Sequence[str] = (STRUCTURE_MISSING,),
) -> GenotypeTable:
    """Read a STRUCTURE file (see the module docstring for the layouts and the guessing rules).

    Parameters
    ----------
    path
        The file.
    panel
        When given, unknown loci and alleles outside a locus's size range are errors.
    duplicate_ids
        ``"error"`` or ``"number"`` (rename repeated labels ``label_2``…).
    two_row
        ``True`` for two rows per individual, ``False`` for one; guessed when ``None``.
    marker_names
        Whether the first row names the loci; guessed when ``None``.
    extra_columns
        Number of columns between the label and the first allele; guessed when ``None``.
    pop_column
        1-based column holding the population (the label is column 1), one of the extra
        columns; ``None`` takes the first extra column if there is one, ``0`` reads no
        population.
    missing
        Allele texts meaning "missing" (``-9`` by default).

    Returns
    -------
    GenotypeTable
        With ``population`` when a population column is read.
    """
    path = Path(path)
    rows = [(line, text.split()) for line, text in read_nonblank_lines(path)]
    if marker_names is None:
        marker_names = _first_row_is_header(rows)
    header = rows[0] if marker_names else None
    data = rows[1:] if marker_names else rows
    if not data:
        raise GenotypeFormatError(
            "no genotype rows after the marker names", path=path, line=rows[0][0]
        )
    width = len(data[0][1])
    for line, fields in data:
        if len(fields) != width:
            raise GenotypeFormatError(
                f"{len(fields)} fields where line {data[0][0]} has {width}", path=path, line=line
            )
    if two_row is None:
        two_row = len(data) % 2 == 0 and all(
            data[k][1][0] == data[k + 1][1][0] for k in range(0, len(data), 2)
        )
    if two_row:
        _check_pairs(path, data)
    alleles_per_locus = 1 if two_row else 2
    n_extra = _extra_columns(path, data, header, width, two_row, extra_columns)
    n_loci = (width - 1 - n_extra) // alleles_per_locus
    loci = _locus_names(path, header, n_extra, n_loci, width, two_row)
    population_index = _population_index(pop_column, n_extra)

    builder = TableBuilder(
        path,
        loci,
        panel=panel,
        duplicate_ids=duplicate_ids,
        header_line=header[0] if header else None,
    )
    first_allele = 1 + n_extra
    alleles = np.empty((n_loci, 2), dtype=np.int64)
    step = 2 if two_row else 1
    for k in range(0, len(data), step):
        line, fields = data[k]
        if two_row:
            second_line, second = data[k + 1]
            for column in range(1, first_allele):
                if fields[column] != second[column]:
                    raise GenotypeFormatError(
                        f"extra column differs between the two rows of {fields[0]!r} "
                        f"({fields[column]!r} on line {line}, {second[column]!r} here)",
                        path=path,
                        line=second_line,
                        field=f"column {column + 1}",
                    )
            cells = [(fields, line), (second, second_line)]
            for j, locus in enumerate(loci):
                for a, (row, row_line) in enumerate(cells):
                    alleles[j, a] = parse_allele(
                        row[first_allele + j], missing, path=path, line=row_line, field=locus
                    )
        else:
            for j, locus in enumerate(loci):
                for a in (0, 1):
                    alleles[j, a] = parse_allele(
                        fields[first_allele + 2 * j + a],
                        missing,
                        path=path,
                        line=line,
                        field=locus,
                    )
        population = fields[population_index] if population_index is not None else None
        builder.add(fields[0], alleles, line, population=population)
    return builder.build()


def _first_row_is_header(rows: list[tuple[int, list[str]]]) -> bool:
    if len(rows) < 2:
        return False
    first, second = rows[0][1], rows[1][1]
    if len(first) < len(second):
        return True
    return len(first) == len(second) and not _is_integer(first[-1]) and _is_integer(second[-1])


def _check_pairs(path: Path, data: list[tuple[int, list[str]]]) -> None:
    if len(data) % 2:
        raise GenotypeFormatError(
            f"odd number of genotype rows ({len(data)}) in a two-row file",
            path=path,
            line=data[-1][0],
        )
    for k in range(0, len(data), 2):
        label, (line, second) = data[k][1][0], data[k + 1]
        if second[0] != label:
            raise GenotypeFormatError(
                f"second row of individual {label!r} is labelled {second[0]!r}",
                path=path,
                line=line,
                field="label",
            )


def _extra_columns(
    path: Path,
    data: list[tuple[int, list[str]]],
    header: tuple[int, list[str]] | None,
    width: int,
    two_row: bool,
    extra_columns: int | None,
) -> int:
    alleles_per_locus = 1 if two_row else 2
    if extra_columns is not None:
        n_extra = extra_columns
        problem = n_extra < 0 or width - 1 - n_extra < alleles_per_locus
    elif header is not None and len(header[1]) < width:
        n_extra = width - 1 - alleles_per_locus * len(header[1])
        problem = n_extra < 0
    elif two_row:
        n_extra = 0
        # Leading columns equal in both rows of every individual hold metadata, not alleles.
        while n_extra < width - 1 and all(
            data[k][1][1 + n_extra] == data[k + 1][1][1 + n_extra] for k in range(0, len(data), 2)
        ):
            n_extra += 1
        problem = n_extra == width - 1
    else:
        n_extra = 0
        while n_extra < width - 1 and not all(_is_integer(f[1 + n_extra]) for _, f in data):
            n_extra += 1
        n_extra += (width - 1 - n_extra) % 2
        problem = width - 1 - n_extra < 2
    if problem or (width - 1 - n_extra) % alleles_per_locus:
        layout = "two-row" if two_row else "one-row"
        names = f" and {len(header[1])} marker names" if header is not None else ""
        raise GenotypeFormatError(
            f"cannot split {width} fields per row into a label, extra columns and {layout} "
            f"alleles{names}; give extra_columns (and two_row) explicitly",
            path=path,
            line=data[0][0],
        )
    return n_extra


def _locus_names(
    path: Path,
    header: tuple[int, list[str]] | None,
    n_extra: int,
    n_loci: int,
    width: int,
    two_row: bool,
) -> list[str]:
    if header is None:
        return [f"locus{j + 1}" for j in range(n_loci)]
    line, names = header
    if len(names) == n_loci:
        return names
    if len(names) == width:
        # A marker-name row naming every column: the locus names are over the allele columns.
        allele_names = names[1 + n_extra :]
        return allele_names if two_row else allele_names[::2]
    raise GenotypeFormatError(f"{len(names)} marker names for {n_loci} loci", path=path, line=line)


def _population_index(pop_column: int | None, n_extra: int) -> int | None:
    if pop_column is None:
        return 1 if n_extra else None
    if pop_column == 0:
        return None
    if not 2 <= pop_column <= n_extra + 1:
        raise ValueError(
            f"pop_column {pop_column} is not one of the extra columns (2..{n_extra + 1})"
            if n_extra
            else f"pop_column {pop_column}: the file has no extra columns"
        )
    return pop_column - 1


def write_structure(
    table: GenotypeTable,
    path: str | os.PathLike,
    *,
    two_row: bool = True,
    marker_names: bool = True,
) -> None:
    """Write ``table`` as STRUCTURE, tab-separated, ``-9`` for missing alleles.

    Columns: the profile id, the population (when ``table`` has populations; written as its
    label, so reading the file back gives the same populations), then the alleles. The first
    row names the loci unless ``marker_names`` is false.

    Raises
    ------
    UnwritableValueError
        When an id, locus or population is empty or contains whitespace (fields are
        whitespace-separated).
    """
    check_writable(
        table,
        "structure",
        lambda value: not value or len(value.split()) != 1 or value != value.strip(),
        "STRUCTURE fields cannot be empty or hold spaces",
    )
    with replace_atomically(path) as handle:
        if marker_names:
            handle.write("\t".join(table.loci) + "\n")
        for i in range(table.n_profiles):
            lead = [table.profile_ids[i]]
            if table.population is not None:
                lead.append(table.population[i])
            pairs = table.alleles[i].tolist()
            texts = [
                [STRUCTURE_MISSING if a == MISSING else str(a) for a in pair] for pair in pairs
            ]
            if two_row:
                for k in (0, 1):
                    handle.write("\t".join(lead + [pair[k] for pair in texts]) + "\n")
            else:
                handle.write("\t".join(lead + [a for pair in texts for a in pair]) + "\n")
