"""Running a match request: released profiles from the database, through the analysis
pipeline, into the results a report shows.

:func:`run_analysis` loads every current released profile on the reference sets' panel (all
agencies: a link into another agency's seizure must be found), takes the subject's profiles
(a seizure's, or a whole case's) and hands them, with all other released profiles as the
background, to :func:`matching.analysis.analyse` — the statistics (combining reference sets,
the set whose frequencies weigh each profile, the searches, assignment, mixture and map) are
all there, shared with ``dnatrack analyze``. What is left here is the LIMS's: which profiles
are the subject, where each profile comes from (:class:`Describer`: its seizure or source
animal, or the exchange partner it was imported from), and need-to-know applied *before*
anything is stored: a pair or link into a case the requester may not read keeps only the other
seizure's reference and its holding agency (DESIGN 6, :func:`lims.reports.access.hold_back`).

Profiles imported from the requesting agency's exchange partners (:mod:`lims.exchange`) join
the background when the requester may see them (``exchange.read``): one node per partner
(``"partner:<id>"``), each profile named ``<partner>:<its opaque reference>``; a match to one is
a lead, its details only through a follow-up request to the partner (the result says so).

Seizures and source animals are told apart by their records, never by their references:
references and animal identifiers are unique per agency only, so two agencies' "KE-001" are
two nodes, and the subject of a seizure request is the samples of that seizure's items.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import Panel
from dnatrack.reference import ReferenceSet, load_reference_set
from lims.access import case_ids
from lims.custody import ledger_head
from lims.genotyping import resolve_panel
from lims.models import (
    ANALYSES,
    Agency,
    Case,
    Item,
    MatchRequest,
    Sample,
    Seizure,
    SourceAnimal,
    User,
)
from lims.release import released_genotypes
from lims.reports.access import HELD_CAVEAT, hold_back
from matching.analysis import (
    RESULT_FORMAT,
    AnalysisError,
    AnalysisResult,
    AnalysisSettings,
    Node,
    ProfileOrigin,
    Progress,
    Subject,
    analyse,
)
from matching.analysis.references import shared_loci
from reference_data import list_reference_sets, reference_set_path

__all__ = [
    "RESULT_FORMAT", "AnalysisError", "AnalysisSettings", "check_analyses",
    "check_reference_sets", "Describer", "panel_of", "run_analysis", "seizure_barcodes",
    "subject_profile_count",
]


# ----------------------------------------------------------------------------- checking
def check_reference_sets(names: Sequence[str]) -> list[ReferenceSet]:
    """The bundled reference sets ``names`` (one panel for all of them), loaded;
    :class:`AnalysisError` naming the offending entries."""
    if not isinstance(names, list | tuple) or not names:
        raise AnalysisError("no reference set chosen", [
            {"field": "reference_sets", "message": "name at least one bundled reference set"}])
    bundled = list_reference_sets()
    unknown = [name for name in names if name not in bundled]
    if unknown:
        raise AnalysisError(f"no bundled reference set {unknown[0]!r}", [
            {"field": "reference_sets",
             "message": f"{unknown[0]!r} is not a bundled reference set; one of "
                        f"{', '.join(bundled)}"}])
    if len(set(names)) != len(names):
        raise AnalysisError("a reference set is named twice", [
            {"field": "reference_sets", "message": "names a reference set twice"}])
    references = [load_reference_set(name) for name in names]
    panels = {reference.panel for reference in references}
    if len(panels) != 1 or None in panels:
        raise AnalysisError("the reference sets are typed on different panels", [
            {"field": "reference_sets",
             "message": "the chosen sets must share one panel; they use "
                        + ", ".join(f"{r.name}: {r.panel}" for r in references)}])
    return references


def check_analyses(analyses: Sequence[str]) -> list[str]:
    """The analyses asked for, in :data:`~lims.models.ANALYSES` order."""
    if not isinstance(analyses, list | tuple) or not analyses:
        raise AnalysisError("no analysis chosen", [
            {"field": "analyses", "message": f"choose from {', '.join(ANALYSES)}"}])
    unknown = [name for name in analyses if name not in ANALYSES]
    if unknown:
        raise AnalysisError(f"unknown analysis {unknown[0]!r}", [
            {"field": "analyses",
             "message": f"unknown analysis {unknown[0]!r}; one of {', '.join(ANALYSES)}"}])
    return [name for name in ANALYSES if name in analyses]


def seizure_barcodes(session: Session, seizure_id: int) -> set[str]:
    """Barcodes of the samples taken from the seizure's items and of their aliquots, at any
    depth."""
    level = session.execute(sa.select(Sample.id, Sample.barcode).where(
        Sample.item_id.in_(sa.select(Item.id).where(Item.seizure_id == seizure_id)))).all()
    barcodes: set[str] = set()
    while level:
        barcodes.update(barcode for _, barcode in level)
        level = session.execute(sa.select(Sample.id, Sample.barcode).where(
            Sample.parent_id.in_([sample_id for sample_id, _ in level]))).all()
    return barcodes


def subject_rows(session: Session, table: GenotypeTable, case: Case,
                 seizure: Seizure | None) -> np.ndarray:
    """Rows of the released table that belong to the request's subject, bool (n,): the
    samples of a seizure's items (that seizure record, whatever another agency's seizure of
    the same reference holds) or every sample of a case."""
    if seizure is not None:
        barcodes = seizure_barcodes(session, seizure.id)
    else:
        barcodes = set(session.scalars(sa.select(Sample.barcode).where(
            Sample.case_id == case.id)))
    return np.array([barcode in barcodes for barcode in table.profile_ids], dtype=bool)


def subject_profile_count(session: Session, case: Case, seizure: Seizure | None,
                          panel: Panel) -> int:
    """How many current released profiles on ``panel`` the subject has."""
    return int(subject_rows(session, released_genotypes(session, panel), case, seizure).sum())


def panel_of(references: Sequence[ReferenceSet], panel_directory: str | None) -> Panel:
    """The panel the reference sets are typed on."""
    return resolve_panel(references[0].panel, panel_directory)


# ----------------------------------------------------------------------------- evidence nodes
#: A seizure or source animal by its record: ``("seizure", id)`` or ``("animal", id)``.
Record = tuple[str, int]


def _seizure_node(seizure: Seizure, case: Case, agency: Agency) -> Node:
    return Node(kind="seizure", reference=seizure.reference, agency=agency.name,
                case=case.reference, country=seizure.country, place=seizure.place,
                seized_on=seizure.seized_on.isoformat() if seizure.seized_on else None)


def _animal_node(animal: SourceAnimal, case: Case, agency: Agency) -> Node:
    return Node(kind=animal.kind, reference=animal.identifier, agency=agency.name,
                case=case.reference, country=None, place=animal.population,
                seized_on=animal.found_on.isoformat() if animal.found_on else None)


class Describer:
    """Where each released profile comes from, for :func:`matching.analysis.analyse`: its
    node (``"seizure:<id>"`` or ``"animal:<id>"``), a description ("tusk T3 of seizure
    KE-SZ-1", "carcass C-12") and what reports show of the node, in full; ``case_of`` keeps
    each node's case, for need-to-know."""

    def __init__(self, session: Session, imported: Sequence = ()) -> None:
        self.session = session
        self.case_of: dict[str, int] = {}
        self.imported = {f"{row.partner}:{row.reference}": row for row in imported}
        self.partner_nodes: set[str] = set()

    def __call__(self, barcodes: Collection[str]) -> dict[str, ProfileOrigin]:
        origins = {name: self._imported(self.imported[name])
                   for name in barcodes if name in self.imported}
        barcodes = [barcode for barcode in barcodes if barcode not in self.imported]
        return {**self._local(barcodes), **origins}

    def _imported(self, row) -> ProfileOrigin:
        key = f"partner:{row.partner_id}"
        self.partner_nodes.add(key)
        seized = ", ".join(str(v) for v in (row.seizure_country, row.seizure_year) if v)
        return ProfileOrigin(
            key, f"profile {row.reference} imported from exchange partner {row.partner}"
            + (f" (seized {seized})" if seized else ""),
            Node(kind="partner", reference=row.partner,
                 agency=f"exchange partner {row.partner}"))

    def _local(self, barcodes: Collection[str]) -> dict[str, ProfileOrigin]:
        samples = self.session.scalars(
            sa.select(Sample).where(Sample.barcode.in_(list(barcodes)))).all()
        found: dict[str, tuple[Record, str]] = {}
        for sample in samples:
            item = sample.origin_item
            if item is not None:
                seizure = item.seizure
                found[sample.barcode] = (("seizure", seizure.id),
                                         f"{item.kind} {item.label} of seizure "
                                         f"{seizure.reference}")
            else:
                animal = sample.origin_source_animal
                found[sample.barcode] = (("animal", animal.id),
                                         f"{animal.kind.replace('_', ' ')} {animal.identifier}")
        nodes = self._nodes({record for record, _ in found.values()})
        return {barcode: ProfileOrigin(f"{record[0]}:{record[1]}", description, nodes[record])
                for barcode, (record, description) in found.items()}

    def _nodes(self, records: set[Record]) -> dict[Record, Node]:
        nodes: dict[Record, Node] = {}
        seizure_ids = {record_id for kind, record_id in records if kind == "seizure"}
        animal_ids = {record_id for kind, record_id in records if kind == "animal"}
        for seizure, case, agency in self.session.execute(
                sa.select(Seizure, Case, Agency).join(Case, Case.id == Seizure.case_id)
                .join(Agency, Agency.id == Case.agency_id).where(Seizure.id.in_(seizure_ids))):
            nodes[("seizure", seizure.id)] = _seizure_node(seizure, case, agency)
            self.case_of[f"seizure:{seizure.id}"] = case.id
        for animal, case, agency in self.session.execute(
                sa.select(SourceAnimal, Case, Agency).join(Case, Case.id == SourceAnimal.case_id)
                .join(Agency, Agency.id == Case.agency_id)
                .where(SourceAnimal.id.in_(animal_ids))):
            nodes[("animal", animal.id)] = _animal_node(animal, case, agency)
            self.case_of[f"animal:{animal.id}"] = case.id
        return nodes


#: What a result searched with imported profiles says about them.
IMPORTED_CAVEAT = ("{n} profile(s) imported from your agency's exchange partners were searched "
                   "as background. A match to one is a lead, not this laboratory's evidence: "
                   "the partner's genotype was not typed or reviewed here; ask the partner for "
                   "the record's details with a follow-up request.")


# ----------------------------------------------------------------------------- the run
def run_analysis(
    session: Session,
    request: MatchRequest,
    *,
    panel_directory: str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Run a match request's analyses and assemble its result.

    Parameters
    ----------
    session
        A session on the LIMS database (only read from).
    request
        The match request (its case, seizure, analyses, reference sets and parameters).
    panel_directory
        Extra panel folder (the app's ``PANEL_DIRECTORY``).
    progress
        Called with ``(fraction done, stage name)`` as the work advances.

    Returns
    -------
    dict
        The :class:`~matching.analysis.AnalysisResult` as JSON (layout
        :data:`RESULT_FORMAT`), need-to-know applied for the requester.

    Raises
    ------
    AnalysisError
        When the request cannot be run (no released profiles, too few shared loci…).
    """
    analyses = check_analyses(request.analyses)
    settings = AnalysisSettings.from_parameters(request.parameters)
    references = check_reference_sets(request.reference_sets)
    if progress is not None:
        progress(0.0, "loading released profiles")
    panel = panel_of(references, panel_directory)
    loci = shared_loci(references, panel)
    if len(loci) < settings.min_loci:
        raise AnalysisError(
            f"only {len(loci)} loci are shared by panel {panel.name} and the reference sets; "
            f"at least min_loci = {settings.min_loci} are needed")
    # Imported here: lims.exchange imports lims.custody, which must not be first to load.
    from lims import exchange

    released = released_genotypes(session, panel).select_loci(loci)
    requester = session.get(User, request.requested_by_id)
    imported = (exchange.imported_profiles(session, panel, requester.agency_id)
                if exchange.may_see_imported(requester) else [])
    case = session.get(Case, request.case_id)
    seizure = session.get(Seizure, request.seizure_id) if request.seizure_id else None
    in_subject = subject_rows(session, released, case, seizure)
    if not in_subject.any():
        subject = f"seizure {seizure.reference}" if seizure else f"case {case.reference}"
        raise AnalysisError(f"{subject} has no released genotype profiles on panel {panel.name}")
    describe = Describer(session, imported)
    background = released.take(np.flatnonzero(~in_subject))
    if imported:
        background = GenotypeTable.concat(
            [background, exchange.imported_table(panel, imported).select_loci(loci)])
    result = analyse(
        released.take(np.flatnonzero(in_subject)),
        background,
        references,
        analyses=analyses,
        settings=settings,
        panel=panel,
        describe=describe,
        about=Subject(
            kind="seizure" if seizure else "case",
            reference=seizure.reference if seizure else case.reference,
            case_reference=case.reference,
            case_title=case.title,
            agency=case.agency.name,
        ),
        reference_folder=lambda reference: reference_set_path(reference.name),
        progress=progress,
    )
    result.ledger_head = dataclasses.asdict(ledger_head(session))
    if imported:
        result.caveats.append(IMPORTED_CAVEAT.format(n=len(imported)))
    readable = set(session.scalars(case_ids(requester)))
    unreadable = [key for key in result.nodes if key not in describe.partner_nodes
                  and describe.case_of[key] not in readable]
    stored = hold_back(result.to_json(), unreadable, HELD_CAVEAT)
    stored["content_sha256"] = AnalysisResult.from_json(stored).content_sha256()
    return stored
