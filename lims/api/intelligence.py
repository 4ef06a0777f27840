"""Seizure intelligence: coded trade-chain records, vocabularies, AITR and ETIS tables,
trends and country roles. Every figure and table counts only the seizures the caller may read.
"""

from __future__ import annotations

import logging

from flask import Response, request
from flask_login import current_user

from lims import intelligence
from lims.api.routing import QueryParam, json_body, load_visible, query_values, route
from lims.api.schema import FILE_TYPE, Field, Schema, invalid
from lims.errors import ApiError
from lims.extensions import db
from lims.models import Agency, Seizure, SeizureRecord
from lims.trade_records import check_record, record_json, save_record
from lims.vocabularies import VOCABULARIES, Vocabularies, set_term
from matching.intelligence import country_roles, data_statement, trends, ward_clusters

log = logging.getLogger(__name__)

_COUNTRY = "ISO 3166-1 alpha-2 code or pseudo-code of the countries vocabulary."
SEIZURE_RECORD = Schema(
    "seizure_record",
    (
        Field("discovery_country", "string", f"Country of discovery: {_COUNTRY}"),
        Field("origins", "array", "[{country, share (0..1 or null)}], shares adding up to "
              "at most 1.", items="object"),
        Field("export_country", "string", _COUNTRY),
        Field("transits", "array", "[{country, seizure_opportunity (true when the consignment "
              "passed there unseized)}] in route order.", items="object"),
        Field("destination_country", "string", _COUNTRY),
        Field("commodity", "string", "Vocabulary commodities (ivory, horn, other)."),
        Field("commodity_form", "string", "Vocabulary commodity_forms (raw, worked, mixed)."),
        Field("species", "array", "[{name (vocabulary species or null), quantity_kg, pieces}]: "
              "the AITR's rows of this seizure; either quantity may be null.", items="object"),
        Field("detecting_agency", "string", "Vocabulary detecting_agencies."),
        Field("detection_method", "string", "Vocabulary detection_methods."),
        Field("transport_mode", "string", "Vocabulary transport_modes."),
        Field("concealment", "string", "Vocabulary concealments."),
        Field("offender_nationalities", "array", _COUNTRY, items="string"),
        Field("charges", "string", "Law under which charges were made.", max_length=2000),
        Field("disposal", "string", "Vocabulary disposals."),
        Field("estimated_value", "number", "Needs a currency.", minimum=0),
        Field("currency", "string", "Vocabulary currencies (ISO 4217)."),
        Field("validation_status", "string", "Vocabulary validation_statuses; default "
              "unvalidated."),
    ),
)
SEIZURE_RECORD_OUT = Schema(
    "seizure_record_view",
    (
        Field("seizure_id", "integer"),
        Field("reference", "string"),
        Field("agency_id", "integer"),
        Field("seized_on", "date"),
        Field("free_text", "object", "The seizure's place, country, route and declared "
              "quantities as entered (kept as they are)."),
        Field("coded", "boolean", "False while no analyst has coded the seizure."),
        *SEIZURE_RECORD.fields,
        Field("quantity_kg", "number", "Sum over the species rows."),
        Field("pieces", "integer", "Sum over the species rows."),
        Field("updated_at", "date-time"),
    ),
)
TERM = Schema(
    "vocabulary_term",
    (
        Field("label", "string", required=True, nullable=False, max_length=200),
        Field("retired", "boolean", "Refused in new codings when true.", nullable=False),
    ),
)
AITR_UPLOAD = Schema(
    "aitr_upload",
    (
        Field("file", FILE_TYPE, "AITR seizure table, .csv or .xlsx.", required=True,
              nullable=False),
        Field("agency_id", "integer", "Agency whose seizure references the table uses "
              "(default: the caller's)."),
    ),
)

_YEAR = QueryParam("year", "integer", "Seizures of this calendar year.")
_AGENCY = QueryParam("agency_id", "integer", "Seizures held by this agency.")
_FROM = QueryParam("from", "date", "Seized on or after this date.")
_TO = QueryParam("to", "date", "Seized on or before this date.")
_CLUSTERS = QueryParam("clusters", "integer", "Ward clusters of country roles (default 4, "
                       "1..12).")
CAVEAT_NOTE = (" Each answer's data says how many seizures and which years it rests on, and "
               "that raw seizure counts are not trends in trafficking.")


def _record_of(seizure: Seizure) -> SeizureRecord | None:
    return db.session.get(SeizureRecord, seizure.id)


@route("/seizures/<int:record_id>/record", "GET", summary="A seizure's coded trade-chain "
       "record and its free text", tag="intelligence", permission="record.read",
       response=SEIZURE_RECORD_OUT)
def get_seizure_record(record_id: int):
    seizure = load_visible(Seizure, record_id, "seizure")
    return record_json(seizure, _record_of(seizure))


@route("/seizures/<int:record_id>/record", "PUT", summary="Code a seizure's trade-chain "
       "record (the whole record)", tag="intelligence", permission="evidence.write",
       request=SEIZURE_RECORD, response=SEIZURE_RECORD_OUT, error_statuses=(422,),
       description="Every code is checked against the vocabularies in force; a bad code is "
       "refused with 422 naming the field (origins[1].country). Fields left out are emptied.")
def put_seizure_record(record_id: int):
    seizure = load_visible(Seizure, record_id, "seizure", for_writing=True)
    existing = _record_of(seizure)
    values, problems = check_record(json_body(), Vocabularies(db.session), existing)
    if problems:
        raise ApiError(422, "invalid seizure record", {"problems": problems})
    record = save_record(seizure, values, current_user.id, db.session)
    db.session.commit()
    return record_json(seizure, record)


@route("/intelligence/vocabularies", "GET", summary="The controlled vocabularies in force",
       tag="intelligence", permission=("record.read", "vocabulary.manage"))
def list_vocabularies():
    return Vocabularies(db.session).to_json()


@route("/intelligence/vocabularies/<vocabulary>/<path:code>", "PUT", summary="Add, relabel "
       "or retire a vocabulary term", tag="intelligence", permission="vocabulary.manage",
       request=TERM, error_statuses=(404, 422), other_statuses=(201,))
def put_vocabulary_term(vocabulary: str, code: str):
    if vocabulary not in VOCABULARIES:
        raise ApiError(404, f"no vocabulary {vocabulary!r}")
    values = TERM.load(json_body(), mode="create")
    try:
        row, created = set_term(db.session, vocabulary, code, values["label"],
                                values.get("retired", False), current_user.id)
    except ValueError as error:
        raise invalid("code", str(error)) from None
    db.session.commit()
    return ({"vocabulary": vocabulary, "code": row.code, "label": row.label,
             "retired": row.retired}, 201 if created else 200)


def _agency_filter(values: dict) -> int | None:
    """The agency the query names (400 when it names none); checks the year too."""
    year = values.get("year")
    if year is not None and not 1 <= year <= 9999:
        raise ApiError(400, "invalid query parameters",
                       {"problems": [{"field": "year", "message": "must be 1 to 9999"}]})
    agency_id = values.get("agency_id")
    if agency_id is not None and db.session.get(Agency, agency_id) is None:
        raise ApiError(400, "invalid query parameters",
                       {"problems": [{"field": "agency_id", "message": "names no agency"}]})
    return agency_id


def _download(content: bytes, name: str, media_type: str) -> Response:
    response = Response(content, mimetype=media_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


_XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _aitr_table(table_format: str, write) -> Response:
    values = query_values((_YEAR, _AGENCY))
    agency_id = _agency_filter(values)
    rows = intelligence.aitr_rows(db.session, current_user, year=values.get("year"),
                                  agency_id=agency_id)
    log.info("AITR table exported as %s by user %s (agency %s): year %s, agency %s, %d rows",
             table_format, current_user.username, current_user.agency_id, values.get("year"),
             agency_id, len(rows))
    suffix = f"-{values['year']}" if "year" in values else ""
    media_type = _XLSX if table_format == "xlsx" else "text/csv"
    return _download(write(rows), f"aitr{suffix}.{table_format}", media_type)


_AITR_EXPORT = ("One row per seizure and species, of the coded seizures you may read. Text a "
                "spreadsheet would run as a formula is written with a leading single quote.")


@route("/intelligence/aitr.csv", "GET", summary="CITES AITR seizure table as CSV",
       tag="intelligence", permission="intelligence.read", query=(_YEAR, _AGENCY),
       response_media_type="text/csv", description=_AITR_EXPORT)
def export_aitr_csv():
    return _aitr_table("csv", intelligence.aitr.write_csv)


@route("/intelligence/aitr.xlsx", "GET", summary="CITES AITR seizure table as XLSX",
       tag="intelligence", permission="intelligence.read", query=(_YEAR, _AGENCY),
       response_media_type=_XLSX, description=_AITR_EXPORT)
def export_aitr_xlsx():
    return _aitr_table("xlsx", intelligence.aitr.write_xlsx)


@route("/intelligence/aitr", "POST", summary="Import an AITR seizure table: every record, or "
       "none with every problem listed", tag="intelligence", permission="evidence.write",
       request_form=AITR_UPLOAD, error_statuses=(422,), response_status=201,
       description="Rows name seizures by reference within the agency; each seizure's coded "
       "record is replaced by the table's. A refused import answers 422 with "
       "details.problems: [{row, column, message}], and changes nothing.")
def import_aitr():
    upload = request.files.get("file")
    if upload is None:
        raise invalid("file", "is required")
    agency_text = request.form.get("agency_id")
    agency_id = current_user.agency_id
    if agency_text:
        try:
            agency_id = int(agency_text)
        except ValueError:
            raise invalid("agency_id", "must be an integer") from None
    saved, problems = intelligence.import_aitr(
        db.session, current_user, upload.read(), upload.filename or "", agency_id
    )
    if problems:
        db.session.rollback()
        raise ApiError(422, f"the AITR table was not imported: {len(problems)} problems",
                       {"problems": problems})
    db.session.commit()
    return {"records": saved}, 201


@route("/intelligence/etis", "GET", summary="ETIS-style seizure records with the trade chain "
       "(CSV)", tag="intelligence", permission="intelligence.read", query=(_YEAR, _AGENCY),
       response_media_type="text/csv")
def export_etis():
    values = query_values((_YEAR, _AGENCY))
    agency_id = _agency_filter(values)
    rows = intelligence.etis_rows(db.session, current_user, year=values.get("year"),
                                  agency_id=agency_id)
    log.info("ETIS records exported by user %s: year %s, agency %s, %d rows",
             current_user.username, values.get("year"), agency_id, len(rows))
    content = intelligence.aitr.write_csv(rows, intelligence.aitr.ETIS_COLUMNS)
    return _download(content, "etis-records.csv", "text/csv")


def _window() -> dict:
    values = query_values((_FROM, _TO, _CLUSTERS))
    if "from" in values and "to" in values and values["from"] > values["to"]:
        raise ApiError(400, "invalid query parameters",
                       {"problems": [{"field": "to", "message": "is before from"}]})
    return values


@route("/intelligence/trends", "GET", summary="Seizures over time by commodity and weight "
       "class", tag="intelligence", permission="intelligence.read", query=(_FROM, _TO),
       description="Coded seizures you may read, per year, commodity and weight class."
       + CAVEAT_NOTE)
def get_trends():
    values = query_values((_FROM, _TO))
    facts = intelligence.seizure_facts(db.session, current_user, date_from=values.get("from"),
                                       date_to=values.get("to"))
    return trends(facts)


@route("/intelligence/country-roles", "GET", summary="Country roles in the trade chain with "
       "the law-enforcement ratio and a Ward clustering", tag="intelligence",
       permission="intelligence.read", query=(_FROM, _TO, _CLUSTERS),
       description="Per country: seizures and weights made in it (in) and elsewhere naming it "
       "in the trade chain (out), le_ratio = in/(in+out), and its Ward cluster. Pseudo-codes "
       "get no row." + CAVEAT_NOTE)
def get_country_roles():
    values = _window()
    clusters = values.get("clusters", 4)
    if not 1 <= clusters <= 12:
        raise ApiError(400, "invalid query parameters",
                       {"problems": [{"field": "clusters", "message": "must be 1..12"}]})
    facts = intelligence.seizure_facts(db.session, current_user, date_from=values.get("from"),
                                       date_to=values.get("to"))
    roles = country_roles(facts, exclude=Vocabularies(db.session).pseudo_countries())
    labels = ward_clusters(roles, clusters)
    return {
        "rows": [{**role.to_json(), "cluster": label} for role, label in zip(roles, labels,
                                                                            strict=True)],
        "data": data_statement(facts),
    }


_COUNTRY_FILTER = QueryParam("country", "string", "Seizures made in this country (code, or "
                             "the free-text country of an uncoded seizure).")
_RELATIONSHIP = QueryParam("relationship", "string", "Only links of this relationship "
                           "(default: all).", choices=intelligence.RELATIONSHIPS)

_NETWORK_QUERY = (_FROM, _TO, _COUNTRY_FILTER, _RELATIONSHIP)


def network_of_request(values: dict) -> dict:
    """The network the query ``values`` ask for (the pages use it too)."""
    if "from" in values and "to" in values and values["from"] > values["to"]:
        raise ApiError(400, "invalid query parameters",
                       {"problems": [{"field": "to", "message": "is before from"}]})
    relationship = values.get("relationship")
    return intelligence.seizure_network(
        db.session, current_user, date_from=values.get("from"), date_to=values.get("to"),
        country=values.get("country"),
        relationships=(relationship,) if relationship else intelligence.RELATIONSHIPS,
    )


_NETWORK_NOTE = ("Nodes: seizures you may see with date, port, country and weight; edges: "
                 "links between two of them from the latest finished match request that "
                 "found them, with the number of pairs per relationship and the best log10 "
                 "LR." + CAVEAT_NOTE)


@route("/intelligence/network", "GET", summary="The network of linked seizures you may see",
       tag="intelligence", permission="intelligence.read", query=_NETWORK_QUERY,
       description=_NETWORK_NOTE)
def get_network():
    return network_of_request(query_values(_NETWORK_QUERY))


@route("/intelligence/network.csv", "GET", summary="The network of linked seizures as CSV "
       "(one row per link)", tag="intelligence", permission="intelligence.read",
       query=_NETWORK_QUERY, response_media_type="text/csv", description=_NETWORK_NOTE)
def get_network_csv():
    network = network_of_request(query_values(_NETWORK_QUERY))
    return _download(intelligence.network_csv(network), "seizure-network.csv", "text/csv")


NETWORK_GEOJSON = Schema(
    "network_geojson",
    (
        Field("type", "string", "FeatureCollection."),
        Field("features", "array", "A Point per seizure (null geometry without coordinates) "
              "and a LineString per link.", items="object"),
        Field("data", "object", "How many seizures and which years the network rests on."),
    ),
)


@route("/intelligence/network.geojson", "GET", summary="The network of linked seizures as "
       "GeoJSON", tag="intelligence", permission="intelligence.read", query=_NETWORK_QUERY,
       response=NETWORK_GEOJSON, response_media_type="application/geo+json",
       description=_NETWORK_NOTE)
def get_network_geojson():
    import json

    network = network_of_request(query_values(_NETWORK_QUERY))
    content = json.dumps(intelligence.network_geojson(network), ensure_ascii=False)
    return _download(content.encode("utf-8"), "seizure-network.geojson",
                     "application/geo+json")


@route("/intelligence/network.graphml", "GET", summary="The network of linked seizures as "
       "GraphML", tag="intelligence", permission="intelligence.read", query=_NETWORK_QUERY,
       response_media_type="application/graphml+xml", description=_NETWORK_NOTE)
def get_network_graphml():
    network = network_of_request(query_values(_NETWORK_QUERY))
    return _download(intelligence.network_graphml(network), "seizure-network.graphml",
                     "application/graphml+xml")


@route("/intelligence/network.svg", "GET", summary="The network of linked seizures drawn as "
       "SVG", tag="intelligence", permission="intelligence.read", query=_NETWORK_QUERY,
       response_media_type="image/svg+xml", description=_NETWORK_NOTE)
def get_network_svg():
    from lims.intelligence_figures import network_svg

    network = network_of_request(query_values(_NETWORK_QUERY))
    return Response(network_svg(network), mimetype="image/svg+xml")


@route("/intelligence/origins.geojson", "GET", summary="Seizure locations and assigned "
       "origins (most likely point, 90% region) from stored match results, as GeoJSON",
       tag="intelligence", permission="intelligence.read", query=(_FROM, _TO),
       response=NETWORK_GEOJSON, response_media_type="application/geo+json",
       description="Per seizure you may see that a finished match request assigned: its "
                   "location, its most likely origin and the grid cells of its 90% credible "
                   "region, from the latest such request." + CAVEAT_NOTE)
def get_origins_geojson():
    import json

    values = _window_dates()
    origins = intelligence.seizure_origins(db.session, current_user,
                                           date_from=values.get("from"),
                                           date_to=values.get("to"))
    content = json.dumps(intelligence.origins_geojson(origins), ensure_ascii=False)
    return _download(content.encode("utf-8"), "seizure-origins.geojson", "application/geo+json")


def _window_dates() -> dict:
    values = query_values((_FROM, _TO))
    if "from" in values and "to" in values and values["from"] > values["to"]:
        raise ApiError(400, "invalid query parameters",
                       {"problems": [{"field": "to", "message": "is before from"}]})
    return values
