"""Need-to-know: which records a user may see and change.

A user sees the cases of their own agency and the cases shared with it, and every record
hanging off those cases. Changing a record needs a case of their agency or one shared with it
for ``contribute``. Storage locations and users belong to an agency and are its own business.
A record outside these bounds is answered as *not found*, exactly like a record that does not
exist, so its existence is not given away either.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from lims.models import (
    Attachment,
    Case,
    CaseShare,
    CustodyEvent,
    Extract,
    GenotypeImport,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    SourceAnimal,
    User,
)


def case_ids(user: User, *, for_writing: bool = False) -> sa.Select:
    """The ids of the cases ``user`` may read (or, ``for_writing``, add to and change)."""
    shared = sa.select(CaseShare.case_id).where(CaseShare.agency_id == user.agency_id)
    if for_writing:
        shared = shared.where(CaseShare.access == "contribute")
    return sa.select(Case.id).where(sa.or_(Case.agency_id == user.agency_id, Case.id.in_(shared)))


def _seizure_ids(cases: sa.Select) -> sa.Select:
    return sa.select(Seizure.id).where(Seizure.case_id.in_(cases))


def _item_ids(cases: sa.Select) -> sa.Select:
    return sa.select(Item.id).where(Item.seizure_id.in_(_seizure_ids(cases)))


def _sample_ids(cases: sa.Select) -> sa.Select:
    return sa.select(Sample.id).where(Sample.case_id.in_(cases))


def _extract_ids(cases: sa.Select) -> sa.Select:
    return sa.select(Extract.id).where(Extract.sample_id.in_(_sample_ids(cases)))


def visible(model: type, user: User, *, for_writing: bool = False) -> ColumnElement[bool]:
    """A WHERE clause keeping the rows of ``model`` that ``user`` may read (or write)."""
    cases = case_ids(user, for_writing=for_writing)
    if model is Case:
        return Case.id.in_(cases)
    if model in (Seizure, SourceAnimal, Sample):
        return model.case_id.in_(cases)
    if model is Item:
        return Item.seizure_id.in_(_seizure_ids(cases))
    if model is Extract:
        return Extract.sample_id.in_(_sample_ids(cases))
    if model is GenotypeProfile:
        return GenotypeProfile.sample_id.in_(_sample_ids(cases))
    if model in (CustodyEvent, Attachment):
        subjects = [
            (model.seizure_id, _seizure_ids(cases)),
            (model.item_id, _item_ids(cases)),
            (model.sample_id, _sample_ids(cases)),
        ]
        if model is CustodyEvent:
            subjects.append((CustodyEvent.extract_id, _extract_ids(cases)))
        else:
            subjects.append((Attachment.case_id, cases))
        return sa.or_(*(column.in_(ids) for column, ids in subjects))
    if model is GenotypeImport:
        colleagues = sa.select(User.id).where(User.agency_id == user.agency_id)
        return GenotypeImport.imported_by_id.in_(colleagues)
    if hasattr(model, "agency_id"):
        return model.agency_id == user.agency_id
    raise TypeError(f"no need-to-know rule for {model.__name__}")
