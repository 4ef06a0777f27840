"""Agencies, users, API tokens, and who the caller is.

The model knows no administrator above the agencies: the installation's operator, who holds
the database, creates each agency's first administrator with ``dnatrack admin create``. Through
the API an administrator (``agency.manage``) may register a new agency, e.g. a partner to
share a case with, but may change only their own agency; everybody may read the list.

An API token belongs to its holder. Only the holder creates it (an administrator may list and
revoke colleagues' tokens, not mint them), and a token created by a request authenticated with
a token may not outlive that token, so an expiring token cannot be turned into a lasting one.
"""

from __future__ import annotations

import sqlalchemy as sa
from flask import g, request, url_for
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from lims.api.routing import Resource, json_body, load_visible, route, set_attributes
from lims.api.schema import Field, Schema, invalid
from lims.auth import MIN_PASSWORD_LENGTH, authenticated_by_token, hash_password, new_api_token
from lims.database import utcnow
from lims.errors import ApiError
from lims.extensions import db
from lims.login_throttle import unlock_account
from lims.models import AGENCY_KINDS, Agency, ApiToken, User, hash_token
from lims.permissions import ROLES, permissions_of

ID = Field("id", "integer", create=False, update=False, nullable=False)
CREATED_AT = Field("created_at", "date-time", create=False, update=False, nullable=False)

AGENCY = Schema(
    "agency",
    (
        ID,
        Field(
            "code",
            "string",
            "Short unique code, e.g. KWS-FL.",
            required=True,
            nullable=False,
            max_length=32,
        ),
        Field("name", "string", required=True, nullable=False, max_length=200),
        Field("kind", "string", required=True, nullable=False, choices=AGENCY_KINDS),
        Field("country", "string", max_length=100),
        CREATED_AT,
    ),
)


def _agency_scope(model, user, for_writing):
    # Agency names are not confidential: every user may see the list.
    if for_writing:
        return Agency.id == user.agency_id
    return sa.true()


def _build_agency(values: dict) -> Agency:
    return Agency(**values)


Resource(
    "/agencies",
    "agency",
    Agency,
    AGENCY,
    "people",
    ("agency.manage",),
    build=_build_agency,
    apply=set_attributes,
    unique=("code",),
    read_permission=(),
    scope=_agency_scope,
).register()


USER = Schema(
    "user",
    (
        ID,
        Field("agency_id", "integer", create=False, update=False, nullable=False),
        Field("username", "string", required=True, nullable=False, max_length=80, update=False),
        Field("full_name", "string", required=True, nullable=False, max_length=200),
        Field("email", "string", max_length=200),
        Field(
            "password",
            "string",
            "At least 12 characters; never shown.",
            output=False,
            max_length=1000,
        ),
        Field(
            "roles",
            "array",
            required=True,
            nullable=False,
            items="string",
            choices=ROLES,
            getter=lambda user: sorted(user.roles),
        ),
        Field("active", "boolean", nullable=False),
        CREATED_AT,
    ),
)


def _check_password(password: str | None) -> str | None:
    if password is not None and len(password) < MIN_PASSWORD_LENGTH:
        raise invalid("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    return None if password is None else hash_password(password)


def _same_agency(model, user, for_writing):
    return User.agency_id == user.agency_id


def _build_user(values: dict) -> User:
    password_hash = _check_password(values.pop("password", None))
    roles = values.pop("roles")
    user = User(agency_id=current_user.agency_id, password_hash=password_hash, **values)
    user.set_roles(roles)
    return user


def _apply_user(user: User, values: dict) -> None:
    if user.id == current_user.id:
        if values.get("active") is False:
            raise ApiError(409, "you cannot deactivate your own account")
        if "roles" in values and "admin" not in values["roles"]:
            raise ApiError(409, "you cannot take the admin role from yourself")
    if "password" in values:
        user.password_hash = _check_password(values.pop("password"))
    if "roles" in values:
        user.set_roles(values.pop("roles"))
    set_attributes(user, values)


Resource(
    "/users",
    "user",
    User,
    USER,
    "people",
    ("user.manage",),
    build=_build_user,
    apply=_apply_user,
    unique=("username",),
    read_permission=("user.manage",),
    scope=_same_agency,
).register()


UNLOCKED = Schema(
    "unlocked_account",
    (
        Field("user_id", "integer", create=False, update=False, nullable=False),
        Field(
            "lockouts_lifted",
            "integer",
            "How many lockouts in force were lifted (0: the account was not locked).",
            create=False,
            update=False,
            nullable=False,
        ),
    ),
)


@route(
    "/users/<int:user_id>/unlock",
    "POST",
    summary="Lift the login lockout of a user's account",
    tag="people",
    permission="user.manage",
    response=UNLOCKED,
    description="After too many refused logins an account is locked out for a while; this "
    "lets its user log in again at once.",
)
def unlock_user(user_id: int):
    user = load_visible(User, user_id, "user", scope=_same_agency)
    lifted = unlock_account(db.session, user.username)
    db.session.commit()
    return {"user_id": user.id, "lockouts_lifted": lifted}


TOKEN = Schema(
    "api_token",
    (
        ID,
        Field("user_id", "integer", create=False, update=False, nullable=False),
        Field(
            "name",
            "string",
            "What the token is for.",
            required=True,
            nullable=False,
            max_length=100,
        ),
        Field("expires_at", "date-time", "When it stops working; never when null."),
        Field("revoked_at", "date-time", create=False, update=False),
        CREATED_AT,
    ),
)
NEW_TOKEN = Schema(
    "new_api_token",
    (
        *TOKEN.fields,
        Field(
            "token",
            "string",
            "The token itself, shown only now; send it as 'Authorization: Bearer <token>'.",
            create=False,
            update=False,
            nullable=False,
        ),
    ),
)


def _token_owner(user_id: int) -> User:
    """The user whose tokens are listed or revoked: oneself, or (with user.manage) a
    colleague."""
    if user_id == current_user.id:
        return current_user
    if "user.manage" not in permissions_of(current_user.roles):
        raise ApiError(403, "only administrators manage other users' tokens")
    return load_visible(User, user_id, "user", scope=_same_agency)


@route(
    "/users/<int:user_id>/tokens",
    "GET",
    summary="List a user's API tokens",
    tag="people",
    response=TOKEN,
    response_list=True,
)
def list_tokens(user_id: int):
    owner = _token_owner(user_id)
    tokens = db.session.scalars(
        sa.select(ApiToken).where(ApiToken.user_id == owner.id).order_by(ApiToken.id)
    )
    return {"items": [TOKEN.dump(token) for token in tokens]}


@route(
    "/users/<int:user_id>/tokens",
    "POST",
    summary="Create an API token of one's own (shown once)",
    tag="people",
    request=TOKEN,
    response=NEW_TOKEN,
    response_status=201,
    description="Only for the caller's own user id. Made with a token that expires, the new "
    "token must expire too, no later than that one.",
)
def create_token(user_id: int):
    if user_id != current_user.id:
        raise ApiError(
            403,
            "a token is created only by its holder; administrators may list and revoke "
            "other users' tokens but not create them",
        )
    values = TOKEN.load(json_body(), mode="create")
    expires_at = values.get("expires_at")
    if expires_at is not None and expires_at <= utcnow():
        raise invalid("expires_at", "is in the past")
    if authenticated_by_token():
        _check_within_parent_token(expires_at)
    plaintext = new_api_token()
    token = ApiToken(user_id=current_user.id, token_hash=hash_token(plaintext), **values)
    db.session.add(token)
    db.session.commit()
    return (
        {**TOKEN.dump(token), "token": plaintext},
        201,
        {"Location": url_for("api.list_tokens", user_id=current_user.id)},
    )


def _check_within_parent_token(expires_at) -> None:
    """422 unless a token expiring at ``expires_at`` (``None``: never) expires no later
    than the token the request is authenticated with."""
    credentials = request.authorization
    presented = (credentials.token if credentials is not None else None) or ""
    parent = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_hash == hash_token(presented))
    )
    if parent is None:
        # Authenticated by a token that cannot be found again: refuse rather than guess.
        raise ApiError(403, "the token this request is made with could not be checked")
    if parent.expires_at is None:
        return
    if expires_at is None or expires_at > parent.expires_at:
        raise invalid(
            "expires_at",
            "must be no later than the expiry of the token this request is made with "
            f"({parent.expires_at.isoformat()})",
        )


@route(
    "/tokens/<int:token_id>/revoke",
    "POST",
    summary="Revoke an API token",
    tag="people",
    response=TOKEN,
)
def revoke_token(token_id: int):
    token = db.session.get(ApiToken, token_id)
    if token is None or token.user.agency_id != current_user.agency_id:
        raise ApiError(404, f"no API token {token_id}")
    _token_owner(token.user_id)
    if token.revoked_at is None:
        token.revoked_at = utcnow()
        db.session.commit()
    return TOKEN.dump(token)


ME = Schema(
    "me",
    (
        *(field for field in USER.fields if field.output),
        Field(
            "permissions",
            "array",
            items="string",
            create=False,
            update=False,
            nullable=False,
            getter=lambda user: sorted(permissions_of(user.roles)),
        ),
        Field(
            "auth_method",
            "string",
            choices=("session", "token"),
            create=False,
            update=False,
            nullable=False,
            getter=lambda user: g.auth_method,
        ),
        Field(
            "csrf_token",
            "string",
            "For session-authenticated writes (X-CSRFToken header); null for token authentication.",
            create=False,
            update=False,
            getter=lambda user: None if g.auth_method == "token" else generate_csrf(),
        ),
    ),
)


@route(
    "/me", "GET", summary="Who the caller is, with roles and permissions", tag="people", response=ME
)
def me():
    return ME.dump(current_user)
