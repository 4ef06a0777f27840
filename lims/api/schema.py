"""Declared request and response fields: validation of JSON input, output, OpenAPI schemas.

Each API record type is a :class:`Schema` of :class:`Field` declarations. The same
declaration validates what clients send (collecting every problem, not just the first),
renders records as JSON, and describes both in the OpenAPI document, so the three cannot
drift apart.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dnatrack.formats import FORMULA_LEADS
from lims.database import unstorable_text_problem
from lims.errors import ApiError

JSON_TYPES = ("string", "integer", "number", "boolean", "date", "date-time", "array", "object")
# An uploaded file: only in multipart form schemas.
FILE_TYPE = "binary"


# Every integer the API takes (ids, counts) is stored in an INTEGER column, 32-bit on
# PostgreSQL: a larger value can name no record and could not be stored.
INTEGER_MIN = -(2**31)
INTEGER_MAX = 2**31 - 1

# Identifiers (barcodes, references, labels) are printed on labels and written into the
# genotype files researchers open in spreadsheets and in STRUCTURE or GENEPOP: no whitespace
# (a field separator there), no control characters, and no first character a spreadsheet
# reads as the start of a formula (OWASP CSV injection).
_WHITESPACE_OR_CONTROL = r"\s\x00-\x1f\x7f-\x9f"
_FORMULA_SIGNS = re.escape("".join(lead for lead in FORMULA_LEADS if not lead.isspace()))
IDENTIFIER_PATTERN = rf"^[^{_WHITESPACE_OR_CONTROL}{_FORMULA_SIGNS}][^{_WHITESPACE_OR_CONTROL}]*$"


class FieldError(ValueError):
    """One value that does not fit its field."""


def identifier_problem(text: str) -> str | None:
    """Why ``text`` cannot be an identifier (see :data:`IDENTIFIER_PATTERN`), or ``None``."""
    if re.match(IDENTIFIER_PATTERN, text):
        return None
    if re.search(r"\s", text):
        return "must not contain spaces or other whitespace"
    if re.search(rf"[{_WHITESPACE_OR_CONTROL}]", text):
        return "must not contain control characters"
    return (
        "must not start with =, +, - or @ (a spreadsheet would run it as a formula)"
        if text
        else "must not be empty"
    )


def _check_storable_text(value: Any) -> None:
    """:class:`FieldError` when a string in ``value`` (a string, or the keys and values of a
    JSON object or array at any depth) is text the database cannot store."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_storable_text(key)
            _check_storable_text(item)
    elif isinstance(value, list):
        for item in value:
            _check_storable_text(item)
    elif isinstance(value, str) and (problem := unstorable_text_problem(value)):
        raise FieldError(problem)


def check_value(kind: str, value: Any, choices: tuple[str, ...] | None) -> Any:
    """``value`` converted for the model, or :class:`FieldError` saying why it does not fit."""
    if kind == "string":
        if not isinstance(value, str):
            raise FieldError("must be a string")
        _check_storable_text(value)
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise FieldError("must be an integer")
        if not INTEGER_MIN <= value <= INTEGER_MAX:
            raise FieldError(f"must be between {INTEGER_MIN} and {INTEGER_MAX}")
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldError("must be a number")
        if not math.isfinite(value):
            raise FieldError("must be a finite number")
        value = float(value)
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise FieldError("must be true or false")
    elif kind == "date":
        try:
            value = dt.date.fromisoformat(value)
        except (TypeError, ValueError):
            raise FieldError("must be a date, YYYY-MM-DD") from None
    elif kind == "date-time":
        try:
            value = dt.datetime.fromisoformat(value)
        except (TypeError, ValueError):
            raise FieldError("must be an ISO 8601 date and time") from None
        if value.tzinfo is None:
            raise FieldError("must include a time zone (e.g. Z or +02:00)")
        try:
            value.astimezone(dt.UTC)  # times are stored in UTC
        except OverflowError:
            raise FieldError("is out of range once taken to UTC") from None
    elif kind == "object":
        if not isinstance(value, dict):
            raise FieldError("must be an object")
        _check_storable_text(value)
    if choices is not None and value not in choices:
        raise FieldError(f"must be one of {', '.join(choices)}")
    return value


def json_value(value: Any) -> Any:
    """A model value as JSON (dates and times in ISO 8601)."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


@dataclass(frozen=True)
class Field:
    """One field of a record as the API sees it.

    ``create``/``update`` say whether clients may set it when creating or updating;
    ``output`` whether responses show it (``False`` for secrets such as passwords);
    ``getter`` computes the shown value from the record when it is not an attribute.
    """

    name: str
    type: str
    description: str = ""
    required: bool = False
    nullable: bool = True
    create: bool = True
    update: bool = True
    output: bool = True
    choices: tuple[str, ...] | None = None
    max_length: int | None = None
    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    identifier: bool = False
    items: str | None = None
    getter: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        if self.type not in (*JSON_TYPES, FILE_TYPE):
            raise ValueError(f"field {self.name!r}: unknown type {self.type!r}")
        if (self.type == "array") != (self.items is not None):
            raise ValueError(f"field {self.name!r}: arrays, and only arrays, need an item type")

    @property
    def read_only(self) -> bool:
        return not self.create and not self.update

    def parse(self, value: Any) -> Any:
        """The model value for client input ``value``; :class:`FieldError` if it does not fit."""
        if value is None:
            if not self.nullable:
                raise FieldError("must not be null")
            return None
        if self.type == "array":
            if not isinstance(value, list):
                raise FieldError("must be an array")
            return [check_value(self.items, item, self.choices) for item in value]
        value = check_value(self.type, value, self.choices)
        if isinstance(value, str):
            if self.required and not value.strip():
                raise FieldError("must not be empty")
            if self.max_length is not None and len(value) > self.max_length:
                raise FieldError(f"must be at most {self.max_length} characters")
            if self.identifier and (problem := identifier_problem(value)):
                raise FieldError(problem)
        if isinstance(value, int | float) and not isinstance(value, bool):
            if self.positive and value <= 0:
                raise FieldError("must be positive")
            if self.minimum is not None and value < self.minimum:
                raise FieldError(f"must be at least {self.minimum:g}")
            if self.maximum is not None and value > self.maximum:
                raise FieldError(f"must be at most {self.maximum:g}")
        return value

    def dump(self, record: Any) -> Any:
        value = self.getter(record) if self.getter else getattr(record, self.name)
        if isinstance(value, list):
            return [json_value(item) for item in value]
        return json_value(value)

    def openapi(self) -> dict:
        schema = _openapi_type(self.type if self.type != "array" else "array")
        if self.type == "array":
            schema["items"] = _openapi_type(self.items)
            if self.choices:
                schema["items"]["enum"] = list(self.choices)
        elif self.choices:
            schema["enum"] = list(self.choices)
        if self.max_length is not None:
            schema["maxLength"] = self.max_length
        if self.identifier:
            schema["pattern"] = IDENTIFIER_PATTERN
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if self.positive:
            # OpenAPI 3.0 (JSON Schema draft 4): a boolean qualifying "minimum".
            schema["minimum"] = 0
            schema["exclusiveMinimum"] = True
        if self.nullable:
            schema["nullable"] = True
        if self.read_only:
            schema["readOnly"] = True
        if not self.output:
            schema["writeOnly"] = True
        if self.description:
            schema["description"] = self.description
        return schema


def _openapi_type(kind: str) -> dict:
    if kind == "date":
        return {"type": "string", "format": "date"}
    if kind == "date-time":
        return {"type": "string", "format": "date-time"}
    if kind == FILE_TYPE:
        return {"type": "string", "format": "binary"}
    if kind == "integer":
        return {"type": "integer", "minimum": INTEGER_MIN, "maximum": INTEGER_MAX}
    return {"type": kind}


@dataclass(frozen=True)
class Schema:
    """A named record type: its fields, how to load input and dump records."""

    name: str
    fields: tuple[Field, ...]

    def __post_init__(self) -> None:
        names = [field.name for field in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.name}: a field is declared twice")

    def field(self, name: str) -> Field:
        for field in self.fields:
            if field.name == name:
                return field
        raise KeyError(name)

    def load(self, data: Any, *, mode: str) -> dict:
        """Check client input for ``mode`` ``"create"`` or ``"update"``; the parsed values.

        Raises :class:`~lims.errors.ApiError` 422 listing every problem, by field.
        """
        if mode not in ("create", "update"):
            raise ValueError(f"mode must be create or update, not {mode!r}")
        if not isinstance(data, Mapping):
            raise ApiError(422, "the request body must be a JSON object")
        accepted = {f.name: f for f in self.fields if (f.create if mode == "create" else f.update)}
        known = {f.name for f in self.fields}
        problems = []
        values = {}
        for name, value in data.items():
            if name not in accepted:
                message = "cannot be set here" if name in known else "unknown field"
                problems.append({"field": name, "message": message})
                continue
            try:
                values[name] = accepted[name].parse(value)
            except FieldError as error:
                problems.append({"field": name, "message": str(error)})
        if mode == "create":
            for field in accepted.values():
                if field.required and field.name not in data:
                    problems.append({"field": field.name, "message": "is required"})
        if problems:
            raise ApiError(422, f"invalid {self.name}", {"problems": problems})
        return values

    def dump(self, record: Any) -> dict:
        return {field.name: field.dump(record) for field in self.fields if field.output}

    def openapi(self, mode: str) -> dict:
        """The JSON schema of this record as ``"output"``, ``"create"`` or ``"update"`` input."""
        if mode == "output":
            fields = [f for f in self.fields if f.output]
            required = [f.name for f in fields]
        else:
            fields = [f for f in self.fields if (f.create if mode == "create" else f.update)]
            required = [f.name for f in fields if f.required and mode == "create"]
        schema = {
            "type": "object",
            "properties": {f.name: f.openapi() for f in fields},
            "additionalProperties": False,
        }
        if required:
            schema["required"] = required
        return schema


def read_only(
    name: str,
    type: str,
    description: str = "",
    *,
    nullable: bool = True,
    getter: Callable[[Any], Any] | None = None,
    **options,
) -> Field:
    """A field responses show and clients cannot set."""
    return Field(
        name,
        type,
        description,
        create=False,
        update=False,
        nullable=nullable,
        getter=getter,
        **options,
    )


def invalid(field: str, message: str, status: int = 422) -> ApiError:
    """An :class:`ApiError` about one field, in the usual ``problems`` shape."""
    return ApiError(
        status, f"{field} {message}", {"problems": [{"field": field, "message": message}]}
    )
