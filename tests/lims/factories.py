"""Small builders of LIMS records for tests (straight into the database, no API)."""

from __future__ import annotations

from dataclasses import dataclass

from lims.models import Case, Item, Sample, Seizure, User


@dataclass
class CaseTree:
    """Ids of one case with one seizure, two tusks and one sample from each tusk."""

    case_id: int
    seizure_id: int
    item_ids: list[int]
    sample_ids: list[int]
    barcodes: list[str]


def make_case_tree(
    session, agency_id: int, prefix: str, *, seizure_reference: str | None = None
) -> CaseTree:
    """A case of ``agency_id`` with references and barcodes starting with ``prefix`` (the
    seizure's reference ``seizure_reference`` where given)."""
    case = Case(
        agency_id=agency_id,
        reference=f"{prefix}-CASE",
        title=f"Case {prefix}",
        kind="investigation",
    )
    seizure = Seizure(
        case=case,
        reference=seizure_reference or f"{prefix}-SZ",
        country="Kenya",
        place="Mombasa",
    )
    items = [Item(seizure=seizure, label=f"T{i}", kind="tusk") for i in (1, 2)]
    samples = [
        Sample(barcode=f"{prefix}-S{i}", case=case, sample_type="powder", item=item)
        for i, item in enumerate(items, start=1)
    ]
    session.add_all([case, seizure, *items, *samples])
    session.commit()
    return CaseTree(
        case.id,
        seizure.id,
        [item.id for item in items],
        [s.id for s in samples],
        [s.barcode for s in samples],
    )


def make_trees_of_both_agencies(session, agencies: dict[str, int]) -> dict[str, CaseTree]:
    """One case tree for each of the agencies ``"A"`` (prefix KE) and ``"B"`` (prefix UG)."""
    return {
        "A": make_case_tree(session, agencies["A"], "KE"),
        "B": make_case_tree(session, agencies["B"], "UG"),
    }


def make_user(session, agency_id: int, username: str, *roles: str) -> User:
    user = User(agency_id=agency_id, username=username, full_name=username.title())
    user.set_roles(set(roles))
    session.add(user)
    session.commit()
    return user
