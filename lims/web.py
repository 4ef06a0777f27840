"""Pages for people (the full set comes with the web interface; here, the start page)."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user, login_required

from lims.auth import LogoutForm
from lims.permissions import permissions_of

bp = Blueprint("web", __name__)


@bp.route("/")
@login_required
def index():
    return render_template(
        "index.html",
        user=current_user,
        permissions=sorted(permissions_of(current_user.roles)),
        logout_form=LogoutForm(),
    )
