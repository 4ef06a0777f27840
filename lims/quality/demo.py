"""The demo's quality records: a positive control (also an elimination profile), an in-control
genotyping run with its controls, and one flagged contamination: a replicate aliquot on that
plate typed as the positive control's genotype (the control's DNA got into its well)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy.orm import Session

from dnatrack.reference import ReferenceSet
from lims.genotyping import resolve_panel
from lims.models import EliminationProfile, PositiveControl, Sample, User
from lims.quality.runs import import_run

DEMO_RUN = "DEMO-RUN-QC-1"
DEMO_CONTROL = "PC-ELE-1"


def _genotype(reference: ReferenceSet, row: int) -> dict[str, list[int]]:
    table = reference.table
    return {locus: sorted(int(a) for a in pair)
            for locus, pair in zip(table.loci, table.alleles[row].tolist(), strict=True)
            if min(pair) >= 0}


def _export(wells: list[tuple[str, str, str, dict]], loci: list[str], run: str) -> bytes:
    lines = ["Run Name\tSample Name\tSample Type\tWell\tMarker\tAllele 1\tAllele 2"]
    for well, name, kind, alleles in wells:
        for locus in loci:
            called = [str(a) for a in alleles.get(locus, [])] + ["", ""]
            lines.append("\t".join([run, name, kind, well, locus, *called[:2]]))
    return ("\n".join(lines) + "\n").encode()


def load_quality(session: Session, *, reference: ReferenceSet, analyst: User,
                 parent: Sample, run_on: dt.date,
                 custody: Callable[[Sample], None]) -> None:
    """Add the demo's quality records (see the module docstring) to ``session``."""
    panel = resolve_panel(reference.panel)
    control = _genotype(reference, 0)
    session.add(PositiveControl(agency_id=analyst.agency_id, name=DEMO_CONTROL,
                                panel=panel.name, alleles=control, created_by_id=analyst.id))
    session.add(EliminationProfile(agency_id=analyst.agency_id, name=DEMO_CONTROL,
                                   kind="positive_control", panel=panel.name, alleles=control,
                                   description="The laboratory's elephant positive control.",
                                   created_by_id=analyst.id))
    contaminated = Sample(barcode=f"{parent.barcode}-A2", case_id=parent.case_id,
                          parent=parent, sample_type="powder",
                          description="Second replicate aliquot (typed on the QC demo run).")
    session.add(contaminated)
    session.flush()
    custody(contaminated)
    content = _export([("A01", DEMO_CONTROL, "Positive Control", control),
                       ("A02", "NTC-1", "Negative Control", {}),
                       ("B01", contaminated.barcode, "Sample", control)],
                      list(panel.locus_names), DEMO_RUN)
    import_run(session, content, filename=f"{DEMO_RUN}.txt", panel=panel, analyst=analyst,
               fields={"name": DEMO_RUN, "instrument": "ABI 3500xL Genetic Analyzer",
                       "kit": "Elephant 16-STR multiplex", "kit_lot": "LOT-2409-A",
                       "allelic_ladder": "GeneScan 500 LIZ", "run_on": run_on})


def confirm_tusk_pairs(session: Session, scenario, barcodes: dict[str, str],
                       analyst: User) -> int:
    """Record a concordant re-typing of both samples (tusks, or a horn and its carcass) of
    every same-animal pair across two seizures or a seizure and a carcass of the scenario: an
    evidential report needs both sides of a hit confirmed
    (:func:`lims.quality.checks.unconfirmed_hits`), and the lab confirmed them before the
    demo's evidential reports. Returns how many profiles were confirmed."""
    import sqlalchemy as sa

    from lims.models import GenotypeProfile
    from lims.quality.checks import record_confirmation

    by_animal: dict[str, list] = {}
    for item in scenario.items:
        by_animal.setdefault(item.animal_id, []).append(item)
    confirmed = 0
    for items in by_animal.values():
        if len({item.seizure for item in items}) < 2:
            continue
        for item in items:
            profile = session.scalar(
                sa.select(GenotypeProfile).join(Sample).where(
                    Sample.barcode == barcodes[item.item_id],
                    GenotypeProfile.superseded.is_(False)))
            record_confirmation(session, profile, analyst, method="re-typing",
                                alleles=dict(profile.alleles),
                                note="Demo: the tusk was typed a second time, concordant.")
            confirmed += 1
    return confirmed
