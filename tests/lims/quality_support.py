"""Builders for the quality-system tests: GeneMapper exports of a plate, runs posted through
the API, and hit confirmations of a finished request's hits."""

from __future__ import annotations

import io

import sqlalchemy as sa

from lims.models import GenotypeProfile, HitConfirmation, Sample
from matching.contamination import compare

PANEL = "test_str4"
LOCI = ("FH67", "FH71", "LA5", "LAT24")
#: The positive control's expected genotype on the test panel.
CONTROL = {"FH67": [150, 152], "FH71": [200, 204], "LA5": [100, 104], "LAT24": [200, 204]}
RUN_FIELDS = {"panel": PANEL, "instrument": "ABI 3500xL", "kit": "Elephant STR kit",
              "kit_lot": "LOT-42", "allelic_ladder": "GS500 LIZ", "run_on": "2026-11-30"}


def genotype(seed: int) -> dict[str, list[int]]:
    """A genotype on the test panel, different loci for different seeds."""
    return {"FH67": [110 + 2 * seed, 130 + 2 * seed], "FH71": [160 + 2 * seed, 180 + 2 * seed],
            "LA5": [84 + 4 * (seed % 5), 120], "LAT24": [184 + 4 * (seed % 7), 260]}


def export(wells: list[tuple[str, str, str, dict]], *, run: str | None = None) -> bytes:
    """A GeneMapper export: ``(well, sample name, sample type, {locus: alleles})`` per well;
    a locus absent from the alleles gets an empty row (no call), as for a clean blank."""
    header = ["Sample File", "Sample Name", "Sample Type", "Well", "Panel", "Marker",
              "Allele 1", "Allele 2"]
    if run is not None:
        header.insert(0, "Run Name")
    lines = ["\t".join(header)]
    for well, name, kind, alleles in wells:
        for locus in LOCI:
            called = [str(a) for a in alleles.get(locus, [])]
            cells = [f"{name}.fsa", name, kind, well, PANEL, locus, *called,
                     *[""] * (2 - len(called))]
            if run is not None:
                cells.insert(0, run)
            lines.append("\t".join(cells))
    return ("\n".join(lines) + "\n").encode()


def post_run(caller, content: bytes, *, name: str = "RUN-1", plate_map: bytes | None = None,
             **fields):
    data = {**RUN_FIELDS, "name": name, **fields,
            "file": (io.BytesIO(content), "run.txt")}
    if plate_map is not None:
        data["plate_map"] = (io.BytesIO(plate_map), "plate.csv")
    return caller.client.post("/api/v1/runs", data=data, headers=caller.headers,
                              content_type="multipart/form-data")


def confirm_hits(app, request_id: int, user_id: int) -> int:
    """Record a concordant re-typing of both samples of every same-animal hit in a finished
    request's result, straight into the database (for tests of other things than
    the confirmation, which an evidential report needs). Returns how many were recorded."""
    from sqlalchemy.orm import Session

    from lims.extensions import db
    from lims.models import MatchRequest

    with Session(db.engine_for(app)) as session:
        return _confirm(session, session.get(MatchRequest, request_id).result, user_id)


def _confirm(session, result: dict, user_id: int) -> int:
    panel = result["panel"]["name"]
    recorded = 0
    done: set[int] = set()
    for pair in result["pairs"]:
        if pair["relationship"] != "same_animal" or pair["node1"] == pair["node2"]:
            continue
        # Both sides of the hit (the other one where its sample is in the LIMS).
        for barcode in (pair["sample1"], pair.get("sample2")):
            profile = barcode and session.scalar(
                sa.select(GenotypeProfile).join(Sample).where(
                    Sample.barcode == barcode, GenotypeProfile.panel == panel,
                    GenotypeProfile.superseded.is_(False),
                    GenotypeProfile.state != "rejected"))
            if profile is None or profile.id in done:
                continue
            done.add(profile.id)
            session.add(HitConfirmation(
                sample_id=profile.sample_id, profile_id=profile.id, method="re-typing",
                alleles=profile.alleles, concordant=True,
                comparison=compare(profile.alleles, profile.alleles).as_dict(),
                confirmed_by_id=user_id))
            recorded += 1
    session.commit()
    return recorded
