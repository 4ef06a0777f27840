"""Exchange pages for admins: the partners of their agency, registering a partner, and the
queue of partners' follow-up requests, each approved or refused with an optional note
(:mod:`lims.exchange`)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    IntegerField,
    PasswordField,
    SelectMultipleField,
    StringField,
    SubmitField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from lims import exchange
from lims.api.exchange import load_follow_up, register_partner
from lims.extensions import db
from lims.models import Case, ExchangeFollowUp, ExchangePartner
from lims.web.common import (
    NavLink,
    add_nav_link,
    bp,
    page,
    render_form,
    save_form,
    user_names,
)
from reference_data import list_panels

add_nav_link(NavLink("web.exchange_queue", "Exchange", ("exchange.manage",)))


class DecisionForm(FlaskForm):
    note = StringField("Note to the partner", validators=[Length(max=2000)])
    approve = SubmitField("Approve")
    refuse = SubmitField("Refuse")


class PartnerForm(FlaskForm):
    """A partner's registration; fields named as the API's (POST /exchange/partners)."""

    name = StringField("Name", validators=[DataRequired(), Length(max=100)])
    base_url = StringField("Base URL of its LIMS", validators=[DataRequired(), Length(max=500)])
    public_key = StringField("Its public signing key (base64)",
                             validators=[DataRequired(), Length(max=64)])
    outbound_token = PasswordField("Token it issued to this instance",
                                   validators=[Optional(), Length(max=255)])
    shared_panels = SelectMultipleField("Panels shared with it")
    share_all_cases = BooleanField("Share released profiles of every case of the agency")
    shared_case_ids = SelectMultipleField("Or only these cases", coerce=int)
    searches_per_minute = IntegerField("Searches per minute", default=30,
                                       validators=[NumberRange(0, 10_000)])


@bp.route("/exchange/partners/new", methods=["GET", "POST"])
@page("exchange.manage")
def new_partner_page():
    form = PartnerForm()
    form.shared_panels.choices = [(name, name) for name in list_panels()]
    form.shared_case_ids.choices = [
        (case.id, f"{case.reference} {case.title or ''}".strip())
        for case in db.session.scalars(sa.select(Case).where(
            Case.agency_id == current_user.agency_id).order_by(Case.reference))]
    if form.is_submitted():
        created, status = save_form(form, register_partner)
        if created is not None:
            partner, token = created
            flash(f"Partner {partner.name} registered.", "success")
            # The token we issue is shown once, on this answer only (no redirect keeps it).
            return render_template("exchange/partner_registered.html", partner=partner,
                                   token=token)
        return render_form("exchange/partner_form.html", form, status)
    return render_form("exchange/partner_form.html", form)


@bp.route("/exchange")
@page("exchange.manage")
def exchange_queue():
    partners = db.session.scalars(
        sa.select(ExchangePartner).where(ExchangePartner.agency_id == current_user.agency_id)
        .order_by(ExchangePartner.name)).all()
    follow_ups = db.session.scalars(
        sa.select(ExchangeFollowUp).join(ExchangePartner)
        .where(ExchangePartner.agency_id == current_user.agency_id)
        .order_by(ExchangeFollowUp.status != "pending", ExchangeFollowUp.id.desc())
        .limit(200)).all()
    return render_template(
        "exchange/queue.html", partners=partners, follow_ups=follow_ups,
        forms={f.id: DecisionForm(formdata=None, prefix=f"f{f.id}") for f in follow_ups},
        deciders=user_names(f.decided_by_id for f in follow_ups))


@bp.route("/exchange/follow-ups/<int:follow_up_id>/decide", methods=["POST"])
@page("exchange.manage")
def decide_follow_up_page(follow_up_id: int):
    follow_up = load_follow_up(follow_up_id)
    form = DecisionForm(prefix=f"f{follow_up_id}")
    if not form.validate_on_submit() or form.approve.data == form.refuse.data:
        flash("Choose approve or refuse; a note has at most 2,000 characters.", "error")
        return redirect(url_for("web.exchange_queue"))
    try:
        exchange.decide_follow_up(db.session, follow_up, current_user, bool(form.approve.data),
                                  (form.note.data or "").strip() or None)
    except exchange.ExchangeError as error:
        db.session.rollback()
        flash(str(error), "error")
        return redirect(url_for("web.exchange_queue"))
    db.session.commit()
    flash(f"Follow-up request {follow_up.id} from {follow_up.partner.name} {follow_up.status}.",
          "success")
    return redirect(url_for("web.exchange_queue"))
