"""Cases, seizures, items, source animals, samples and storage locations: lists, record pages
and the forms that register them.

Records are created through the API's resources (:meth:`~lims.api.routing.Resource.add_record`),
so uniqueness, need-to-know on the records a form refers to, tusk pairing and the one-origin
rule of samples are checked exactly as for API clients.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DateTimeLocalField,
    FloatField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Optional

from lims.access import visible
from lims.api.cases import CASES
from lims.api.evidence import ITEMS, SAMPLES, SEIZURES, SOURCE_ANIMALS, STORAGE_LOCATIONS
from lims.api.routing import load_visible, require_permission
from lims.custody import custody_history
from lims.extensions import db
from lims.models import (
    CASE_KINDS,
    ITEM_KINDS,
    SAMPLE_TYPES,
    SOURCE_ANIMAL_KINDS,
    STORAGE_KINDS,
    Agency,
    Case,
    CustodyEvent,
    Extract,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    SourceAnimal,
    StorageLocation,
)
from lims.web.common import (
    RecordSelectField,
    bp,
    can_write,
    choice_list,
    holds,
    page,
    render_form,
    save_form,
    storage_choices,
    user_names,
)

OPTIONAL = [Optional()]


# --------------------------------------------------------------------------- forms
class CaseForm(FlaskForm):
    reference = StringField("Case reference")
    title = StringField("Title")
    kind = SelectField("Kind", choices=choice_list(CASE_KINDS))
    description = TextAreaField("Description")


class SeizureForm(FlaskForm):
    reference = StringField("Seizure reference")
    seized_on = DateField("Date seized", validators=OPTIONAL)
    place = StringField("Place")
    country = StringField("Country")
    latitude = FloatField("Latitude (decimal degrees)", validators=OPTIONAL)
    longitude = FloatField("Longitude (decimal degrees)", validators=OPTIONAL)
    route = TextAreaField("Route (declared or reconstructed)")
    seizing_agency_id = RecordSelectField("Seizing agency")
    declared_pieces = IntegerField("Declared pieces", validators=OPTIONAL)
    declared_weight_kg = FloatField("Declared weight (kg)", validators=OPTIONAL)
    description = TextAreaField("Description")


class ItemForm(FlaskForm):
    label = StringField("Label (e.g. T-012)")
    kind = SelectField("Kind", choices=choice_list(ITEM_KINDS))
    length_cm = FloatField("Length (cm)", validators=OPTIONAL)
    circumference_cm = FloatField("Circumference at the base (cm)", validators=OPTIONAL)
    weight_kg = FloatField("Weight (kg)", validators=OPTIONAL)
    paired_item_id = RecordSelectField("Other tusk of the same animal (morphology)")
    description = TextAreaField("Description")


class SourceAnimalForm(FlaskForm):
    identifier = StringField("Identifier (carcass or reference number)")
    kind = SelectField("Kind", choices=choice_list(SOURCE_ANIMAL_KINDS))
    species = StringField("Species")
    population = StringField("Known population")
    latitude = FloatField("Latitude (decimal degrees)", validators=OPTIONAL)
    longitude = FloatField("Longitude (decimal degrees)", validators=OPTIONAL)
    found_on = DateField("Date found", validators=OPTIONAL)
    description = TextAreaField("Description")


class SampleForm(FlaskForm):
    barcode = StringField("Barcode")
    sample_type = SelectField("Sample type", choices=choice_list(SAMPLE_TYPES))
    storage_location_id = RecordSelectField("First stored at")
    collected_at = DateTimeLocalField(
        "Collected at (UTC)", format=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"], validators=OPTIONAL
    )
    description = TextAreaField("Description")


class StorageLocationForm(FlaskForm):
    name = StringField("Name")
    kind = SelectField("Kind", choices=choice_list(STORAGE_KINDS))
    parent_id = RecordSelectField("Inside")


# --------------------------------------------------------------------------- helpers
def _events_about(column, record_id: int) -> list[CustodyEvent]:
    return list(
        db.session.scalars(
            sa.select(CustodyEvent).where(column == record_id).order_by(CustodyEvent.seq)
        )
    )


def _samples_by_item(item_ids: list[int]) -> dict[int, list[Sample]]:
    by_item: dict[int, list[Sample]] = {item_id: [] for item_id in item_ids}
    for sample in db.session.scalars(
        sa.select(Sample).where(Sample.item_id.in_(item_ids)).order_by(Sample.barcode)
    ):
        by_item[sample.item_id].append(sample)
    return by_item


def _may_add_evidence(case_id: int) -> bool:
    return holds("evidence.write") and can_write(Case, case_id)


# --------------------------------------------------------------------------- cases
@bp.route("/cases")
@page("record.read")
def cases():
    rows = db.session.scalars(
        sa.select(Case).where(visible(Case, current_user)).order_by(Case.reference)
    ).all()
    counts = dict(
        db.session.execute(
            sa.select(Seizure.case_id, sa.func.count())
            .where(Seizure.case_id.in_([case.id for case in rows]))
            .group_by(Seizure.case_id)
        ).all()
    )
    return render_template("evidence/cases.html", cases=rows, seizure_counts=counts)


@bp.route("/cases/new", methods=["GET", "POST"])
@page("case.write")
def new_case():
    form = CaseForm()
    status = 200
    if form.is_submitted():
        case, status = save_form(form, CASES.add_record)
        if case is not None:
            flash(f"Case {case.reference} opened.", "success")
            return redirect(url_for("web.case", case_id=case.id))
    return render_form("evidence/case_form.html", form, status)


@bp.route("/cases/<int:case_id>")
@page("record.read")
def case(case_id: int):
    record = load_visible(Case, case_id, "case")
    seizures = db.session.scalars(
        sa.select(Seizure).where(Seizure.case_id == case_id).order_by(Seizure.reference)
    ).all()
    animals = db.session.scalars(
        sa.select(SourceAnimal)
        .where(SourceAnimal.case_id == case_id)
        .order_by(SourceAnimal.identifier)
    ).all()
    n_samples = db.session.scalar(
        sa.select(sa.func.count()).select_from(Sample).where(Sample.case_id == case_id)
    )
    return render_template(
        "evidence/case.html",
        case=record,
        seizures=seizures,
        animals=animals,
        n_samples=n_samples,
        may_add=_may_add_evidence(case_id),
    )


# --------------------------------------------------------------------------- seizures
@bp.route("/cases/<int:case_id>/seizures/new", methods=["GET", "POST"])
@page("evidence.write")
def new_seizure(case_id: int):
    record = load_visible(Case, case_id, "case", for_writing=True)
    form = SeizureForm()
    agencies = db.session.scalars(sa.select(Agency).order_by(Agency.name)).all()
    form.seizing_agency_id.choices = choice_list(
        [("", "—")] + [(agency.id, agency.name) for agency in agencies]
    )
    status = 200
    if form.is_submitted():
        seizure, status = save_form(
            form, SEIZURES.add_record, {"case_id": case_id}
        )
        if seizure is not None:
            flash(f"Seizure {seizure.reference} registered.", "success")
            return redirect(url_for("web.seizure", seizure_id=seizure.id))
    return render_form("evidence/seizure_form.html", form, status, case=record)


@bp.route("/seizures/<int:seizure_id>")
@page("record.read")
def seizure(seizure_id: int):
    record = load_visible(Seizure, seizure_id, "seizure")
    items = db.session.scalars(
        sa.select(Item).where(Item.seizure_id == seizure_id).order_by(Item.label)
    ).all()
    labels = {item.id: item.label for item in items}
    samples = _samples_by_item([item.id for item in items])
    events = _events_about(CustodyEvent.seizure_id, seizure_id)
    seizing_agency = (
        db.session.get(Agency, record.seizing_agency_id) if record.seizing_agency_id else None
    )
    return render_template(
        "evidence/seizure.html",
        seizure=record,
        items=items,
        item_labels=labels,
        samples=samples,
        events=events,
        actors=user_names(event.actor_id for event in events),
        seizing_agency=seizing_agency,
        may_add=_may_add_evidence(record.case_id),
    )


# --------------------------------------------------------------------------- items
@bp.route("/seizures/<int:seizure_id>/items/new", methods=["GET", "POST"])
@page("evidence.write")
def new_item(seizure_id: int):
    record = load_visible(Seizure, seizure_id, "seizure", for_writing=True)
    form = ItemForm()
    unpaired_tusks = db.session.scalars(
        sa.select(Item)
        .where(
            Item.seizure_id == seizure_id,
            Item.kind == "tusk",
            Item.paired_item_id.is_(None),
        )
        .order_by(Item.label)
    ).all()
    form.paired_item_id.choices = choice_list(
        [("", "— not paired")] + [(item.id, item.label) for item in unpaired_tusks]
    )
    status = 200
    if form.is_submitted():
        item, status = save_form(
            form, ITEMS.add_record, {"seizure_id": seizure_id}
        )
        if item is not None:
            flash(f"Item {item.label} registered in seizure {record.reference}.", "success")
            return redirect(url_for("web.item", item_id=item.id))
    return render_form("evidence/item_form.html", form, status, seizure=record)


@bp.route("/items/<int:item_id>")
@page("record.read")
def item(item_id: int):
    record = load_visible(Item, item_id, "item")
    partner = db.session.get(Item, record.paired_item_id) if record.paired_item_id else None
    samples = _samples_by_item([item_id])[item_id]
    events = _events_about(CustodyEvent.item_id, item_id)
    return render_template(
        "evidence/item.html",
        item=record,
        partner=partner,
        samples=samples,
        events=events,
        actors=user_names(event.actor_id for event in events),
        may_add=_may_add_evidence(record.seizure.case_id),
    )


# --------------------------------------------------------------------------- source animals
@bp.route("/cases/<int:case_id>/source-animals/new", methods=["GET", "POST"])
@page("evidence.write")
def new_source_animal(case_id: int):
    record = load_visible(Case, case_id, "case", for_writing=True)
    form = SourceAnimalForm()
    status = 200
    if form.is_submitted():
        animal, status = save_form(
            form, SOURCE_ANIMALS.add_record, {"case_id": case_id}
        )
        if animal is not None:
            flash(f"{animal.kind.replace('_', ' ').capitalize()} {animal.identifier} registered.",
                  "success")
            return redirect(url_for("web.source_animal", animal_id=animal.id))
    return render_form("evidence/source_animal_form.html", form, status, case=record)


@bp.route("/source-animals/<int:animal_id>")
@page("record.read")
def source_animal(animal_id: int):
    record = load_visible(SourceAnimal, animal_id, "source animal")
    samples = db.session.scalars(
        sa.select(Sample).where(Sample.source_animal_id == animal_id).order_by(Sample.barcode)
    ).all()
    return render_template(
        "evidence/source_animal.html",
        animal=record,
        samples=samples,
        may_add=_may_add_evidence(record.case_id),
    )


# --------------------------------------------------------------------------- samples
def _sample_form_page(origin: dict, origin_label: str, back_url: str, suggested_barcode: str):
    form = SampleForm()
    form.storage_location_id.choices = storage_choices()
    status = 200
    if form.is_submitted():
        sample, status = save_form(form, SAMPLES.add_record, origin)
        if sample is not None:
            flash(f"Sample {sample.barcode} registered.", "success")
            return redirect(url_for("web.sample", sample_id=sample.id))
    elif not form.barcode.data:
        form.barcode.data = suggested_barcode
    return render_form(
        "evidence/sample_form.html", form, status, origin_label=origin_label, back_url=back_url
    )


def _next_barcode(stem: str, count_statement: sa.Select) -> str:
    """A suggestion for the next sample barcode: ``<stem>-S<n>`` not yet in use."""
    number = db.session.scalar(count_statement) + 1
    while db.session.scalar(sa.select(Sample.id).where(Sample.barcode == f"{stem}-S{number}")):
        number += 1
    return f"{stem}-S{number}"


@bp.route("/items/<int:item_id>/samples/new", methods=["GET", "POST"])
@page("evidence.write")
def new_item_sample(item_id: int):
    record = load_visible(Item, item_id, "item", for_writing=True)
    stem = f"{record.seizure.reference}-{record.label}"
    count = sa.select(sa.func.count()).select_from(Sample).where(Sample.item_id == item_id)
    return _sample_form_page(
        {"item_id": item_id},
        f"item {record.label} of seizure {record.seizure.reference}",
        url_for("web.item", item_id=item_id),
        _next_barcode(stem, count),
    )


@bp.route("/source-animals/<int:animal_id>/samples/new", methods=["GET", "POST"])
@page("evidence.write")
def new_animal_sample(animal_id: int):
    record = load_visible(SourceAnimal, animal_id, "source animal", for_writing=True)
    count = (
        sa.select(sa.func.count()).select_from(Sample).where(Sample.source_animal_id == animal_id)
    )
    return _sample_form_page(
        {"source_animal_id": animal_id},
        f"{record.kind.replace('_', ' ')} {record.identifier}",
        url_for("web.source_animal", animal_id=animal_id),
        _next_barcode(record.identifier, count),
    )


@bp.route("/samples/<int:sample_id>/aliquots/new", methods=["GET", "POST"])
@page("evidence.write")
def new_aliquot(sample_id: int):
    record = load_visible(Sample, sample_id, "sample", for_writing=True)
    count = sa.select(sa.func.count()).select_from(Sample).where(Sample.parent_id == sample_id)
    number = db.session.scalar(count) + 1
    suggestion = f"{record.barcode}-A{number}"
    return _sample_form_page(
        {"parent_id": sample_id},
        f"sample {record.barcode} (aliquot or sub-sample)",
        url_for("web.sample", sample_id=sample_id),
        suggestion,
    )


@bp.route("/samples/<int:sample_id>")
@page("record.read")
def sample(sample_id: int):
    record = load_visible(Sample, sample_id, "sample")
    lineage = record.lineage()
    item_record = record.origin_item
    animal = record.origin_source_animal
    aliquots = db.session.scalars(
        sa.select(Sample).where(Sample.parent_id == sample_id).order_by(Sample.barcode)
    ).all()
    extracts = db.session.scalars(
        sa.select(Extract).where(Extract.sample_id == sample_id).order_by(Extract.barcode)
    ).all()
    profiles = db.session.scalars(
        sa.select(GenotypeProfile)
        .where(GenotypeProfile.sample_id == sample_id)
        .order_by(GenotypeProfile.panel, GenotypeProfile.version)
    ).all()
    events = custody_history(db.session, record)
    storage = (
        db.session.get(StorageLocation, record.storage_location_id)
        if record.storage_location_id
        else None
    )
    locations = {
        location.id: location.path
        for location in db.session.scalars(
            sa.select(StorageLocation).where(
                StorageLocation.id.in_({e.storage_location_id for e in events})
            )
        )
    }
    return render_template(
        "evidence/sample.html",
        sample=record,
        lineage=lineage,
        item=item_record,
        animal=animal,
        aliquots=aliquots,
        extracts=extracts,
        profiles=profiles,
        events=events,
        subjects=_event_subjects(events, lineage, item_record),
        actors=user_names(event.actor_id for event in events),
        locations=locations,
        storage=storage,
        may_add=_may_add_evidence(record.case_id) and not record.consumed,
    )


def _event_subjects(events, lineage: list[Sample], item_record: Item | None) -> dict[int, str]:
    """``{event seq: what it is about}`` in words, for a sample's custody timeline."""
    names = {("sample", sample.id): f"sample {sample.barcode}" for sample in lineage}
    names[("sample", lineage[0].id)] = "this sample"
    if item_record is not None:
        names[("item", item_record.id)] = f"item {item_record.label}"
        names[("seizure", item_record.seizure_id)] = f"seizure {item_record.seizure.reference}"
    return {
        event.seq: names.get(event.subject, f"{event.subject[0]} {event.subject[1]}")
        for event in events
    }


# --------------------------------------------------------------------------- storage
@bp.route("/storage", methods=["GET", "POST"])
@page("record.read")
def storage():
    locations = db.session.scalars(
        sa.select(StorageLocation).where(visible(StorageLocation, current_user))
    ).all()
    form = StorageLocationForm()
    form.parent_id.choices = storage_choices()
    status = 200
    if form.is_submitted():
        require_permission("storage.write")
        location, status = save_form(
            form, STORAGE_LOCATIONS.add_record
        )
        if location is not None:
            flash(f"Storage location {location.path} added.", "success")
            return redirect(url_for("web.storage"))
    counts = dict(
        db.session.execute(
            sa.select(Sample.storage_location_id, sa.func.count())
            .where(
                Sample.storage_location_id.in_([location.id for location in locations]),
                Sample.consumed.is_(False),
            )
            .group_by(Sample.storage_location_id)
        ).all()
    )
    return render_form(
        "evidence/storage.html",
        form,
        status,
        locations=sorted(locations, key=lambda location: location.path),
        sample_counts=counts,
        may_add=holds("storage.write"),
    )
