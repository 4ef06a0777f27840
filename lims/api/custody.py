"""Custody events, a sample's custody history, the ledger head and its verification."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import url_for
from flask_login import current_user

from lims.api.routing import (
    QueryParam,
    Resource,
    equals,
    json_body,
    load_reference,
    load_visible,
    query_values,
    route,
)
from lims.api.schema import Field, Schema, read_only
from lims.custody import (
    SUBJECT_KINDS,
    CustodyError,
    ledger_head,
    record_event,
    verify_ledger,
)
from lims.custody import custody_history as sample_custody_history
from lims.errors import ApiError
from lims.extensions import db
from lims.idempotency import commit_write, idempotent
from lims.models import EVENT_TYPES, SIGNATURE_MEANINGS, CustodyEvent, Sample, StorageLocation

logger = logging.getLogger(__name__)

CUSTODY_EVENT = Schema(
    "custody_event",
    (
        read_only("seq", "integer", "Position in the ledger's hash chain.", nullable=False),
        Field(
            "event_type", "string", required=True, nullable=False, choices=EVENT_TYPES, update=False
        ),
        Field(
            "subject_type",
            "string",
            "What kind of evidence the event is about.",
            required=True,
            nullable=False,
            choices=tuple(SUBJECT_KINDS),
            update=False,
            getter=lambda event: event.subject[0],
        ),
        Field(
            "subject_id",
            "integer",
            required=True,
            nullable=False,
            update=False,
            getter=lambda event: event.subject[1],
        ),
        read_only(
            "actor_id", "integer", "The user who recorded and signed the event.", nullable=False
        ),
        Field(
            "from_holder", "string", "Who handed the evidence over.", max_length=200, update=False
        ),
        Field("to_holder", "string", "Who took it.", max_length=200, update=False),
        Field("place", "string", max_length=200, update=False),
        Field("storage_location_id", "integer", "For store events: where it is put.", update=False),
        Field("seal_numbers", "array", items="string", update=False),
        Field(
            "signature_meaning",
            "string",
            "What the signer attests.",
            required=True,
            nullable=False,
            choices=SIGNATURE_MEANINGS,
            update=False,
        ),
        Field("notes", "string", update=False),
        Field("occurred_at", "date-time", "When it happened (default: now).", update=False),
        read_only("recorded_at", "date-time", nullable=False),
        read_only(
            "prev_hash", "string", "Hash of the previous event in the chain.", nullable=False
        ),
        read_only(
            "hash", "string", "sha256(prev_hash || canonical JSON of this event).", nullable=False
        ),
    ),
)

# Times of the hand-overs themselves, not of their recording.
OCCURRED_FROM = QueryParam(
    "occurred_from",
    "date-time",
    "Events that happened at or after this time.",
    apply=lambda statement, moment: statement.where(CustodyEvent.occurred_at >= moment),
)
OCCURRED_TO = QueryParam(
    "occurred_to",
    "date-time",
    "Events that happened at or before this time.",
    apply=lambda statement, moment: statement.where(CustodyEvent.occurred_at <= moment),
)

Resource(
    "/custody-events",
    "custody event",
    CustodyEvent,
    CUSTODY_EVENT,
    "custody",
    ("custody.record",),
    filters=(
        *(
            equals(CustodyEvent, f"{kind}_id", "integer", f"Events about this {kind}.")
            for kind in SUBJECT_KINDS
        ),
        equals(CustodyEvent, "event_type", "string", "Kind of event.", choices=EVENT_TYPES),
        OCCURRED_FROM,
        OCCURRED_TO,
    ),
).register()


@route(
    "/custody-events",
    "POST",
    summary="Record a custody event (appended to the hash chain)",
    tag="custody",
    permission="custody.record",
    request=CUSTODY_EVENT,
    response=CUSTODY_EVENT,
    response_status=201,
    idempotent=True,
    description="Retry-safe with an Idempotency-Key header (per user, 1-255 visible ASCII "
    "characters): a retry with the same key and body gets the first answer and appends "
    "nothing; the same key with another body is refused with 422.",
)
@idempotent
def create_custody_event():
    event = _append_event(CUSTODY_EVENT.load(json_body(), mode="create"))
    location_url = url_for("api.get_custody_event", record_id=event.seq)
    answer = commit_write(
        CUSTODY_EVENT.dump(event), 201, {"Location": location_url},
        proof=sa.select(CustodyEvent.seq).where(CustodyEvent.hash == event.hash),
    )
    logger.info("custody event %s (%s of %s %s) recorded by user %s", event.seq,
                event.event_type, *event.subject, current_user.id)
    return answer


def _append_event(values: dict) -> CustodyEvent:
    kind = values.pop("subject_type")
    subject = load_reference(SUBJECT_KINDS[kind], values.pop("subject_id"), "subject_id", kind)
    location = load_reference(
        StorageLocation,
        values.pop("storage_location_id", None),
        "storage_location_id",
        "storage location",
    )
    try:
        return record_event(
            db.session,
            subject=subject,
            actor=current_user,
            storage_location=location,
            seal_numbers=values.pop("seal_numbers", None) or (),
            **values,
        )
    except CustodyError as error:
        problems = [{"field": error.field, "message": str(error)}] if error.field else None
        raise ApiError(422, str(error), {"problems": problems} if problems else None) from None


SAMPLE_HISTORY = Schema(
    "sample_custody_history",
    (
        read_only("sample_id", "integer", nullable=False),
        read_only("barcode", "string", nullable=False),
        Field(
            "events",
            "array",
            "The sample's events and those of the material it was taken "
            "from before it was registered, in the order they happened (occurred_at).",
            items="object",
            create=False,
            update=False,
            nullable=False,
        ),
    ),
)


@route(
    "/samples/<int:record_id>/custody",
    "GET",
    summary="A sample's whole custody history",
    tag="custody",
    permission="record.read",
    response=SAMPLE_HISTORY,
    query=(OCCURRED_FROM, OCCURRED_TO),
)
def sample_custody(record_id: int):
    values = query_values((OCCURRED_FROM, OCCURRED_TO))
    sample = load_visible(Sample, record_id, "sample")
    events = sample_custody_history(
        db.session,
        sample,
        occurred_from=values.get("occurred_from"),
        occurred_to=values.get("occurred_to"),
    )
    return {
        "sample_id": sample.id,
        "barcode": sample.barcode,
        "events": [CUSTODY_EVENT.dump(event) for event in events],
    }


LEDGER_HEAD = Schema(
    "ledger_head",
    (
        read_only("seq", "integer", "Number of events in the chain.", nullable=False),
        read_only("hash", "string", "Hash of the latest event (zeros when empty).", nullable=False),
    ),
)


@route(
    "/custody/head",
    "GET",
    summary="The ledger head: latest event number and hash",
    tag="custody",
    permission="record.read",
    response=LEDGER_HEAD,
)
def custody_head():
    return LEDGER_HEAD.dump(ledger_head(db.session))


VERIFICATION = Schema(
    "ledger_verification",
    (
        read_only("ok", "boolean", nullable=False),
        read_only("n_events", "integer", nullable=False),
        read_only("head_seq", "integer", nullable=False),
        read_only("head_hash", "string", nullable=False),
        read_only("broken_seq", "integer", "The first event where the chain breaks."),
        read_only("reason", "string", "What is wrong there."),
    ),
)


@route(
    "/custody/verification",
    "GET",
    summary="Replay the whole hash chain and report the first broken link",
    tag="custody",
    permission="audit.read",
    response=VERIFICATION,
)
def custody_verification():
    result = verify_ledger(db.session)
    broken = result.first_break
    return {
        "ok": result.ok,
        "n_events": result.n_events,
        "head_seq": result.head.seq,
        "head_hash": result.head.hash,
        "broken_seq": broken.seq if broken else None,
        "reason": broken.reason if broken else None,
    }
