"""Exchange with partner instances (:mod:`lims.exchange`): partners, signed packages, hit/no-hit
search and follow-up requests.

Three kinds of caller:

- an admin (``exchange.manage``) registers partners and what is shared with each, exports and
  imports packages, and decides the follow-up requests partners send;
- a user who may request matches (``match.request``) searches partners with released profiles
  they can see, sends follow-up requests, and lists matches between local and imported profiles;
- a partner instance calls ``POST /exchange/search`` and ``/exchange/requests`` with the token
  this instance issued to it (``Authorization: Bearer dtx_…``), not a user's token.

Refusals answer the usual error body with ``error`` set to the exchange's reason code
(``unknown_signer``, ``bad_signature``, ``wrong_recipient``, ``expired``, ``replayed``,
``malformed``, ``invalid_profile``, ``conflict``, ``rate_limited``, ``not_shared``, …).
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Response, current_app, g, request
from flask_login import current_user

from dnatrack.formats import interchange
from dnatrack.genotypes import GenotypeTable
from lims import exchange
from lims.api.routing import (
    PAGINATION,
    QueryParam,
    form_values,
    json_body,
    load_visible,
    paginated,
    query_values,
    route,
)
from lims.api.schema import FILE_TYPE, Field, Schema, invalid
from lims.errors import ApiError
from lims.extensions import db
from lims.genotyping import resolve_panel
from lims.models import Case, ExchangeFollowUp, ExchangePartner, Sample, Seizure
from lims.release import released_genotypes
from lims.reports.analysis import subject_rows

PARTNER_AUTH = (
    "Authenticated by the token this instance issued to the calling partner "
    "(Authorization: Bearer dtx_...), not by a user's token or session."
)

PARTNER = Schema(
    "exchange_partner",
    (
        Field("id", "integer", create=False, update=False, nullable=False),
        Field("name", "string", "Unique name of the partner instance.", required=True,
              nullable=False, max_length=100, identifier=True),
        Field("base_url", "string", "Root URL of the partner's LIMS, e.g. https://lims.kws.go.ke",
              required=True, nullable=False, max_length=500),
        Field("public_key", "string", "The partner's Ed25519 public key, base64 (its "
              "`dnatrack exchange key`).", required=True, nullable=False, max_length=64),
        Field("outbound_token", "string", "The token the partner issued to this instance; "
              "sent with our requests to it, never shown back.", output=False, max_length=255),
        Field("shared_panels", "array", "Panels whose released profiles the partner may "
              "receive.", items="string"),
        Field("share_all_cases", "boolean", "Share released profiles of every case of this "
              "agency (otherwise only those of shared_case_ids)."),
        Field("shared_case_ids", "array", "Cases of this agency whose released profiles are "
              "shared.", items="integer"),
        Field("searches_per_minute", "integer", "Searches the partner may make per minute.",
              minimum=0, maximum=10_000),
        Field("active", "boolean", "An inactive partner can neither search nor be imported from."),
        Field("agency_id", "integer", "The sharing agency (the admin's own).", create=False,
              update=False, nullable=False),
        Field("created_at", "date-time", create=False, update=False, nullable=False),
    ),
)
PARTNER_CREATED = Schema(
    "exchange_partner_created",
    (*PARTNER.fields, Field("issued_token", "string", "The token this instance issued to "
                            "the partner, shown once: give it to the partner's admin.",
                            create=False, update=False)),
)
FOLLOW_UP = Schema(
    "exchange_follow_up",
    tuple(Field(name, kind, create=False, update=False) for name, kind in (
        ("id", "integer"), ("partner_id", "integer"), ("reference", "string"),
        ("panel", "string"), ("reason", "string"), ("status", "string"),
        ("decided_by_id", "integer"), ("decided_at", "date-time"),
        ("decision_note", "string"), ("created_at", "date-time"))),
)
DECISION = Schema(
    "exchange_decision",
    (Field("approve", "boolean", required=True, nullable=False),
     Field("note", "string", max_length=2000)),
)
EXPORT = Schema(
    "exchange_export",
    (Field("panel", "string", required=True, nullable=False, max_length=100),
     Field("valid_days", "number", "Days the package is valid (default 30).", positive=True,
           maximum=365)),
)
INTERCHANGE_EXPORT = Schema(
    "exchange_interchange_export",
    (Field("panel", "string", required=True, nullable=False, max_length=100),
     Field("format", "string", "codis-xml (CODIS-style XML import layout) or type18 "
           "(ANSI/NIST-ITL Type-18 records, tagged encoding).", required=True, nullable=False,
           max_length=20),
     Field("part", "integer", "Which file, when there are more profiles than one holds "
           "(5,000 in codis-xml, 100 in type18; default 1; the X-Interchange-Parts header says "
           "how many).", minimum=1, maximum=1_000_000)),
)
INTERCHANGE_IMPORT = Schema(
    "exchange_interchange_import",
    (Field("file", FILE_TYPE, "The CODIS-style XML or Type-18 file.", required=True,
           nullable=False),
     Field("panel", "string", required=True, nullable=False, max_length=100),
     Field("format", "string", "codis-xml or type18.", required=True, nullable=False,
           max_length=20)),
)
PACKAGE = Schema(
    "exchange_package",
    (Field("payload", "object", "What was signed: format, version, package_id, sender_key, "
           "recipient_key, created_at, expires_at, panel, species, reference_sets, profiles.",
           required=True, nullable=False),
     Field("signature", "string", "Ed25519 signature of the payload's canonical JSON, base64.",
           required=True, nullable=False)),
)
SEARCH = Schema(
    "exchange_search",
    (Field("panel", "string", "A panel shared with the caller.", required=True, nullable=False,
           max_length=100),
     Field("reference_set", "string", "Reference set for the LRs (needed when the panel has "
           "several).", max_length=100),
     Field("profiles", "array", "[{reference (the caller's own, at most 64 characters), "
           "alleles: {locus: [a, b]}}]", required=True, nullable=False, items="object")),
)
REQUEST = Schema(
    "exchange_request",
    (Field("reference", "string", "Our opaque reference from a search answer.", required=True,
           nullable=False, max_length=64),
     Field("panel", "string", required=True, nullable=False, max_length=100),
     Field("reason", "string", required=True, nullable=False, max_length=2000)),
)
PARTNER_SEARCH = Schema(
    "exchange_partner_search",
    (Field("panel", "string", required=True, nullable=False, max_length=100),
     Field("barcodes", "array", "Samples whose released profiles are sent.", required=True,
           nullable=False, items="string"),
     Field("partner_ids", "array", "Partners to search (default: every active partner the "
           "panel is shared with).", items="integer"),
     Field("reference_set", "string", "Reference set for the LRs (needed when the panel has "
           "several).", max_length=100)),
)
PARTNER_REQUEST = Schema(
    "exchange_partner_request",
    (Field("partner_id", "integer", required=True, nullable=False),
     Field("reference", "string", "The partner's opaque reference from a search answer.",
           required=True, nullable=False, max_length=64),
     Field("panel", "string", required=True, nullable=False, max_length=100),
     Field("reason", "string", "Why the details are needed (case, legal basis).", required=True,
           nullable=False, max_length=2000)),
)


def signing_key():
    app = current_app
    key = app.extensions.get("dnatrack_exchange_key")
    if key is None:
        key = app.extensions["dnatrack_exchange_key"] = exchange.app_signing_key(app)
    return key


def token_key():
    app = current_app
    key = app.extensions.get("dnatrack_exchange_token_key")
    if key is None:
        key = app.extensions["dnatrack_exchange_token_key"] = exchange.app_token_key(app)
    return key


def _outbound_token(partner: ExchangePartner) -> str | None:
    try:
        return exchange.decrypt_token(token_key(), partner.outbound_token_encrypted)
    except ValueError as error:
        exchange.log.error("exchange partner %s: %s", partner.name, error)
        raise ApiError(409, f"the token partner {partner.name} issued us cannot be read: "
                       "register it again") from None


def panels(name: str):
    return resolve_panel(name, current_app.config.get("PANEL_DIRECTORY"))


def _api_error(error: exchange.ExchangeError) -> ApiError:
    return ApiError(error.status, str(error), {"problems": error.problems}, error=error.code)


def _actor() -> int:
    return current_user.id


def _check_partner_values(values: dict) -> None:
    if "public_key" in values:
        try:
            exchange.parse_public_key(values["public_key"])
        except ValueError as error:
            raise invalid("public_key", str(error)) from None
    if "base_url" in values and not values["base_url"].startswith(("http://", "https://")):
        raise invalid("base_url", "must start with http:// or https://")
    for panel in values.get("shared_panels") or []:
        try:
            panels(panel)
        except ValueError:
            raise invalid("shared_panels", f"names no panel {panel!r}") from None
    wanted = set(values.get("shared_case_ids") or [])
    if wanted:
        own = set(db.session.scalars(sa.select(Case.id).where(
            Case.id.in_(wanted), Case.agency_id == current_user.agency_id)))
        if wanted - own:
            raise invalid("shared_case_ids", f"case {min(wanted - own)} is not a case of your "
                                             "agency")
    for name in ("name", "public_key"):
        if name in values and db.session.scalar(sa.select(ExchangePartner.id).where(
                getattr(ExchangePartner, name) == values[name])) is not None:
            raise ApiError(409, f"a partner with this {name} is registered",
                           {"problems": [{"field": name, "message": "is already in use"}]})


@route("/exchange/partners", "GET", summary="List exchange partners", tag="exchange",
       permission="exchange.manage", response=PARTNER, paginated=True)
def list_partners():
    values = query_values(PAGINATION)
    statement = sa.select(ExchangePartner).where(
        ExchangePartner.agency_id == current_user.agency_id).order_by(ExchangePartner.id)
    return paginated(statement, PARTNER.dump, values)


@route("/exchange/partners", "POST", summary="Register an exchange partner", tag="exchange",
       permission="exchange.manage", request=PARTNER, response=PARTNER_CREATED,
       response_status=201, description="Answers the token this instance issues to the partner "
       "(issued_token) once; only its hash is kept.")
def create_partner():
    partner, token = register_partner(json_body())
    db.session.commit()
    return {**PARTNER.dump(partner), "issued_token": token}, 201


def register_partner(data) -> tuple[ExchangePartner, str]:
    """Check a partner's registration (API field names) and add it for the caller's agency,
    with the token this instance issues to it (returned once; only its hash is kept) and the
    token it issued us encrypted. :class:`~lims.errors.ApiError` naming the fields."""
    values = PARTNER.load(data, mode="create")
    _check_partner_values(values)
    token = exchange.new_partner_token()
    outbound = exchange.encrypt_token(token_key(), values.pop("outbound_token", None))
    partner = ExchangePartner(agency_id=current_user.agency_id, created_by_id=_actor(),
                              inbound_token_hash=exchange.hash_token(token),
                              outbound_token_encrypted=outbound, **values)
    db.session.add(partner)
    db.session.flush()
    exchange.log.info("exchange partner %s registered by %s", partner.name,
                      current_user.username)
    return partner, token


@route("/exchange/partners/<int:record_id>", "GET", summary="Read an exchange partner",
       tag="exchange", permission="exchange.manage", response=PARTNER)
def get_partner(record_id: int):
    return PARTNER.dump(load_visible(ExchangePartner, record_id, "partner"))


@route("/exchange/partners/<int:record_id>", "PATCH", summary="Change an exchange partner",
       tag="exchange", permission="exchange.manage", request=PARTNER, request_mode="update",
       response=PARTNER)
def update_partner(record_id: int):
    partner = load_visible(ExchangePartner, record_id, "partner", for_writing=True)
    values = PARTNER.load(json_body(), mode="update")
    _check_partner_values({k: v for k, v in values.items()
                           if getattr(partner, k, None) != v})
    if "outbound_token" in values:
        partner.outbound_token_encrypted = exchange.encrypt_token(
            token_key(), values.pop("outbound_token"))
        exchange.log.info("exchange partner %s: outbound token changed by %s", partner.name,
                          current_user.username)
    for name, value in values.items():
        setattr(partner, name, value)
    db.session.commit()
    return PARTNER.dump(partner)


@route("/exchange/partners/<int:record_id>/packages", "POST",
       summary="Export a signed package of released profiles for a partner", tag="exchange",
       permission="exchange.manage", request=EXPORT, response_media_type="application/json",
       description="The current released profiles of the panel in the partner's shared scope, "
       "without internal ids, names or case references (an opaque reference each), signed with "
       "this instance's Ed25519 key.")
def export_package(record_id: int):
    partner = load_visible(ExchangePartner, record_id, "partner")
    values = EXPORT.load(json_body(), mode="create")
    try:
        panel = panels(values["panel"])
    except ValueError as error:
        raise invalid("panel", str(error)) from None
    try:
        content = exchange.export_package(
            db.session, partner, panel, signing_key(), actor_id=_actor(),
            valid_days=values.get("valid_days") or exchange.DEFAULT_VALID_DAYS)
    except exchange.ExchangeError as error:
        raise _api_error(error) from None
    db.session.commit()
    response = Response(content, mimetype="application/json")
    response.headers["Content-Disposition"] = (
        f'attachment; filename="dnatrack-{panel.name}-for-{partner.name}.json"')
    return response


@route("/exchange/packages", "POST", summary="Import a signed package from a partner",
       tag="exchange", permission="exchange.manage", request=PACKAGE, response_status=201,
       description="The body is the package file as exported. It is refused, importing "
       "nothing, when malformed, signed by no registered partner (unknown_signer), altered "
       "(bad_signature), made for another instance (wrong_recipient), expired, already imported "
       "(replayed), or when a profile does not fit the panel (invalid_profile).")
def import_package():
    content = request.get_data(cache=False)
    try:
        package = exchange.import_package(db.session, content, signing_key(), panels,
                                          actor_id=_actor())
    except exchange.ExchangeError as error:
        db.session.rollback()
        raise _api_error(error) from None
    db.session.commit()
    return {"id": package.id, "package_id": package.package_id,
            "partner": package.partner.name, "panel": package.panel,
            "profiles": package.n_profiles}, 201


def _panel_value(name: str):
    try:
        return panels(name)
    except ValueError as error:
        raise invalid("panel", str(error)) from None


@route("/exchange/partners/<int:record_id>/interchange", "POST",
       summary="Export released profiles for a partner as CODIS-style XML or Type-18",
       tag="exchange", permission="exchange.manage", request=INTERCHANGE_EXPORT,
       response_media_type="application/octet-stream",
       description="The profiles a package would carry (current released profiles of the "
       "panel in the partner's shared scope, named by opaque references) in an interchange "
       "format, loci and alleles named by the panel's kit mapping "
       "(reference_data/exchange_kits). Unsigned. A profile the format cannot hold is refused "
       "(unwritable), naming it and the locus.")
def export_interchange(record_id: int):
    partner = load_visible(ExchangePartner, record_id, "partner")
    values = INTERCHANGE_EXPORT.load(json_body(), mode="create")
    panel = _panel_value(values["panel"])
    try:
        (content,), parts = exchange.export_interchange(
            db.session, partner, panel, signing_key(), values["format"],
            part=values.get("part") or 1, actor_id=_actor())
    except exchange.ExchangeError as error:
        raise _api_error(error) from None
    db.session.commit()
    response = Response(content, mimetype="application/octet-stream")
    extension = interchange.EXTENSIONS[values["format"]]
    response.headers["Content-Disposition"] = (
        f'attachment; filename="dnatrack-{panel.name}-for-{partner.name}{extension}"')
    response.headers["X-Interchange-Parts"] = str(parts)
    return response


@route("/exchange/partners/<int:record_id>/interchange-imports", "POST",
       summary="Import a partner's CODIS-style XML or Type-18 file", tag="exchange",
       permission="exchange.manage", request_form=INTERCHANGE_IMPORT, response_status=201,
       error_statuses=(409, 413, 422),
       description="Multipart form: file, panel, format. The profiles are stored as imported "
       "from this partner (marked with its origin, never editable). The file carries no "
       "signature: the caller vouches for its origin, and the import is logged. Refused, "
       "importing nothing, when a locus or allele does not fit the panel's kit mapping "
       "(invalid_profile, naming the record and locus), when XML has a document type "
       "declaration (entities are never expanded), when the same file was imported "
       "(replayed), or when a reference was imported before with other alleles (conflict).")
def import_interchange(record_id: int):
    partner = load_visible(ExchangePartner, record_id, "partner")
    values = form_values(INTERCHANGE_IMPORT)
    panel = _panel_value(values["panel"])
    content = values["file"].read(interchange.MAX_INTERCHANGE_BYTES + 1)
    try:
        package = exchange.import_interchange(
            db.session, partner, panel, content, values["format"],
            name=values["file"].filename or "upload", actor_id=_actor())
    except exchange.ExchangeError as error:
        db.session.rollback()
        raise _api_error(error) from None
    db.session.commit()
    return {"id": package.id, "package_id": package.package_id, "partner": partner.name,
            "panel": package.panel, "profiles": package.n_profiles}, 201


@route("/exchange/follow-ups", "GET", summary="Follow-up requests from partners (the queue)",
       tag="exchange", permission="exchange.manage", response=FOLLOW_UP, paginated=True,
       query=(QueryParam("status", "string", "Only requests in this status.",
                         choices=("pending", "approved", "refused")),))
def list_follow_ups():
    values = query_values((*PAGINATION, QueryParam("status", "string", "",
                                                   choices=("pending", "approved", "refused"))))
    statement = (sa.select(ExchangeFollowUp).join(ExchangePartner)
                 .where(ExchangePartner.agency_id == current_user.agency_id)
                 .order_by(ExchangeFollowUp.id))
    if "status" in values:
        statement = statement.where(ExchangeFollowUp.status == values["status"])
    return paginated(statement, FOLLOW_UP.dump, values)


def load_follow_up(record_id: int) -> ExchangeFollowUp:
    follow_up = db.session.execute(
        sa.select(ExchangeFollowUp).join(ExchangePartner).where(
            ExchangeFollowUp.id == record_id,
            ExchangePartner.agency_id == current_user.agency_id)).scalar_one_or_none()
    if follow_up is None:
        raise ApiError(404, f"no follow-up request {record_id}")
    return follow_up


@route("/exchange/follow-ups/<int:record_id>/decision", "POST",
       summary="Approve or refuse a partner's follow-up request", tag="exchange",
       permission="exchange.manage", request=DECISION, response=FOLLOW_UP)
def decide_follow_up(record_id: int):
    follow_up = load_follow_up(record_id)
    values = DECISION.load(json_body(), mode="create")
    try:
        exchange.decide_follow_up(db.session, follow_up, current_user, values["approve"],
                                  values.get("note"))
    except exchange.ExchangeError as error:
        raise _api_error(error) from None
    db.session.commit()
    return FOLLOW_UP.dump(follow_up)


# --- what partners call ------------------------------------------------------------------------


def calling_partner() -> ExchangePartner:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    partner = exchange.partner_by_token(db.session, token.strip()
                                        if scheme.lower() == "bearer" else None)
    if partner is None:
        raise ApiError(401, "send the token this instance issued to your instance")
    g.exchange_partner = partner
    return partner


@route("/exchange/search", "POST", summary="Hit/no-hit search by a partner", tag="exchange",
       public=True, request=SEARCH, error_statuses=(401, 429),
       description=f"{PARTNER_AUTH} Body {{panel, reference_set?, profiles: [{{reference, "
       "alleles}}]}}. Each profile is searched against the released profiles shared with the "
       "caller; the answer is {results: [{reference, hit, matches: [{relationship, log10_lr, "
       "partner_reference}]}]} and nothing else. LRs use the reference set's pooled "
       "frequencies and its species' θ, the default error model and one log10 LR cutoff for "
       "every relationship that keeps the expected false matches of the whole search within "
       "one (matching.pair_search.markov_cutoff). Rate-limited per partner (429).")
def partner_search():
    partner = calling_partner()
    body = SEARCH.load(json_body(), mode="create")
    try:
        answer = exchange.answer_search(
            db.session, partner, body, panels, signing_key(),
            max_profiles=current_app.config["EXCHANGE_MAX_SEARCH_PROFILES"])
    except exchange.ExchangeError as error:
        raise _api_error(error) from None
    db.session.commit()
    return answer


@route("/exchange/requests", "POST", summary="A partner's follow-up request for details",
       tag="exchange", public=True, request=REQUEST, error_statuses=(401, 404),
       response_status=201,
       description=f"{PARTNER_AUTH} Body {{reference, panel, reason}}; queued for an admin of "
       "the holding agency to approve or refuse.")
def partner_follow_up():
    partner = calling_partner()
    body = REQUEST.load(json_body(), mode="create")
    try:
        follow_up = exchange.receive_follow_up(db.session, partner, body, signing_key())
    except exchange.ExchangeError as error:
        raise _api_error(error) from None
    db.session.commit()
    return {"id": follow_up.id, "status": follow_up.status}, 201


@route("/exchange/requests/<int:record_id>", "GET",
       summary="A partner reads its follow-up request (details once approved)", tag="exchange",
       public=True, error_statuses=(401,),
       description=f"{PARTNER_AUTH} Once approved, the details of the one record asked about.")
def partner_follow_up_answer(record_id: int):
    partner = calling_partner()
    follow_up = db.session.get(ExchangeFollowUp, record_id)
    if follow_up is None or follow_up.partner_id != partner.id:
        raise ApiError(404, f"no follow-up request {record_id}")
    answer = exchange.follow_up_details(db.session, follow_up, signing_key())
    db.session.commit()
    return answer


# --- what users ask of partners ----------------------------------------------------------------


@route("/exchange/partner-search", "POST", summary="Search partner instances (hit/no-hit)",
       tag="exchange", permission="match.request", request=PARTNER_SEARCH,
       description="Sends the released profiles of the named samples (need-to-know applies) to "
       "each partner of the caller's agency the panel is shared with; a sample outside a "
       "partner's shared scope is refused. Each partner's answer: answered (per sample: hit, "
       "matches with relationship, log10 LR and the partner's reference), refused (its "
       "error) or unreachable (no answer within EXCHANGE_TIMEOUT_SECONDS); one partner down "
       "does not hold up the others.")
def search_partners():
    values = PARTNER_SEARCH.load(json_body(), mode="create")
    try:
        panel = panels(values["panel"])
    except ValueError as error:
        raise invalid("panel", str(error)) from None
    statement = sa.select(ExchangePartner).where(
        ExchangePartner.agency_id == current_user.agency_id,
        ExchangePartner.active.is_(True), ExchangePartner.outbound_token_encrypted.is_not(None))
    if values.get("partner_ids"):
        statement = statement.where(ExchangePartner.id.in_(values["partner_ids"]))
    chosen = [p for p in db.session.scalars(statement.order_by(ExchangePartner.id))
              if panel.name in (p.shared_panels or [])]
    if not chosen:
        raise invalid("partner_ids", f"no active partner shares panel {panel.name}")
    visible = released_genotypes(db.session, panel, user=current_user)
    row_of = {str(barcode): row for row, barcode in enumerate(visible.profile_ids)}
    missing = [b for b in values["barcodes"] if b not in row_of]
    if missing:
        raise invalid("barcodes", f"{missing[0]} has no released profile on {panel.name} "
                                  "that you can see")
    key = signing_key()
    sample_of = dict(db.session.execute(
        sa.select(Sample.barcode, Sample.id).where(Sample.barcode.in_(values["barcodes"]))).all())
    requests_by_partner, barcode_of = {}, {}
    for partner in chosen:
        shared = {p.sample_id: p
                  for p in exchange.shared_profiles(db.session, partner, panel.name, key)}
        profiles = []
        for barcode in values["barcodes"]:
            profile = shared.get(sample_of[barcode])
            if profile is None:
                raise invalid("barcodes", f"{barcode} is not shared with partner {partner.name}")
            profiles.append({"reference": profile.reference, "alleles": profile.alleles})
            barcode_of[partner.id, profile.reference] = barcode
        requests_by_partner[partner.id] = {"panel": panel.name, "profiles": profiles,
                                           "reference_set": values.get("reference_set")}
    answers = exchange.search_partners(chosen, requests_by_partner,
                                       current_app.config["EXCHANGE_TIMEOUT_SECONDS"],
                                       {p.id: _outbound_token(p) for p in chosen})
    out = []
    for partner in chosen:
        answer = answers[partner.id]
        for result in answer.get("results") or []:
            result["barcode"] = barcode_of.get((partner.id, result.get("reference")))
        exchange.record_event(db.session, "search_sent", partner, _actor(), panel=panel.name,
                              profiles=len(values["barcodes"]), status=answer["status"])
        out.append({"partner_id": partner.id, "partner": partner.name, **answer})
    db.session.commit()
    return {"partners": out}


@route("/exchange/partner-requests", "POST",
       summary="Send a follow-up request for details to a partner", tag="exchange",
       permission="match.request", request=PARTNER_REQUEST)
def send_follow_up():
    values = PARTNER_REQUEST.load(json_body(), mode="create")
    partner = db.session.get(ExchangePartner, values.pop("partner_id"))
    if partner is None or not partner.active or partner.agency_id != current_user.agency_id:
        raise invalid("partner_id", "names no active partner")
    answer = _forward(partner, "POST", "/exchange/requests", values)
    exchange.record_event(db.session, "follow_up_sent", partner, _actor(),
                          reference=values["reference"], answer=answer.get("status"))
    db.session.commit()
    return answer


@route("/exchange/partner-requests/<int:partner_id>/<int:remote_id>", "GET",
       summary="Read a follow-up request sent to a partner", tag="exchange",
       permission="match.request")
def read_follow_up(partner_id: int, remote_id: int):
    partner = db.session.get(ExchangePartner, partner_id)
    if partner is None or partner.agency_id != current_user.agency_id:
        raise ApiError(404, f"no partner {partner_id}")
    return _forward(partner, "GET", f"/exchange/requests/{remote_id}", None)


def _forward(partner: ExchangePartner, method: str, path: str, body: dict | None) -> dict:
    try:
        status, answer = exchange.call_partner(partner, method, path, body,
                                               current_app.config["EXCHANGE_TIMEOUT_SECONDS"],
                                               _outbound_token(partner))
    except exchange.PartnerUnreachable as error:
        return {"status": "unreachable", "message": str(error)}
    if status >= 400:
        return {"status": "refused", "http_status": status, "error": answer.get("error"),
                "message": answer.get("message")}
    return answer


IMPORTED_MATCHES_QUERY = (
    QueryParam("panel", "string", "Marker panel (required)."),
    QueryParam("reference_set", "string", "Reference set for the LRs."),
    QueryParam("seizure_id", "integer", "Search only this seizure's released profiles."),
    QueryParam("case_id", "integer", "Search only this case's released profiles."),
)


@route("/exchange/imported-matches", "GET",
       summary="Matches between imported profiles and local released ones", tag="exchange",
       permission="exchange.read", query=IMPORTED_MATCHES_QUERY,
       description="The profiles imported from your agency's partners (need-to-know: no other "
       "agency's) are searched against the released profiles you can see — or only those of "
       "one seizure or case — with the engine and scoring of a partner's search: same animal "
       "and relatives with their log10 LR. Each match names the imported profile "
       "<partner>:<its reference> and its origin (partner, species, sample type, seizure "
       "country and year); imported profiles are never editable. Match requests search them "
       "too, as background (node partner:<id>).")
def imported_matches():
    values = query_values(IMPORTED_MATCHES_QUERY)
    if "panel" not in values:
        raise invalid("panel", "is required", 400)
    try:
        panel = panels(values["panel"])
        reference = exchange.reference_for(panel, values.get("reference_set"))
    except ValueError as error:
        if isinstance(error, exchange.ExchangeError):
            raise _api_error(error) from None
        raise invalid("panel", str(error), 400) from None
    rows = exchange.imported_profiles(db.session, panel, current_user.agency_id)
    imported = exchange.imported_table(panel, rows)
    local = released_genotypes(db.session, panel, user=current_user)
    local = GenotypeTable(local.alleles, local.profile_ids, local.loci)
    seizure = (load_visible(Seizure, values["seizure_id"], "seizure")
               if "seizure_id" in values else None)
    case = load_visible(Case, values["case_id"], "case") if "case_id" in values else None
    if seizure is not None or case is not None:
        if seizure is not None and case is not None and seizure.case_id != case.id:
            raise invalid("seizure_id", f"is not a seizure of case {case.id}", 400)
        local = local.take(subject_rows(db.session, local, case or seizure.case, seizure))
    origin = {f"{row.partner}:{row.reference}": row for row in rows}
    matches = exchange.search_matches(panel, reference, imported, local)
    return {"matches": [{"imported": m.query, "barcode": m.target,
                         "relationship": m.relationship, "log10_lr": round(m.log10_lr, 3),
                         "origin": _origin(origin[m.query])}
                        for m in matches],
            "imported_profiles": len(imported), "local_profiles": len(local)}


def _origin(row) -> dict:
    return {"partner": row.partner, "reference": row.reference, "species": row.species,
            "sample_type": row.sample_type, "seizure_country": row.seizure_country,
            "seizure_year": row.seizure_year, "editable": False}
