"""Shared machinery for readers: collect rows, check them, build one table or fail whole.

Readers parse text into :class:`TableBuilder` rows, which check every allele as it arrives and
raise :class:`~dnatrack.errors.GenotypeFormatError` naming the file, line and field. Nothing is
returned until the whole file has been read, so a bad file is never half-imported.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from dnatrack.errors import GenotypeFormatError, UnwritableValueError
from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel

DUPLICATE_POLICIES = ("error", "number")
_MAX_ALLELE = int(np.iinfo(np.int16).max)


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
    if value <= 0 or value > _MAX_ALLELE:
        raise GenotypeFormatError(
            f"allele {text!r} is out of range (1..32767, or a missing code)",
            path=path,
            line=line,
            field=field,
        )
    return value


class AlleleParser:
    """:func:`parse_allele` with a memory of the texts already parsed.

    A file holds few distinct allele texts, repeated on every row: each is parsed (and
    checked) once, so a reader's cost per cell is one dictionary lookup. Texts that fail are
    never remembered, so every bad cell raises with its own line and field.
    """

    def __init__(self, missing: Sequence[str], *, path) -> None:
        self.missing = tuple(missing)
        self.path = path
        self._parsed: dict[str, int] = {}

    def __call__(self, text: str, *, line: int, field: str) -> int:
        value = self._parsed.get(text)
        if value is None:
            value = parse_allele(text, self.missing, path=self.path, line=line, field=field)
            self._parsed[text] = value
        return value

    def row(self, cells: Sequence[str], fields: Sequence[str], *, line: int) -> list[int]:
        """The alleles of ``cells``, the k-th cell reported as ``fields[k]`` when it is bad."""
        values = list(map(self._parsed.get, cells))
        if None in values:
            values = [
                self(text, line=line, field=name) for text, name in zip(cells, fields, strict=True)
            ]
        return values


def check_writable(
    table: GenotypeTable, format: str, cannot_hold: Callable[[str], bool], reason: str
) -> None:
    """Raise :class:`UnwritableValueError` for the first profile id, locus or population of
    ``table`` that ``format`` ``cannot_hold``; ``reason`` says why, e.g. "GENEPOP names cannot
    hold commas"."""
    checks = [
        ("profile id", table.profile_ids, table.profile_ids),
        ("locus", table.loci, [None] * table.n_loci),
    ]
    if table.population is not None:
        checks.append(("population", table.population, table.profile_ids))
    for kind, values, owners in checks:
        for value, owner in zip(values, owners, strict=True):
            if cannot_hold(value):
                raise UnwritableValueError(
                    f"{kind} {value!r}: {reason}",
                    format=format,
                    field=kind,
                    value=str(value),
                    profile_id=None if owner is None else str(owner),
                )


def check_panel_allele(
    panel: Panel | None, locus: str, allele: int, *, path, line: int, field: str | None = None
) -> None:
    """Raise :class:`GenotypeFormatError` when ``allele`` is not acceptable at ``locus``.

    ``field`` defaults to the locus name; missing alleles and ``panel=None`` always pass.
    """
    if panel is None or allele == MISSING:
        return
    problem = panel.allele_problem(locus, allele)
    if problem:
        raise GenotypeFormatError(problem, path=path, line=line, field=field or locus)


def read_nonblank_lines(path: str | os.PathLike) -> list[tuple[int, str]]:
    """The non-blank lines of a text file as ``(1-based line number, text without newline)``.

    Raises :class:`GenotypeFormatError` for an empty (or all-blank) file and for a file that
    is not UTF-8 text.
    """
    try:
        with open(path, encoding="utf-8-sig") as handle:
            lines = [
                (number, text.rstrip("\r\n"))
                for number, text in enumerate(handle, start=1)
                if text.strip()
            ]
    except UnicodeDecodeError as error:
        raise GenotypeFormatError(
            f"not a UTF-8 text file (undecodable byte at offset {error.start})", path=path
        ) from None
    if not lines:
        raise GenotypeFormatError("empty file", path=path, line=1)
    return lines


def guess_delimiter(header_line: str) -> str:
    """Tab when the header line has more tabs than commas, else comma."""
    return "\t" if header_line.count("\t") > header_line.count(",") else ","


@dataclass
class DelimitedTable:
    """A delimited text table: header cells and data rows with their line numbers.

    Attributes
    ----------
    header : list of str
        Header cells, stripped, trailing empty cells removed.
    header_line : int
        1-based line number of the header.
    rows : list of (int, list of str)
        ``(line number, cells)`` for every non-blank data row, as many cells as the header;
        cells are stripped.
    delimiter : str
        ``","`` or ``"\t"``.
    """

    header: list[str]
    header_line: int
    rows: list[tuple[int, list[str]]] = field(default_factory=list)
    delimiter: str = ","

    def column(self, names: Sequence[str]) -> int | None:
        """Index of the first header cell equal to one of ``names`` (case and spacing
        ignored), or ``None``."""
        normalised = [normalise_header(cell) for cell in self.header]
        for name in names:
            if name in normalised:
                return normalised.index(name)
        return None


def normalise_header(cell: str) -> str:
    """A header cell lower-cased with runs of whitespace collapsed to one space."""
    return " ".join(cell.lower().split())


def read_delimited(path: str | os.PathLike) -> DelimitedTable:
    """Read a comma- or tab-separated table (delimiter guessed from the header line).

    Blank lines are skipped. A row with more cells than the header is accepted only when the
    extra cells are empty (spreadsheet exports often pad rows); any other width mismatch is a
    ragged row and raises :class:`GenotypeFormatError` naming its line.
    """
    lines = read_nonblank_lines(path)
    header_line, first = lines[0]
    delimiter = guess_delimiter(first)
    table = DelimitedTable([], header_line, delimiter=delimiter)
    with open(path, newline="", encoding="utf-8-sig") as handle:
        reader = csv.reader(handle, delimiter=delimiter)
        header = None
        for cells in reader:
            line = reader.line_num
            cells = [cell.strip() for cell in cells]
            if not any(cells):
                continue
            if header is None:
                header = _trim_trailing_empty(cells)
                table.header = header
                table.header_line = line
                continue
            if len(cells) > len(header) and not any(cells[len(header):]):
                cells = cells[: len(header)]
            if len(cells) != len(header):
                raise GenotypeFormatError(
                    f"{len(cells)} fields where the header (line {table.header_line}) has "
                    f"{len(header)}",
                    path=path,
                    line=line,
                )
            table.rows.append((line, cells))
    return table


def _trim_trailing_empty(cells: list[str]) -> list[str]:
    end = len(cells)
    while end and not cells[end - 1]:
        end -= 1
    return cells[:end]


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
    header_line
        Line of the header naming the loci (for errors about locus names).
    locus_lines
        One line number per locus, for formats that name loci on different lines (GENEPOP,
        VCF); overrides ``header_line`` in errors about a locus.
    """

    def __init__(
        self,
        path: str | os.PathLike | None,
        loci: Sequence[str],
        *,
        panel: Panel | None = None,
        duplicate_ids: str = "error",
        header_line: int | None = None,
        locus_lines: Sequence[int] | None = None,
    ) -> None:
        if duplicate_ids not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicate_ids must be one of {DUPLICATE_POLICIES}")
        self.path = path
        self.loci = [str(locus).strip() for locus in loci]
        self.panel = panel
        self.duplicate_ids = duplicate_ids
        if locus_lines is not None and len(locus_lines) != len(self.loci):
            raise ValueError("locus_lines needs one line number per locus")
        lines = list(locus_lines) if locus_lines is not None else [header_line] * len(self.loci)
        seen: dict[str, int | None] = {}
        for locus, line in zip(self.loci, lines, strict=True):
            if not locus:
                raise GenotypeFormatError("empty locus name", path=path, line=line)
            if locus in seen:
                first = f" (first on line {seen[locus]})" if seen[locus] != line else ""
                raise GenotypeFormatError(
                    f"locus {locus!r} appears twice{first}", path=path, line=line, field=locus
                )
            seen[locus] = line
            if panel is not None and locus not in panel:
                raise GenotypeFormatError(
                    f"unknown locus {locus!r} (not in panel {panel.name!r})",
                    path=path,
                    line=line,
                    field=locus,
                )
        if panel is not None:
            # Size ranges per column, so a whole profile is checked with one comparison.
            self._min_size = np.array([panel.locus(x).min_size for x in self.loci], np.int64)
            self._max_size = np.array([panel.locus(x).max_size for x in self.loci], np.int64)
        self._rows: list[np.ndarray] = []
        self._ids: list[str] = []
        self._id_lines: dict[str, int] = {}
        self._occurrences: dict[str, int] = {}
        self.population: list[str] = []
        self.repunit: list[str] = []
        self.group: list[str] = []
        self.lat: list[float] = []
        self.lon: list[float] = []

    @property
    def n_profiles(self) -> int:
        return len(self._ids)

    def check_allele(self, locus_index: int, allele: int, line: int) -> None:
        check_panel_allele(self.panel, self.loci[locus_index], allele, path=self.path, line=line)

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
        # A copy: readers reuse one buffer for every row.
        alleles = np.array(alleles, dtype=np.int64).reshape(len(self.loci), 2)
        if self.panel is not None:
            outside = (alleles != MISSING) & (
                (alleles < self._min_size[:, None]) | (alleles > self._max_size[:, None])
            )
            if outside.any():
                j, k = np.argwhere(outside)[0]
                self.check_allele(int(j), int(alleles[j, k]), line)
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


@dataclass
class _SampleRows:
    line: int
    metadata: dict[str, str]
    genotypes: dict[str, tuple[int, int]] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)


class SampleLocusRows:
    """Collects genotypes given one sample × locus per row (long CSV, GeneMapper tables).

    Samples and loci keep their order of first appearance; a sample with no row for a locus
    is untyped there. A repeated sample × locus row, and a sample whose metadata (population,
    repunit, group) differ between its rows, are errors naming both lines.

    Parameters
    ----------
    path
        The file being read (for error messages).
    panel
        When given, unknown loci and alleles outside a locus's size range are errors.
    duplicate_ids
        Passed to :class:`TableBuilder`. Rows with the same sample id are one sample here, so
        repeated ids cannot arise; the option exists so every reader takes it.
    """

    def __init__(
        self, path: str | os.PathLike, *, panel: Panel | None = None, duplicate_ids: str = "error"
    ) -> None:
        if duplicate_ids not in DUPLICATE_POLICIES:
            raise ValueError(f"duplicate_ids must be one of {DUPLICATE_POLICIES}")
        self.path = path
        self.panel = panel
        self.duplicate_ids = duplicate_ids
        self._samples: dict[str, _SampleRows] = {}
        self._locus_lines: dict[str, int] = {}

    def add(
        self,
        sample_id: str,
        locus: str,
        alleles: tuple[int, int],
        line: int,
        *,
        locus_field: str = "locus",
        **metadata: str,
    ) -> None:
        """Record the genotype of ``sample_id`` at ``locus`` read on ``line``.

        ``locus_field`` names the locus column in errors about the locus name; ``metadata``
        are per-sample values (``population``, ``repunit``, ``group``).
        """
        sample_id, locus = sample_id.strip(), locus.strip()
        if not sample_id:
            raise GenotypeFormatError("empty sample id", path=self.path, line=line)
        if not locus:
            raise GenotypeFormatError(
                "empty locus name", path=self.path, line=line, field=locus_field
            )
        if locus not in self._locus_lines:
            if self.panel is not None and locus not in self.panel:
                raise GenotypeFormatError(
                    f"unknown locus {locus!r} (not in panel {self.panel.name!r})",
                    path=self.path,
                    line=line,
                    field=locus_field,
                )
            self._locus_lines[locus] = line
        for allele in alleles:
            check_panel_allele(self.panel, locus, allele, path=self.path, line=line)
        sample = self._samples.setdefault(sample_id, _SampleRows(line, metadata))
        if locus in sample.genotypes:
            raise GenotypeFormatError(
                f"sample {sample_id!r} has a second row for locus {locus!r} "
                f"(first on line {sample.lines[locus]})",
                path=self.path,
                line=line,
                field=locus_field,
            )
        for name, value in metadata.items():
            if sample.metadata.get(name) != value:
                raise GenotypeFormatError(
                    f"{name} {value!r} of sample {sample_id!r} differs from "
                    f"{sample.metadata.get(name)!r} on line {sample.line}",
                    path=self.path,
                    line=line,
                    field=name,
                )
        sample.genotypes[locus] = alleles
        sample.lines[locus] = line

    def build(self) -> GenotypeTable:
        """The table of every sample at every locus seen; an error when there were no rows."""
        if not self._samples:
            raise GenotypeFormatError("no genotype rows after the header", path=self.path)
        loci = list(self._locus_lines)
        builder = TableBuilder(
            self.path,
            loci,
            panel=self.panel,
            duplicate_ids=self.duplicate_ids,
            locus_lines=list(self._locus_lines.values()),
        )
        alleles = np.full((len(loci), 2), MISSING, dtype=np.int64)
        for sample_id, sample in self._samples.items():
            alleles[:] = MISSING
            for j, locus in enumerate(loci):
                if locus in sample.genotypes:
                    alleles[j] = sample.genotypes[locus]
            builder.add(sample_id, alleles, sample.line, **sample.metadata)
        return builder.build()
