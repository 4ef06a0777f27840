"""Seizure intelligence in the LIMS: which coded seizures a user may count, the AITR and
ETIS-style tables of them, and the all-or-nothing import of an AITR table.

Need-to-know is applied here, once, for every figure and download: a seizure counts only when
the user may read its case (:func:`lims.access.visible`). Statistics over the rows are
computed in :mod:`matching.intelligence`; this module only loads and shapes the data.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lims import aitr
from lims.access import visible
from lims.models import Seizure, SeizureRecord, User
from lims.trade_records import check_record, record_values, save_record
from lims.vocabularies import Vocabularies
from matching.intelligence import SeizureFacts

logger = logging.getLogger(__name__)


def visible_seizures(
    session: Session,
    user: User,
    *,
    year: int | None = None,
    agency_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    coded_only: bool = False,
) -> list[tuple[Seizure, SeizureRecord | None]]:
    """The seizures ``user`` may read, with their coded records, ordered by date and id."""
    statement = (
        sa.select(Seizure, SeizureRecord)
        .outerjoin(SeizureRecord, SeizureRecord.seizure_id == Seizure.id)
        .where(visible(Seizure, user))
    )
    if coded_only:
        statement = statement.where(SeizureRecord.seizure_id.is_not(None))
    if year is not None:
        statement = statement.where(
            Seizure.seized_on >= dt.date(year, 1, 1), Seizure.seized_on <= dt.date(year, 12, 31)
        )
    if agency_id is not None:
        statement = statement.where(Seizure.agency_id == agency_id)
    if date_from is not None:
        statement = statement.where(Seizure.seized_on >= date_from)
    if date_to is not None:
        statement = statement.where(Seizure.seized_on <= date_to)
    statement = statement.order_by(Seizure.seized_on.is_(None), Seizure.seized_on, Seizure.id)
    return [tuple(row) for row in session.execute(statement)]


def _seizure_fields(seizure: Seizure) -> dict:
    return {"reference": seizure.reference, "seized_on": seizure.seized_on,
            "place": seizure.place}


def aitr_rows(session: Session, user: User, *, year: int | None, agency_id: int | None):
    """The AITR table rows of the coded seizures ``user`` may read."""
    rows = []
    for seizure, record in visible_seizures(
        session, user, year=year, agency_id=agency_id, coded_only=True
    ):
        rows += aitr.record_rows(_seizure_fields(seizure), record_values(record))
    return rows


def etis_rows(session: Session, user: User, *, year: int | None, agency_id: int | None):
    """One ETIS-style row with its trade chain per coded seizure ``user`` may read."""
    return [
        aitr.etis_row(_seizure_fields(seizure), record_values(record), record.quantity_kg,
                      record.pieces)
        for seizure, record in visible_seizures(
            session, user, year=year, agency_id=agency_id, coded_only=True
        )
    ]


def seizure_facts(session: Session, user: User, **filters) -> list[SeizureFacts]:
    """The coded seizures ``user`` may read, as the plain records the statistics take."""
    facts = []
    for seizure, record in visible_seizures(session, user, coded_only=True, **filters):
        facts.append(
            SeizureFacts(
                seizure_id=seizure.id,
                seized_on=seizure.seized_on,
                discovery_country=record.discovery_country,
                commodity=record.commodity,
                quantity_kg=record.quantity_kg,
                chain_countries=tuple(
                    sorted(
                        (
                            {entry["country"] for entry in record.origins}
                            | {record.export_country, record.destination_country}
                            | {entry["country"] for entry in record.transits}
                        )
                        - {None}
                    )
                ),
            )
        )
    return facts


def import_aitr(
    session: Session, user: User, content: bytes, filename: str, agency_id: int
) -> tuple[int, list[dict]]:
    """Code the seizures named in an AITR table: ``(records saved, problems)``.

    Rows are grouped by seizure reference; a reference names a seizure of ``agency_id`` that
    ``user`` may change. Every problem is listed as ``{"row", "column", "message"}`` and, if
    there is any, nothing is saved (the caller commits only on success).
    """
    try:
        table = aitr.read_table(content, filename)
    except aitr.TableError as error:
        return 0, [{"row": None, "column": None, "message": str(error)}]
    problems: list[dict] = []

    def problem(row, column, message):
        problems.append({"row": row, "column": column, "message": message})

    if not table:
        problem(None, None, "the table has no rows")
    groups: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for number, row in table:
        if row[aitr.REFERENCE] is None:
            problem(number, aitr.REFERENCE, "is required")
            continue
        groups[str(row[aitr.REFERENCE])].append((number, row))
    writable = {
        seizure.reference: seizure
        for seizure in session.scalars(
            sa.select(Seizure).where(
                Seizure.agency_id == agency_id,
                Seizure.reference.in_(list(groups)),
                visible(Seizure, user, for_writing=True),
            )
        )
    }
    vocabularies = Vocabularies(session)
    checked = []
    for reference, rows in groups.items():
        first_number, first = rows[0]
        seizure = writable.get(reference)
        if seizure is None:
            for number, _ in rows:
                problem(number, aitr.REFERENCE,
                        f"{reference!r} names no seizure of this agency that you may change")
        data, cell_problems = aitr.seizure_values(first)
        for column, message in cell_problems:
            problem(first_number, column, message)
        for number, row in rows[1:]:
            for column in aitr.SEIZURE_COLUMNS:
                if row[column] != first[column]:
                    problem(number, column, f"differs from row {first_number} of this seizure")
        species_rows = []
        for number, row in rows:
            try:
                day = aitr.row_date(row)
            except ValueError as error:
                problem(number, aitr.DATE, str(error))
            else:
                if seizure is not None and day is not None and day != seizure.seized_on:
                    problem(number, aitr.DATE, f"{day.isoformat()} is not the seizure's date "
                            f"({seizure.seized_on.isoformat() if seizure.seized_on else 'none'})")
            entry = aitr.species_entry(row)
            if entry is not None:
                species_rows.append(number)
                data.setdefault("species", []).append(entry)
        existing = session.get(SeizureRecord, seizure.id) if seizure is not None else None
        values, record_problems = check_record(data, vocabularies, existing)
        for found in record_problems:
            number, column = _locate(found["field"], first_number, species_rows)
            problem(number, column, found["message"])
        if seizure is not None:
            checked.append((seizure, values))
    if problems:
        logger.info("AITR import %s by user %s refused: %d problems", filename, user.id,
                    len(problems))
        return 0, problems
    for seizure, values in checked:
        save_record(seizure, values, user.id, session)
    logger.info("AITR import %s by user %s coded %d seizures", filename, user.id, len(checked))
    return len(checked), []


def _locate(field: str, first_row: int, species_rows: list[int]) -> tuple[int, str]:
    """The table row and column of a record problem's ``field`` (``species[2].pieces``)."""
    head, _, rest = field.partition("[")
    if head == "species" and rest:
        index = int(rest.split("]")[0])
        sub = rest.split("].", 1)[1] if "]." in rest else "name"
        return species_rows[index], aitr.FIELD_COLUMNS[f"species.{sub}"]
    return first_row, aitr.FIELD_COLUMNS.get(head, head)
