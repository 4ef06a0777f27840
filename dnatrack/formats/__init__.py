"""Genotype file formats: one reader (and, where it makes sense, one writer) per format.

Use :func:`read_genotypes` and :func:`write_genotypes`; the format is taken from the file
extension (and, for ambiguous extensions such as ``.csv``, from the header) unless given.
Every reader raises :class:`~dnatrack.errors.GenotypeFormatError` naming the file, line and
field on bad input, and returns nothing until the whole file has been checked.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats.wide import read_wide, write_wide
from dnatrack.genotypes import GenotypeTable


@dataclass(frozen=True)
class Format:
    name: str
    description: str
    extensions: tuple[str, ...]
    read: Callable[..., GenotypeTable]
    write: Callable[..., None] | None = None


FORMATS: dict[str, Format] = {}


def register(fmt: Format) -> None:
    FORMATS[fmt.name] = fmt


register(
    Format(
        "wide",
        "rubias-style wide CSV (two columns per locus: L, L.1)",
        (".csv",),
        read_wide,
        write_wide,
    )
)


def readable_formats() -> list[str]:
    return sorted(FORMATS)


def writable_formats() -> list[str]:
    return sorted(name for name, fmt in FORMATS.items() if fmt.write is not None)


def detect_format(path: str | os.PathLike) -> str:
    """The format of ``path`` from its extension, looking at the header for ``.csv``/``.txt``."""
    name = Path(path).name.lower()
    candidates = [
        fmt.name for fmt in FORMATS.values() if any(name.endswith(ext) for ext in fmt.extensions)
    ]
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


def _sniff(path: str | os.PathLike, candidates: list[str]) -> str | None:
    """Pick among formats sharing an extension by their header line."""
    from dnatrack.formats.wide import locus_pairs

    try:
        with open(path, encoding="utf-8-sig") as handle:
            first = handle.readline()
    except FileNotFoundError:
        return candidates[0] if len(candidates) == 1 else None
    delimiter = "\t" if first.count("\t") > first.count(",") else ","
    header = [cell.strip().strip('"') for cell in first.rstrip("\r\n").split(delimiter)]
    if "wide" in candidates and locus_pairs(header):
        return "wide"
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
    table: GenotypeTable, path: str | os.PathLike, format: str | None = None, **options
) -> None:
    """Write ``table`` in a writable format (detected from the extension when ``None``)."""
    name = format or detect_format(path)
    fmt = FORMATS.get(name)
    if fmt is None or fmt.write is None:
        raise ValueError(f"cannot write format {name!r}; writable: {', '.join(writable_formats())}")
    fmt.write(table, path, **options)


__all__ = [
    "FORMATS",
    "Format",
    "GenotypeFormatError",
    "detect_format",
    "read_genotypes",
    "readable_formats",
    "writable_formats",
    "write_genotypes",
]
