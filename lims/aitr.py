"""The CITES Annual Illegal Trade Report (AITR) seizure table and the ETIS-style record CSV.

The AITR table has one row per seizure and species, with the AITR's columns (species,
detecting agency, specimen, quantity, location, method of detection, mode of transport,
method of concealment, alleged origin, transit, alleged destination, offender nationality,
law charged, disposal, estimated value) plus the seizure's reference (to name the seizure on
import) and the record's validation status. Quantities are two columns, kg and pieces, since
either may be missing. Lists inside one cell are separated by ``;``; a qualifier follows its
country in brackets: ``KE [0.6]; TZ [0.4]`` (shares of origin), ``AE; MY [missed]`` (a transit
where the consignment could have been seized). Seizure-level columns repeat on every row of
the seizure and must agree on import.

Writing neutralises text a spreadsheet would run as a formula (as ``write_genotypes(...,
spreadsheet_safe=True)`` does); reading undoes exactly that neutralisation, so a table read
back gives the values written.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterable
from typing import Any

from dnatrack.formats import FORMULA_LEADS, neutralise_formula

REFERENCE = "Seizure reference"
DATE = "Date of seizure"
LOCATION = "Location of seizure"
SPECIES = "Species"
QUANTITY_KG = "Quantity (kg)"
PIECES = "Quantity (pieces)"

#: Seizure-level columns and the record field each one codes.
SEIZURE_COLUMNS = {
    "Country of seizure": "discovery_country",
    "Commodity": "commodity",
    "Specimen form": "commodity_form",
    "Detecting agency": "detecting_agency",
    "Method of detection": "detection_method",
    "Mode of transport": "transport_mode",
    "Method of concealment": "concealment",
    "Country of alleged origin": "origins",
    "Country of export": "export_country",
    "Countries of transit": "transits",
    "Country of alleged destination": "destination_country",
    "Nationality of offenders": "offender_nationalities",
    "Law under which charges were made": "charges",
    "Disposal of confiscated specimens": "disposal",
    "Estimated value": "estimated_value",
    "Currency": "currency",
    "Validation status": "validation_status",
}
#: Per-species columns and their field within a species entry.
SPECIES_COLUMNS = {SPECIES: "name", QUANTITY_KG: "quantity_kg", PIECES: "pieces"}
AITR_COLUMNS = (REFERENCE, DATE, LOCATION, *SPECIES_COLUMNS, *SEIZURE_COLUMNS)
#: Which column a problem about a record field belongs in.
FIELD_COLUMNS = {
    **{field: column for column, field in SEIZURE_COLUMNS.items()},
    **{f"species.{field}": column for column, field in SPECIES_COLUMNS.items()},
}
MISSED = "missed"
_QUALIFIED = re.compile(r"^(?P<code>[^\[\]]+?)\s*(?:\[(?P<qualifier>[^\[\]]*)\])?$")


class TableError(ValueError):
    """A table that cannot be read at all (not CSV or XLSX, no header, missing columns)."""


# --------------------------------------------------------------------------- cell text
def _join(parts: Iterable[str]) -> str | None:
    text = "; ".join(parts)
    return text or None


def origins_text(origins: list[dict]) -> str | None:
    return _join(
        entry["country"] + (f" [{entry['share']:g}]" if entry.get("share") is not None else "")
        for entry in origins
    )


def transits_text(transits: list[dict]) -> str | None:
    return _join(
        entry["country"] + (f" [{MISSED}]" if entry.get("seizure_opportunity") else "")
        for entry in transits
    )


def _qualified(text: str) -> list[tuple[str, str | None]]:
    parts = []
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        match = _QUALIFIED.match(part)
        if match is None:
            raise ValueError(f"cannot read {part!r} (expected CODE or CODE [qualifier])")
        parts.append((match["code"].strip(), match["qualifier"]))
    return parts


def parse_origins(text: str) -> list[dict]:
    origins = []
    for code, qualifier in _qualified(text):
        share = None
        if qualifier is not None:
            try:
                share = float(qualifier)
            except ValueError:
                raise ValueError(f"share {qualifier!r} of {code} is not a number") from None
        origins.append({"country": code, "share": share})
    return origins


def parse_transits(text: str) -> list[dict]:
    transits = []
    for code, qualifier in _qualified(text):
        if qualifier not in (None, MISSED):
            raise ValueError(f"transit {code}: [{qualifier}] is not [{MISSED}]")
        transits.append({"country": code, "seizure_opportunity": qualifier == MISSED})
    return transits


def parse_codes(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


# --------------------------------------------------------------------------- rows
def record_rows(seizure: dict, record: dict) -> list[dict]:
    """The AITR rows of one seizure (``reference``, ``seized_on``, ``place``) and its coded
    ``record`` (:func:`lims.trade_records.record_values`): one per species entry, one with
    empty species columns when there is none."""
    common = {
        REFERENCE: seizure["reference"],
        DATE: seizure["seized_on"].isoformat() if seizure["seized_on"] else None,
        LOCATION: seizure["place"],
    }
    for column, field in SEIZURE_COLUMNS.items():
        value = record[field]
        if field == "origins":
            value = origins_text(value)
        elif field == "transits":
            value = transits_text(value)
        elif field == "offender_nationalities":
            value = _join(value)
        common[column] = value
    species = record["species"] or [{"name": None, "quantity_kg": None, "pieces": None}]
    return [
        {**common, **{column: entry[field] for column, field in SPECIES_COLUMNS.items()}}
        for entry in species
    ]


def _quoted_formula(text: str) -> bool:
    return text.startswith("'") and text.lstrip("'").startswith(FORMULA_LEADS)


def _safe(value: Any) -> Any:
    """Text neutralised as a formula; text that already looks neutralised gets one more
    quote, so that :func:`_unneutralise` gives every text back exactly."""
    if not isinstance(value, str):
        return value
    return f"'{value}" if _quoted_formula(value) else neutralise_formula(value)


def _unneutralise(text: str) -> str:
    return text[1:] if _quoted_formula(text) else text


def write_csv(rows: list[dict], columns: tuple[str, ...] = AITR_COLUMNS) -> bytes:
    """``rows`` as spreadsheet-safe UTF-8 CSV (with a byte-order mark so spreadsheets read
    the encoding) under ``columns``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else _cell_text(_safe(row[c])) for c in columns])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def _cell_text(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.15g}"
    return value


def write_xlsx(rows: list[dict], columns: tuple[str, ...] = AITR_COLUMNS) -> bytes:
    """``rows`` as an XLSX workbook of one sheet; text cells are spreadsheet-safe and stored
    as text (never as formulas)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.title = "Seizures"
    sheet.append(list(columns))
    for row in rows:
        sheet.append([_safe(row.get(column)) for column in columns])
        for cell in sheet[sheet.max_row]:
            if isinstance(cell.value, str):
                cell.data_type = "s"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def read_table(content: bytes, filename: str) -> list[tuple[int, dict]]:
    """``(line or sheet row, {column: cell})`` of each non-empty row of an AITR table in CSV
    or XLSX (by ``filename``'s extension); cells are text, numbers, dates or ``None``.
    :class:`TableError` when the table cannot be read or lacks a column."""
    name = filename.lower()
    if name.endswith(".xlsx"):
        header, rows = _xlsx_rows(content)
    elif name.endswith(".csv"):
        header, rows = _csv_rows(content)
    else:
        raise TableError(f"{filename}: expected a .csv or .xlsx file")
    missing = [column for column in AITR_COLUMNS if column not in header]
    if missing:
        raise TableError(f"{filename}: missing columns: {', '.join(missing)}")
    index = {column: header.index(column) for column in AITR_COLUMNS}
    table = []
    for number, cells in rows:
        cells = list(cells) + [None] * (len(header) - len(cells))
        values = {column: _clean(cells[position]) for column, position in index.items()}
        if any(value is not None for value in values.values()):
            table.append((number, values))
    return table


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        value = _unneutralise(value.strip())
        return value or None
    return value


def _csv_rows(content: bytes):
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TableError(f"not UTF-8 text (byte {error.start})") from None
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise TableError("the table is empty")
    header = [cell.strip() for cell in rows[0]]
    return header, [(number, row) for number, row in enumerate(rows[1:], start=2)]


def _xlsx_rows(content: bytes):
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for a file that is not XLSX
        raise TableError(f"not a readable XLSX workbook ({type(error).__name__})") from None
    sheet = workbook.worksheets[0]
    rows = list(sheet.iter_rows(values_only=True))
    workbook.close()
    if not rows:
        raise TableError("the table is empty")
    header = ["" if cell is None else str(cell).strip() for cell in rows[0]]
    return header, [(number, row) for number, row in enumerate(rows[1:], start=2)]


# --------------------------------------------------------------------------- cells to values
def _as_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _as_number(value: Any) -> Any:
    """A number from a cell; text that is no number is returned as is, for the record check
    to refuse with its field."""
    if value is None or isinstance(value, int | float) and not isinstance(value, bool):
        return value
    try:
        number = float(str(value))
    except ValueError:
        return str(value)
    return int(number) if number.is_integer() and "." not in str(value) else number


def _as_date(value: Any) -> dt.date | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def seizure_values(row: dict) -> tuple[dict, list[tuple[str, str]]]:
    """The record fields of a row's seizure-level columns, and ``(column, message)`` for the
    cells that cannot be read as their kind of value."""
    values: dict[str, Any] = {}
    problems = []
    for column, field in SEIZURE_COLUMNS.items():
        cell = row[column]
        try:
            if field == "origins":
                values[field] = parse_origins(_as_text(cell)) if cell is not None else []
            elif field == "transits":
                values[field] = parse_transits(_as_text(cell)) if cell is not None else []
            elif field == "offender_nationalities":
                values[field] = parse_codes(_as_text(cell)) if cell is not None else []
            elif field == "estimated_value":
                values[field] = _as_number(cell)
            else:
                values[field] = _as_text(cell)
        except ValueError as error:
            problems.append((column, str(error)))
    return values, problems


def species_entry(row: dict) -> dict | None:
    """The species entry of a row, ``None`` when its species columns are all empty."""
    if all(row[column] is None for column in SPECIES_COLUMNS):
        return None
    return {
        "name": _as_text(row[SPECIES]),
        "quantity_kg": _as_number(row[QUANTITY_KG]),
        "pieces": _as_number(row[PIECES]),
    }


def row_date(row: dict) -> dt.date | None:
    """The row's date of seizure (``ValueError`` when it is not a date)."""
    try:
        return _as_date(row[DATE])
    except ValueError:
        raise ValueError("must be a date, YYYY-MM-DD") from None


# --------------------------------------------------------------------------- ETIS-style CSV
ETIS_COLUMNS = (
    "seizure_reference",
    "year",
    "date",
    "discovery_country",
    "commodity",
    "commodity_form",
    "species",
    "quantity_kg",
    "pieces",
    "origin_countries",
    "export_country",
    "transit_countries",
    "destination_country",
    "trade_chain",
    "detection_method",
    "transport_mode",
    "concealment",
    "offender_nationalities",
    "validation_status",
)


def trade_chain_text(record: dict) -> str:
    """The chain as ``origin > export > transit > … > destination`` (``?`` for a gap), origins
    joined by ``/`` and a missed transit marked ``*``."""
    origins = "/".join(entry["country"] for entry in record["origins"]) or "?"
    transits = [
        entry["country"] + ("*" if entry["seizure_opportunity"] else "")
        for entry in record["transits"]
    ]
    chain = [origins, record["export_country"] or "?", *transits,
             record["destination_country"] or "?"]
    return " > ".join(chain)


def etis_row(seizure: dict, record: dict, quantity_kg, pieces) -> dict:
    """One ETIS-style row: a seizure record with its whole trade chain."""
    return {
        "seizure_reference": seizure["reference"],
        "year": seizure["seized_on"].year if seizure["seized_on"] else None,
        "date": seizure["seized_on"].isoformat() if seizure["seized_on"] else None,
        "discovery_country": record["discovery_country"],
        "commodity": record["commodity"],
        "commodity_form": record["commodity_form"],
        "species": _join(entry["name"] for entry in record["species"] if entry["name"]),
        "quantity_kg": quantity_kg,
        "pieces": pieces,
        "origin_countries": origins_text(record["origins"]),
        "export_country": record["export_country"],
        "transit_countries": transits_text(record["transits"]),
        "destination_country": record["destination_country"],
        "trade_chain": trade_chain_text(record),
        "detection_method": record["detection_method"],
        "transport_mode": record["transport_mode"],
        "concealment": record["concealment"],
        "offender_nationalities": _join(record["offender_nationalities"]),
        "validation_status": record["validation_status"],
    }
