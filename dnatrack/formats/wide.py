"""Wide CSV, as used by rubias: one row per sample, two columns per locus (``L`` and ``L.1``).

Recognised metadata columns (any case): ``indiv`` (or ``sample``, ``sample_id``, ``id``) for the
sample id, ``collection`` (or ``population``, ``pop``), ``repunit``, ``sample_type``
(``reference`` or ``mixture``), ``group`` (or ``seizure``), ``lat``/``lon``. Every other column
that is not part of a locus pair is ignored. For ``mixture`` rows the ``collection`` is the
mixture sample, so it becomes the group. An empty cell, ``NA``, ``0``, ``-9`` or ``-999`` is a
missing allele.
"""

from __future__ import annotations

import csv
import operator
import os
from pathlib import Path

import numpy as np

from dnatrack.errors import GenotypeFormatError
from dnatrack.files import replace_atomically
from dnatrack.formats._builder import AlleleParser, TableBuilder
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

MISSING_CODES = ("NA", "0", "-9", "-1", "-999")

_ID_COLUMNS = ("indiv", "sample", "sample_id", "id")
_ALIASES = {
    "population": ("collection", "population", "pop"),
    "repunit": ("repunit",),
    "group": ("group", "seizure"),
    "lat": ("lat", "latitude"),
    "lon": ("lon", "longitude"),
    "sample_type": ("sample_type",),
}


def _find_column(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    for name in names:
        if name in lowered:
            return lowered.index(name)
    return None


def locus_pairs(header: list[str]) -> list[tuple[str, int]]:
    """``(locus, first column)`` for every column ``L`` directly followed by ``L.1``."""
    pairs = []
    for i in range(len(header) - 1):
        name = header[i].strip()
        if name and header[i + 1].strip() == f"{name}.1":
            pairs.append((name, i))
    return pairs


def _check_allele_columns(header: list[str], pairs: list[tuple[str, int]], path) -> None:
    """Refuse allele columns that would otherwise be silently ignored: a third column of a
    locus (``L.2``) and a second column without its first (``L.1`` not after ``L``)."""
    paired = {column for _, first in pairs for column in (first, first + 1)}
    loci = {name for name, _ in pairs}
    for column, raw in enumerate(header):
        name = raw.strip()
        base, dot, suffix = name.rpartition(".")
        if column in paired or not dot or not suffix.isdigit() or not base:
            continue
        if int(suffix) >= 2 and (base in loci or f"{base}.1" in header):
            raise GenotypeFormatError(
                f"three alleles at locus {base!r}: extra column {name!r}",
                path=path, line=1, field=name,
            )
        if int(suffix) == 1:
            raise GenotypeFormatError(
                f"column {name!r} has no first-allele column {base!r} just before it",
                path=path, line=1, field=name,
            )


def read_wide(
    path: str | os.PathLike,
    *,
    panel: Panel | None = None,
    duplicate_ids: str = "error",
) -> GenotypeTable:
    """Read a rubias-style wide CSV file. See the module docstring for the columns."""
    path = Path(path)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise GenotypeFormatError("empty file", path=path, line=1)
        pairs = locus_pairs(header)
        if not pairs:
            raise GenotypeFormatError(
                "no locus columns found (expected pairs of columns named L and L.1)",
                path=path,
                line=1,
            )
        _check_allele_columns(header, pairs, path)
        id_column = _find_column(header, _ID_COLUMNS)
        if id_column is None:
            raise GenotypeFormatError(
                f"no sample id column (one of {', '.join(_ID_COLUMNS)})", path=path, line=1
            )
        meta = {key: _find_column(header, names) for key, names in _ALIASES.items()}
        builder = TableBuilder(
            path, [name for name, _ in pairs], panel=panel, duplicate_ids=duplicate_ids,
            header_line=1,
        )
        parser = AlleleParser(MISSING_CODES, path=path)
        allele_cells = operator.itemgetter(*(column + k for _, column in pairs for k in (0, 1)))
        allele_fields = [locus for locus, _ in pairs for _ in (0, 1)]
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                raise GenotypeFormatError(
                    f"{len(row)} fields where the header has {len(header)}", path=path, line=line
                )
            alleles = parser.row(allele_cells(row), allele_fields, line=line)
            builder.add(row[id_column], alleles, line, **_metadata(row, meta, path, line))
    return builder.build()


def _metadata(row: list[str], meta: dict, path, line: int) -> dict:
    values: dict = {}
    collection = row[meta["population"]].strip() if meta["population"] is not None else None
    is_mixture = (
        meta["sample_type"] is not None and row[meta["sample_type"]].strip().lower() == "mixture"
    )
    if collection is not None:
        if is_mixture:
            values["group"] = collection
            values["population"] = ""
        else:
            values["population"] = collection
    if meta["repunit"] is not None:
        values["repunit"] = row[meta["repunit"]].strip()
    if meta["group"] is not None:
        values["group"] = row[meta["group"]].strip()
    for key in ("lat", "lon"):
        if meta[key] is not None:
            text = row[meta[key]].strip()
            try:
                values[key] = float(text) if text not in ("", "NA") else float("nan")
            except ValueError:
                raise GenotypeFormatError(
                    f"{key} {text!r} is not a number", path=path, line=line, field=key
                ) from None
    return values


def write_wide(table: GenotypeTable, path: str | os.PathLike) -> None:
    """Write ``table`` as a rubias-style wide CSV (missing alleles as empty cells)."""
    header = ["sample_type", "repunit", "collection", "indiv"]
    if table.group is not None:
        header.append("group")
    if table.lat is not None:
        header += ["lat", "lon"]
    for locus in table.loci:
        header += [locus, f"{locus}.1"]
    with replace_atomically(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for i in range(table.n_profiles):
            population = table.population[i] if table.population is not None else ""
            row = [
                "reference" if population else "mixture",
                table.repunit[i] if table.repunit is not None else "",
                population or (table.group[i] if table.group is not None else ""),
                table.profile_ids[i],
            ]
            if table.group is not None:
                row.append(table.group[i])
            if table.lat is not None:
                row += [_coordinate(table.lat[i]), _coordinate(table.lon[i])]
            for a, b in table.alleles[i]:
                row += ["", ""] if a == MISSING else [int(a), int(b)]
            writer.writerow(row)


def _coordinate(value: float) -> str:
    return "" if np.isnan(value) else repr(float(value))
