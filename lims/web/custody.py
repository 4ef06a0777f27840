"""Recording custody events by barcode.

The custody form is made for a keyboard-wedge scanner: set the hand-over details once (event,
from whom, to whom, where), then scan one barcode after another. The scanner types the
barcode into the focused field and presses Enter, which submits the form; the page comes back
with the details kept, the barcode field empty and focused again, and the recorded event
confirmed at the top. Typing the barcode and pressing Enter works the same.

Each rendered form carries a key of its own (:mod:`lims.idempotency`): a form sent twice (a
second Enter before the page came back, a browser resending after a dropped connection)
records its event once, and the second sending is answered like the first.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid

import sqlalchemy as sa
from flask import flash, redirect, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import Optional

from lims.access import visible
from lims.api.routing import load_reference
from lims.api.schema import invalid
from lims.custody import CustodyError, record_event
from lims.errors import ApiError
from lims.extensions import db
from lims.idempotency import claim, commit_write, request_fingerprint, valid_key
from lims.models import (
    EVENT_TYPES,
    SIGNATURE_MEANINGS,
    CustodyEvent,
    Extract,
    Sample,
    StorageLocation,
)
from lims.web.common import (
    RecordSelectField,
    bp,
    choice_list,
    page,
    render_form,
    show_problems,
    storage_choices,
    user_names,
)

logger = logging.getLogger(__name__)

# Details kept from one scan to the next (seal numbers and notes belong to one piece).
KEPT_FIELDS = ("event_type", "signature_meaning", "from_holder", "to_holder", "place",
               "storage_location_id")
RECENT_EVENTS = 10


def _new_submission_key() -> str:
    return uuid.uuid4().hex


class CustodyForm(FlaskForm):
    submission_key = HiddenField(default=_new_submission_key)
    barcode = StringField("Barcode (scan or type, then Enter)")
    event_type = SelectField("Event", choices=choice_list(EVENT_TYPES), default="transfer")
    signature_meaning = SelectField(
        "By recording this I attest that I",
        choices=choice_list(SIGNATURE_MEANINGS),
        default="performed",
    )
    from_holder = StringField("From (who hands it over)")
    to_holder = StringField("To (who takes it)")
    place = StringField("Place")
    storage_location_id = RecordSelectField("Storage location (store events)")
    seal_numbers = StringField("Seal numbers (separated by commas)")
    occurred_at = DateTimeLocalField(
        "When (UTC; blank for now)",
        format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"],
        validators=[Optional()],
    )
    notes = TextAreaField("Notes")


def _subject(barcode: str) -> Sample | Extract:
    """The sample or extract with ``barcode``, if the user may add to its custody record
    (the same need-to-know check as the API's ``subject_id``)."""
    if not barcode:
        raise invalid("barcode", "is required: scan or type a barcode")
    for model, noun in ((Sample, "sample"), (Extract, "extract")):
        record_id = db.session.scalar(sa.select(model.id).where(model.barcode == barcode))
        if record_id is not None:
            try:
                return load_reference(model, record_id, "barcode", noun)
            except ApiError as error:
                if error.status != 403:
                    break
                raise invalid("barcode", f"your agency may read {noun} {barcode} but not add "
                              "to its custody record", status=403) from None
    raise invalid("barcode", f"{barcode!r} names no sample or extract you can see")


def _record(form: CustodyForm) -> CustodyEvent:
    subject = _subject((form.barcode.data or "").strip())
    location = load_reference(
        StorageLocation, form.storage_location_id.data, "storage_location_id", "storage location"
    )
    seals = [seal.strip() for seal in (form.seal_numbers.data or "").split(",") if seal.strip()]
    occurred_at = form.occurred_at.data
    try:
        return record_event(
            db.session,
            event_type=form.event_type.data,
            subject=subject,
            actor=current_user,
            signature_meaning=form.signature_meaning.data,
            occurred_at=occurred_at.replace(tzinfo=dt.UTC) if occurred_at else None,
            from_holder=(form.from_holder.data or "").strip() or None,
            to_holder=(form.to_holder.data or "").strip() or None,
            place=(form.place.data or "").strip() or None,
            storage_location=location,
            seal_numbers=seals,
            notes=(form.notes.data or "").strip() or None,
        )
    except CustodyError as error:
        field = "barcode" if error.field == "subject" else error.field
        raise ApiError(422, str(error), {"problems": [{"field": field, "message": str(error)}]}
                       if field else None) from None


def _kept_details() -> dict:
    details = {name: request.args[name] for name in KEPT_FIELDS if request.args.get(name)}
    if details.get("storage_location_id", "").isdigit():
        details["storage_location_id"] = int(details["storage_location_id"])
    else:
        details.pop("storage_location_id", None)
    if request.args.get("barcode"):
        details["barcode"] = request.args["barcode"]
    return details


@bp.route("/custody/scan", methods=["GET", "POST"])
@page("custody.record")
def scan_custody():
    if request.method == "POST":
        form = CustodyForm()
    else:
        form = CustodyForm(formdata=None, data=_kept_details())
    form.storage_location_id.choices = storage_choices()
    status = 200
    if form.is_submitted() and not form.validate():
        status = 422
    elif form.is_submitted():
        key = form.submission_key.data
        fingerprint = request_fingerprint()
        sent_before = claim(key, fingerprint) if valid_key(key) else None
        if sent_before is not None and sent_before.request_sha256 == fingerprint:
            logger.info("idempotent replay: user %s, custody form %r sent again", current_user.id,
                        key)
            flash(f"{sent_before.response_body['message']} The form was sent twice; the event "
                  "was recorded once.", "success")
            return redirect(sent_before.response_location)
        if sent_before is not None:
            form.form_errors.append("This form was already sent and recorded (see your latest "
                                    "events below). Check the details and record again.")
            form.submission_key.data = _new_submission_key()
            status = 409
        else:
            try:
                event = _record(form)
            except ApiError as error:
                status = show_problems(form, error)
            else:
                return _recorded(form, event)
    recent = db.session.scalars(
        sa.select(CustodyEvent)
        .where(CustodyEvent.actor_id == current_user.id, visible(CustodyEvent, current_user))
        .order_by(CustodyEvent.seq.desc())
        .limit(RECENT_EVENTS)
    ).all()
    return render_form(
        "custody/scan.html",
        form,
        status,
        recent=recent,
        barcodes=_barcodes(recent),
        actors=user_names([current_user.id]),
    )


def _recorded(form: CustodyForm, event: CustodyEvent):
    subject_kind, subject_id = event.subject
    message = (f"Recorded {event.event_type} of {subject_kind} {form.barcode.data.strip()} "
               f"(custody event {event.seq}, hash {event.hash[:12]}…).")
    kept = {name: form[name].data for name in KEPT_FIELDS if form[name].data}
    location = url_for("web.scan_custody", **kept)
    commit_write({"message": message}, 303, {"Location": location},
                 proof=sa.select(CustodyEvent.seq).where(CustodyEvent.hash == event.hash))
    logger.info("custody event %s (%s of %s %s) recorded by user %s", event.seq,
                event.event_type, subject_kind, subject_id, current_user.id)
    flash(message, "success")
    return redirect(location)


def _barcodes(events: list[CustodyEvent]) -> dict[int, str]:
    """``{event seq: barcode or label}`` of what each event is about."""
    names = {}
    for event in events:
        kind, record_id = event.subject
        model = {"sample": Sample, "extract": Extract}.get(kind)
        names[event.seq] = (
            db.session.scalar(sa.select(model.barcode).where(model.id == record_id))
            if model is not None
            else f"{kind} {record_id}"
        )
    return names
