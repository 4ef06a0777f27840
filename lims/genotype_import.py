"""Importing genotype files into the LIMS: all profiles or none.

A file (GeneMapper export, long CSV or wide CSV) is read with
:func:`dnatrack.formats.read_genotypes` against the panel; the reader stops at the first
malformed line (unknown locus, non-numeric or off-panel allele, three alleles at a locus…).
A file that reads cleanly is then checked against the LIMS, and *every* problem is
collected: sample ids that are not barcodes of samples the analyst may add results to,
samples that already have a live profile on the panel, profiles with no typed locus. Any
problem means nothing is written; otherwise the file (byte for byte, with its SHA-256) and
all its profiles are added in the caller's transaction.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats import detect_format, read_genotypes
from dnatrack.formats._builder import read_delimited
from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel
from lims.access import visible
from lims.genotyping import create_profile
from lims.models import GenotypeImport, GenotypeProfile, Sample, User

IMPORT_FORMATS = ("genemapper", "long", "wide")


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


def _read(path: Path, file_format: str | None, panel: Panel) -> tuple[str, GenotypeTable]:
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
    try:
        return name, read_genotypes(path, format=name, panel=panel)
    except GenotypeFormatError as error:
        problem = ImportProblem(error.line, error.field, None, error.reason)
        raise GenotypeImportError(path.name, [problem]) from None


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
    with tempfile.TemporaryDirectory(prefix="dnatrack-import-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        name, table = _read(path, file_format, panel)
        lines = _first_lines(path, list(table.profile_ids))

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
        if not table.typed[row].any():
            problems.append(ImportProblem(line, "alleles", barcode, "no locus is typed"))
    if not barcodes:
        problems.append(ImportProblem(None, None, None, "the file holds no profiles"))
    if problems:
        raise GenotypeImportError(safe_name, problems)

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
