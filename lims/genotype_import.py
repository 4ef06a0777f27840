"""Importing genotype files into the LIMS: all profiles or none.

A file (GeneMapper export, long CSV or wide CSV) is read with
:func:`dnatrack.formats.read_genotypes` against the panel. The reader stops at the first
malformed line (unknown locus, non-numeric or off-panel allele, three alleles at a locus…),
so the import records that problem, takes it out of a working copy of the file and reads
again, until the copy reads or the problem is one the rest of the file cannot be read
without (see :func:`_read_every_problem`). What could be read is then checked against the
LIMS: sample ids that are not barcodes of samples the analyst may add results to, samples
that already have a live profile on the panel, profiles with no typed locus. Every problem
is reported, by line and field; any problem means nothing is written. Otherwise the file
(byte for byte, with its SHA-256) and all its profiles are added in the caller's
transaction.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats import detect_format, locus_pairs, read_genotypes
from dnatrack.formats._builder import guess_delimiter, read_delimited
from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel
from lims.access import visible
from lims.database import unstorable_text_problem
from lims.genotyping import create_profile
from lims.models import GenotypeImport, GenotypeProfile, Sample, User

IMPORT_FORMATS = ("genemapper", "long", "wide")

#: Problems in the file's format gathered before giving up on listing more.
MAX_FORMAT_PROBLEMS = 100
#: Data lines read at a time while looking for the next problem in a row.
_WINDOW = 100


@dataclass(frozen=True)
class ImportProblem:
    """One reason an import was refused: where (file line, field, sample) and what."""

    line: int | None
    field: str | None
    sample: str | None
    message: str

    def as_dict(self) -> dict:
        return asdict(self)


class GenotypeImportError(ValueError):
    """An import refused as a whole; ``problems`` lists every reason found."""

    def __init__(self, filename: str, problems: list[ImportProblem]) -> None:
        self.problems = problems
        first = problems[0]
        where = f"line {first.line}: " if first.line is not None else ""
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{filename}: nothing imported; {where}{first.message}{more}")


def _run_problem(run: str) -> str | None:
    """Why ``run`` cannot be stored as the run of an import and its profiles, or ``None``."""
    limit = GenotypeImport.__table__.c.run.type.length
    if len(run) > limit:
        return f"must be at most {limit} characters"
    return unstorable_text_problem(run)


def _oversized_fields(content: bytes) -> list[ImportProblem]:
    """Every field longer than Python's CSV reader takes (``csv.field_size_limit()``, 131,072
    characters), by line and column. No reader gets past such a field, so these are the
    problems reported when there are any; the column is named by the header cell above the
    first overlong cell of the line (or counted, for an overlong header)."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        return []  # the reading reports the file as not UTF-8 text
    lines = list(io.StringIO(text, newline=""))  # the physical lines the reader counts
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        return []
    delimiter = guess_delimiter(first)
    limit = csv.field_size_limit()
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] | None = None
    problems = []
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return problems
        except csv.Error:
            line = reader.line_num
            pieces = lines[line - 1].split(delimiter) if line <= len(lines) else []
            column = next((i for i, piece in enumerate(pieces) if len(piece) > limit), None)
            if column is None:
                field = None
            elif header is not None and column < len(header) and header[column].strip():
                field = header[column].strip()
            else:
                field = f"column {column + 1}"
            problems.append(
                ImportProblem(
                    line, field, None, f"a field longer than {limit:,} characters cannot be read"
                )
            )
            continue
        if header is None and any(cell.strip() for cell in cells):
            header = cells


def _first_lines(path: Path, sample_ids: list[str]) -> dict[str, int]:
    """The first line of the file on which each sample id appears as a cell."""
    wanted = set(sample_ids)
    lines: dict[str, int] = {}
    for line, cells in read_delimited(path).rows:
        for cell in cells:
            if cell in wanted and cell not in lines:
                lines[cell] = line
    return lines


def _typed_alleles(table: GenotypeTable, row: int) -> dict[str, list[int]]:
    return {
        locus: [int(a), int(b)]
        for locus, (a, b) in zip(table.loci, table.alleles[row], strict=True)
        if a >= 0
    }


def _format_of(path: Path, file_format: str | None) -> str:
    try:
        name = file_format or detect_format(path)
    except ValueError as error:
        raise GenotypeImportError(
            path.name, [ImportProblem(None, None, None, str(error))]
        ) from None
    if name not in IMPORT_FORMATS:
        problem = ImportProblem(
            None,
            "format",
            None,
            f"format {name!r} cannot be imported; use one of {', '.join(IMPORT_FORMATS)}",
        )
        raise GenotypeImportError(path.name, [problem])
    return name


@dataclass
class _Reading:
    """What :func:`_read_every_problem` found: the table of what could be read (``None``
    when the header itself is at fault), the problems, and the original text of every data
    line that had to be blanked in part or whole."""

    table: GenotypeTable | None = None
    problems: list[ImportProblem] = field(default_factory=list)
    blanked: dict[int, str] = field(default_factory=dict)
    delimiter: str = ","

    def samples_blanked(self) -> set[str]:
        """Sample ids of the table found on a line that was blanked in part or whole."""
        ids = set(self.table.profile_ids) if self.table is not None else set()
        cells = {
            cell.strip()
            for text in self.blanked.values()
            for cell in _split_line(text, self.delimiter)[0]
        }
        return ids & cells


def _split_line(line: str, delimiter: str) -> tuple[list[str], str]:
    """The cells of one physical line and its line ending."""
    text = line.rstrip("\r\n")
    return next(csv.reader([text], delimiter=delimiter), []), line[len(text) :]


def _join_line(cells: list[str], delimiter: str, ending: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(cells)
    return buffer.getvalue() + ending


def _field_columns(header: list[str], name: str | None) -> list[int]:
    """The columns of ``name`` in a wide header: the column, and its ``.1`` partner."""
    cells = [cell.strip() for cell in header]
    if name is None or name not in cells:
        return []
    first = cells.index(name)
    partner = first + 1 < len(cells) and cells[first + 1] == f"{name}.1"
    return [first, first + 1] if partner else [first]


def _without_columns(lines: list[str], columns: list[int], delimiter: str) -> None:
    for number, text in enumerate(lines):
        if text.strip():
            cells, ending = _split_line(text, delimiter)
            kept = [cell for i, cell in enumerate(cells) if i not in columns]
            lines[number] = _join_line(kept, delimiter, ending)


def _blank(lines: list[str], line: int, columns: list[int], delimiter: str) -> None:
    """Empty the ``columns`` of ``line`` (so the rest of the row is still read), or the whole
    line when there are none or they are empty already."""
    cells, ending = _split_line(lines[line - 1], delimiter)
    if any(cells[i].strip() for i in columns if i < len(cells)):
        cells = ["" if i in columns else cell for i, cell in enumerate(cells)]
        lines[line - 1] = _join_line(cells, delimiter, ending)
    else:
        lines[line - 1] = ending


def _attempt(
    path: Path, lines: list[str], name: str, panel: Panel, keep: range | None
) -> tuple[GenotypeTable | None, GenotypeFormatError | None]:
    """Write the working copy and read it: the table, or the first problem. With ``keep``,
    the copy holds only the header and the lines in ``keep``, the ones between emptied (so
    every line keeps its number) and those after left out."""
    if keep is not None:
        first = next(n for n, line in enumerate(lines, start=1) if line.strip())
        lines = [
            line if number == first or number in keep else line[len(line.rstrip("\r\n")) :]
            for number, line in enumerate(lines[: keep.stop - 1], start=1)
        ]
    path.write_text("".join(lines), encoding="utf-8", newline="")
    try:
        return read_genotypes(path, format=name, panel=panel), None
    except GenotypeFormatError as error:
        return None, error


def _read_every_problem(path: Path, name: str, panel: Panel) -> _Reading:
    """Read ``path``, gathering every format problem instead of stopping at the first.

    After each problem the working copy at ``path`` is changed so that the reader gets past
    it, keeping every line where it was: a data row is blanked (in a wide file only the cells
    of the locus or column at fault, so the rest of the row is still read), and a wide
    header's faulty column (an unknown locus…) is taken out of every row. A problem in any
    other header, or one without a line, ends the reading: nothing below it can be read.
    At most :data:`MAX_FORMAT_PROBLEMS` are gathered.

    After a problem in a data row, the rows after it are read :data:`_WINDOW` at a time (with
    the header), so that each problem costs a short read rather than the whole file; the
    whole file is read again at the end, for problems between rows of different windows.
    """
    reading = _Reading()
    content = path.read_bytes()
    try:
        lines = list(io.StringIO(content.decode("utf-8"), newline=""))
    except UnicodeDecodeError as error:
        # As the readers say it (a wide file's reader would fail without a line).
        reason = f"not a UTF-8 text file (undecodable byte at offset {error.start})"
        reading.problems.append(ImportProblem(None, None, None, reason))
        return reading
    header_line = next((n for n, line in enumerate(lines, start=1) if line.strip()), None)
    if header_line is not None and name != "wide":
        reading.delimiter = guess_delimiter(lines[header_line - 1])
    window_start = None  # None: the whole file
    while True:
        keep = None if window_start is None else range(window_start, window_start + _WINDOW)
        table, error = _attempt(path, lines, name, panel, keep)
        line = None if error is None else error.line
        if keep is not None and line not in keep:
            # This window reads (or fails only outside its rows): on to the next, and after
            # the last one, the whole file.
            window_start += _WINDOW
            if window_start > len(lines):
                window_start = None
            continue
        if error is None:
            reading.table = table
            return reading
        if line is None and reading.problems:
            return reading  # e.g. "no genotype rows": every row was taken out
        reading.problems.append(ImportProblem(line, error.field, None, error.reason))
        if line is None or not 1 <= line <= len(lines) or not lines[line - 1].strip():
            return reading
        if len(reading.problems) == MAX_FORMAT_PROBLEMS:
            reading.problems.append(
                ImportProblem(
                    None,
                    None,
                    None,
                    f"stopped after {MAX_FORMAT_PROBLEMS} problems in the file's format; "
                    "fix these and import it again",
                )
            )
            return reading
        header, _ = _split_line(lines[header_line - 1], reading.delimiter)
        columns = _field_columns(header, error.field) if name == "wide" else []
        if line == header_line:
            kept_header = [cell for i, cell in enumerate(header) if i not in columns]
            if not columns or not locus_pairs(kept_header):
                return reading  # no column to take out, or no locus would be left
            _without_columns(lines, columns, reading.delimiter)
        else:
            reading.blanked.setdefault(line, lines[line - 1])
            _blank(lines, line, columns, reading.delimiter)
            window_start = window_start or line


def _check_samples(
    session: Session,
    table: GenotypeTable,
    lines: dict[str, int],
    panel: Panel,
    analyst: User,
    partly_read: set[str],
) -> tuple[dict[str, Sample], list[ImportProblem]]:
    """The samples the table's ids name (by barcode), and the problems with them: ids that
    are not barcodes of samples the analyst may add results to, samples with a live profile
    on the panel, and profiles with no typed locus (not asked of ``partly_read`` samples,
    whose typed loci may be on lines taken out for format problems)."""
    barcodes = [str(sample_id) for sample_id in table.profile_ids]
    samples = {
        sample.barcode: sample
        for sample in session.scalars(
            sa.select(Sample).where(
                Sample.barcode.in_(barcodes), visible(Sample, analyst, for_writing=True)
            )
        )
    }
    live = dict(
        session.execute(
            sa.select(Sample.barcode, GenotypeProfile.id)
            .join(GenotypeProfile, GenotypeProfile.sample_id == Sample.id)
            .where(
                Sample.barcode.in_(list(samples)),
                GenotypeProfile.panel == panel.name,
                GenotypeProfile.superseded.is_(False),
                GenotypeProfile.state != "rejected",
            )
        ).all()
    )
    problems = []
    for row, barcode in enumerate(barcodes):
        line = lines.get(barcode)
        if barcode not in samples:
            problems.append(
                ImportProblem(
                    line,
                    "sample",
                    barcode,
                    "unknown sample barcode (no sample of a case you may add results to)",
                )
            )
        elif barcode in live:
            problems.append(
                ImportProblem(
                    line,
                    "sample",
                    barcode,
                    f"duplicate profile: the sample already has profile {live[barcode]} on "
                    f"panel {panel.name}; correct that profile instead",
                )
            )
        if not table.typed[row].any() and barcode not in partly_read:
            problems.append(ImportProblem(line, "alleles", barcode, "no locus is typed"))
    return samples, problems


def import_genotypes(
    session: Session,
    content: bytes,
    *,
    filename: str,
    panel: Panel,
    analyst: User,
    file_format: str | None = None,
    run: str | None = None,
) -> tuple[GenotypeImport, list[GenotypeProfile]]:
    """Check a genotype file and add it and its profiles to ``session`` (not committed).

    Parameters
    ----------
    content
        The file's bytes.
    filename
        Its name as uploaded (the extension helps detect the format).
    panel
        The marker panel the file must conform to.
    analyst
        Who imports it; the profiles are theirs, and only samples of cases their agency may
        add to are accepted.
    file_format
        One of :data:`IMPORT_FORMATS`; detected from the file when ``None``.

    Raises
    ------
    GenotypeImportError
        With every problem found; the session is left untouched.
    """
    safe_name = secure_filename(filename) or "genotypes.csv"
    if run is not None:
        problem = _run_problem(run)
        if problem:
            raise GenotypeImportError(safe_name, [ImportProblem(None, "run", None, problem)])
    oversized = _oversized_fields(content)
    if oversized:
        raise GenotypeImportError(safe_name, oversized)
    with tempfile.TemporaryDirectory(prefix="dnatrack-import-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        name = _format_of(path, file_format)
        reading = _read_every_problem(path, name, panel)
        table = reading.table
        lines = _first_lines(path, list(table.profile_ids)) if table is not None else {}

    problems = list(reading.problems)
    samples: dict[str, Sample] = {}
    if table is not None:
        samples, sample_problems = _check_samples(
            session, table, lines, panel, analyst, reading.samples_blanked()
        )
        problems += sample_problems
        if not table.n_profiles and not problems:
            problems.append(ImportProblem(None, None, None, "the file holds no profiles"))
    if problems:
        # By line; problems of one line in the order found, those without a line last.
        problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
        raise GenotypeImportError(safe_name, problems)

    barcodes = [str(sample_id) for sample_id in table.profile_ids]
    batch = GenotypeImport(
        filename=safe_name,
        file_format=name,
        panel=panel.name,
        run=run,
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        n_profiles=len(barcodes),
        imported_by_id=analyst.id,
    )
    session.add(batch)
    session.flush()
    profiles = [
        create_profile(
            session,
            sample=samples[barcode],
            panel=panel,
            alleles=_typed_alleles(table, row),
            analyst=analyst,
            run=run,
            import_id=batch.id,
        )
        for row, barcode in enumerate(barcodes)
    ]
    session.flush()
    return batch, profiles
