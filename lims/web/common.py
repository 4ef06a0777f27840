"""What every page shares: the blueprint, the navigation, permission checks, form helpers.

Pages raise the API's :class:`~lims.errors.ApiError` for refusals (403 for a missing
permission, 404 for a record outside need-to-know); the error handlers answer browsers with
the HTML error page. Form pages instead catch the error and show its problems next to the
fields they name.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import sqlalchemy as sa
from flask import Blueprint, current_app, render_template
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import SelectChoice, SelectField

from lims.access import visible
from lims.api.routing import require_permission
from lims.auth import LogoutForm
from lims.errors import ApiError
from lims.extensions import db
from lims.models import StorageLocation, User
from lims.permissions import permissions_of
from lims.reports.wording import origin_text

bp = Blueprint("web", __name__)


@dataclass(frozen=True)
class NavLink:
    """A link of the navigation bar, shown to users holding one of ``permissions`` (to
    everyone logged in when empty) and only while ``endpoint`` exists."""

    endpoint: str
    label: str
    permissions: tuple[str, ...] = ()


NAV_LINKS: list[NavLink] = [
    NavLink("web.index", "Start"),
    NavLink("web.cases", "Cases", ("record.read",)),
    NavLink("web.scan_custody", "Custody", ("custody.record",)),
    NavLink("web.storage", "Storage", ("record.read",)),
    NavLink("web.import_genotypes_page", "Import genotypes", ("profile.write",)),
    NavLink("web.review_queue", "Review", ("profile.review",)),
]


def add_nav_link(link: NavLink) -> None:
    """Add a link to the navigation bar of every page (e.g. another blueprint's index)."""
    if link not in NAV_LINKS:
        NAV_LINKS.append(link)


def format_utc(moment: dt.datetime | dt.date | None) -> str:
    """``2024-05-01 08:30 UTC`` for a time, ``2024-05-01`` for a date, ``""`` for none."""
    if moment is None:
        return ""
    if isinstance(moment, dt.datetime):
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return moment.isoformat()


@bp.app_template_filter("utc")
def _utc_filter(moment) -> str:
    return format_utc(moment)


# The request page words a seizure's most likely origin as its report does.
bp.add_app_template_global(origin_text, "origin_text")


@bp.app_context_processor
def _page_context() -> dict:
    if not current_user.is_authenticated:
        return {"nav_links": [], "user_permissions": frozenset(), "url_endpoints": frozenset()}
    granted = permissions_of(current_user.roles)
    endpoints = set(current_app.view_functions)
    links = [
        link
        for link in NAV_LINKS
        if link.endpoint in endpoints
        and (not link.permissions or granted.intersection(link.permissions))
    ]
    return {
        "nav_links": links,
        "user_permissions": granted,
        "logout_form": LogoutForm(),
        # Pages link to other blueprints' pages only where those are installed.
        "url_endpoints": endpoints,
    }


def page(*permissions: str) -> Callable:
    """Decorate a view: log-in required, and one of ``permissions`` (as in the API)."""

    def decorator(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(**arguments):
            if permissions:
                require_permission(*permissions)
            return view(**arguments)

        return login_required(checked)

    return decorator


def can_write(model: type, record_id: int) -> bool:
    """True when the current user's agency may change record ``record_id`` of ``model``."""
    key = sa.inspect(model).primary_key[0]
    return bool(
        db.session.scalar(
            sa.select(sa.literal(True)).where(
                key == record_id, visible(model, current_user, for_writing=True)
            )
        )
    )


def holds(permission: str) -> bool:
    """True when the current user's roles grant ``permission``."""
    return permission in permissions_of(current_user.roles)


def api_input(form: FlaskForm, names: Iterable[str]) -> dict:
    """The values of form fields ``names`` as API input: blank fields left out, text
    stripped, dates and times in ISO 8601 (times typed without a zone are UTC)."""
    data = {}
    for name in names:
        value = form[name].data
        if isinstance(value, str):
            value = value.strip()
        if value is None or value == "":
            continue
        if isinstance(value, dt.datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
        elif isinstance(value, dt.date):
            value = value.isoformat()
        data[name] = value
    return data


def show_problems(form: FlaskForm, error: ApiError) -> int:
    """Put the problems of a refused change next to the form fields they name (the form's
    fields are named as the API's); returns the HTTP status to answer with. Problems about no
    field of the form go to the form's own error list. The transaction is rolled back."""
    db.session.rollback()
    problems = (error.details or {}).get("problems") or []
    if not problems:
        form.form_errors.append(error.message)
    for problem in problems:
        name = problem["field"]
        if name in form:
            if not form[name].errors:  # a value the form could not read: its error says why
                form[name].errors.append(problem["message"])
        else:
            form.form_errors.append(f"{name}: {problem['message']}")
    return error.status


def render_form(template: str, form: FlaskForm, status: int = 200, **context):
    """Render a form page; a POST that did not validate answers 422."""
    if form.is_submitted() and status == 200 and form.errors:
        status = 422
    return render_template(template, form=form, **context), status


def choice_list(options: Iterable[tuple[object, str] | str]) -> list[SelectChoice]:
    """Select options from ``(value, label)`` pairs, or from values shown with spaces for
    underscores; a value of ``""`` is the blank choice."""
    listed = []
    for option in options:
        value, label = option if isinstance(option, tuple) else (option, option.replace("_", " "))
        listed.append(SelectChoice(str(value), label))
    return listed


def _optional_int(value) -> int | None:
    return None if value in ("", None) else int(value)


class RecordSelectField(SelectField):
    """A choice among records, by id; the blank choice (value ``""``) means none."""

    def __init__(self, label: str | None = None, validators=None, **options) -> None:
        super().__init__(label, validators, coerce=_optional_int, **options)

    def pre_validate(self, form) -> None:
        if self.data is not None:
            super().pre_validate(form)


def save_form(
    form: FlaskForm, create: Callable[[dict], object], fixed: dict | None = None
) -> tuple[object | None, int]:
    """Check a submitted form and create its record in one transaction.

    The form converts the typed text (numbers, dates); ``create`` (an API builder such as
    ``Resource.add_record``) applies the API's rules to ``fixed`` plus the form's fields,
    which are named as the API's. Every problem found either way is shown next to its
    field, and then nothing is saved.

    Returns
    -------
    (record, 200) after the commit, or (None, status) with the problems on the form.
    """
    form.validate()
    typed = [field.name for field in form if field.name != "csrf_token" and not field.errors]
    try:
        record = create({**(fixed or {}), **api_input(form, typed)})
    except ApiError as error:
        return None, show_problems(form, error)
    if form.errors:
        db.session.rollback()
        return None, 422
    db.session.commit()
    return record, 200


def user_names(user_ids: Iterable[int | None]) -> dict[int, str]:
    """``{user id: full name}`` for the given ids (names of people are shown on records)."""
    wanted = {user_id for user_id in user_ids if user_id is not None}
    if not wanted:
        return {}
    return dict(
        db.session.execute(sa.select(User.id, User.full_name).where(User.id.in_(wanted))).all()
    )


def storage_choices() -> list[SelectChoice]:
    """Choices of the user's agency's storage locations by path, with a blank choice."""
    locations = db.session.scalars(
        sa.select(StorageLocation).where(visible(StorageLocation, current_user))
    ).all()
    return choice_list(
        [("", "—")] + sorted(((location.id, location.path) for location in locations),
                             key=lambda option: option[1])
    )
