"""Agencies, users, their roles, API tokens, page sessions and refused logins."""

from __future__ import annotations

import datetime as dt
import hashlib
import logging

import sqlalchemy as sa
from flask_login import UserMixin
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lims.database import Base, UTCDateTime, one_of, utcnow
from lims.permissions import ROLES

logger = logging.getLogger(__name__)

AGENCY_KINDS = ("laboratory", "enforcement", "wildlife_authority", "other")
LOCKOUT_SCOPES = ("account", "address")


class Agency(Base):
    """A laboratory or an enforcement body; owns cases and employs users."""

    __tablename__ = "agency"
    __table_args__ = (one_of("kind", AGENCY_KINDS),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(32), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(32))
    country: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(UserMixin, Base):
    """A person (or script account) of one agency, with one or more roles."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    agency_id: Mapped[int] = mapped_column(sa.ForeignKey("agency.id"), index=True)
    username: Mapped[str] = mapped_column(sa.String(80), unique=True)
    full_name: Mapped[str] = mapped_column(sa.String(200))
    email: Mapped[str | None] = mapped_column(sa.String(200))
    # None for accounts that only use API tokens; such accounts cannot log in to pages.
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    active: Mapped[bool] = mapped_column(default=True)
    # Copied into a page session at login; a session holding an older number is logged out.
    session_version: Mapped[int] = mapped_column(default=1, server_default=sa.text("1"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    agency: Mapped[Agency] = relationship()
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    api_tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    @property
    def roles(self) -> frozenset[str]:
        return frozenset(row.role for row in self.role_rows)

    def set_roles(self, roles: set[str] | frozenset[str] | list[str]) -> None:
        """Replace the user's roles (unknown role names raise ``ValueError``)."""
        unknown = set(roles) - set(ROLES)
        if unknown:
            raise ValueError(f"unknown role(s): {', '.join(sorted(unknown))}")
        if set(roles) != self.roles:
            self.end_sessions()
        keep = [row for row in self.role_rows if row.role in roles]
        have = {row.role for row in keep}
        self.role_rows = keep + [UserRole(role=role) for role in sorted(set(roles) - have)]

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def end_sessions(self) -> None:
        """Log the user out of every page session opened so far (API tokens are not
        affected). Called for a stored user whenever their password, roles or active flag
        change, so a session cannot outlive the credentials or rights it was opened with."""
        if sa.inspect(self).persistent:
            self.session_version += 1

    def revoke_api_tokens(self) -> None:
        """Revoke every API token of a stored user that is not revoked yet (called when the
        password changes: a token must not outlive the password of whoever made it)."""
        state = sa.inspect(self)
        if not state.persistent:
            return
        now = utcnow()
        with state.session.no_autoflush:
            live = [token for token in self.api_tokens if token.revoked_at is None]
        for token in live:
            token.revoked_at = now
        if live:
            logger.info(
                "API tokens revoked: user_id=%s tokens=%s reason=password changed",
                self.id,
                ",".join(str(token.id) for token in live),
            )


@sa.event.listens_for(User.password_hash, "set")
@sa.event.listens_for(User.active, "set")
def _credentials_changed(user: User, value, old_value, initiator) -> None:
    if value != old_value:
        user.end_sessions()


@sa.event.listens_for(User.password_hash, "set")
def _password_changed(user: User, value, old_value, initiator) -> None:
    if value != old_value:
        user.revoke_api_tokens()


class UserRole(Base):
    """One role held by one user."""

    __tablename__ = "user_role"
    __table_args__ = (one_of("role", ROLES),)

    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(sa.String(32), primary_key=True)

    user: Mapped[User] = relationship(back_populates="role_rows")


def hash_token(token: str) -> str:
    """The stored form of an API token: hex SHA-256 of the token text."""
    return hashlib.sha256(token.encode()).hexdigest()


class Revocable:
    """A credential with ``expires_at`` and ``revoked_at`` columns (API tokens, page
    sessions) that stops working once revoked or expired."""

    def usable_at(self, moment: dt.datetime) -> bool:
        """True when the credential is neither revoked nor expired at ``moment``."""
        if self.revoked_at is not None and self.revoked_at <= moment:
            return False
        return self.expires_at is None or moment < self.expires_at


class ApiToken(Revocable, Base):
    """A bearer token for scripts; only its SHA-256 is stored, the token is shown once."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(sa.String(100))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship(back_populates="api_tokens")


class UserSession(Revocable, Base):
    """A page session opened by logging in with a password.

    The session cookie carries a random session id; the database keeps only its SHA-256
    (:func:`hash_token`). Logging out revokes this one session and leaves the user's other
    sessions (other browsers, other devices) open; a change of the user's credentials ends
    them all, since each session remembers the ``session_version`` it was opened under.
    """

    __tablename__ = "user_session"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(
        sa.ForeignKey("user_account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    session_version: Mapped[int]
    client_address: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)

    user: Mapped[User] = relationship()


class LoginFailure(Base):
    """A password login refused for a wrong password or an unknown or disabled account.

    ``username`` is what was typed, whether or not such a user exists, so that throttling
    treats unknown names exactly like real ones.
    """

    __tablename__ = "login_failure"

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    username: Mapped[str] = mapped_column(sa.String(80), index=True)
    client_address: Mapped[str] = mapped_column(sa.String(64), index=True)


class LoginLockout(Base):
    """Password logins refused for one account name or one client address until
    ``locked_until`` (or until an administrator unlocks it), after too many failures."""

    __tablename__ = "login_lockout"
    __table_args__ = (
        one_of("scope", LOCKOUT_SCOPES),
        sa.Index("ix_login_lockout_scope_subject", "scope", "subject"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "account": ``subject`` is a username (known or not); "address": a client address.
    scope: Mapped[str] = mapped_column(sa.String(16))
    subject: Mapped[str] = mapped_column(sa.String(80))
    failures: Mapped[int]
    locked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    unlocked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
