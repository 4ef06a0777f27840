"""Login throttling: refused password logins lock an account name or a client address out.

Every refused login is a :class:`~lims.models.LoginFailure` row. When an account name has had
``LOGIN_ACCOUNT_FAILURE_LIMIT`` failures within ``LOGIN_FAILURE_WINDOW_SECONDS`` (counted
since its last lockout and its last successful login), or a client address
``LOGIN_ADDRESS_FAILURE_LIMIT``, a :class:`~lims.models.LoginLockout` refuses every login for
it, the right password included, until ``locked_until``. Each further lockout of the same
name or address within ``LOGIN_LOCKOUT_MAX_SECONDS`` lasts twice as long as the one before.
An administrator may unlock an account early (:func:`unlock_account`).

Names that belong to nobody are counted and locked exactly like real ones, so neither the
answer nor its timing tells whether an account exists. The state lives in the database, so
every web process of an installation sees the same counts; two processes recording the
limit-reaching failure at once may both lock, which only repeats the lockout.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from lims.database import utcnow
from lims.models import LoginFailure, LoginLockout, User, UserSession

logger = logging.getLogger(__name__)


def _seconds(name: str) -> dt.timedelta:
    return dt.timedelta(seconds=float(current_app.config[name]))


def lockout_in_force(
    session: Session, username: str, address: str, now: dt.datetime
) -> LoginLockout | None:
    """The lockout that refuses logins as ``username`` or from ``address`` now, if any (the
    one ending last)."""
    return session.scalars(
        sa.select(LoginLockout)
        .where(
            sa.or_(
                sa.and_(LoginLockout.scope == "account", LoginLockout.subject == username),
                sa.and_(LoginLockout.scope == "address", LoginLockout.subject == address),
            ),
            LoginLockout.unlocked_at.is_(None),
            LoginLockout.locked_until > now,
        )
        .order_by(LoginLockout.locked_until.desc())
        .limit(1)
    ).first()


def _last_success(session: Session, username: str) -> dt.datetime | None:
    return session.scalar(
        sa.select(sa.func.max(UserSession.created_at))
        .join(User, User.id == UserSession.user_id)
        .where(User.username == username)
    )


def _lock_if_over_limit(
    session: Session, scope: str, subject: str, limit: int, now: dt.datetime
) -> LoginLockout | None:
    subject_column = LoginFailure.username if scope == "account" else LoginFailure.client_address
    recent = session.execute(
        sa.select(LoginLockout.locked_at, LoginLockout.unlocked_at).where(
            LoginLockout.scope == scope,
            LoginLockout.subject == subject,
            LoginLockout.locked_at > now - _seconds("LOGIN_LOCKOUT_MAX_SECONDS"),
        )
    ).all()
    # Failures before a lockout were paid for by it; after a successful login the account
    # starts again (an address does not: one login says nothing about the others).
    since = [now - _seconds("LOGIN_FAILURE_WINDOW_SECONDS"), *(row.locked_at for row in recent)]
    success = _last_success(session, subject) if scope == "account" else None
    if success is not None:
        since.append(success)
    # Lockouts an administrator lifted, or that came before a successful login, do not
    # lengthen the next one.
    earlier = [
        row
        for row in recent
        if row.unlocked_at is None and (success is None or row.locked_at > success)
    ]
    failures = session.scalar(
        sa.select(sa.func.count())
        .select_from(LoginFailure)
        .where(subject_column == subject, LoginFailure.occurred_at > max(since))
    )
    if failures < limit:
        return None
    duration = min(
        _seconds("LOGIN_LOCKOUT_SECONDS") * 2 ** len(earlier), _seconds("LOGIN_LOCKOUT_MAX_SECONDS")
    )
    lockout = LoginLockout(
        scope=scope, subject=subject, failures=failures, locked_at=now, locked_until=now + duration
    )
    session.add(lockout)
    logger.warning(
        "login lockout: scope=%s subject=%s failures=%s until=%s",
        scope,
        subject,
        failures,
        lockout.locked_until.isoformat(),
    )
    return lockout


def record_failure(
    session: Session, username: str, address: str, now: dt.datetime | None = None
) -> LoginLockout | None:
    """Record a refused login; the lockout it brings about, if it reaches a limit."""
    now = now or utcnow()
    session.add(LoginFailure(username=username, client_address=address, occurred_at=now))
    session.flush()
    config = current_app.config
    lockouts = [
        _lock_if_over_limit(session, scope, subject, int(config[limit]), now)
        for scope, subject, limit in (
            ("account", username, "LOGIN_ACCOUNT_FAILURE_LIMIT"),
            ("address", address, "LOGIN_ADDRESS_FAILURE_LIMIT"),
        )
    ]
    return max(
        (lockout for lockout in lockouts if lockout is not None),
        key=lambda lockout: lockout.locked_until,
        default=None,
    )


def unlock_account(session: Session, username: str) -> int:
    """End the lockouts in force for ``username`` now; how many there were."""
    now = utcnow()
    lockouts = session.scalars(
        sa.select(LoginLockout).where(
            LoginLockout.scope == "account",
            LoginLockout.subject == username,
            LoginLockout.unlocked_at.is_(None),
            LoginLockout.locked_until > now,
        )
    ).all()
    for lockout in lockouts:
        lockout.unlocked_at = now
    if lockouts:
        logger.info("login lockout lifted: scope=account subject=%s", username)
    return len(lockouts)
