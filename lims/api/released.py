"""Released genotype profiles as a genotype file, for researchers' batch work.

Researchers run batch assignment, all-pairs matching and reference-panel validation with the
``dnatrack`` command line or Python (DESIGN.md §1); this endpoint hands them the released,
current profiles of one panel in a file those tools read, by need-to-know: the profiles of
their agency's cases and of the cases shared with it (:func:`lims.release.released_genotypes`).
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from flask import Response, current_app
from flask_login import current_user

from dnatrack.formats import FORMATS, UnwritableValueError, writable_formats, write_genotypes
from lims.api.routing import QueryParam, query_values, route
from lims.errors import ApiError
from lims.extensions import db
from lims.genotyping import resolve_panel
from lims.release import released_genotypes

log = logging.getLogger(__name__)

DEFAULT_FORMAT = "wide"
# What each part of the exported table is in the LIMS, to name the record a format refuses.
_RECORD_OF_FIELD = {
    "profile id": "barcode",
    "population": "source animal's population",
    "allele": "allele",
}
_PARAMETERS = (
    QueryParam("panel", "string", "Marker panel (required)."),
    QueryParam(
        "format",
        "string",
        f"File format (default {DEFAULT_FORMAT}: rubias-style wide CSV with group, "
        "population and coordinates).",
        choices=tuple(writable_formats()),
    ),
)


def _query_problem(field: str, message: str) -> ApiError:
    return ApiError(
        400, "invalid query parameters", {"problems": [{"field": field, "message": message}]}
    )


def _unwritable(error: UnwritableValueError, file_format: str) -> ApiError:
    """422 naming the sample whose value ``file_format`` cannot hold."""
    sample = f"sample {error.profile_id!r}: its " if error.profile_id is not None else ""
    what = _RECORD_OF_FIELD.get(error.field, error.field)
    message = (
        f"{sample}{what} {error.value!r} cannot be written as {file_format} ({error}); "
        "choose another format or correct the record"
    )
    return ApiError(
        422,
        message,
        {
            "problems": [{"field": "format", "message": message}],
            "sample": error.profile_id,
        },
    )


@route(
    "/released-profiles",
    "GET",
    summary="Released profiles of a panel as a genotype file (need-to-know applies)",
    tag="genotypes",
    permission="released.read",
    query=_PARAMETERS,
    response_media_type="text/csv",
    error_statuses=(422,),
    description="The current released profiles typed on the panel that the caller's agency "
    "may see (its cases and those shared with it), one row per sample: id the sample "
    "barcode, group the seizure reference, population and coordinates those of the source "
    "animal where known. Other formats than CSV are sent as text/plain. Text cells a "
    "spreadsheet would run as a formula (starting with =, +, -, @, tab or carriage return) "
    "are written with a leading single quote. A record the format cannot hold (a barcode "
    "with a space in STRUCTURE) is answered 422 naming the sample.",
)
def released_profiles():
    values = query_values(_PARAMETERS)
    if "panel" not in values:
        raise _query_problem("panel", "is required")
    try:
        panel = resolve_panel(values["panel"], current_app.config.get("PANEL_DIRECTORY"))
    except ValueError as error:
        raise _query_problem("panel", str(error)) from None
    file_format = FORMATS[values.get("format", DEFAULT_FORMAT)]
    table = released_genotypes(db.session, panel, user=current_user)
    name = f"released-{panel.name}{file_format.extensions[0]}"
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        try:
            write_genotypes(table, path, format=file_format.name, spreadsheet_safe=True)
        except UnwritableValueError as error:
            raise _unwritable(error, file_format.name) from None
        content = path.read_bytes()
    log.info(
        "released profiles exported: user %s (agency %s), panel %s, format %s, %d profiles",
        current_user.username,
        current_user.agency_id,
        panel.name,
        file_format.name,
        table.n_profiles,
    )
    media_type = "text/csv" if name.endswith(".csv") else "text/plain"
    response = Response(content, mimetype=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response
