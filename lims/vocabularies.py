"""The controlled vocabularies of coded seizure records.

The defaults are package data (``reference_data/intelligence/vocabularies.json``: ISO 3166-1
alpha-2 countries plus regional pseudo-codes, commodities, species, detection methods,
transport modes, concealments, disposals, currencies, validation statuses). An administrator
adds terms, relabels them or retires them; those changes are :class:`VocabularyTerm` rows laid
over the defaults. A retired term is refused in new codings; records that already use it keep
it and still show its label.
"""

from __future__ import annotations

import functools
import json
import logging
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lims.models import VocabularyTerm
from reference_data import data_path

logger = logging.getLogger(__name__)

VOCABULARIES = (
    "countries",
    "commodities",
    "commodity_forms",
    "species",
    "detecting_agencies",
    "detection_methods",
    "transport_modes",
    "concealments",
    "disposals",
    "currencies",
    "validation_statuses",
)

# What a new code of each vocabulary must look like.
_CODE_PATTERNS = {
    "countries": re.compile(r"^[A-Z]{2}$"),
    "currencies": re.compile(r"^[A-Z]{3}$"),
    "species": re.compile(r"^[A-Z][a-z]+( [a-z]+\.?)?$"),
}
_DEFAULT_CODE_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


@dataclass(frozen=True)
class Term:
    """One term: its code, the label people read, and where it comes from."""

    code: str
    label: str
    retired: bool = False
    pseudo: bool = False
    changed: bool = False

    def to_json(self) -> dict:
        return {
            "code": self.code,
            "label": self.label,
            "retired": self.retired,
            "pseudo": self.pseudo,
            "changed": self.changed,
        }


@functools.cache
def packaged_terms() -> dict[str, tuple[Term, ...]]:
    """The packaged defaults, per vocabulary."""
    data = json.loads(data_path("intelligence", "vocabularies.json").read_text(encoding="utf-8"))
    return {
        name: tuple(
            Term(entry["code"], entry["label"], pseudo=bool(entry.get("pseudo")))
            for entry in data[name]
        )
        for name in VOCABULARIES
    }


def code_problem(vocabulary: str, code: str) -> str | None:
    """Why ``code`` cannot be a new code of ``vocabulary``, or ``None``."""
    pattern = _CODE_PATTERNS.get(vocabulary, _DEFAULT_CODE_PATTERN)
    if pattern.match(code):
        return None
    if vocabulary == "countries":
        return "must be two capital letters (ISO 3166-1 alpha-2 or a pseudo-code)"
    if vocabulary == "currencies":
        return "must be three capital letters (ISO 4217)"
    if vocabulary == "species":
        return "must be a scientific name, e.g. 'Loxodonta africana' or 'Loxodonta spp.'"
    return "must be lower-case letters, digits and _ (at most 64), starting with a letter"


class Vocabularies:
    """The vocabularies in force: packaged defaults with the administrators' changes."""

    def __init__(self, session: Session) -> None:
        changes = session.scalars(sa.select(VocabularyTerm)).all()
        merged: dict[str, dict[str, Term]] = {
            name: {term.code: term for term in terms} for name, terms in packaged_terms().items()
        }
        for change in changes:
            if change.vocabulary not in merged:
                continue
            old = merged[change.vocabulary].get(change.code)
            merged[change.vocabulary][change.code] = Term(
                change.code,
                change.label,
                retired=change.retired,
                pseudo=old.pseudo if old else False,
                changed=True,
            )
        self.terms = merged

    def label(self, vocabulary: str, code: str | None) -> str | None:
        if code is None:
            return None
        term = self.terms[vocabulary].get(code)
        return term.label if term else code

    def check(self, vocabulary: str, code: str, *, allowed_retired: frozenset = frozenset()):
        """``None`` when ``code`` is a term in force (or a retired one the record already
        had, in ``allowed_retired``); otherwise why not."""
        term = self.terms[vocabulary].get(code)
        if term is None:
            return f"{code!r} is not a code of the vocabulary {vocabulary}"
        if term.retired and code not in allowed_retired:
            return f"{code!r} is retired from the vocabulary {vocabulary}"
        return None

    def codes(self, vocabulary: str) -> list[str]:
        return [code for code, term in self.terms[vocabulary].items() if not term.retired]

    def pseudo_countries(self) -> frozenset[str]:
        return frozenset(code for code, term in self.terms["countries"].items() if term.pseudo)

    def to_json(self) -> dict:
        return {
            name: [term.to_json() for term in terms.values()] for name, terms in self.terms.items()
        }


def set_term(
    session: Session, vocabulary: str, code: str, label: str, retired: bool, user_id: int | None
) -> tuple[VocabularyTerm, bool]:
    """Add, relabel or retire a term (not committed); ``(row, created)``. A new code (one not
    packaged) must look like the vocabulary's codes (:func:`code_problem`); raises
    ``ValueError`` naming why not."""
    if vocabulary not in VOCABULARIES:
        raise ValueError(f"no vocabulary {vocabulary!r}; vocabularies: {', '.join(VOCABULARIES)}")
    packaged = {term.code for term in packaged_terms()[vocabulary]}
    if code not in packaged and (problem := code_problem(vocabulary, code)):
        raise ValueError(problem)
    row = session.get(VocabularyTerm, (vocabulary, code))
    created = row is None
    if created:
        row = VocabularyTerm(vocabulary=vocabulary, code=code)
        session.add(row)
    row.label = label
    row.retired = retired
    row.changed_by_id = user_id
    logger.info(
        "vocabulary %s term %s %s (label %r, retired %s) by user %s",
        vocabulary, code, "added" if created else "changed", label, retired, user_id,
    )
    return row, created
