"""Checking, storing and showing the coded trade-chain record of a seizure.

:func:`check_record` takes a whole record as JSON-like data (what the API's PUT, the web form
and the AITR import produce), checks every code against the vocabularies in force and every
number against its bounds, and returns the values with *every* problem, each naming its field
(``origins[1].share``). Nothing is written unless there is no problem.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from lims.database import unstorable_text_problem
from lims.models import Seizure, SeizureRecord
from lims.vocabularies import Vocabularies

logger = logging.getLogger(__name__)

#: Single coded fields and their vocabularies.
CODED_FIELDS = {
    "discovery_country": "countries",
    "export_country": "countries",
    "destination_country": "countries",
    "commodity": "commodities",
    "commodity_form": "commodity_forms",
    "detecting_agency": "detecting_agencies",
    "detection_method": "detection_methods",
    "transport_mode": "transport_modes",
    "concealment": "concealments",
    "disposal": "disposals",
    "currency": "currencies",
    "validation_status": "validation_statuses",
}
LIST_FIELDS = ("origins", "transits", "species", "offender_nationalities")
RECORD_FIELDS = (
    "discovery_country",
    "origins",
    "export_country",
    "transits",
    "destination_country",
    "commodity",
    "commodity_form",
    "species",
    "detecting_agency",
    "detection_method",
    "transport_mode",
    "concealment",
    "offender_nationalities",
    "charges",
    "disposal",
    "estimated_value",
    "currency",
    "validation_status",
)
CHARGES_MAX_LENGTH = 2000
#: Shares of origin may add up to a little over 1 by rounding, no more.
SHARE_TOLERANCE = 1e-6

Problem = dict[str, str]


def _number(value: Any, *, integer: bool = False) -> float | int:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be an integer" if integer else "must be a number")
    if integer and not isinstance(value, int):
        raise ValueError("must be an integer")
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    if value < 0:
        raise ValueError("must not be negative")
    return value if integer else float(value)


class _Checker:
    def __init__(self, vocabularies: Vocabularies, existing: SeizureRecord | None) -> None:
        self.vocabularies = vocabularies
        self.problems: list[Problem] = []
        # Codes the record already has stay acceptable when retired since.
        self.kept = frozenset(_codes_of(existing)) if existing is not None else frozenset()

    def problem(self, field: str, message: str) -> None:
        self.problems.append({"field": field, "message": message})

    def code(self, field: str, vocabulary: str, value: Any, *, nullable: bool = True):
        if value is None:
            if not nullable:
                self.problem(field, "must not be null")
            return None
        if not isinstance(value, str):
            self.problem(field, "must be a string code")
            return None
        problem = self.vocabularies.check(vocabulary, value, allowed_retired=self.kept)
        if problem:
            self.problem(field, problem)
            return None
        return value

    def entries(self, field: str, value: Any) -> list[Mapping]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(field, "must be an array")
            return []
        good = []
        for index, entry in enumerate(value):
            if not isinstance(entry, Mapping):
                self.problem(f"{field}[{index}]", "must be an object")
            else:
                good.append((index, entry))
        return good

    def keys(self, field: str, entry: Mapping, allowed: tuple[str, ...]) -> None:
        for key in entry:
            if key not in allowed:
                self.problem(f"{field}.{key}", f"unknown field (allowed: {', '.join(allowed)})")

    def number(self, field: str, value: Any, *, integer: bool = False, maximum=None):
        if value is None:
            return None
        try:
            number = _number(value, integer=integer)
        except ValueError as error:
            self.problem(field, str(error))
            return None
        if maximum is not None and number > maximum:
            self.problem(field, f"must be at most {maximum:g}")
            return None
        return number

    def duplicates(self, field: str, codes: list[str | None]) -> None:
        seen = set()
        for code in codes:
            if code is not None and code in seen:
                self.problem(field, f"{code!r} is listed twice")
            seen.add(code)


def _codes_of(record: SeizureRecord) -> set[str]:
    codes = {getattr(record, field) for field in CODED_FIELDS} - {None}
    codes |= {entry.get("country") for entry in record.origins or []}
    codes |= {entry.get("country") for entry in record.transits or []}
    codes |= {entry.get("name") for entry in record.species or []}
    codes |= set(record.offender_nationalities or [])
    return codes - {None}


def check_record(
    data: Any, vocabularies: Vocabularies, existing: SeizureRecord | None = None
) -> tuple[dict, list[Problem]]:
    """The values of a whole coded record and every problem found in ``data``.

    A field left out is empty (a record is replaced as a whole); ``validation_status``
    defaults to ``unvalidated``.
    """
    if not isinstance(data, Mapping):
        return {}, [{"field": "(body)", "message": "must be a JSON object"}]
    check = _Checker(vocabularies, existing)
    for key in data:
        if key not in RECORD_FIELDS:
            check.problem(key, "unknown field")
    values: dict[str, Any] = {}
    for field, vocabulary in CODED_FIELDS.items():
        values[field] = check.code(field, vocabulary, data.get(field))
    if data.get("validation_status") is None:
        values["validation_status"] = "unvalidated"

    origins = []
    for index, entry in check.entries("origins", data.get("origins")):
        name = f"origins[{index}]"
        check.keys(name, entry, ("country", "share"))
        country = check.code(f"{name}.country", "countries", entry.get("country"), nullable=False)
        share = check.number(f"{name}.share", entry.get("share"), maximum=1)
        origins.append({"country": country, "share": share})
    check.duplicates("origins", [entry["country"] for entry in origins])
    total_share = sum(entry["share"] or 0 for entry in origins)
    if total_share > 1 + SHARE_TOLERANCE:
        check.problem("origins", f"shares add up to {total_share:g}, more than 1")
    values["origins"] = origins

    transits = []
    for index, entry in check.entries("transits", data.get("transits")):
        name = f"transits[{index}]"
        check.keys(name, entry, ("country", "seizure_opportunity"))
        country = check.code(f"{name}.country", "countries", entry.get("country"), nullable=False)
        opportunity = entry.get("seizure_opportunity", False)
        if not isinstance(opportunity, bool):
            check.problem(f"{name}.seizure_opportunity", "must be true or false")
        transits.append({"country": country, "seizure_opportunity": opportunity is True})
    values["transits"] = transits

    species = []
    for index, entry in check.entries("species", data.get("species")):
        name = f"species[{index}]"
        check.keys(name, entry, ("name", "quantity_kg", "pieces"))
        species.append(
            {
                "name": check.code(f"{name}.name", "species", entry.get("name")),
                "quantity_kg": check.number(f"{name}.quantity_kg", entry.get("quantity_kg")),
                "pieces": check.number(f"{name}.pieces", entry.get("pieces"), integer=True,
                                       maximum=2**31 - 1),
            }
        )
    check.duplicates("species", [entry["name"] for entry in species])
    values["species"] = species

    nationalities = data.get("offender_nationalities")
    if nationalities is not None and not isinstance(nationalities, list):
        check.problem("offender_nationalities", "must be an array")
        nationalities = []
    values["offender_nationalities"] = [
        check.code(f"offender_nationalities[{index}]", "countries", code, nullable=False)
        for index, code in enumerate(nationalities or [])
    ]
    check.duplicates("offender_nationalities", values["offender_nationalities"])

    charges = data.get("charges")
    if charges is not None:
        if not isinstance(charges, str):
            check.problem("charges", "must be a string")
            charges = None
        elif len(charges) > CHARGES_MAX_LENGTH:
            check.problem("charges", f"must be at most {CHARGES_MAX_LENGTH} characters")
        elif problem := unstorable_text_problem(charges):
            check.problem("charges", problem)
        charges = charges.strip() or None if isinstance(charges, str) else None
    values["charges"] = charges

    values["estimated_value"] = check.number("estimated_value", data.get("estimated_value"))
    if values["estimated_value"] is not None and data.get("currency") is None:
        check.problem("currency", "is required with an estimated value")
    return values, check.problems


def save_record(seizure: Seizure, values: dict, user_id: int | None, session) -> SeizureRecord:
    """Create or replace the coded record of ``seizure`` with checked ``values`` (not
    committed)."""
    record = session.get(SeizureRecord, seizure.id)
    if record is None:
        record = SeizureRecord(seizure_id=seizure.id)
        session.add(record)
    for field in RECORD_FIELDS:
        setattr(record, field, values[field])
    record.coded_by_id = user_id
    logger.info("seizure %s (%s) trade record coded by user %s", seizure.id, seizure.reference,
                user_id)
    return record


def record_values(record: SeizureRecord | None) -> dict:
    """The coded fields of ``record`` as JSON (empty ones when there is no record)."""
    if record is None:
        return {
            field: [] if field in LIST_FIELDS else ("unvalidated" if field ==
                                                     "validation_status" else None)
            for field in RECORD_FIELDS
        }
    return {field: getattr(record, field) for field in RECORD_FIELDS}


def record_json(seizure: Seizure, record: SeizureRecord | None) -> dict:
    """What the API answers about a seizure's coding: the free text the seizure was entered
    with, and the coded record (``coded`` false while there is none)."""
    return {
        "seizure_id": seizure.id,
        "reference": seizure.reference,
        "agency_id": seizure.agency_id,
        "seized_on": seizure.seized_on.isoformat() if seizure.seized_on else None,
        "free_text": {
            "place": seizure.place,
            "country": seizure.country,
            "route": seizure.route,
            "declared_pieces": seizure.declared_pieces,
            "declared_weight_kg": seizure.declared_weight_kg,
        },
        "coded": record is not None,
        **record_values(record),
        "quantity_kg": record.quantity_kg if record else None,
        "pieces": record.pieces if record else None,
        "updated_at": record.updated_at.isoformat() if record else None,
    }
