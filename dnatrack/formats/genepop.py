"""GENEPOP files (``.gen``, ``.genepop``).

Layout read and written::

    Title line (any text)
    locus1                    <- locus names, one per line ...
    locus2, locus3            <- ... or several on one line, separated by commas
    Pop                       <- starts a population; text after "Pop" names it
    name , 0102 0303          <- individual: name, a comma, one genotype per locus
    Pop Kenya
    ...

Each genotype is 4 digits (2 per allele) or 6 digits (3 per allele), the same width
throughout a file; ``00``/``000`` is a missing allele and a genotype with one allele missing
is untyped. Populations are named by the text after ``Pop`` when there is any, else ``pop1``,
``pop2``… by block. Individual names are often population labels and repeat; read such files
with ``duplicate_ids="number"``. GENEPOP allele codes are whatever the file's author chose
(sizes, or indices as in adegenet's ``nancycats.gen``); they are read as they are.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from dnatrack.errors import GenotypeFormatError, UnwritableValueError
from dnatrack.files import replace_atomically
from dnatrack.formats._builder import (
    TableBuilder,
    check_writable,
    parse_allele,
    read_nonblank_lines,
)
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

_POP_LINE = re.compile(r"pop\b[\s,:]*(?P<label>.*)", re.IGNORECASE)
_MISSING_CODES = ("00", "000")


def _pop_label(text: str) -> str | None:
    """The population label of a ``Pop`` line ("" when unnamed), or ``None`` if it is not one.

    A line that starts with the word "pop" but has a comma after it is an individual whose
    name begins with "pop", not a separator.
    """
    match = _POP_LINE.fullmatch(text.strip())
    if match is None or "," in match["label"]:
        return None
    return match["label"].strip()


def read_genepop(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
) -> GenotypeTable:
    """Read a GENEPOP file (see the module docstring for the layout).

    Parameters
    ----------
    path
        The file.
    panel
        When given, unknown loci and allele codes outside a locus's range are errors.
    duplicate_ids
        ``"error"`` or ``"number"`` (rename repeated individual names ``name_2``…).

    Returns
    -------
    GenotypeTable
        With ``population`` set from the ``Pop`` blocks.
    """
    path = Path(path)
    lines = read_nonblank_lines(path)
    first_pop = next(
        (k for k, (_, text) in enumerate(lines) if k > 0 and _pop_label(text) is not None), None
    )
    if first_pop is None:
        raise GenotypeFormatError(
            "no 'Pop' line (a GENEPOP file needs a title, locus names, then Pop blocks)",
            path=path,
            line=lines[-1][0],
        )
    loci: list[str] = []
    locus_lines: list[int] = []
    for line, text in lines[1:first_pop]:
        names = [name.strip() for name in text.split(",")]
        while len(names) > 1 and not names[-1]:
            names.pop()
        loci += names
        locus_lines += [line] * len(names)
    if not loci:
        raise GenotypeFormatError(
            "no locus names between the title line and the first Pop line",
            path=path,
            line=lines[first_pop][0],
        )
    builder = TableBuilder(
        path, loci, panel=panel, duplicate_ids=duplicate_ids, locus_lines=locus_lines
    )
    alleles = np.empty((len(loci), 2), dtype=np.int64)
    width: int | None = None
    width_line = 0
    population = ""
    block = 0
    for line, text in lines[first_pop:]:
        label = _pop_label(text)
        if label is not None:
            block += 1
            population = label or f"pop{block}"
            continue
        name, comma, genotypes = text.partition(",")
        if not comma:
            raise GenotypeFormatError(
                "individual line has no comma between the name and the genotypes",
                path=path,
                line=line,
            )
        codes = genotypes.split()
        if len(codes) != len(loci):
            raise GenotypeFormatError(
                f"{len(codes)} genotypes for {len(loci)} loci", path=path, line=line
            )
        for j, code in enumerate(codes):
            if not code.isdigit():
                raise GenotypeFormatError(
                    f"non-numeric allele in genotype {code!r}", path=path, line=line, field=loci[j]
                )
            if len(code) not in (4, 6):
                raise GenotypeFormatError(
                    f"genotype {code!r} has {len(code)} digits; expected 4 or 6 "
                    "(2 or 3 per allele)",
                    path=path,
                    line=line,
                    field=loci[j],
                )
            if width is None:
                width, width_line = len(code) // 2, line
            elif len(code) != 2 * width:
                raise GenotypeFormatError(
                    f"genotype {code!r} has {len(code)} digits but line {width_line} uses "
                    f"{2 * width}",
                    path=path,
                    line=line,
                    field=loci[j],
                )
            for k, allele in enumerate((code[:width], code[width:])):
                alleles[j, k] = parse_allele(
                    allele, _MISSING_CODES, path=path, line=line, field=loci[j]
                )
        builder.add(name, alleles, line, population=population)
    if builder.n_profiles == 0:
        raise GenotypeFormatError("no individuals after the Pop lines", path=path, line=line)
    return builder.build()


def write_genepop(
    table: GenotypeTable, path: str | os.PathLike, *, title: str | None = None
) -> None:
    """Write ``table`` as GENEPOP.

    Alleles are written with 3 digits when any allele exceeds 99, else 2; missing as ``00``.
    Profiles are grouped into one ``Pop`` block per population, in order of first appearance
    (so profiles of a population that are not contiguous in ``table`` move together), each
    ``Pop`` line naming its population; profile ids are the individual names. A table without
    populations is one unnamed block.

    Raises
    ------
    UnwritableValueError
        When an allele exceeds 999, or an id, locus or population contains a comma or a
        line break.
    """
    largest = int(table.alleles.max()) if table.alleles.size else 0
    if largest > 999:
        i, j = (int(k) for k in np.argwhere(table.alleles == largest)[0][:2])
        raise UnwritableValueError(
            f"allele {largest} at locus {table.loci[j]!r} does not fit GENEPOP's 3 digits",
            format="genepop",
            field="allele",
            value=str(largest),
            profile_id=str(table.profile_ids[i]),
        )
    width = 3 if largest > 99 else 2
    # A comma in a Pop line would make it read back as an individual.
    check_writable(
        table,
        "genepop",
        lambda value: any(character in value for character in ",\r\n"),
        "GENEPOP names cannot hold commas or line breaks",
    )
    populations = table.population if table.population is not None else np.full(len(table), "")
    if title is None:
        title = f"dnatrack export: {table.n_profiles} profiles, {table.n_loci} loci"
    missing = "0" * width
    with replace_atomically(path) as handle:
        handle.write(title.replace("\n", " ") + "\n")
        for locus in table.loci:
            handle.write(locus + "\n")
        for population in dict.fromkeys(populations):
            handle.write(f"Pop {population}\n" if population else "Pop\n")
            for i in np.flatnonzero(populations == population):
                codes = [
                    missing * 2 if a == MISSING else f"{a:0{width}d}{b:0{width}d}"
                    for a, b in table.alleles[i].tolist()
                ]
                handle.write(f"{table.profile_ids[i]} , {' '.join(codes)}\n")
