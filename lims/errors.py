"""One error shape for the API, HTML error pages for browsers.

API errors are ``{"error": <code>, "message": <sentence>, "details": <object or null>}`` with
the HTTP status: 400 bad_request (including csrf_failed), 401 unauthorized, 403 forbidden,
404 not_found, 405 method_not_allowed, 409 conflict, 413 payload_too_large,
422 validation_failed, 500 internal_error. A 500 rolls the request's database session back.
"""

from __future__ import annotations

from flask import Flask, current_app, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import HTTPException

from lims.extensions import db

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    429: "too_many_requests",
    500: "internal_error",
}


class ApiError(Exception):
    """An error answered to an API client with the standard shape.

    Parameters
    ----------
    status
        HTTP status code.
    message
        A sentence for people.
    details
        Machine-readable specifics, e.g. ``{"problems": [{"field": ..., "message": ...}]}``.
    error
        The code; defaults to the usual code of ``status``.
    """

    def __init__(
        self, status: int, message: str, details=None, *, error: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details
        self.error = error or ERROR_CODES.get(status, "error")


def wants_json() -> bool:
    """True for API paths and for clients that prefer JSON to HTML."""
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def error_response(status: int, error: str, message: str, details=None):
    if wants_json():
        response = jsonify({"error": error, "message": message, "details": details})
    else:
        response = current_app.make_response(
            render_template("error.html", status=status, message=message)
        )
    response.status_code = status
    return response


def _handle_api_error(error: ApiError):
    db.session.rollback()
    return error_response(error.status, error.error, error.message, error.details)


def _handle_csrf_error(error: CSRFError):
    return error_response(400, "csrf_failed", f"CSRF check failed: {error.description}")


def _handle_http_exception(error: HTTPException):
    status = error.code or 500
    response = error_response(
        status, ERROR_CODES.get(status, error.name.lower().replace(" ", "_")), error.description
    )
    if status == 405 and error.valid_methods:
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def _handle_integrity_error(error: IntegrityError):
    # Uniqueness is checked before writing; this catches what a concurrent writer slipped in.
    db.session.rollback()
    return error_response(409, "conflict", "the change conflicts with existing records")


def _handle_unexpected(error: Exception):
    db.session.rollback()
    current_app.logger.exception("unhandled error on %s %s", request.method, request.path)
    return error_response(500, "internal_error", "an internal error occurred; it has been logged")


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(CSRFError, _handle_csrf_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(IntegrityError, _handle_integrity_error)
    app.register_error_handler(Exception, _handle_unexpected)
