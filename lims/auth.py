"""Authentication: password login for pages, bearer tokens for scripts.

Pages use a session cookie after logging in with a password (hashed with werkzeug's scrypt);
every form carries a CSRF token. Each login opens a server-side session
(:class:`lims.models.UserSession`): the cookie carries a random session id, the database its
SHA-256. Logging out revokes that session, so a copy of the cookie taken before is refused
afterwards, while the user's other sessions stay open. A session also ends after
``SESSION_LIFETIME_SECONDS``, and as soon as the user's ``session_version`` differs from the
one it was opened under: changing a user's password, roles or active flag bumps it
(:meth:`lims.models.User.end_sessions`), which logs out every session opened before, the
changer's own included. A password change also revokes the user's API tokens.

Refused logins are throttled per account name and per client address (:mod:`lims.login_throttle`).

Scripts send ``Authorization: Bearer <token>``; tokens are random, shown once, and stored only
as their SHA-256. A request carrying a bearer header is authenticated by that token alone
(never by a session cookie it may also carry), so it is exempt from CSRF, which only guards
cookie-authenticated requests.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import logging
import math
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
from sqlalchemy.orm import joinedload
from werkzeug.security import check_password_hash, generate_password_hash
from wtforms import PasswordField, StringField
from wtforms.validators import DataRequired, Length

from lims.database import utcnow
from lims.errors import ApiError, error_response, wants_json
from lims.extensions import db, login_manager
from lims.login_throttle import lockout_in_force, record_failure
from lims.models import ApiToken, LoginLockout, User, UserSession, hash_token

logger = logging.getLogger(__name__)

bp = Blueprint("auth", __name__)

TOKEN_PREFIX = "dnt_"
MIN_PASSWORD_LENGTH = 12
# The cookie's key holding the random id of the server-side session.
SESSION_ID_KEY = "session_id"


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


def client_address() -> str:
    """The client's address as the throttle and the logs name it (``PROXY_COUNT`` says how
    many proxies' X-Forwarded-For to trust). Anything but an IP address, which only a
    misconfigured proxy passes on, is cut to the column's 64 characters."""
    text = request.remote_addr or "unknown"
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text[:64]


def _authenticated(user: User, method: str) -> User:
    g.auth_method = method
    g.authenticated_user_id = user.id
    # The audit trail names whoever is behind the request's changes.
    db.session.info["actor_id"] = user.id
    return user


@login_manager.user_loader
def _load_session_user(user_id: str) -> User | None:
    if "Authorization" in request.headers:
        return None
    session_id = session.get(SESSION_ID_KEY)
    if not isinstance(session_id, str):
        return None
    record = db.session.execute(
        sa.select(UserSession)
        .options(joinedload(UserSession.user))
        .where(UserSession.token_hash == hash_token(session_id))
    ).scalar_one_or_none()
    if record is None or str(record.user_id) != user_id or not record.usable_at(utcnow()):
        return None
    user = record.user
    if not user.active or record.session_version != user.session_version:
        return None
    g.user_session = record
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


def _open_session(user: User) -> str:
    """A new server-side session of ``user``; its id, for the cookie."""
    session_id = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = dt.timedelta(seconds=float(current_app.config["SESSION_LIFETIME_SECONDS"]))
    db.session.add(
        UserSession(
            user_id=user.id,
            token_hash=hash_token(session_id),
            session_version=user.session_version,
            client_address=client_address(),
            created_at=now,
            expires_at=now + lifetime,
        )
    )
    return session_id


def _locked_out(form: LoginForm, lockout: LoginLockout):
    """The answer while a lockout is in force: the same whether or not the account exists."""
    wait = max(1, math.ceil((lockout.locked_until - utcnow()).total_seconds()))
    form.form_errors.append(
        "Too many failed logins for this account or from this address. Try again after "
        f"{lockout.locked_until:%H:%M} UTC, or ask an administrator to unlock the account."
    )
    return render_template("login.html", form=form), 429, {"Retry-After": str(wait)}


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = LoginForm()
    status = 200
    if form.validate_on_submit():
        username, address, now = form.username.data, client_address(), utcnow()
        lockout = lockout_in_force(db.session, username, address, now)
        if lockout is not None:
            logger.warning(
                "login refused, locked out: username=%s address=%s until=%s",
                username,
                address,
                lockout.locked_until.isoformat(),
            )
            return _locked_out(form, lockout)
        user = db.session.execute(
            sa.select(User).where(User.username == username)
        ).scalar_one_or_none()
        if check_password(user, form.password.data) and user.active:
            # A fresh session on login: nothing set before it (fixation) survives.
            session.clear()
            _authenticated(user, "session")
            session_id = _open_session(user)
            db.session.commit()
            login_user(user)
            session[SESSION_ID_KEY] = session_id
            logger.info("login: user_id=%s username=%s address=%s", user.id, username, address)
            return redirect(_safe_next(request.args.get("next")))
        logger.warning("login failed: username=%s address=%s", username, address)
        lockout = record_failure(db.session, username, address, now)
        db.session.commit()
        if lockout is not None:
            return _locked_out(form, lockout)
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
    record = g.get("user_session")
    if record is not None:
        record.revoked_at = utcnow()
        db.session.commit()
        logger.info("logout: user_id=%s session=%s", record.user_id, record.id)
    logout_user()
    session.clear()
    return redirect(url_for("auth.login"))
