"""Seizure intelligence pages: a seizure's coded trade-chain record beside its free text (and
the form that codes it), the intelligence overview (trends, country roles, network, downloads)
and the vocabulary page of administrators.

The pages go through the same checks as the API (:func:`lims.trade_records.check_record`,
:func:`lims.vocabularies.set_term`) and count only the seizures the user may read.
"""

from __future__ import annotations

import base64
import datetime as dt

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, SelectField, StringField, TextAreaField

from lims import aitr, intelligence
from lims.api.routing import load_visible
from lims.errors import ApiError
from lims.extensions import db
from lims.intelligence_figures import network_svg, origins_svg, statement, trends_svg
from lims.models import Seizure, SeizureRecord
from lims.trade_records import CODED_FIELDS, check_record, record_values, save_record
from lims.vocabularies import VOCABULARIES, Vocabularies, set_term
from lims.web.common import NavLink, add_nav_link, bp, can_write, choice_list, holds, page
from matching.intelligence import country_roles, data_statement, trends, ward_clusters

add_nav_link(NavLink("web.intelligence_overview", "Intelligence", ("intelligence.read",)))
add_nav_link(NavLink("web.vocabularies_page", "Vocabularies", ("vocabulary.manage",)))

_LIST_HINTS = {
    "origins": "Codes separated by ;, a share in brackets: TZ [0.6]; MZ",
    "transits": "In route order; [missed] where it could have been seized: AE [missed]; MY",
    "offender_nationalities": "Codes separated by ;: KE; CN",
    "species": "One line per species: name | kg | pieces, e.g. Loxodonta africana | 120.5 | 14",
}


class RecordForm(FlaskForm):
    discovery_country = SelectField("Country of discovery", validate_choice=False)
    origins = StringField("Countries of origin")
    export_country = SelectField("Country of export", validate_choice=False)
    transits = StringField("Countries of transit")
    destination_country = SelectField("Country of destination", validate_choice=False)
    commodity = SelectField("Commodity", validate_choice=False)
    commodity_form = SelectField("Form", validate_choice=False)
    species = TextAreaField("Species and quantities")
    detecting_agency = SelectField("Detecting agency", validate_choice=False)
    detection_method = SelectField("Method of detection", validate_choice=False)
    transport_mode = SelectField("Mode of transport", validate_choice=False)
    concealment = SelectField("Method of concealment", validate_choice=False)
    offender_nationalities = StringField("Nationalities of offenders")
    charges = TextAreaField("Law under which charges were made")
    disposal = SelectField("Disposal", validate_choice=False)
    estimated_value = StringField("Estimated value")
    currency = SelectField("Currency", validate_choice=False)
    validation_status = SelectField("Validation status", validate_choice=False)


def _choices(form: RecordForm, vocabularies: Vocabularies, record: dict) -> None:
    for field, vocabulary in CODED_FIELDS.items():
        terms = vocabularies.terms[vocabulary]
        options = [("", "—")] + [
            (code, f"{code} — {term.label}" if vocabulary == "countries" else term.label)
            for code, term in terms.items()
            if not term.retired or code == record.get(field)
        ]
        if vocabulary == "validation_statuses":
            options = options[1:]
        form[field].choices = choice_list(options)


def _species_text(species: list[dict]) -> str:
    def cell(value):
        return "" if value is None else f"{value:g}"

    return "\n".join(f"{entry['name'] or ''} | {cell(entry['quantity_kg'])} | "
                     f"{cell(entry['pieces'])}" for entry in species)


def _fill(form: RecordForm, values: dict) -> None:
    for field in CODED_FIELDS:
        form[field].data = values[field] or ""
    form.origins.data = aitr.origins_text(values["origins"]) or ""
    form.transits.data = aitr.transits_text(values["transits"]) or ""
    form.offender_nationalities.data = "; ".join(values["offender_nationalities"])
    form.species.data = _species_text(values["species"])
    form.charges.data = values["charges"] or ""
    value = values["estimated_value"]
    form.estimated_value.data = "" if value is None else f"{value:g}"


def _read(form: RecordForm) -> tuple[dict, dict[str, str]]:
    """The record data the form holds, and the fields whose text cannot be read."""
    data: dict = {field: form[field].data or None for field in CODED_FIELDS}
    unreadable = {}
    readers = {"origins": aitr.parse_origins, "transits": aitr.parse_transits,
               "offender_nationalities": aitr.parse_codes}
    for name, reader in readers.items():
        try:
            data[name] = reader(form[name].data or "")
        except ValueError as error:
            unreadable[name] = str(error)
    species = []
    for number, line in enumerate((form.species.data or "").splitlines(), start=1):
        if not line.strip():
            continue
        cells = [cell.strip() for cell in line.split("|")]
        if len(cells) > 3:
            unreadable["species"] = f"line {number}: at most three cells (name | kg | pieces)"
            continue
        cells += [""] * (3 - len(cells))
        row = dict(zip((aitr.SPECIES, aitr.QUANTITY_KG, aitr.PIECES),
                       [cell or None for cell in cells], strict=True))
        species.append(aitr.species_entry(row))
    data["species"] = species
    data["charges"] = form.charges.data or None
    value = (form.estimated_value.data or "").strip()
    if value:
        try:
            data["estimated_value"] = float(value)
        except ValueError:
            unreadable["estimated_value"] = "must be a number"
    return data, unreadable


@bp.route("/seizures/<int:seizure_id>/record", methods=["GET", "POST"])
@page("record.read")
def seizure_record(seizure_id: int):
    seizure = load_visible(Seizure, seizure_id, "seizure")
    record = db.session.get(SeizureRecord, seizure.id)
    vocabularies = Vocabularies(db.session)
    values = record_values(record)
    may_code = holds("evidence.write") and can_write(Seizure, seizure.id)
    form = RecordForm()
    _choices(form, vocabularies, values)
    status = 200
    if request.method == "POST":
        if not may_code:
            raise ApiError(403, "your roles or your agency's access do not allow coding "
                           "this seizure")
        data, unreadable = _read(form)
        checked, problems = check_record(data, vocabularies, record)
        if form.validate() and not problems and not unreadable:
            save_record(seizure, checked, current_user.id, db.session)
            db.session.commit()
            flash(f"Trade-chain record of {seizure.reference} saved.", "success")
            return redirect(url_for("web.seizure_record", seizure_id=seizure.id))
        for name, message in unreadable.items():
            form[name].errors = [*form[name].errors, message]
        for problem in problems:
            name = problem["field"].split("[")[0].split(".")[0]
            if name in form and name not in unreadable:
                form[name].errors = [*form[name].errors, f"{problem['field']}: "
                                     f"{problem['message']}"]
            elif name not in form:
                form.form_errors.append(f"{problem['field']}: {problem['message']}")
        status = 422
    elif request.method == "GET":
        _fill(form, values)
    neighbourhood = _neighbourhood(seizure)
    return render_template(
        "intelligence/seizure_record.html", seizure=seizure, record=record, values=values,
        form=form, may_code=may_code, vocabularies=vocabularies, hints=_LIST_HINTS,
        neighbourhood=neighbourhood,
    ), status


def _neighbourhood(seizure: Seizure) -> dict | None:
    if not holds("intelligence.read"):
        return None
    network = intelligence.seizure_network(db.session, current_user, around=seizure.id)
    me = f"seizure:{seizure.id}"
    nodes = {node["id"]: node for node in network["nodes"]}
    edges = [edge for edge in network["edges"] if me in (edge["source"], edge["target"])]
    return {
        "links": [
            {"other": nodes[edge["target"] if edge["source"] == me else edge["source"]],
             "edge": edge}
            for edge in edges
        ],
    }


def _year(name: str) -> int | None:
    text = request.args.get(name, "").strip()
    if not text:
        return None
    if not text.isdigit() or not 1900 <= int(text) <= 2100:
        raise ApiError(400, f"{name} must be a year, 1900 to 2100")
    return int(text)


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


@bp.route("/intelligence")
@page("intelligence.read")
def intelligence_overview():
    first, last = _year("from_year"), _year("to_year")
    if first is not None and last is not None and first > last:
        raise ApiError(400, "from_year is after to_year")
    relationship = request.args.get("relationship") or None
    if relationship is not None and relationship not in intelligence.RELATIONSHIPS:
        raise ApiError(400, f"relationship must be one of {', '.join(intelligence.RELATIONSHIPS)}")
    window = {
        "date_from": dt.date(first, 1, 1) if first else None,
        "date_to": dt.date(last, 12, 31) if last else None,
    }
    facts = intelligence.seizure_facts(db.session, current_user, **window)
    trend = trends(facts)
    roles = country_roles(facts, exclude=Vocabularies(db.session).pseudo_countries())
    clusters = ward_clusters(roles, 4)
    network = intelligence.seizure_network(
        db.session, current_user, **window,
        relationships=(relationship,) if relationship else intelligence.RELATIONSHIPS,
    )
    origins = intelligence.seizure_origins(db.session, current_user, **window)
    query = {key: value for key, value in (
        ("from", window["date_from"] and window["date_from"].isoformat()),
        ("to", window["date_to"] and window["date_to"].isoformat()),
        ("relationship", relationship)) if value}
    return render_template(
        "intelligence/overview.html",
        trend=trend, trend_figure=_data_uri(trends_svg(trend)),
        roles=list(zip(roles, clusters, strict=True)), roles_data=data_statement(facts),
        network=network, network_figure=_data_uri(network_svg(network)),
        origins=origins, origins_figure=_data_uri(origins_svg(origins)),
        statement=statement, from_year=first, to_year=last, relationship=relationship,
        relationships=intelligence.RELATIONSHIPS, query=query,
        query_dates={key: value for key, value in query.items() if key != "relationship"},
        year=last or first,
    )


class TermForm(FlaskForm):
    vocabulary = SelectField("Vocabulary", choices=choice_list(VOCABULARIES))
    code = StringField("Code")
    label = StringField("Label")
    retired = BooleanField("Retired (refused in new codings)")


@bp.route("/intelligence/vocabularies", methods=["GET", "POST"])
@page("vocabulary.manage")
def vocabularies_page():
    form = TermForm()
    status = 200
    if form.validate_on_submit():
        code, label = (form.code.data or "").strip(), (form.label.data or "").strip()
        if not code:
            form.code.errors = ["is required"]
        if not label:
            form.label.errors = ["is required"]
        if code and label:
            try:
                set_term(db.session, form.vocabulary.data, code, label, form.retired.data,
                         current_user.id)
            except ValueError as error:
                db.session.rollback()
                form.code.errors = [str(error)]
            else:
                db.session.commit()
                flash(f"{form.vocabulary.data}: {code} saved.", "success")
                return redirect(url_for("web.vocabularies_page"))
        status = 422
    elif form.is_submitted():
        status = 422
    return render_template("intelligence/vocabularies.html", form=form,
                           vocabularies=Vocabularies(db.session)), status
