"""Sample labels: a page sized for a label printer (one label per printed page) and the
Code128 and QR images on it, each carrying the sample's barcode."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, render_template, request

from lims import labels
from lims.api.routing import load_visible
from lims.errors import ApiError
from lims.extensions import db
from lims.models import Item, Sample, Seizure
from lims.web.common import bp, page

# An SVG made from a barcode never changes, but the sample's need-to-know may: keep it private.
_IMAGE_HEADERS = {"Cache-Control": "private, max-age=3600"}


def _svg(document: str) -> Response:
    return Response(document, mimetype="image/svg+xml", headers=_IMAGE_HEADERS)


def _label_error(error: labels.LabelError) -> ApiError:
    return ApiError(422, str(error))


@bp.route("/samples/<int:sample_id>/label/code128.svg")
@page("record.read")
def label_code128(sample_id: int):
    sample = load_visible(Sample, sample_id, "sample")
    try:
        return _svg(labels.code128_svg(sample.barcode))
    except labels.LabelError as error:
        raise _label_error(error) from None


@bp.route("/samples/<int:sample_id>/label/qr.svg")
@page("record.read")
def label_qr(sample_id: int):
    sample = load_visible(Sample, sample_id, "sample")
    try:
        return _svg(labels.qr_svg(sample.barcode))
    except labels.LabelError as error:
        raise _label_error(error) from None


@bp.route("/labels")
@page("record.read")
def label_sheet():
    """Labels of the samples named by ``sample_id`` (repeatable) and of every sample taken
    directly from the items of ``seizure_id``; unknown or hidden ids answer 404."""
    sample_ids: list[int] = []
    for text in request.args.getlist("sample_id"):
        if not text.isdigit():
            raise ApiError(400, f"sample_id must be a whole number, got {text!r}")
        sample_ids.append(load_visible(Sample, int(text), "sample").id)
    seizure_id = request.args.get("seizure_id")
    if seizure_id is not None:
        if not seizure_id.isdigit():
            raise ApiError(400, f"seizure_id must be a whole number, got {seizure_id!r}")
        seizure = load_visible(Seizure, int(seizure_id), "seizure")
        items = sa.select(Item.id).where(Item.seizure_id == seizure.id)
        sample_ids += db.session.scalars(
            sa.select(Sample.id).where(Sample.item_id.in_(items)).order_by(Sample.barcode)
        ).all()
    if not sample_ids:
        raise ApiError(400, "name the samples to label: sample_id=… or seizure_id=…")
    by_id = {
        sample.id: sample
        for sample in db.session.scalars(sa.select(Sample).where(Sample.id.in_(sample_ids)))
    }
    samples = [by_id[sample_id] for sample_id in dict.fromkeys(sample_ids)]
    for sample in samples:
        try:
            labels.code128_modules(sample.barcode)
        except labels.LabelError as error:
            raise _label_error(error) from None
    return render_template("labels/sheet.html", samples=samples)
