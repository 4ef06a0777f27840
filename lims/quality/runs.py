"""Genotyping runs: a GeneMapper export read with its plate map, its controls checked.

A run is imported from the GeneMapper export of its plate. Each ``Sample Name`` of the export
is a well of the plate: a sample (its name a sample barcode) or a control. What each name is
and where it sat comes from, in this order,

1. the plate map, a CSV or an XLSX workbook (its first sheet) with the columns ``well``,
   ``kind`` (``sample``, ``positive_control``, ``negative_control``, ``extraction_blank``),
   ``name`` and, optionally, ``extract`` (the barcode of the extract typed in a sample well);
   a problem names its row (``line``) and column (``field``), alike for both;
2. the export's own ``Well`` and ``Sample Type`` columns (GeneMapper's ``Positive Control``,
   ``Negative Control``, ``Sample``; ``Allelic Ladder`` rows are skipped);
3. the names the laboratory registered: a positive control's name, an extraction batch's
   blank; ``negative_controls`` names the run's PCR blanks.

A ``Run Name`` column, when the export has one, must name this run. The sample rows are
imported as one genotype import (:func:`lims.genotype_import.import_genotypes`: all or none,
every problem listed by line); the run keeps the export byte for byte with its SHA-256.

Controls are checked with :mod:`matching.contamination`: each positive control against its
expected genotype on the panel, each blank for alleles. A failed control, a positive control
without an expected genotype, a plate without a positive or a negative control, or an
extraction batch on the plate without its blank, puts the run **on hold** with the reasons:
its profiles cannot be reviewed until a reviewer records a disposition
(:func:`dispose_run`). Then every profile of the plate is screened
(:func:`lims.quality.checks.screen_profile`), plate neighbours included.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from dnatrack.errors import GenotypeFormatError
from dnatrack.formats._builder import normalise_header, read_delimited
from dnatrack.panels import Panel
from lims.database import unstorable_text_problem, utcnow
from lims.genotype_import import GenotypeImportError, ImportProblem, import_genotypes
from lims.genotyping import reject_profile
from lims.models import (
    Extract,
    ExtractionBatch,
    ExtractionBatchExtract,
    GenotypingRun,
    PlateWell,
    PositiveControl,
    Sample,
    User,
)
from lims.models.quality import CONTROL_KINDS, DISPOSITIONS, WELL_KINDS
from lims.quality import QualityError
from lims.quality.checks import screen_profile
from matching.contamination import check_blank, check_positive_control

logger = logging.getLogger(__name__)

_WELL = re.compile(r"([A-Pa-p])0?([1-9]|1[0-9]|2[0-4])")
_ALLELE = re.compile(r"allele ?(\d+)")
_SAMPLE_TYPES = {
    "positive control": "positive_control",
    "negative control": "negative_control",
    "sample": "sample",
}
RUN_FIELDS = ("name", "instrument", "kit", "kit_lot", "allelic_ladder")


def normalise_well(text: str) -> str | None:
    """``'a1'`` → ``'A01'``; ``None`` for no well of a 384-well plate (A-P, 1-24)."""
    match = _WELL.fullmatch(text.strip())
    return None if match is None else f"{match[1].upper()}{int(match[2]):02d}"


class _Entry:
    """What one name of the export is: kind, well, extract, and the lines it came from."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kind: str | None = None
        self.well: str | None = None
        self.extract: str | None = None
        self.lines: list[int] = []
        self.observed: dict[str, list] = {}


def _problem(line, field, sample, message) -> ImportProblem:
    return ImportProblem(line, field, sample, message)


#: The first bytes of an XLSX workbook (a ZIP archive).
_XLSX_MAGIC = b"PK\x03\x04"


def _cell_text(value) -> str:
    """A workbook cell as the text a CSV would hold (``3.0`` → ``'3'``, empty → ``''``)."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _plate_map_rows(content: bytes) -> tuple[list[list[str]], ImportProblem | None]:
    """The plate map's rows as text cells (row 1 the header), from a CSV or an XLSX
    workbook (its first sheet); or the problem that keeps it from being read."""
    if content.startswith(_XLSX_MAGIC):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises many types for a file that is not XLSX
            return [], _problem(None, "plate_map", None,
                                f"not a readable XLSX workbook ({type(error).__name__})")
        try:
            rows = [[_cell_text(value) for value in row]
                    for row in workbook.worksheets[0].iter_rows(values_only=True)]
        finally:
            workbook.close()
        return rows, None
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        return [], _problem(None, "plate_map", None,
                            f"neither a UTF-8 CSV nor an XLSX workbook (undecodable byte at "
                            f"offset {error.start})")
    return list(csv.reader(io.StringIO(text, newline=""))), None


def read_plate_map(content: bytes) -> tuple[dict[str, dict], list[ImportProblem]]:
    """``{name: {"well", "kind", "extract", "line"}}`` from a plate map (CSV, or the first
    sheet of an XLSX workbook; ``line`` is the row), and its problems (field names, which are
    the columns, prefixed ``plate_map.``). A CSV and a workbook of the same cells give the
    same entries and the same problems."""
    problems: list[ImportProblem] = []
    rows, unreadable = _plate_map_rows(content)
    if unreadable is not None:
        return {}, [unreadable]
    header = [normalise_header(cell) for cell in rows[0]] if rows else []
    missing = [name for name in ("well", "kind", "name") if name not in header]
    if missing:
        return {}, [_problem(1, "plate_map", None,
                             f"the plate map needs the columns well, kind and name "
                             f"(missing: {', '.join(missing)})")]
    column = {name: header.index(name) for name in ("well", "kind", "name", "extract")
              if name in header}
    entries: dict[str, dict] = {}
    wells: dict[str, int] = {}
    for line, cells in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in cells):
            continue
        cells = [cell.strip() for cell in cells] + [""] * len(header)
        well, kind, name = (cells[column[c]] for c in ("well", "kind", "name"))
        extract = cells[column["extract"]] if "extract" in column else ""
        normal = normalise_well(well)
        if normal is None:
            problems.append(_problem(line, "plate_map.well", name or None,
                                     f"{well!r} is not a plate well (A01..P24)"))
        elif normal in wells:
            problems.append(_problem(line, "plate_map.well", name or None,
                                     f"well {normal} is already on line {wells[normal]}"))
        else:
            wells[normal] = line
        if kind not in WELL_KINDS:
            problems.append(_problem(line, "plate_map.kind", name or None,
                                     f"kind must be one of {', '.join(WELL_KINDS)}"))
        if not name:
            problems.append(_problem(line, "plate_map.name", None, "empty"))
        elif name in entries:
            problems.append(_problem(line, "plate_map.name", name,
                                     f"{name} is already on line {entries[name]['line']}"))
        else:
            entries[name] = {"well": normal, "kind": kind, "extract": extract or None,
                             "line": line}
    return entries, problems


def _read_export(path: Path) -> tuple[dict[str, _Entry], list[ImportProblem], str | None]:
    """The export's names with their wells, kinds and called alleles (cells as text)."""
    try:
        table = read_delimited(path)
    except GenotypeFormatError as error:
        return {}, [_problem(error.line, error.field, None, error.reason)], None
    except (IndexError, UnicodeDecodeError):
        return {}, [_problem(None, None, None, "not a GeneMapper export (no header)")], None
    names = table.column(("sample name",))
    marker = table.column(("marker",))
    alleles = sorted((int(m[1]), i) for i, cell in enumerate(table.header)
                     if (m := _ALLELE.fullmatch(normalise_header(cell))))
    if names is None or marker is None or not alleles:
        return {}, [_problem(table.header_line, None, None,
                             "a run is imported from a GeneMapper export (columns Sample Name, "
                             "Marker, Allele 1…)")], None
    well = table.column(("well",))
    sample_type = table.column(("sample type",))
    run_column = table.column(("run name", "run"))
    entries: dict[str, _Entry] = {}
    problems: list[ImportProblem] = []
    run_names: set[str] = set()
    for line, cells in table.rows:
        name = cells[names]
        entry = entries.setdefault(name, _Entry(name))
        entry.lines.append(line)
        if run_column is not None and cells[run_column]:
            run_names.add(cells[run_column])
        if sample_type is not None:
            typed = normalise_header(cells[sample_type])
            if typed == "allelic ladder":
                entry.kind = "ladder"
            elif typed in _SAMPLE_TYPES:
                entry.kind = _SAMPLE_TYPES[typed]
        if well is not None and cells[well]:
            normal = normalise_well(cells[well])
            if normal is None:
                problems.append(_problem(line, "Well", name,
                                         f"{cells[well]!r} is not a plate well (A01..P24)"))
            elif entry.well not in (None, normal):
                problems.append(_problem(line, "Well", name,
                                         f"{name} is in well {entry.well} on an earlier line"))
            else:
                entry.well = normal
        called = [cells[i] for _, i in alleles if cells[i]]
        if called:
            entry.observed[cells[marker]] = called
    if len(run_names) > 1:
        problems.append(_problem(None, "Run Name", None,
                                 f"the export holds several runs: {', '.join(sorted(run_names))}"))
    return entries, problems, next(iter(run_names)) if len(run_names) == 1 else None


def _as_alleles(observed: dict[str, list]) -> tuple[dict[str, list[int]], list[str]]:
    """Called alleles as numbers; cells that are no whole number are kept as problems."""
    numbers: dict[str, list[int]] = {}
    bad = []
    for locus, cells in observed.items():
        try:
            values = [float(cell) for cell in cells]
        except ValueError:
            bad.append(f"{locus}: {'/'.join(cells)} (not allele sizes)")
            continue
        if any(value != int(value) for value in values):
            bad.append(f"{locus}: {'/'.join(cells)} (not whole numbers)")
            continue
        pair = [int(value) for value in values]
        numbers[locus] = sorted(pair * 2 if len(pair) == 1 else pair)
    return numbers, bad


def _check_fields(values: dict) -> list[ImportProblem]:
    problems = []
    for name in RUN_FIELDS:
        value = values.get(name)
        limit = GenotypingRun.__table__.c[name].type.length
        if not isinstance(value, str) or not value.strip():
            problems.append(_problem(None, name, None, "is required"))
        elif len(value) > limit:
            problems.append(_problem(None, name, None, f"must be at most {limit} characters"))
        elif problem := unstorable_text_problem(value):
            problems.append(_problem(None, name, None, problem))
    if not isinstance(values.get("run_on"), dt.date):
        problems.append(_problem(None, "run_on", None, "is required (a date, YYYY-MM-DD)"))
    return problems


def import_run(
    session: Session,
    content: bytes,
    *,
    filename: str,
    panel: Panel,
    analyst: User,
    fields: dict,
    plate_map: bytes | None = None,
    negative_controls: Iterable[str] = (),
) -> GenotypingRun:
    """Import a run (module docstring) into ``session`` (flushed, not committed).

    ``fields`` holds ``name``, ``instrument``, ``kit``, ``kit_lot``, ``allelic_ladder`` and
    ``run_on`` (a date). Raises :class:`~lims.genotype_import.GenotypeImportError` listing
    every problem, leaving the session untouched.
    """
    safe_name = secure_filename(filename) or "run.txt"
    problems = _check_fields(fields)
    name = (fields.get("name") or "").strip()
    if name and session.scalar(sa.select(GenotypingRun.id).where(
            GenotypingRun.agency_id == analyst.agency_id, GenotypingRun.name == name)):
        problems.append(_problem(None, "name", None, f"run {name} was already imported"))
    mapped: dict[str, dict] = {}
    if plate_map is not None:
        mapped, map_problems = read_plate_map(plate_map)
        problems += map_problems
    with tempfile.TemporaryDirectory(prefix="dnatrack-run-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        entries, export_problems, file_run = _read_export(path)
    problems += export_problems
    if file_run is not None and name and file_run != name:
        problems.append(_problem(None, "Run Name", None,
                                 f"the export is of run {file_run}, not {name}"))

    positives = {control.name: control for control in session.scalars(
        sa.select(PositiveControl).where(PositiveControl.agency_id == analyst.agency_id,
                                         PositiveControl.panel == panel.name))}
    blanks = {batch.blank_name: batch for batch in session.scalars(
        sa.select(ExtractionBatch).where(ExtractionBatch.agency_id == analyst.agency_id))}
    negatives = {text.strip() for text in negative_controls if text.strip()}
    for entry in entries.values():
        plan = mapped.get(entry.name)
        if plan is not None:
            entry.kind = plan["kind"]
            if entry.well not in (None, plan["well"]):
                problems.append(_problem(entry.lines[0], "Well", entry.name,
                                         f"the export puts {entry.name} in well {entry.well}, "
                                         f"the plate map in {plan['well']}"))
            entry.well = plan["well"]
            entry.extract = plan["extract"]
        elif entry.kind in (None, "sample"):
            if entry.name in positives:
                entry.kind = "positive_control"
            elif entry.name in blanks:
                entry.kind = "extraction_blank"
            elif entry.name in negatives:
                entry.kind = "negative_control"
            else:
                entry.kind = entry.kind or "sample"
        if entry.kind != "ladder" and entry.well is None:
            problems.append(_problem(entry.lines[0], "Well", entry.name,
                                     "no well (give a plate map or a Well column)"))
    for plan_name, plan in mapped.items():
        if plan_name not in entries:
            problems.append(_problem(plan["line"], "plate_map.name", plan_name,
                                     "in the plate map but not in the export"))
    wells_seen: dict[str, str] = {}
    for entry in entries.values():
        if entry.well is not None and entry.kind != "ladder":
            if entry.well in wells_seen and wells_seen[entry.well] != entry.name:
                problems.append(_problem(entry.lines[0], "Well", entry.name,
                                         f"well {entry.well} also holds {wells_seen[entry.well]}"))
            wells_seen.setdefault(entry.well, entry.name)

    extracts: dict[str, Extract] = {}
    for entry in entries.values():
        if entry.kind == "sample" and entry.extract:
            extract = session.scalar(sa.select(Extract).join(Sample).where(
                Extract.barcode == entry.extract, Sample.barcode == entry.name))
            if extract is None:
                problems.append(_problem(mapped[entry.name]["line"], "plate_map.extract",
                                         entry.name, f"{entry.extract} is no extract of sample "
                                         f"{entry.name}"))
            else:
                extracts[entry.name] = extract
    if problems:
        problems.sort(key=lambda problem: (problem.line is None, problem.line or 0))
        raise GenotypeImportError(safe_name, problems)

    # The sample rows alone, every other line emptied (line numbers stay those of the file).
    control_lines = {line for entry in entries.values() if entry.kind != "sample"
                     for line in entry.lines}
    lines = content.decode("utf-8-sig").splitlines(keepends=True)
    kept = "".join("\n" if number in control_lines else text
                   for number, text in enumerate(lines, start=1))
    batch, profiles = import_genotypes(
        session, kept.encode("utf-8"), filename=safe_name, panel=panel, analyst=analyst,
        file_format="genemapper", run=name)
    profile_of = {profile.sample.barcode: profile for profile in profiles}
    for barcode, extract in extracts.items():
        profile_of[barcode].extract_id = extract.id

    run = GenotypingRun(
        agency_id=analyst.agency_id, name=name, panel=panel.name,
        instrument=fields["instrument"].strip(), kit=fields["kit"].strip(),
        kit_lot=fields["kit_lot"].strip(), allelic_ladder=fields["allelic_ladder"].strip(),
        run_on=fields["run_on"], analyst_id=analyst.id, import_id=batch.id,
        filename=safe_name, sha256=hashlib.sha256(content).hexdigest(), content=content,
        plate_map_sha256=None if plate_map is None else hashlib.sha256(plate_map).hexdigest(),
        status="in_control")
    session.add(run)
    reasons = []
    for entry in sorted(entries.values(), key=lambda entry: entry.well or ""):
        if entry.kind == "ladder":
            continue
        if entry.kind == "sample":
            profile = profile_of[entry.name]
            run.wells.append(PlateWell(well=entry.well, kind="sample",
                                       sample_id=profile.sample_id,
                                       extract_id=profile.extract_id, profile_id=profile.id))
            continue
        if entry.kind == "positive_control":
            control = positives.get(entry.name)
            numbers, bad = _as_alleles(entry.observed)
            if control is None:
                check_problems = [f"no expected genotype of {entry.name} on panel {panel.name} "
                                  "is recorded"]
            else:
                check = check_positive_control(control.alleles, numbers)
                check_problems = [*bad, *check.problems]
        else:
            check_problems = list(check_blank(entry.observed).problems)
        passed = not check_problems
        run.wells.append(PlateWell(well=entry.well, kind=entry.kind, control_name=entry.name,
                                   observed=entry.observed, passed=passed,
                                   problems=check_problems))
        if not passed:
            label = entry.kind.replace("_", " ")
            reasons.append(f"{label} {entry.name} (well {entry.well}) failed: "
                           f"{'; '.join(check_problems)}")
    kinds = {entry.kind for entry in entries.values()}
    if "positive_control" not in kinds:
        reasons.append("the plate has no positive control")
    if "negative_control" not in kinds:
        reasons.append("the plate has no negative (PCR) control")
    batches = session.scalars(sa.select(ExtractionBatch).join(ExtractionBatchExtract).where(
        ExtractionBatchExtract.extract_id.in_([e.id for e in extracts.values()]))).unique()
    blank_names = {entry.name for entry in entries.values() if entry.kind == "extraction_blank"}
    for extraction in batches:
        if extraction.blank_name not in blank_names:
            reasons.append(f"the extraction blank {extraction.blank_name} of batch "
                           f"{extraction.reference} is not on the plate")
    if reasons:
        run.status = "on_hold"
        run.hold_reason = "; ".join(reasons)
    session.flush()
    for profile in profiles:
        screen_profile(session, profile)
    logger.info("run %s (%s) imported by user %s: %s profiles, %s", run.id, run.name,
                analyst.id, len(profiles),
                f"ON HOLD: {run.hold_reason}" if run.held else "controls in order")
    return run


def dispose_run(session: Session, run: GenotypingRun, reviewer: User, outcome: str,
                reason: str) -> None:
    """A reviewer's disposition of a held run: ``accepted`` lifts the hold, ``rejected``
    rejects its pending and reviewed profiles with the reason."""
    if outcome not in DISPOSITIONS:
        raise QualityError(422, f"outcome must be one of {', '.join(DISPOSITIONS)}",
                           [{"field": "outcome", "message": "unknown outcome"}])
    if not reason or not reason.strip():
        raise QualityError(422, "a disposition needs its reason",
                           [{"field": "reason", "message": "empty"}])
    if run.status != "on_hold":
        raise QualityError(409, f"run {run.name} is not on hold ({run.status})")
    if run.analyst_id == reviewer.id:
        raise QualityError(403, "the analyst of a run cannot record its disposition")
    run.status = outcome
    run.disposition_reason = reason.strip()
    run.disposed_by_id = reviewer.id
    run.disposed_at = utcnow()
    if outcome == "rejected":
        for well in run.wells:
            profile = well.profile
            if profile is not None and not profile.superseded and profile.state in (
                    "pending", "reviewed"):
                reject_profile(profile, reviewer, f"run {run.name} rejected: {reason.strip()}")
    session.flush()
    logger.info("run %s disposition %s by user %s: %s", run.id, outcome, reviewer.id,
                reason.strip())


__all__ = ["CONTROL_KINDS", "dispose_run", "import_run", "normalise_well", "read_plate_map"]
