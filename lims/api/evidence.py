"""Seizures, items, source animals, storage locations, samples, extracts and attachments."""

from __future__ import annotations

import base64
import hashlib

import sqlalchemy as sa
from flask import url_for
from flask_login import current_user
from werkzeug.utils import secure_filename

from lims.api.people import CREATED_AT, ID
from lims.api.routing import (
    QueryParam,
    Resource,
    check_unique,
    equals,
    form_values,
    load_reference,
    load_visible,
    route,
    set_attributes,
)
from lims.api.schema import FILE_TYPE, Field, Schema, invalid, read_only
from lims.errors import ApiError
from lims.extensions import db
from lims.models import (
    ITEM_KINDS,
    SAMPLE_TYPES,
    SOURCE_ANIMAL_KINDS,
    STORAGE_KINDS,
    Agency,
    Attachment,
    Case,
    CustodyEvent,
    Extract,
    Item,
    Sample,
    Seizure,
    SourceAnimal,
    StorageLocation,
)

EVIDENCE_WRITE = ("evidence.write",)


def _create_only(name: str, type: str, description: str = "", **options) -> Field:
    return Field(name, type, description, update=False, **options)


LATITUDE = Field("latitude", "number", "Decimal degrees.", minimum=-90, maximum=90)
LONGITUDE = Field("longitude", "number", "Decimal degrees.", minimum=-180, maximum=180)
BARCODE = _create_only(
    "barcode",
    "string",
    "Unique barcode.",
    required=True,
    nullable=False,
    max_length=64,
    identifier=True,
)
CONSUMED = Field(
    "consumed", "boolean", "Used up or destroyed; once true it stays true.", nullable=False
)

# --------------------------------------------------------------------------- seizures
SEIZURE = Schema(
    "seizure",
    (
        ID,
        _create_only(
            "case_id", "integer", "The case it belongs to.", required=True, nullable=False
        ),
        Field(
            "reference",
            "string",
            "Seizure reference, unique within the agency of the case.",
            required=True,
            nullable=False,
            max_length=64,
            identifier=True,
        ),
        Field("seized_on", "date"),
        Field("place", "string", max_length=200),
        Field("country", "string", max_length=100),
        LATITUDE,
        LONGITUDE,
        Field("route", "string", "Declared or reconstructed transport route."),
        Field("seizing_agency_id", "integer", "The agency that made the seizure."),
        Field("declared_pieces", "integer", minimum=0),
        Field("declared_weight_kg", "number", minimum=0),
        Field("description", "string"),
        CREATED_AT,
    ),
)


def _check_seizing_agency(values: dict) -> None:
    agency_id = values.get("seizing_agency_id")
    if agency_id is not None and db.session.get(Agency, agency_id) is None:
        raise invalid("seizing_agency_id", "names no agency")


def _build_seizure(values: dict) -> Seizure:
    case = load_reference(Case, values["case_id"], "case_id", "case")
    # Unique among the seizures of the case's agency (whose reference space a contributing
    # agency writes into); other agencies' seizures never make a reference "in use".
    check_unique(Seizure, values, ("reference",), within={"agency_id": case.agency_id})
    _check_seizing_agency(values)
    return Seizure(**values)


def _apply_seizure(seizure: Seizure, values: dict) -> None:
    check_unique(Seizure, values, ("reference",), seizure, within={"agency_id": seizure.agency_id})
    _check_seizing_agency(values)
    set_attributes(seizure, values)


SEIZURES = Resource(
    "/seizures",
    "seizure",
    Seizure,
    SEIZURE,
    "evidence",
    EVIDENCE_WRITE,
    build=_build_seizure,
    apply=_apply_seizure,
    filters=(
        equals(Seizure, "case_id", "integer", "Seizures of this case."),
        equals(Seizure, "reference", "string", "Exact seizure reference."),
        equals(Seizure, "country", "string", "Country of seizure."),
        QueryParam(
            "seized_from",
            "date",
            "Seized on or after this date.",
            apply=lambda statement, day: statement.where(Seizure.seized_on >= day),
        ),
        QueryParam(
            "seized_to",
            "date",
            "Seized on or before this date.",
            apply=lambda statement, day: statement.where(Seizure.seized_on <= day),
        ),
    ),
).register()

# --------------------------------------------------------------------------- items
ITEM = Schema(
    "item",
    (
        ID,
        _create_only("seizure_id", "integer", required=True, nullable=False),
        Field(
            "label",
            "string",
            "The item's label within its seizure, e.g. T-012.",
            required=True,
            nullable=False,
            max_length=64,
            identifier=True,
        ),
        Field("kind", "string", required=True, nullable=False, choices=ITEM_KINDS),
        Field("length_cm", "number", positive=True),
        Field("circumference_cm", "number", "Circumference at the base.", positive=True),
        Field("weight_kg", "number", positive=True),
        Field(
            "paired_item_id",
            "integer",
            "The other tusk of the same animal, judged by morphology; pairing is kept symmetric.",
        ),
        Field("description", "string"),
        CREATED_AT,
    ),
)


def _check_label(seizure_id: int, label: str | None, item: Item | None = None) -> None:
    if label is None:
        return
    statement = sa.select(Item.id).where(Item.seizure_id == seizure_id, Item.label == label)
    if item is not None:
        statement = statement.where(Item.id != item.id)
    if db.session.scalar(statement) is not None:
        raise invalid("label", f"{label!r} is already used in this seizure", status=409)


def _pair(item: Item, partner_id: int | None) -> None:
    """Pair ``item`` with ``partner_id`` (or unpair it), keeping both sides in step."""
    if item.paired_item_id is not None and item.paired_item_id != partner_id:
        old = db.session.get(Item, item.paired_item_id)
        if old is not None and old.paired_item_id == item.id:
            old.paired_item_id = None
    if partner_id is None:
        item.paired_item_id = None
        return
    partner = load_reference(Item, partner_id, "paired_item_id", "item")
    if partner.id == item.id:
        raise invalid("paired_item_id", "cannot pair an item with itself")
    if item.kind != "tusk" or partner.kind != "tusk":
        raise invalid("paired_item_id", "only tusks are paired")
    if partner.paired_item_id not in (None, item.id):
        raise invalid(
            "paired_item_id",
            f"item {partner.id} is paired with item {partner.paired_item_id}",
            status=409,
        )
    item.paired_item_id = partner.id
    partner.paired_item_id = item.id


def _build_item(values: dict) -> Item:
    load_reference(Seizure, values["seizure_id"], "seizure_id", "seizure")
    _check_label(values["seizure_id"], values["label"])
    partner_id = values.pop("paired_item_id", None)
    item = Item(**values)
    db.session.add(item)
    db.session.flush()
    _pair(item, partner_id)
    return item


def _apply_item(item: Item, values: dict) -> None:
    _check_label(item.seizure_id, values.get("label"), item)
    partner_id = values.pop("paired_item_id", item.paired_item_id)
    set_attributes(item, values)
    if item.kind != "tusk" and partner_id is not None:
        raise invalid("kind", "a paired item must stay a tusk; unpair it first")
    _pair(item, partner_id)


ITEMS = Resource(
    "/items",
    "item",
    Item,
    ITEM,
    "evidence",
    EVIDENCE_WRITE,
    build=_build_item,
    apply=_apply_item,
    filters=(
        equals(Item, "seizure_id", "integer", "Items of this seizure."),
        equals(Item, "kind", "string", "Tusk, horn or piece.", choices=ITEM_KINDS),
        equals(Item, "label", "string", "Exact item label."),
    ),
).register()

# --------------------------------------------------------------------------- source animals
SOURCE_ANIMAL = Schema(
    "source_animal",
    (
        ID,
        _create_only("case_id", "integer", required=True, nullable=False),
        Field(
            "identifier",
            "string",
            "Identifier, unique within the agency of the case, e.g. a carcass or reference number.",
            required=True,
            nullable=False,
            max_length=64,
            identifier=True,
        ),
        Field("kind", "string", required=True, nullable=False, choices=SOURCE_ANIMAL_KINDS),
        Field("species", "string", max_length=100),
        Field("population", "string", "Known population of a reference animal.", max_length=100),
        LATITUDE,
        LONGITUDE,
        Field("found_on", "date"),
        Field("description", "string"),
        CREATED_AT,
    ),
)


def _build_source_animal(values: dict) -> SourceAnimal:
    case = load_reference(Case, values["case_id"], "case_id", "case")
    # Unique among the animals of the case's agency, as seizure references are: another
    # agency's animals never make an identifier "in use".
    check_unique(SourceAnimal, values, ("identifier",), within={"agency_id": case.agency_id})
    return SourceAnimal(**values)


def _apply_source_animal(animal: SourceAnimal, values: dict) -> None:
    check_unique(
        SourceAnimal, values, ("identifier",), animal, within={"agency_id": animal.agency_id}
    )
    set_attributes(animal, values)


SOURCE_ANIMALS = Resource(
    "/source-animals",
    "source animal",
    SourceAnimal,
    SOURCE_ANIMAL,
    "evidence",
    EVIDENCE_WRITE,
    build=_build_source_animal,
    apply=_apply_source_animal,
    filters=(
        equals(SourceAnimal, "case_id", "integer", "Animals of this case."),
        equals(
            SourceAnimal,
            "kind",
            "string",
            "Reference animal or carcass.",
            choices=SOURCE_ANIMAL_KINDS,
        ),
        equals(SourceAnimal, "population", "string", "Known population."),
    ),
).register()

# --------------------------------------------------------------------------- storage
STORAGE_LOCATION = Schema(
    "storage_location",
    (
        ID,
        read_only("agency_id", "integer", nullable=False),
        Field("parent_id", "integer", "The location this one is inside."),
        Field("name", "string", required=True, nullable=False, max_length=100),
        Field("kind", "string", required=True, nullable=False, choices=STORAGE_KINDS),
        Field(
            "path",
            "string",
            "Names from the outermost location down.",
            create=False,
            update=False,
            nullable=False,
            getter=lambda location: location.path,
        ),
        CREATED_AT,
    ),
)


def _storage_location(location_id: int | None, field: str = "storage_location_id"):
    return load_reference(StorageLocation, location_id, field, "storage location")


def _build_storage_location(values: dict) -> StorageLocation:
    _storage_location(values.get("parent_id"), "parent_id")
    return StorageLocation(agency_id=current_user.agency_id, **values)


def _apply_storage_location(location: StorageLocation, values: dict) -> None:
    if values.get("parent_id") is not None:
        parent = _storage_location(values["parent_id"], "parent_id")
        while parent is not None:
            if parent.id == location.id:
                raise invalid("parent_id", "would put the location inside itself")
            parent = parent.parent
    set_attributes(location, values)


STORAGE_LOCATIONS = Resource(
    "/storage-locations",
    "storage location",
    StorageLocation,
    STORAGE_LOCATION,
    "evidence",
    ("storage.write",),
    build=_build_storage_location,
    apply=_apply_storage_location,
    filters=(
        equals(StorageLocation, "parent_id", "integer", "Locations directly inside this one."),
        equals(StorageLocation, "kind", "string", "Kind of location.", choices=STORAGE_KINDS),
    ),
).register()

# --------------------------------------------------------------------------- samples
ORIGINS = ("item_id", "source_animal_id", "parent_id")

SAMPLE = Schema(
    "sample",
    (
        ID,
        BARCODE,
        read_only("case_id", "integer", "The case of the sample's origin.", nullable=False),
        Field("sample_type", "string", required=True, nullable=False, choices=SAMPLE_TYPES),
        _create_only("item_id", "integer", "The seized item it was taken from."),
        _create_only("source_animal_id", "integer", "The reference animal or carcass sampled."),
        _create_only("parent_id", "integer", "The sample it is an aliquot or sub-sample of."),
        _create_only(
            "storage_location_id",
            "integer",
            "Where it is first stored; later moves are custody 'store' events.",
        ),
        CONSUMED,
        Field("collected_at", "date-time"),
        Field("description", "string"),
        Field(
            "seizure_id",
            "integer",
            "The seizure of the item it ultimately comes from.",
            create=False,
            update=False,
            getter=lambda sample: (
                sample.origin_item.seizure_id if sample.origin_item is not None else None
            ),
        ),
        CREATED_AT,
    ),
)


def _build_sample(values: dict) -> Sample:
    given = [name for name in ORIGINS if values.get(name) is not None]
    if len(given) != 1:
        raise ApiError(
            422,
            "a sample comes from exactly one of an item, a source animal or a parent sample",
            {
                "problems": [
                    {"field": name, "message": "give exactly one of these"} for name in ORIGINS
                ]
            },
        )
    if values.get("item_id") is not None:
        case_id = load_reference(Item, values["item_id"], "item_id", "item").seizure.case_id
    elif values.get("source_animal_id") is not None:
        case_id = load_reference(
            SourceAnimal, values["source_animal_id"], "source_animal_id", "source animal"
        ).case_id
    else:
        parent = load_reference(Sample, values["parent_id"], "parent_id", "sample")
        if parent.consumed:
            raise invalid("parent_id", f"sample {parent.barcode} is consumed", status=409)
        case_id = parent.case_id
    _storage_location(values.get("storage_location_id"))
    return Sample(case_id=case_id, **values)


def _apply_consumable(record: Sample | Extract, values: dict) -> None:
    """Change a sample or an extract; ``consumed`` only ever goes from false to true.

    Consumed material is used up or destroyed (a custody ``destroy`` event sets the flag), and
    nothing may come back from it: clearing the flag would let new sub-samples, extracts and
    results appear from material the record says is gone. There is no exception, not even
    for a flag set in error: the record of the evidence then shows the error (the audit trail
    says who set the flag and when) and the laboratory's correction procedure takes over.
    """
    if record.consumed and values.get("consumed") is False:
        subject = CustodyEvent.sample_id if isinstance(record, Sample) else CustodyEvent.extract_id
        destroyed = db.session.scalar(
            sa.select(CustodyEvent.seq).where(
                subject == record.id, CustodyEvent.event_type == "destroy"
            )
        )
        reason = (
            f"the material was destroyed (custody event {destroyed})"
            if destroyed is not None
            else "consumed material cannot come back into use"
        )
        raise invalid("consumed", f"cannot be cleared: {reason}")
    set_attributes(record, values)


def _samples_of_seizure(statement: sa.Select, seizure_id: int) -> sa.Select:
    items = sa.select(Item.id).where(Item.seizure_id == seizure_id)
    return statement.where(Sample.item_id.in_(items))


SAMPLES = Resource(
    "/samples",
    "sample",
    Sample,
    SAMPLE,
    "evidence",
    EVIDENCE_WRITE,
    build=_build_sample,
    apply=_apply_consumable,
    unique=("barcode",),
    filters=(
        equals(Sample, "barcode", "string", "Exact barcode."),
        equals(Sample, "case_id", "integer", "Samples of this case."),
        equals(Sample, "item_id", "integer", "Samples taken directly from this item."),
        equals(Sample, "source_animal_id", "integer", "Samples of this source animal."),
        equals(Sample, "parent_id", "integer", "Aliquots and sub-samples of this sample."),
        equals(Sample, "sample_type", "string", "Type of sample.", choices=SAMPLE_TYPES),
        equals(Sample, "consumed", "boolean", "Consumed or not."),
        QueryParam(
            "seizure_id",
            "integer",
            "Samples taken directly from items of this seizure.",
            apply=_samples_of_seizure,
        ),
    ),
).register()

# --------------------------------------------------------------------------- extracts
EXTRACT = Schema(
    "extract",
    (
        ID,
        BARCODE,
        _create_only("sample_id", "integer", required=True, nullable=False),
        Field("method", "string", "Extraction method or kit.", max_length=200),
        Field("extracted_at", "date-time"),
        Field("volume_ul", "number", positive=True),
        Field("concentration_ng_ul", "number", minimum=0),
        _create_only("storage_location_id", "integer", "Where it is first stored."),
        CONSUMED,
        read_only("created_by_id", "integer"),
        CREATED_AT,
    ),
)


def _build_extract(values: dict) -> Extract:
    sample = load_reference(Sample, values["sample_id"], "sample_id", "sample")
    if sample.consumed:
        raise invalid("sample_id", f"sample {sample.barcode} is consumed", status=409)
    _storage_location(values.get("storage_location_id"))
    return Extract(created_by_id=current_user.id, **values)


Resource(
    "/extracts",
    "extract",
    Extract,
    EXTRACT,
    "evidence",
    ("extract.write",),
    build=_build_extract,
    apply=_apply_consumable,
    unique=("barcode",),
    filters=(
        equals(Extract, "sample_id", "integer", "Extracts of this sample."),
        equals(Extract, "barcode", "string", "Exact barcode."),
    ),
).register()

# --------------------------------------------------------------------------- attachments
SUBJECTS = {"case": Case, "seizure": Seizure, "item": Item, "sample": Sample}

ATTACHMENT = Schema(
    "attachment",
    (
        ID,
        *(read_only(f"{kind}_id", "integer") for kind in SUBJECTS),
        read_only("filename", "string", nullable=False),
        read_only("media_type", "string", nullable=False),
        read_only("size_bytes", "integer", nullable=False),
        read_only("sha256", "string", "Hex SHA-256 of the content.", nullable=False),
        read_only("description", "string"),
        read_only("uploaded_by_id", "integer"),
        read_only("uploaded_at", "date-time", nullable=False),
    ),
)
ATTACHMENT_UPLOAD = Schema(
    "attachment_upload",
    (
        Field(
            "file", FILE_TYPE, "The file (a photo, a scanned form…).", required=True, nullable=False
        ),
        Field("subject_type", "string", required=True, nullable=False, choices=tuple(SUBJECTS)),
        Field("subject_id", "integer", required=True, nullable=False),
        Field("description", "string"),
    ),
)

Resource(
    "/attachments",
    "attachment",
    Attachment,
    ATTACHMENT,
    "evidence",
    EVIDENCE_WRITE,
    filters=tuple(
        equals(Attachment, f"{kind}_id", "integer", f"Attachments of this {kind}.")
        for kind in SUBJECTS
    ),
).register()


@route(
    "/attachments",
    "POST",
    summary="Attach a file to a case, seizure, item or sample",
    tag="evidence",
    permission=("evidence.write", "case.write"),
    request_form=ATTACHMENT_UPLOAD,
    response=ATTACHMENT,
    response_status=201,
)
def create_attachment():
    values = form_values(ATTACHMENT_UPLOAD)
    upload, subject_type, subject_id = (
        values[name] for name in ("file", "subject_type", "subject_id")
    )
    load_reference(SUBJECTS[subject_type], subject_id, "subject_id", subject_type)
    content = upload.read()
    attachment = Attachment(
        filename=secure_filename(upload.filename or "") or "attachment",
        media_type=upload.mimetype or "application/octet-stream",
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        content=content,
        description=values.get("description") or None,
        uploaded_by_id=current_user.id,
        **{f"{subject_type}_id": subject_id},
    )
    db.session.add(attachment)
    db.session.commit()
    location = url_for("api.get_attachment", record_id=attachment.id)
    return ATTACHMENT.dump(attachment), 201, {"Location": location}


@route(
    "/attachments/<int:record_id>/content",
    "GET",
    summary="Download an attachment's content",
    tag="evidence",
    permission="record.read",
    response_media_type="application/octet-stream",
    description="The Repr-Digest header carries the SHA-256 recorded at upload.",
)
def attachment_content(record_id: int):
    attachment = load_visible(Attachment, record_id, "attachment")
    digest = base64.b64encode(bytes.fromhex(attachment.sha256)).decode()
    headers = {
        "Content-Type": attachment.media_type,
        "Content-Disposition": f'attachment; filename="{attachment.filename}"',
        "ETag": f'"{attachment.sha256}"',
        "Repr-Digest": f"sha-256=:{digest}:",
    }
    return attachment.content, 200, headers
