"""Pages for people: server-rendered forms and records, no JavaScript framework.

One module per area: :mod:`~lims.web.evidence` (cases, seizures, items, samples, storage),
:mod:`~lims.web.printing` (barcode labels), :mod:`~lims.web.custody` (hand-overs by barcode)
and :mod:`~lims.web.genotypes` (imports, the review queue, profiles); :mod:`~lims.web.start`
is the start page. Other blueprints extend ``base.html`` (blocks ``title``, ``content``,
``head``, ``scripts``) and put their pages in the navigation with :func:`add_nav_link`.

Every page checks the same permissions (:mod:`lims.permissions`) and need-to-know
(:mod:`lims.access`) as the API, through the same helpers, and creates records through the
API's own builders, so a form can do nothing the API would refuse.
"""

from __future__ import annotations

# The area modules add their routes to ``bp`` when imported.
from lims.web import (  # noqa: F401
    custody,
    evidence,
    exchange,
    genotypes,
    intelligence,
    printing,
    quality,
    start,
)
from lims.web.common import NavLink, add_nav_link, bp

__all__ = ["NavLink", "add_nav_link", "bp"]
