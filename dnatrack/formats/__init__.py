"""Genotype file formats: one reader (and, where it makes sense, one writer) per format.

Use :func:`read_genotypes` and :func:`write_genotypes`; the format is taken from the file
extension (and, for ambiguous extensions such as ``.csv``, from the header) unless given.
Every reader raises :class:`~dnatrack.errors.GenotypeFormatError` naming the file, line and
field on bad input, and returns nothing until the whole file has been checked.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnatrack.errors import GenotypeFormatError, UnwritableValueError
from dnatrack.formats._builder import guess_delimiter
from dnatrack.formats._formulas import FORMULA_LEADS, formula_safe, neutralise_formula
from dnatrack.formats.genemapper import looks_like_genemapper, read_genemapper
from dnatrack.formats.genepop import read_genepop, write_genepop
from dnatrack.formats.long import looks_like_long, read_long, write_long
from dnatrack.formats.structure import read_structure, write_structure
from dnatrack.formats.vcf import read_vcf
from dnatrack.formats.wasser import looks_like_wasser, read_wasser, write_wasser
from dnatrack.formats.wide import locus_pairs, read_wide, write_wide
from dnatrack.genotypes import GenotypeTable


@dataclass(frozen=True)
class Format:
    """A file format: its name, what it is, its file extensions (the first is the one to give
    new files), its reader and writer, and for formats sharing an extension a ``sniff``
    predicate telling from a table's header cells and first data rows whether a file is in
    this format."""

    name: str
    description: str
    extensions: tuple[str, ...]
    read: Callable[..., GenotypeTable]
    write: Callable[..., None] | None = None
    sniff: Callable[[list[str], list[list[str]]], bool] | None = None


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> None:
    FORMATS[fmt.name] = fmt


def _looks_wide(header: list[str], rows: list[list[str]]) -> bool:
    return bool(locus_pairs(header))


register(
    Format(
        "wide",
        "rubias-style wide CSV (two columns per locus: L, L.1)",
        (".csv",),
        read_wide,
        write_wide,
        _looks_wide,
    )
)
register(Format("genepop", "GENEPOP", (".gen", ".genepop"), read_genepop, write_genepop))
register(
    Format(
        "structure",
        "STRUCTURE, one or two rows per individual",
        (".str", ".structure"),
        read_structure,
        write_structure,
    )
)
register(
    Format(
        "long",
        "long CSV, one row per sample and locus (sample, locus, allele1, allele2)",
        (".csv", ".tsv", ".txt"),
        read_long,
        write_long,
        looks_like_long,
    )
)
register(
    Format(
        "genemapper",
        "GeneMapper-style genotype table (Sample Name, Marker, Allele 1, Allele 2, …)",
        (".txt", ".tsv", ".csv"),
        read_genemapper,
        sniff=looks_like_genemapper,
    )
)
register(
    Format(
        "wasser",
        "Wasser-lab two-row table (one row per allele, -999 missing)",
        (".csv", ".txt", ".tsv"),
        read_wasser,
        write_wasser,
        looks_like_wasser,
    )
)
register(
    Format("vcf", "VCF of SNP genotypes (through scikit-allel)", (".vcf", ".vcf.gz"), read_vcf)
)

# Which format to write when several writable ones share a file's extension.
_PREFERRED_WRITE_FORMATS = ("wide", "long")


def readable_formats() -> list[str]:
    return sorted(FORMATS)


def writable_formats() -> list[str]:
    return sorted(name for name, fmt in FORMATS.items() if fmt.write is not None)


def _formats_for_extension(path: str | os.PathLike, names: list[str]) -> list[str]:
    name = Path(path).name.lower()
    return [n for n in names if any(name.endswith(ext) for ext in FORMATS[n].extensions)]


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path`` from its extension, and for extensions several formats share
    (``.csv``, ``.txt``, ``.tsv``) from the file's header and first rows."""
    candidates = _formats_for_extension(path, list(FORMATS))
    if len(candidates) == 1:
        return candidates[0]
    if not candidates:
        raise ValueError(
            f"{Path(path).name}: cannot tell the format from the extension; give it "
            f"explicitly (one of {', '.join(readable_formats())})"
        )
    sniffed = _sniff(path, candidates)
    if sniffed is None:
        raise ValueError(
            f"{Path(path).name}: could be {' or '.join(sorted(candidates))}; give the format "
            "explicitly"
        )
    return sniffed


def output_format(path: str | os.PathLike) -> str:
    """The format to write ``path`` in, from its extension (``.csv`` gives ``wide``)."""
    candidates = _formats_for_extension(path, writable_formats())
    if len(candidates) > 1:
        candidates = [n for n in _PREFERRED_WRITE_FORMATS if n in candidates][:1] or candidates
    if len(candidates) != 1:
        raise ValueError(
            f"{Path(path).name}: cannot tell the output format from the extension; give it "
            f"explicitly (one of {', '.join(writable_formats())})"
        )
    return candidates[0]


def _sniff(path: str | os.PathLike, candidates: list[str]) -> str | None:
    """Pick among formats sharing an extension by the header and first rows of the file."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            lines = [text for text in (handle.readline() for _ in range(20)) if text.strip()]
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    if not lines:
        return None
    cells = list(csv.reader(lines, delimiter=guess_delimiter(lines[0])))
    header = [cell.strip() for cell in cells[0]]
    rows = [[cell.strip() for cell in row] for row in cells[1:3]]
    # Formats are tried in registration order: the header-based tests (wide, long,
    # GeneMapper) come before the two-row test, which a long CSV would also pass.
    for name in candidates:
        sniff = FORMATS[name].sniff
        if sniff is not None and sniff(header, rows):
            return name
    return None


def read_genotypes(
    path: str | os.PathLike, format: str | None = None, **options
) -> GenotypeTable:
    """Read a genotype file of any supported format.

    Parameters
    ----------
    path
        The file.
    format
        One of :func:`readable_formats`; detected from the file when ``None``.
    **options
        Passed to the reader: ``panel`` (a :class:`~dnatrack.panels.Panel` to check loci and
        allele ranges against), ``duplicate_ids`` (``"error"`` or ``"number"``), and
        format-specific options.
    """
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such file")
    name = format or detect_format(path)
    if name not in FORMATS:
        raise ValueError(f"unknown format {name!r}; readable: {', '.join(readable_formats())}")
    return FORMATS[name].read(path, **options)


def write_genotypes(
    table: GenotypeTable,
    path: str | os.PathLike,
    format: str | None = None,
    *,
    spreadsheet_safe: bool = False,
    **options,
) -> None:
    """Write ``table`` in a writable format (from the extension when ``None``; see
    :func:`output_format`). The file is replaced only once the whole table is written.

    With ``spreadsheet_safe``, text cells a spreadsheet would run as a formula get a leading
    single quote (:func:`formula_safe`), for files handed to people who may open them in
    one; without it ids are written as they are, so files read back unchanged.

    Raises
    ------
    UnwritableValueError
        When the format cannot hold a value of the table (naming it and its profile).
    """
    name = format or output_format(path)
    fmt = FORMATS.get(name)
    if fmt is None or fmt.write is None:
        raise ValueError(f"cannot write format {name!r}; writable: {', '.join(writable_formats())}")
    written = formula_safe(table) if spreadsheet_safe else table
    try:
        fmt.write(written, path, **options)
    except UnwritableValueError as error:
        if error.profile_id is not None and written is not table:
            # Name the profile as the caller knows it, not by its neutralised id.
            error.profile_id = str(table.profile_ids[written.index_of(error.profile_id)])
        raise


__all__ = [
    "FORMATS",
    "FORMULA_LEADS",
    "Format",
    "GenotypeFormatError",
    "UnwritableValueError",
    "detect_format",
    "formula_safe",
    "neutralise_formula",
    "output_format",
    "read_genotypes",
    "readable_formats",
    "writable_formats",
    "write_genotypes",
]
