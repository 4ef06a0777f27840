"""The start page: who is logged in, and what waits for them."""

from __future__ import annotations

import sqlalchemy as sa
from flask import render_template
from flask_login import current_user

from lims.access import visible
from lims.extensions import db
from lims.models import Case, GenotypeProfile
from lims.permissions import permissions_of
from lims.web.common import bp, holds, page


@bp.route("/")
@page()
def index():
    cases = []
    if holds("record.read"):
        cases = db.session.scalars(
            sa.select(Case)
            .where(visible(Case, current_user), Case.status == "open")
            .order_by(Case.created_at.desc())
            .limit(10)
        ).all()
    waiting = {}
    if holds("profile.review"):
        waiting = dict(
            db.session.execute(
                sa.select(GenotypeProfile.state, sa.func.count())
                .where(
                    GenotypeProfile.state.in_(("pending", "reviewed")),
                    GenotypeProfile.superseded.is_(False),
                    visible(GenotypeProfile, current_user),
                )
                .group_by(GenotypeProfile.state)
            ).all()
        )
    return render_template(
        "index.html",
        user=current_user,
        permissions=sorted(permissions_of(current_user.roles)),
        cases=cases,
        waiting=waiting,
    )
