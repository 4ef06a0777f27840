"""Roles and what each may do (the permission matrix).

Permissions say *what kind* of action a role may take; *which records* a user may touch is
need-to-know (:mod:`lims.access`): their agency's cases and those shared with it. Both must
allow an action. Separation of duties is deliberate: the analyst who produces a profile holds
no review permission through that role, and even a user holding both roles may not review
their own profile (:mod:`lims.genotyping`) or sign a report as both its analyst and its reviewer
(:mod:`lims.reports.issue`).
"""

from __future__ import annotations

from collections.abc import Iterable

ROLES = ("admin", "custodian", "analyst", "reviewer", "investigator", "researcher")

PERMISSIONS = {
    "agency.manage": "register agencies and edit one's own agency",
    "user.manage": "create and edit users of one's own agency, list and revoke their API tokens",
    "record.read": "read cases and their evidence records (need-to-know applies)",
    "case.write": "open and edit cases, share them with other agencies",
    "evidence.write": "register and edit seizures, items, reference animals and samples",
    "storage.write": "define storage locations",
    "custody.record": "record custody events",
    "extract.write": "register and edit DNA extracts",
    "profile.write": "enter, import and correct genotype profiles",
    "profile.review": "review, release and reject genotype profiles of other analysts",
    "match.request": "request match reports (match requests run as background jobs)",
    "report.prepare": "draft reports from finished match requests and sign them as analyst",
    "report.review": "review reports of other analysts and sign them, which issues them",
    "released.read": "read released genotype profiles for matching and research",
    "audit.read": "read the audit trail",
    "exchange.manage": "register exchange partners, export and import signed packages, decide "
    "partners' follow-up requests",
    "exchange.read": "see and search the profiles imported from one's own agency's exchange "
    "partners (their origin shown; never editable)",
    "intelligence.read": "read seizure-intelligence figures and AITR/ETIS tables (need-to-know "
    "applies to every figure)",
    "vocabulary.manage": "add, relabel and retire terms of the seizure-record vocabularies",
}

ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    "admin": frozenset(
        {
            "agency.manage",
            "user.manage",
            "record.read",
            "storage.write",
            "audit.read",
            "exchange.manage",
            "vocabulary.manage",
        }
    ),
    "custodian": frozenset(
        {"record.read", "case.write", "evidence.write", "storage.write", "custody.record"}
    ),
    "analyst": frozenset(
        {
            "record.read",
            "evidence.write",
            "custody.record",
            "extract.write",
            "profile.write",
            "match.request",
            "report.prepare",
            "intelligence.read",
            "exchange.read",
        }
    ),
    "reviewer": frozenset(
        {
            "record.read",
            "profile.review",
            "audit.read",
            "match.request",
            "report.review",
            "intelligence.read",
            "exchange.read",
        }
    ),
    "investigator": frozenset(
        {"record.read", "case.write", "match.request", "intelligence.read", "exchange.read"}
    ),
    "researcher": frozenset({"released.read"}),
}


def permissions_of(roles: Iterable[str]) -> frozenset[str]:
    """Every permission granted by any of ``roles`` (unknown roles raise ``ValueError``)."""
    granted: set[str] = set()
    for role in roles:
        if role not in ROLE_PERMISSIONS:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        granted |= ROLE_PERMISSIONS[role]
    return frozenset(granted)


def roles_with(permission: str) -> tuple[str, ...]:
    """The roles granting ``permission``, in :data:`ROLES` order."""
    if permission not in PERMISSIONS:
        raise ValueError(f"unknown permission {permission!r}")
    return tuple(role for role in ROLES if permission in ROLE_PERMISSIONS[role])
