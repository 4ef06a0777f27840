"""Shared machinery for readers: collect rows, check them, build one table or fail whole.

Readers parse text into :class:`TableBuilder` rows, which check every allele as it arrives and
raise :class:`~dnatrack.errors.GenotypeFormatError` naming the file, line and field. Nothing is
returned until the whole file has been read, so a bad file is never half-imported.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from dnatrack.errors import GenotypeFormatError
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

DUPLICATE_POLICIES = ("error", "number")


def parse_allele(
    text: str,
    missing: Sequence[str],
    *,
    path,
    line: int,
    field: str,
) -> int:
    """An allele from its text: ``MISSING`` for any of ``missing`` (or empty), else an int > 0."""
    text = text.strip()
    if text == "" or text in missing:
        return MISSING
    try:
        value = float(text)
    except ValueError:
        raise GenotypeFormatError(
            f"non-numeric allele {text!r}", path=path, line=line, field=field
        ) from None
    if not value.is_integer():
        raise GenotypeFormatError(
            f"allele {text!r} is not a whole number", path=path, line=line, field=field
        )
    value = int(value)
    if value <= 0 or value > np.iinfo(np.int16).max:
        raise GenotypeFormatError(
            f"allele {text!r} is out of range (1..32767, or a missing code)",
            path=path,
            line=line,
            field=field,
        )
    return value


class TableBuilder:
    """Accumulates profiles read from one file and turns them into a :class:`GenotypeTable`.

    Parameters
    ----------
    path
        The file being read (for error messages).
    loci
        Locus names in column order.
    panel
        When given, unknown loci and alleles outside a locus's size range are errors.
    duplicate_ids
        ``"error"`` (default) rejects a repeated sample id; ``"number"`` keeps the first and
        renames later ones ``id_2``, ``id_3``… (for files such as GENEPOP whose names are
        often population labels rather than sample ids).
    """

    def __init__(
        self,
        path: str | os.PathLike | None,
        loci: Sequence[str],
        *,
        panel: Panel | None = None,
        duplicate_ids: str = "error",
        header_line: int | None = None,
    ) -> None:
        if duplicate_ids not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicate_ids must be one of {DUPLICATE_POLICIES}")
        self.path = path
        self.loci = [str(locus).strip() for locus in loci]
        self.panel = panel
        self.duplicate_ids = duplicate_ids
        for locus in self.loci:
            if not locus:
                raise GenotypeFormatError("empty locus name", path=path, line=header_line)
        seen: set[str] = set()
        for locus in self.loci:
            if locus in seen:
                raise GenotypeFormatError(
                    f"locus {locus!r} appears twice", path=path, line=header_line, field=locus
                )
            seen.add(locus)
            if panel is not None and locus not in panel:
                raise GenotypeFormatError(
                    f"unknown locus {locus!r} (not in panel {panel.name!r})",
                    path=path,
                    line=header_line,
                    field=locus,
                )
        self._rows: list[np.ndarray] = []
        self._ids: list[str] = []
        self._id_lines: dict[str, int] = {}
        self._occurrences: dict[str, int] = {}
        self.population: list[str] = []
        self.repunit: list[str] = []
        self.group: list[str] = []
        self.lat: list[float] = []
        self.lon: list[float] = []

    def check_allele(self, locus_index: int, allele: int, line: int) -> None:
        if self.panel is None or allele == MISSING:
            return
        locus = self.loci[locus_index]
        problem = self.panel.allele_problem(locus, allele)
        if problem:
            raise GenotypeFormatError(problem, path=self.path, line=line, field=locus)

    def add(
        self,
        sample_id: str,
        alleles: np.ndarray | Sequence[Sequence[int]],
        line: int,
        *,
        population: str | None = None,
        repunit: str | None = None,
        group: str | None = None,
        lat: float | None = None,
        lon: float | None = None,
    ) -> str:
        """Add one profile (alleles shape ``(n_loci, 2)``); returns the id actually used."""
        sample_id = str(sample_id).strip()
        if not sample_id:
            raise GenotypeFormatError("empty sample id", path=self.path, line=line)
        alleles = np.asarray(alleles, dtype=np.int64).reshape(len(self.loci), 2)
        for j in range(len(self.loci)):
            for allele in alleles[j]:
                self.check_allele(j, int(allele), line)
        sample_id = self._unique_id(sample_id, line)
        self._ids.append(sample_id)
        self._id_lines[sample_id] = line
        self._rows.append(alleles)
        for name, value in (
            ("population", population),
            ("repunit", repunit),
            ("group", group),
            ("lat", lat),
            ("lon", lon),
        ):
            if value is not None:
                getattr(self, name).append(value)
        return sample_id

    def _unique_id(self, sample_id: str, line: int) -> str:
        if sample_id not in self._id_lines:
            self._occurrences[sample_id] = 1
            return sample_id
        if self.duplicate_ids == "error":
            raise GenotypeFormatError(
                f"duplicate sample id {sample_id!r} (first on line {self._id_lines[sample_id]})",
                path=self.path,
                line=line,
                field="sample id",
            )
        count = self._occurrences[sample_id]
        candidate = sample_id
        while candidate in self._id_lines:
            count += 1
            candidate = f"{sample_id}_{count}"
        self._occurrences[sample_id] = count
        return candidate

    def line_of(self, sample_id: str) -> int:
        return self._id_lines[sample_id]

    def build(self) -> GenotypeTable:
        """The finished table; metadata columns are kept only if every profile has them."""
        n = len(self._ids)
        if n:
            alleles = np.stack(self._rows)
        else:
            alleles = np.empty((0, len(self.loci), 2), dtype=np.int16)

        def complete(values):
            return values if values and len(values) == n else None

        return GenotypeTable(
            alleles,
            self._ids,
            self.loci,
            population=complete(self.population),
            repunit=complete(self.repunit),
            group=complete(self.group),
            lat=complete(self.lat),
            lon=complete(self.lon),
        )
