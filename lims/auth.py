"""Authentication: password login for pages, bearer tokens for scripts.

Pages use a session cookie after logging in with a password (hashed with werkzeug's scrypt);
every form carries a CSRF token. The session remembers the user's ``session_version`` from
the login and ends as soon as the stored number differs: changing a user's password, roles or
active flag bumps it (:meth:`lims.models.User.end_sessions`), which logs out every session
opened before, the changer's own included.

Scripts send ``Authorization: Bearer <token>``; tokens are random, shown once, and stored only
as their SHA-256. A request carrying a bearer header is authenticated by that token alone
(never by a session cookie it may also carry), so it is exempt from CSRF, which only guards
cookie-authenticated requests.
"""

from __future__ import annotations

import functools
import secrets
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from lims.database import utcnow
from lims.errors import ApiError, error_response, wants_json
from lims.extensions import db, login_manager
from lims.models import ApiToken, User, hash_token

bp = Blueprint("auth", __name__)

TOKEN_PREFIX = "dnt_"
MIN_PASSWORD_LENGTH = 12
SESSION_VERSION_KEY = "session_version"


def hash_password(password: str) -> str:
    """The stored form of a password, with the configured werkzeug method (scrypt)."""
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


@functools.cache
def _dummy_hash(method: str) -> str:
    return generate_password_hash(secrets.token_hex(16), method=method)


def check_password(user: User | None, password: str) -> bool:
    """True when ``password`` is ``user``'s; spends the same time when there is no such user."""
    if user is None or user.password_hash is None:
        check_password_hash(_dummy_hash(current_app.config["PASSWORD_HASH_METHOD"]), password)
        return False
    return check_password_hash(user.password_hash, password)


def new_api_token() -> str:
    """A fresh random token (shown to its owner once; store :func:`hash_token` of it)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _bearer_token() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _authenticated(user: User, method: str) -> User:
    g.auth_method = method
    # The audit trail names whoever is behind the request's changes.
    db.session.info["actor_id"] = user.id
    return user


@login_manager.user_loader
def _load_session_user(user_id: str) -> User | None:
    if "Authorization" in request.headers:
        return None
    user = db.session.get(User, int(user_id))
    if user is None or not user.active:
        return None
    if session.get(SESSION_VERSION_KEY) != user.session_version:
        return None
    return _authenticated(user, "session")


@login_manager.request_loader
def _load_token_user(req) -> User | None:
    token = _bearer_token()
    if token is None:
        return None
    row = db.session.execute(
        sa.select(ApiToken).where(ApiToken.token_hash == hash_token(token))
    ).scalar_one_or_none()
    if row is None or not row.usable_at(utcnow()) or not row.user.active:
        return None
    return _authenticated(row.user, "token")


@login_manager.unauthorized_handler
def _unauthorized():
    if wants_json():
        return error_response(401, "unauthorized", "authentication required")
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def authenticated_by_token() -> bool:
    return g.get("auth_method") == "token"


def require_login_api() -> None:
    """Raise 401 unless the request is authenticated (for API views)."""
    if not current_user.is_authenticated:
        message = (
            "invalid, expired or revoked token"
            if "Authorization" in request.headers
            else "authentication required: send a bearer token or log in"
        )
        raise ApiError(401, message)


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=80)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1000)])


class LogoutForm(FlaskForm):
    """No fields: the form exists for its CSRF token."""


def _safe_next(target: str | None) -> str:
    """``target`` if it is a path on this site, else the start page (no open redirects)."""
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/"):
            return target
    return url_for("web.index")


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        user = db.session.execute(
            sa.select(User).where(User.username == form.username.data)
        ).scalar_one_or_none()
        if check_password(user, form.password.data) and user.active:
            # A fresh session on login: nothing set before it (fixation) survives.
            session.clear()
            login_user(user)
            session[SESSION_VERSION_KEY] = user.session_version
            _authenticated(user, "session")
            return redirect(_safe_next(request.args.get("next")))
        form.form_errors.append("Invalid username or password.")
        status = 401
    elif request.method == "POST":
        status = 400
    return render_template("login.html", form=form), status


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    if not LogoutForm().validate_on_submit():
        return error_response(400, "bad_request", "the logout form was not valid")
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
