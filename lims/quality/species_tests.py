"""Species tests of samples: a barcode read (FASTA, FASTQ or AB1 trace) identified with
:class:`matching.species.SpeciesIdentifier`, stored with the file, its SHA-256, the verdict
and the hash of the reference set it was compared against."""

from __future__ import annotations

import hashlib
import logging
import tempfile
from pathlib import Path

from sqlalchemy.orm import Session
from werkzeug.utils import secure_filename

from lims.database import utcnow
from lims.models import Sample, SpeciesTest, User
from lims.quality import QualityError
from matching.species import (
    BarcodeFormatError,
    BarcodeSet,
    IdentificationParameters,
    SpeciesIdentifier,
    default_barcode_set,
    read_queries,
)

logger = logging.getLogger(__name__)

_FORMATS = {".fasta": "fasta", ".fa": "fasta", ".fas": "fasta", ".fastq": "fastq",
            ".fq": "fastq", ".ab1": "abi", ".abi": "abi"}
_IDENTIFIERS: dict[tuple[int, str], SpeciesIdentifier] = {}


def _identifier(barcode_set: BarcodeSet, marker: str) -> SpeciesIdentifier:
    key = (id(barcode_set), marker)
    if key not in _IDENTIFIERS:
        _IDENTIFIERS[key] = SpeciesIdentifier(barcode_set, IdentificationParameters(marker=marker))
    return _IDENTIFIERS[key]


def species_finding(test: SpeciesTest) -> str:
    """The finding as a report states it."""
    if test.verdict == "identified":
        return f"identified: {test.call}"
    if test.verdict == "ambiguous":
        return f"ambiguous, best species {test.best_species}"
    return "no match in the reference set"


def record_species_test(
    session: Session,
    sample: Sample,
    user: User,
    content: bytes,
    *,
    filename: str,
    marker: str = "cytb",
    barcode_set: BarcodeSet | None = None,
) -> SpeciesTest:
    """Identify the read in ``content`` and add the test to the session (flushed).

    Raises :class:`~lims.quality.QualityError` (422) for a file that is no single readable
    FASTA, FASTQ or AB1 read, or a marker the reference set lacks.
    """
    barcode_set = barcode_set if barcode_set is not None else default_barcode_set()
    safe_name = secure_filename(filename) or "read.fasta"
    file_format = _FORMATS.get(Path(safe_name).suffix.lower())
    if marker not in barcode_set.markers:
        raise QualityError(422, f"the reference set has no {marker} references",
                           [{"field": "marker",
                             "message": f"one of {', '.join(barcode_set.markers)}"}])
    with tempfile.TemporaryDirectory(prefix="dnatrack-species-") as folder:
        path = Path(folder) / safe_name
        path.write_bytes(content)
        try:
            queries = read_queries(path, file_format=file_format)
        except (BarcodeFormatError, ValueError) as error:
            raise QualityError(422, f"{safe_name}: {error}",
                               [{"field": "file", "message": str(error)}]) from None
    if len(queries) != 1:
        raise QualityError(422, f"{safe_name}: {len(queries)} reads; a species test takes one",
                           [{"field": "file", "message": "exactly one read"}])
    result = _identifier(barcode_set, marker).identify(queries[0])
    row = {key: value for key, value in result.as_row().items() if key != "source"}
    test = SpeciesTest(
        sample_id=sample.id, marker=marker, filename=safe_name,
        file_format=file_format or "detected",
        sha256=hashlib.sha256(content).hexdigest(), content=content,
        query_id=result.query_id[:255], verdict=result.verdict, call=result.call or None,
        best_species=result.best.species if result.best else None,
        identity=round(result.best.identity, 2) if result.best else None,
        reason=result.reason, reference_set=result.reference_set,
        reference_set_version=result.reference_set_version,
        reference_set_hash=result.reference_set_hash, result=row, tested_by_id=user.id,
        tested_at=utcnow())
    session.add(test)
    session.flush()
    logger.info("species test %s of sample %s by user %s: %s", test.id, sample.barcode, user.id,
                species_finding(test))
    return test
