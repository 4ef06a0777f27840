"""Need-to-know for match requests and reports: they are seen with their case.

A match request belongs to a case; whoever may read the case (:func:`lims.access.case_ids`)
sees its requests and their reports, and whoever may change the case's evidence (its agency,
or an agency it is shared with for ``contribute``) may request, draft and sign. The results
themselves were filtered for the requester when the job assembled them
(:mod:`lims.reports.analysis`).
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from lims.access import case_ids
from lims.models import MatchRequest, Report, User


def request_scope(model: type, user: User, for_writing: bool) -> ColumnElement[bool]:
    """Match requests of the cases ``user`` may read (or write)."""
    return MatchRequest.case_id.in_(case_ids(user, for_writing=for_writing))


def report_scope(model: type, user: User, for_writing: bool) -> ColumnElement[bool]:
    """Reports of the match requests ``user`` may see (or act on)."""
    requests = sa.select(MatchRequest.id).where(request_scope(MatchRequest, user, for_writing))
    return Report.match_request_id.in_(requests)
