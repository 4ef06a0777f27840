"""The OpenAPI 3 document of the API, built from the URL map and the route declarations.

Every ``/api/v1`` rule must have been registered with :func:`lims.api.routing.route`; an
undeclared one is a programming error and stops the document being built.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import types
import typing

from flask import Flask, current_app

from dnatrack import __version__
from lims.api.routing import PAGINATION, Operation, QueryParam, route
from lims.api.schema import INTEGER_MAX, INTEGER_MIN, Schema
from lims.errors import ERROR_CODES

_RULE_VARIABLE = re.compile(r"<(?:(?P<converter>\w+)(?:\([^)]*\))?:)?(?P<name>\w+)>")

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error", "message", "details"],
    "properties": {
        "error": {"type": "string", "description": "Machine-readable code, e.g. not_found."},
        "message": {"type": "string", "description": "What went wrong, for people."},
        "details": {
            "nullable": True,
            "description": "Specifics; for invalid input {problems: [{field, message}]}.",
        },
    },
}


def _openapi_path(rule: str) -> tuple[str, list[dict]]:
    """``/x/<int:id>`` as ``/x/{id}`` plus its path parameters."""
    parameters = []
    for match in _RULE_VARIABLE.finditer(rule):
        schema = {"type": "string"}
        if match["converter"] == "int":
            # The app's int converter takes record ids only (lims.api.routing.RecordIdConverter).
            schema = {"type": "integer", "minimum": 0, "maximum": INTEGER_MAX}
        parameters.append({"name": match["name"], "in": "path", "required": True, "schema": schema})
    return _RULE_VARIABLE.sub(lambda match: "{" + match["name"] + "}", rule), parameters


def _query_parameter(param: QueryParam) -> dict:
    schema = {"type": param.type}
    if param.type in ("date", "date-time"):
        schema = {"type": "string", "format": param.type}
    if param.type == "integer":
        schema.update(minimum=INTEGER_MIN, maximum=INTEGER_MAX)
    if param.choices:
        schema["enum"] = list(param.choices)
    return {
        "name": param.name,
        "in": "query",
        "required": False,
        "description": param.description,
        "schema": schema,
    }


class _Components:
    def __init__(self) -> None:
        self.schemas: dict[str, dict] = {"Error": ERROR_SCHEMA}

    def ref(self, schema: Schema, mode: str) -> dict:
        name = schema.name if mode == "output" else f"{schema.name}_{mode}"
        if name not in self.schemas:
            self.schemas[name] = schema.openapi(mode)
        return {"$ref": f"#/components/schemas/{name}"}

    def dataclass_ref(self, kind: type, name: str | None = None) -> dict:
        """A component for the JSON form of dataclass ``kind`` (fields in order, those without
        a default required), nested dataclasses as components of their own named
        ``<top><Name>``."""
        name = name or kind.__name__
        if name not in self.schemas:
            self.schemas[name] = {}  # taken, for a type that refers to itself
            hints = typing.get_type_hints(kind)
            fields = dataclasses.fields(kind)
            schema: dict = {
                "type": "object",
                "properties": {f.name: self._type(hints[f.name]) for f in fields},
                "required": [f.name for f in fields if f.default is dataclasses.MISSING
                             and f.default_factory is dataclasses.MISSING],
            }
            for added, hint in getattr(kind, "json_added", {}).items():
                schema["properties"][added] = self._type(hint)
                schema["required"].append(added)
            if not schema["required"]:  # OpenAPI 3.0 wants a required list to name one
                del schema["required"]
            doc = inspect.getdoc(kind) or ""
            if doc and not doc.startswith(f"{kind.__name__}("):  # not dataclass's made-up one
                schema["description"] = " ".join(doc.split("\n\n")[0].split())
            self.schemas[name] = schema
        return {"$ref": f"#/components/schemas/{name}"}

    def _type(self, hint) -> dict:
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        if origin in (typing.Union, types.UnionType):
            kinds = [a for a in arguments if a is not type(None)]
            inner = self._type(kinds[0]) if len(kinds) == 1 else {
                "oneOf": [self._type(a) for a in kinds]}
            if type(None) not in arguments:
                return inner
            return {"allOf": [inner], "nullable": True} if "$ref" in inner else {
                **inner, "nullable": True}
        if origin is list:
            return {"type": "array", "items": self._type(arguments[0])}
        if origin is dict:
            return {"type": "object", "additionalProperties": self._type(arguments[1])}
        if dataclasses.is_dataclass(hint):
            return self.dataclass_ref(hint, f"Result{hint.__name__}")
        return {str: {"type": "string"}, int: {"type": "integer"}, float: {"type": "number"},
                bool: {"type": "boolean"}}.get(hint, {})


def _error_statuses(spec: Operation, has_path_parameters: bool) -> list[int]:
    statuses = [400] if spec.query or spec.paginated or spec.request or spec.request_form else []
    if not spec.public:
        # 403 also without a declared permission: need-to-know, read-only shares, own records.
        statuses += [401, 403]
    if has_path_parameters:
        statuses.append(404)
    if spec.method != "GET":
        statuses += [409, 422]
    return sorted({*statuses, *spec.error_statuses, 500})


IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "Retry key, per user: a retry with the same key and body gets the first "
                   "answer and writes nothing; the same key with another body is refused.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7E]+$"},
}


def _operation(spec: Operation, endpoint: str, path_parameters: list[dict], parts: _Components):
    operation = {
        "operationId": endpoint.removeprefix("api."),
        "summary": spec.summary,
        "tags": [spec.tag],
        "parameters": [
            *path_parameters,
            *(_query_parameter(p) for p in (*(PAGINATION if spec.paginated else ()), *spec.query)),
        ],
    }
    if spec.idempotent:
        operation["parameters"].append(IDEMPOTENCY_KEY_PARAMETER)
    description = spec.description
    if spec.permission:
        description = f"Needs the permission {' or '.join(spec.permission)}. {description}"
    if description.strip():
        operation["description"] = description.strip()
    if spec.public:
        operation["security"] = []
    if spec.request is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": parts.ref(spec.request, spec.request_mode)}},
        }
    elif spec.request_form is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"multipart/form-data": {"schema": spec.request_form.openapi("create")}},
        }
    if spec.response is not None or spec.response_type is not None:
        schema = (parts.ref(spec.response, "output") if spec.response is not None
                  else parts.dataclass_ref(spec.response_type))
        if spec.paginated or spec.response_list:
            schema = {"type": "object", "properties": {"items": {"type": "array", "items": schema}}}
            if spec.paginated:
                for name in ("page", "per_page", "total"):
                    schema["properties"][name] = {"type": "integer"}
        content = {spec.response_media_type: {"schema": schema}}
    elif spec.response_media_type != "application/json":
        content = {spec.response_media_type: {"schema": {"type": "string", "format": "binary"}}}
    else:
        content = None
    success = {"description": spec.summary}
    if content is not None:
        success["content"] = content
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    operation["responses"] = {
        **{str(status): success for status in (spec.response_status, *spec.other_statuses)},
        **{
            str(status): {"description": ERROR_CODES[status].replace("_", " "), "content": error}
            for status in _error_statuses(spec, bool(path_parameters))
        },
    }
    return operation


def build_openapi(app: Flask) -> dict:
    """The OpenAPI 3.0 document of every ``api`` blueprint endpoint of ``app``."""
    parts = _Components()
    paths: dict[str, dict] = {}
    for rule in sorted(app.url_map.iter_rules(), key=lambda rule: rule.rule):
        if not rule.endpoint.startswith("api."):
            continue
        spec = getattr(app.view_functions[rule.endpoint], "openapi", None)
        if spec is None:
            raise RuntimeError(f"API endpoint {rule.endpoint} has no route declaration")
        path, parameters = _openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            paths.setdefault(path, {})[method.lower()] = _operation(
                spec, rule.endpoint, parameters, parts
            )
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "dnatrack LIMS API",
            "version": __version__,
            "description": (
                "Evidence, custody, genotypes and matching for forensic DNA work on ivory and "
                "rhino horn. Authenticate with 'Authorization: Bearer <token>', or with the "
                "session cookie of a logged-in user plus an X-CSRFToken header on writes. "
                "Errors answer {error, message, details}."
            ),
        },
        "paths": paths,
        "components": {
            "schemas": parts.schemas,
            "securitySchemes": {
                "bearerToken": {"type": "http", "scheme": "bearer"},
                "sessionCookie": {"type": "apiKey", "in": "cookie", "name": "session"},
            },
        },
        "security": [{"bearerToken": []}, {"sessionCookie": []}],
    }


@route("/openapi.json", "GET", summary="This API's OpenAPI 3 document", tag="meta", public=True)
def openapi_document():
    return build_openapi(current_app)
