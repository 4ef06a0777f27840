"""The JSON REST API under ``/api/v1``.

Every request is authenticated (bearer token or logged-in session) except the OpenAPI
document; a write made with a session cookie must also carry the CSRF token in an
``X-CSRFToken`` header (token-authenticated scripts need none). Each endpoint declares its
permission, input and output once, in its ``route`` decorator; the OpenAPI document at
``/api/v1/openapi.json`` is built from those declarations and the URL map.
"""

from __future__ import annotations

from flask import request

from lims.api import (  # noqa: F401  (modules register their routes)
    audit,
    cases,
    custody,
    evidence,
    exchange,
    genotypes,
    intelligence,
    openapi,
    people,
    quality,
    released,
    requests,
)
from lims.api.routing import SAFE_METHODS, bp, operation_of
from lims.auth import authenticated_by_token, require_login_api
from lims.extensions import csrf


@bp.before_request
def _authenticate() -> None:
    spec = operation_of(request.endpoint)
    if spec is not None and spec.public:
        return
    require_login_api()
    if request.method not in SAFE_METHODS and not authenticated_by_token():
        csrf.protect()


__all__ = ["bp"]
