"""How API endpoints are declared: one decorator registers the route, enforces its permission
and records what the OpenAPI document says about it; :class:`Resource` builds the usual
list/create/read/update endpoints of a record type from its schema.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, current_app, request, url_for
from flask_login import current_user
from werkzeug.routing import IntegerConverter

from lims.access import visible
from lims.api.schema import FILE_TYPE, INTEGER_MAX, FieldError, Schema, check_value, invalid
from lims.errors import ApiError
from lims.extensions import db
from lims.permissions import permissions_of

bp = Blueprint("api", __name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def at_most_regex(limit: int) -> str:
    r"""A regular expression matching the decimal numbers 0..``limit`` (leading zeros allowed)
    and no others.

    Examples
    --------
    >>> at_most_regex(250)
    '\\d{1,2}|[0-1]\\d{2}|2[0-4]\\d|250'
    """
    digits = str(limit)
    branches = [rf"\d{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for position, digit in enumerate(digits):
        if digit != "0":
            below = "0" if digit == "1" else f"[0-{int(digit) - 1}]"
            rest = len(digits) - position - 1
            tail = "" if rest == 0 else r"\d" if rest == 1 else rf"\d{{{rest}}}"
            branches.append(digits[:position] + below + tail)
    branches.append(digits)
    return "|".join(branches)


class RecordIdConverter(IntegerConverter):
    """``<int:…>`` in the app's URLs: a record id, so at most :data:`INTEGER_MAX` (the
    database would refuse to compare a larger one with an INTEGER column). A larger number
    matches no route, so it is a 404 whatever the method (a bound checked after matching
    would answer 405 to a PATCH)."""

    regex = at_most_regex(INTEGER_MAX)


@dataclass(frozen=True)
class QueryParam:
    """A query-string parameter; ``apply`` adds its condition to a list query."""

    name: str
    type: str
    description: str
    apply: Callable[[sa.Select, Any], sa.Select] | None = None
    choices: tuple[str, ...] | None = None

    def parse(self, text: str) -> Any:
        if self.type == "integer":
            try:
                value = int(text)
            except ValueError:
                raise FieldError("must be an integer") from None
        elif self.type == "boolean":
            if text.lower() not in ("true", "false", "1", "0"):
                raise FieldError("must be true or false")
            value = text.lower() in ("true", "1")
        else:
            value = text
        return check_value(self.type, value, self.choices)


PAGINATION = (
    QueryParam("page", "integer", "Page number, from 1."),
    QueryParam("per_page", "integer", "Records per page (default 50, at most 500)."),
)


@dataclass(frozen=True)
class Operation:
    """What an endpoint does, who may call it, and what it takes and returns."""

    method: str
    summary: str
    tag: str
    permission: tuple[str, ...] = ()
    public: bool = False
    request: Schema | None = None
    request_mode: str = "create"
    request_form: Schema | None = None
    response: Schema | None = None
    # A dataclass the JSON body is the ``to_json`` of (its OpenAPI schema is derived from the
    # fields), for a body no Schema describes (a stored match-request result).
    response_type: type | None = None
    response_status: int = 200
    # Other success statuses answered with the same body (a PUT's 201 when it created).
    other_statuses: tuple[int, ...] = ()
    # Error statuses beyond those the rest of the declaration implies.
    error_statuses: tuple[int, ...] = ()
    response_media_type: str = "application/json"
    paginated: bool = False
    response_list: bool = False
    query: tuple[QueryParam, ...] = ()
    description: str = ""
    # Retry-safe with an Idempotency-Key header (lims/idempotency.py); declared in the document.
    idempotent: bool = False


def require_permission(*permissions: str) -> None:
    """Raise 403 unless the current user's roles grant one of ``permissions``."""
    granted = permissions_of(current_user.roles)
    if not granted.intersection(permissions):
        raise ApiError(
            403,
            f"this needs the permission {' or '.join(permissions)}, which your roles "
            f"({', '.join(sorted(current_user.roles)) or 'none'}) do not grant",
        )


def route(
    rule: str,
    method: str,
    *,
    summary: str,
    tag: str,
    permission: str | Sequence[str] = (),
    endpoint: str | None = None,
    **operation: Any,
) -> Callable:
    """Register an API view for one method, with its permission check and OpenAPI entry."""
    permissions = (permission,) if isinstance(permission, str) else tuple(permission)
    spec = Operation(method=method, summary=summary, tag=tag, permission=permissions, **operation)

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(**arguments):
            if spec.permission:
                require_permission(*spec.permission)
            return view(**arguments)

        checked.openapi = spec
        bp.add_url_rule(rule, endpoint or view.__name__, checked, methods=[method])
        return checked

    return decorator


def operation_of(endpoint: str | None) -> Operation | None:
    view = current_app.view_functions.get(endpoint) if endpoint else None
    return getattr(view, "openapi", None)


def json_body() -> Any:
    """The request's JSON body; 400 when it is missing or not JSON."""
    data = request.get_json(silent=True)
    if data is None:
        raise ApiError(400, "the request body must be JSON (Content-Type: application/json)")
    return data


def form_values(schema: Schema) -> dict:
    """The fields of a multipart form request checked against ``schema`` (files as
    :class:`~werkzeug.datastructures.FileStorage`, integers converted from their text); 422
    naming every problem, as for JSON input."""
    data: dict[str, Any] = {}
    problems = []
    for declared in schema.fields:
        name = declared.name
        if declared.type == FILE_TYPE:
            if name in request.files:
                data[name] = request.files[name]
        elif name in request.form and declared.type == "integer":
            try:
                data[name] = int(request.form[name])
            except ValueError:
                problems.append({"field": name, "message": "must be an integer"})
        elif name in request.form:
            data[name] = request.form[name]
    unreadable = {problem["field"] for problem in problems}
    try:
        values = schema.load(data, mode="create")
    except ApiError as error:
        # A field whose text was no integer is not "required" on top of that.
        problems += [p for p in error.details["problems"] if p["field"] not in unreadable]
    if problems:
        raise ApiError(422, f"invalid {schema.name}", {"problems": problems})
    return values


def query_values(params: Sequence[QueryParam]) -> dict:
    """Parsed query-string values; 400 naming unknown or malformed parameters."""
    known = {param.name: param for param in params}
    problems = []
    values = {}
    for name, text in request.args.items(multi=False):
        if name not in known:
            problems.append({"field": name, "message": "unknown query parameter"})
            continue
        try:
            values[name] = known[name].parse(text)
        except FieldError as error:
            problems.append({"field": name, "message": str(error)})
    if problems:
        raise ApiError(400, "invalid query parameters", {"problems": problems})
    return values


def paginated(statement: sa.Select, render: Callable[[Any], dict], values: dict) -> dict:
    """One page of ``statement``'s records: ``{"items", "page", "per_page", "total"}``."""
    config = current_app.config
    page = values.get("page", 1)
    per_page = values.get("per_page", config["API_PAGE_SIZE"])
    problems = []
    if page < 1:
        problems.append({"field": "page", "message": "must be at least 1"})
    if not 1 <= per_page <= config["API_MAX_PAGE_SIZE"]:
        problems.append(
            {"field": "per_page", "message": f"must be 1..{config['API_MAX_PAGE_SIZE']}"}
        )
    if problems:
        raise ApiError(400, "invalid query parameters", {"problems": problems})
    total = db.session.scalar(sa.select(sa.func.count()).select_from(statement.subquery()))
    records = db.session.scalars(statement.limit(per_page).offset((page - 1) * per_page))
    return {
        "items": [render(record) for record in records],
        "page": page,
        "per_page": per_page,
        "total": total,
    }


Scope = Callable[[type, Any, bool], Any]


def _default_scope(model: type, user, for_writing: bool):
    return visible(model, user, for_writing=for_writing)


def load_visible(
    model: type,
    record_id: int,
    noun: str,
    *,
    for_writing: bool = False,
    scope: Scope = _default_scope,
):
    """The record, if the current user may see it (404 otherwise) and, ``for_writing``,
    change it (403 when the access is read-only)."""
    key = sa.inspect(model).primary_key[0]
    record = db.session.execute(
        sa.select(model).where(key == record_id, scope(model, current_user, False))
    ).scalar_one_or_none()
    if record is None:
        raise ApiError(404, f"no {noun} {record_id}")
    if for_writing:
        writable = db.session.scalar(
            sa.select(sa.literal(True)).where(key == record_id, scope(model, current_user, True))
        )
        if not writable:
            raise ApiError(403, f"your agency may read this {noun} but not change it")
    return record


def load_reference(
    model: type,
    record_id: int | None,
    field: str,
    noun: str,
    *,
    for_writing: bool = True,
    scope: Scope = _default_scope,
):
    """A record named in a request body (``None`` stays ``None``); 422 naming ``field`` when
    the user cannot see it, 403 when they may only read it."""
    if record_id is None:
        return None
    try:
        return load_visible(model, record_id, noun, for_writing=for_writing, scope=scope)
    except ApiError as error:
        if error.status == 404:
            raise invalid(field, f"names no {noun} you can see") from None
        raise


def check_unique(
    model: type, values: dict, fields: Sequence[str], record=None, *, within: dict | None = None
) -> None:
    """409 naming each field whose new value another record already has.

    ``within`` maps columns to values that scope the uniqueness (``{"agency_id": 3}``: unique
    per agency), as the table's unique constraint does. The answer names only the field and
    the caller's own value, never the record that holds it: for a value unique across
    agencies (a barcode on a physical label) the refusal tells that the value is taken and
    nothing about where.
    """
    problems = []
    scope = [getattr(model, column) == value for column, value in (within or {}).items()]
    for name in fields:
        if name not in values or values[name] is None:
            continue
        statement = sa.select(sa.literal(True)).where(getattr(model, name) == values[name], *scope)
        if record is not None:
            statement = statement.where(sa.inspect(model).primary_key[0] != record.id)
        if db.session.scalar(statement):
            problems.append({"field": name, "message": f"{values[name]!r} is already in use"})
    if problems:
        raise ApiError(409, "a value that must be unique is already in use", {"problems": problems})


@dataclass
class Resource:
    """The list, create, read and update endpoints of one record type.

    ``build(values)`` turns checked input into a new record (resolving and checking the
    records it refers to); ``apply(record, values)`` changes one. Both may raise
    :class:`~lims.errors.ApiError`. Need-to-know is ``scope`` (by default
    :func:`lims.access.visible`).
    """

    path: str
    noun: str
    model: type
    schema: Schema
    tag: str
    write_permission: tuple[str, ...]
    build: Callable[[dict], Any] | None = None
    apply: Callable[[Any, dict], None] | None = None
    filters: tuple[QueryParam, ...] = ()
    unique: tuple[str, ...] = ()
    read_permission: tuple[str, ...] = ("record.read",)
    scope: Scope = field(default=_default_scope)

    @property
    def plural(self) -> str:
        return self.path.strip("/").replace("-", " ")

    def register(self) -> Resource:
        """Add the endpoints to the API blueprint; returns the resource itself."""
        id_rule = f"{self.path}/<int:record_id>"
        endpoint = self.noun.replace(" ", "_")
        route(
            self.path,
            "GET",
            summary=f"List {self.plural}",
            tag=self.tag,
            permission=self.read_permission,
            endpoint=f"list_{endpoint}",
            response=self.schema,
            paginated=True,
            query=self.filters,
        )(self.list_records)
        route(
            id_rule,
            "GET",
            summary=f"Read one {self.noun}",
            tag=self.tag,
            permission=self.read_permission,
            endpoint=f"get_{endpoint}",
            response=self.schema,
        )(self.get_record)
        if self.build is not None:
            route(
                self.path,
                "POST",
                summary=f"Create a {self.noun}",
                tag=self.tag,
                permission=self.write_permission,
                endpoint=f"create_{endpoint}",
                request=self.schema,
                request_mode="create",
                response=self.schema,
                response_status=201,
            )(self.create_record)
        if self.apply is not None:
            route(
                id_rule,
                "PATCH",
                summary=f"Change a {self.noun}",
                tag=self.tag,
                permission=self.write_permission,
                endpoint=f"update_{endpoint}",
                request=self.schema,
                request_mode="update",
                response=self.schema,
            )(self.update_record)
        return self

    def list_records(self):
        values = query_values((*PAGINATION, *self.filters))
        statement = sa.select(self.model).where(self.scope(self.model, current_user, False))
        for param in self.filters:
            if param.name in values:
                statement = param.apply(statement, values[param.name])
        statement = statement.order_by(*sa.inspect(self.model).primary_key)
        return paginated(statement, self.schema.dump, values)

    def get_record(self, record_id: int):
        return self.schema.dump(load_visible(self.model, record_id, self.noun, scope=self.scope))

    def add_record(self, data: Any):
        """Check ``data`` as creation input, build the record and add it to the session (not
        committed). The create endpoint and the web forms both go through here, so the rules
        are the same for both; raises :class:`~lims.errors.ApiError` naming the fields."""
        values = self.schema.load(data, mode="create")
        check_unique(self.model, values, self.unique)
        record = self.build(values)
        db.session.add(record)
        return record

    def create_record(self):
        record = self.add_record(json_body())
        db.session.commit()
        location = url_for(f"api.get_{self.noun.replace(' ', '_')}", record_id=record.id)
        return self.schema.dump(record), 201, {"Location": location}

    def update_record(self, record_id: int):
        record = load_visible(self.model, record_id, self.noun, for_writing=True, scope=self.scope)
        values = self.schema.load(json_body(), mode="update")
        check_unique(self.model, values, self.unique, record)
        self.apply(record, values)
        db.session.commit()
        return self.schema.dump(record)


def set_attributes(record, values: dict) -> None:
    """Copy checked input onto a record."""
    for name, value in values.items():
        setattr(record, name, value)


def equals(model: type, name: str, type: str, description: str, **options) -> QueryParam:
    """A filter keeping records whose column ``name`` equals the given value."""
    column = getattr(model, name)
    return QueryParam(
        name,
        type,
        description,
        apply=lambda statement, value: statement.where(column == value),
        **options,
    )
