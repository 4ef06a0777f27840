"""Cases and their sharing with other agencies."""

from __future__ import annotations

import sqlalchemy as sa
from flask_login import current_user

from lims.access import visible
from lims.api.people import CREATED_AT, ID
from lims.api.routing import (
    Resource,
    check_unique,
    equals,
    json_body,
    load_visible,
    route,
    set_attributes,
)
from lims.api.schema import Field, Schema, invalid
from lims.errors import ApiError
from lims.extensions import db
from lims.models import CASE_KINDS, CASE_STATUSES, SHARE_ACCESS, Agency, Case, CaseShare

CASE = Schema(
    "case",
    (
        ID,
        Field(
            "agency_id",
            "integer",
            "The owning agency (the creator's).",
            create=False,
            update=False,
            nullable=False,
        ),
        Field(
            "reference",
            "string",
            "Case reference, unique within the agency.",
            required=True,
            nullable=False,
            max_length=64,
            identifier=True,
            update=False,
        ),
        Field("title", "string", required=True, nullable=False, max_length=200),
        Field("kind", "string", required=True, nullable=False, choices=CASE_KINDS, update=False),
        Field("status", "string", nullable=False, choices=CASE_STATUSES),
        Field("description", "string"),
        Field(
            "shares",
            "array",
            "Agencies the case is shared with.",
            items="object",
            create=False,
            update=False,
            nullable=False,
            getter=lambda case: [
                {"agency_id": share.agency_id, "access": share.access} for share in case.shares
            ],
        ),
        Field("created_by_id", "integer", create=False, update=False),
        CREATED_AT,
    ),
)

SHARE = Schema(
    "case_share",
    (
        Field("case_id", "integer", create=False, update=False, nullable=False),
        Field("agency_id", "integer", create=False, update=False, nullable=False),
        Field(
            "access",
            "string",
            "read: see the case and its evidence; contribute: also add and change evidence.",
            required=True,
            nullable=False,
            choices=SHARE_ACCESS,
        ),
        Field("shared_by_id", "integer", create=False, update=False),
        Field("shared_at", "date-time", create=False, update=False, nullable=False),
    ),
)


def case_scope(model, user, for_writing: bool):
    """Cases are read by need-to-know, but only their own agency changes or shares them."""
    if for_writing:
        return Case.agency_id == user.agency_id
    return visible(Case, user)


def _build_case(values: dict) -> Case:
    # References are unique per agency: another agency's cases never make one "in use".
    check_unique(Case, values, ("reference",), within={"agency_id": current_user.agency_id})
    # A case is opened unless the client gives its status (the column defaults to open).
    return Case(agency_id=current_user.agency_id, created_by_id=current_user.id, **values)


CASES = Resource(
    "/cases",
    "case",
    Case,
    CASE,
    "cases",
    ("case.write",),
    build=_build_case,
    apply=set_attributes,
    scope=case_scope,
    filters=(
        equals(Case, "reference", "string", "Exact case reference."),
        equals(
            Case, "kind", "string", "Investigation or reference collection.", choices=CASE_KINDS
        ),
        equals(Case, "status", "string", "Open or closed.", choices=CASE_STATUSES),
        equals(Case, "agency_id", "integer", "The owning agency."),
    ),
).register()


def _shareable_case(case_id: int) -> Case:
    return load_visible(Case, case_id, "case", for_writing=True, scope=case_scope)


def _other_agency(agency_id: int) -> Agency:
    agency = db.session.get(Agency, agency_id)
    if agency is None:
        raise ApiError(404, f"no agency {agency_id}")
    if agency.id == current_user.agency_id:
        raise invalid("agency_id", "is your own agency, which owns the case")
    return agency


@route(
    "/cases/<int:case_id>/shares/<int:agency_id>",
    "PUT",
    summary="Share a case with another agency (or change the access)",
    tag="cases",
    permission="case.write",
    request=SHARE,
    request_mode="create",
    response=SHARE,
    other_statuses=(201,),
    description="200 when the access of an existing share changed, 201 when the case is "
    "newly shared.",
)
def put_share(case_id: int, agency_id: int):
    case = _shareable_case(case_id)
    agency = _other_agency(agency_id)
    values = SHARE.load(json_body(), mode="create")
    share = db.session.get(CaseShare, (case.id, agency.id))
    status = 200
    if share is None:
        share = CaseShare(case_id=case.id, agency_id=agency.id, shared_by_id=current_user.id)
        db.session.add(share)
        status = 201
    share.access = values["access"]
    db.session.commit()
    return SHARE.dump(share), status


@route(
    "/cases/<int:case_id>/shares/<int:agency_id>",
    "DELETE",
    summary="Stop sharing a case with an agency",
    tag="cases",
    permission="case.write",
    response_status=204,
)
def delete_share(case_id: int, agency_id: int):
    case = _shareable_case(case_id)
    share = db.session.get(CaseShare, (case.id, agency_id))
    if share is None:
        raise ApiError(404, f"case {case_id} is not shared with agency {agency_id}")
    db.session.delete(share)
    db.session.commit()
    return "", 204


def _shares_of_visible_case(case_id: int) -> list[CaseShare]:
    case = load_visible(Case, case_id, "case", scope=case_scope)
    return list(
        db.session.scalars(
            sa.select(CaseShare).where(CaseShare.case_id == case.id).order_by(CaseShare.agency_id)
        )
    )


@route(
    "/cases/<int:case_id>/shares",
    "GET",
    summary="List the agencies a case is shared with",
    tag="cases",
    permission="record.read",
    response=SHARE,
    response_list=True,
)
def list_shares(case_id: int):
    return {"items": [SHARE.dump(share) for share in _shares_of_visible_case(case_id)]}
