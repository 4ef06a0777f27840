"""Screening new profiles for contamination and duplicates, what keeps a profile from review,
hit confirmations, and proficiency and validation records.

Every new profile (entered, imported or corrected) is screened before review
(:func:`screen_profile`), with :func:`matching.contamination.same_source` (no differing locus
over enough compared loci) and, for replicates, :func:`matching.contamination.compare`:

- against the agency's **elimination profiles** on its panel (staff-handled reference animals,
  the positive control, other laboratories' controls): a same-source result is a flag;
- against the other samples **of its plate** (runs it was typed on) and **of its extraction
  batch**: a same-source result with a sample of another seizure or source animal is a flag
  (two tusks of one seizure may well be one animal; items of different seizures on one plate
  should not be);
- against the **replicates** of its sample (live profiles of samples of the same origin item
  or source animal, on the same panel): a differing locus is a flag (replicates disagree).

A profile cannot be reviewed (:func:`review_blockers`) while a flag of it is open or confirmed,
or while a run it was typed on is on hold or rejected. A reviewer clears or confirms a flag
with the reason (:func:`resolve_flag`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from lims.database import utcnow
from lims.models import (
    ContaminationFlag,
    EliminationProfile,
    ExtractionBatchExtract,
    GenotypeProfile,
    GenotypingRun,
    HitConfirmation,
    PlateWell,
    ProfileScreen,
    QualityRecord,
    Sample,
    User,
)
from lims.quality import QualityError
from matching.contamination import CONSENSUS_RULE, compare, consensus, same_source, screen_loci

logger = logging.getLogger(__name__)

#: How long a passed proficiency test counts.
PROFICIENCY_VALIDITY = dt.timedelta(days=365)


def _origin(sample: Sample) -> tuple[str, int]:
    """The seizure (or source animal) a sample ultimately comes from."""
    root = sample.lineage()[-1]
    if root.item_id is not None:
        return "seizure", root.item.seizure_id
    return "animal", root.source_animal_id


def _origin_item(sample: Sample) -> tuple[str, int]:
    root = sample.lineage()[-1]
    return ("item", root.item_id) if root.item_id is not None else ("animal",
                                                                     root.source_animal_id)


def _describe(profile: GenotypeProfile) -> str:
    return f"profile {profile.id} of sample {profile.sample.barcode}"


def _origin_text(sample: Sample) -> str:
    item = sample.origin_item
    if item is not None:
        return f"{item.kind} {item.label} of seizure {item.seizure.reference}"
    animal = sample.origin_source_animal
    return f"{animal.kind.replace('_', ' ')} {animal.identifier}"


def _n_loci(profile: GenotypeProfile) -> int:
    from flask import current_app, has_app_context

    from lims.genotyping import resolve_panel

    folder = current_app.config.get("PANEL_DIRECTORY") if has_app_context() else None
    try:
        return len(resolve_panel(profile.panel, folder).locus_names)
    except ValueError:
        return len(profile.alleles)


def _live(statement: sa.Select) -> sa.Select:
    return statement.where(GenotypeProfile.superseded.is_(False),
                           GenotypeProfile.state != "rejected")


def _existing(session: Session, profile: GenotypeProfile) -> set[tuple]:
    return {
        (kind, other, elimination)
        for kind, other, elimination in session.execute(
            sa.select(ContaminationFlag.kind, ContaminationFlag.other_profile_id,
                      ContaminationFlag.elimination_profile_id)
            .where(ContaminationFlag.profile_id == profile.id))
    }


def _neighbours(session: Session, profile: GenotypeProfile) -> list[tuple[str, int | None,
                                                                          GenotypeProfile]]:
    """``(kind, run id, other profile)`` for plate neighbours and extraction-batch mates."""
    found = []
    runs = sa.select(PlateWell.run_id).where(PlateWell.profile_id == profile.id)
    rows = session.execute(
        _live(sa.select(PlateWell.run_id, GenotypeProfile)
              .join(GenotypeProfile, GenotypeProfile.id == PlateWell.profile_id)
              .where(PlateWell.run_id.in_(runs), PlateWell.profile_id != profile.id,
                     GenotypeProfile.panel == profile.panel))).all()
    found += [("plate", run_id, other) for run_id, other in rows]
    if profile.extract_id is not None:
        batch = sa.select(ExtractionBatchExtract.batch_id).where(
            ExtractionBatchExtract.extract_id == profile.extract_id)
        mates = sa.select(ExtractionBatchExtract.extract_id).where(
            ExtractionBatchExtract.batch_id.in_(batch),
            ExtractionBatchExtract.extract_id != profile.extract_id)
        others = session.scalars(_live(sa.select(GenotypeProfile).where(
            GenotypeProfile.extract_id.in_(mates), GenotypeProfile.panel == profile.panel)))
        found += [("extraction_batch", None, other) for other in others]
    return found


def screen_profile(session: Session, profile: GenotypeProfile) -> list[ContaminationFlag]:
    """Screen a flushed profile (module docstring) and add a flag for each finding not
    flagged before; records that the profile was screened. Returns the new flags."""
    analyst = session.get(User, profile.analyst_id)
    min_loci = screen_loci(_n_loci(profile))
    seen = _existing(session, profile)
    flags: list[ContaminationFlag] = []

    def flag(kind, reason, comparison, *, other=None, elimination=None, run_id=None):
        key = (kind, other.id if other else None, elimination.id if elimination else None)
        if key in seen:
            return
        seen.add(key)
        flags.append(ContaminationFlag(
            profile_id=profile.id, kind=kind, reason=reason, comparison=comparison.as_dict(),
            other_profile_id=key[1], elimination_profile_id=key[2], run_id=run_id,
            status="open"))

    for elimination in session.scalars(sa.select(EliminationProfile).where(
            EliminationProfile.agency_id == analyst.agency_id,
            EliminationProfile.panel == profile.panel)):
        if same_source(profile.alleles, elimination.alleles, min_loci=min_loci):
            result = compare(profile.alleles, elimination.alleles)
            flag("elimination",
                 f"same genotype as elimination profile {elimination.name} "
                 f"({elimination.kind.replace('_', ' ')}) at {result.loci_compared} loci",
                 result, elimination=elimination)

    origin = _origin(profile.sample)
    for kind, run_id, other in _neighbours(session, profile):
        if _origin(other.sample) == origin:
            continue  # e.g. the two tusks of one seizure: may well be one animal
        if same_source(profile.alleles, other.alleles, min_loci=min_loci):
            result = compare(profile.alleles, other.alleles)
            where = ("on the same plate" if kind == "plate"
                     else "in the same extraction batch")
            flag(kind,
                 f"same genotype as {_describe(other)} ({_origin_text(other.sample)}) "
                 f"{where}, from another seizure or animal, at {result.loci_compared} loci",
                 result, other=other, run_id=run_id)

    root_kind, root_id = _origin_item(profile.sample)
    column = Sample.item_id if root_kind == "item" else Sample.source_animal_id
    roots = sa.select(Sample.id).where(column == root_id)
    relatives = sa.select(Sample.id).where(sa.or_(Sample.id.in_(roots),
                                                  Sample.parent_id.in_(roots)))
    for other in session.scalars(_live(sa.select(GenotypeProfile).where(
            GenotypeProfile.sample_id.in_(relatives), GenotypeProfile.id != profile.id,
            GenotypeProfile.panel == profile.panel))):
        result = compare(profile.alleles, other.alleles)
        if result.different:
            flag("replicate",
                 f"replicate {_describe(other)} of the same origin differs at "
                 f"{', '.join(result.different)}", result, other=other)

    session.add_all(flags)
    screen = session.get(ProfileScreen, profile.id)
    if screen is None:
        session.add(ProfileScreen(profile_id=profile.id, n_flags=len(flags), screened_at=utcnow()))
    else:
        screen.n_flags += len(flags)
        screen.screened_at = utcnow()
    session.flush()
    for new in flags:
        logger.warning("contamination flag %s on profile %s (%s): %s", new.id, profile.id,
                       new.kind, new.reason)
    return flags


def held_runs(session: Session, profile: GenotypeProfile) -> list[GenotypingRun]:
    """The runs the profile was typed on that are on hold or rejected."""
    return list(session.scalars(
        sa.select(GenotypingRun).join(PlateWell, PlateWell.run_id == GenotypingRun.id)
        .where(PlateWell.profile_id == profile.id,
               GenotypingRun.status.in_(("on_hold", "rejected")))))


def review_blockers(session: Session, profile: GenotypeProfile) -> list[str]:
    """Why ``profile`` cannot be reviewed now (empty when it can)."""
    reasons = []
    for run in held_runs(session, profile):
        if run.status == "on_hold":
            reasons.append(f"run {run.name} is on hold: {run.hold_reason}")
        else:
            reasons.append(f"run {run.name} was rejected: {run.disposition_reason}")
    for flag in session.scalars(sa.select(ContaminationFlag).where(
            ContaminationFlag.profile_id == profile.id,
            ContaminationFlag.status.in_(("open", "confirmed")))):
        state = "open" if flag.status == "open" else "confirmed"
        reasons.append(f"{state} contamination flag {flag.id}: {flag.reason}")
    return reasons


def resolve_flag(flag: ContaminationFlag, reviewer: User, status: str, reason: str) -> None:
    """A reviewer (not the profile's analyst) clears or confirms an open flag."""
    if status not in ("cleared", "confirmed"):
        raise QualityError(422, "status must be cleared or confirmed",
                           [{"field": "status", "message": "must be cleared or confirmed"}])
    if not reason or not reason.strip():
        raise QualityError(422, "a resolution needs its reason",
                           [{"field": "reason", "message": "empty"}])
    if flag.status != "open":
        raise QualityError(409, f"flag {flag.id} is already {flag.status}")
    if flag.profile.analyst_id == reviewer.id:
        raise QualityError(403, "the analyst of a profile cannot resolve its flags")
    flag.status = status
    flag.resolution = reason.strip()
    flag.resolved_by_id = reviewer.id
    flag.resolved_at = utcnow()
    logger.info("contamination flag %s %s by user %s", flag.id, status, reviewer.id)


# ----------------------------------------------------------------------------- confirmations
def _same_lineage(sample: Sample, other: Sample) -> bool:
    return sample.id in {s.id for s in other.lineage()} or other.id in {
        s.id for s in sample.lineage()}


def record_confirmation(
    session: Session,
    profile: GenotypeProfile,
    user: User,
    *,
    method: str,
    alleles: dict | None = None,
    confirming_profile: GenotypeProfile | None = None,
    note: str | None = None,
) -> HitConfirmation:
    """Compare a re-typing (``alleles``) or a re-extraction's profile (of the sample or an
    aliquot of it) with ``profile``; concordant when no locus differs, none is only
    dropout-compatible, and enough loci are compared (:func:`matching.contamination.screen_loci`).
    A discordant result is recorded too (it confirms nothing)."""
    from lims.genotyping import ProfileError, normalise_alleles, resolve_panel

    if (alleles is None) == (confirming_profile is None):
        raise QualityError(422, "give either the re-typed alleles or the confirming profile",
                           [{"field": "alleles", "message": "exactly one of alleles and "
                             "confirming_profile_id"}])
    if profile.superseded or profile.state == "rejected":
        raise QualityError(409, f"profile {profile.id} is not live (superseded or rejected)")
    if confirming_profile is not None:
        if confirming_profile.id == profile.id:
            raise QualityError(422, "a profile cannot confirm itself",
                               [{"field": "confirming_profile_id", "message": "same profile"}])
        if confirming_profile.panel != profile.panel or not _same_lineage(
                profile.sample, confirming_profile.sample):
            raise QualityError(422, "the confirming profile must be of the same sample (or an "
                               "aliquot of it) on the same panel",
                               [{"field": "confirming_profile_id", "message": "not a replicate"}])
        alleles = confirming_profile.alleles
    else:
        from flask import current_app, has_app_context

        folder = current_app.config.get("PANEL_DIRECTORY") if has_app_context() else None
        try:
            alleles = normalise_alleles(resolve_panel(profile.panel, folder), alleles)
        except ProfileError as error:
            raise QualityError(422, str(error), error.problems) from None
    result = compare(profile.alleles, alleles)
    concordant = (not result.different and not result.dropout_compatible
                  and result.loci_compared >= screen_loci(_n_loci(profile)))
    confirmation = HitConfirmation(
        sample_id=profile.sample_id, profile_id=profile.id, method=method,
        confirming_profile_id=confirming_profile.id if confirming_profile else None,
        alleles=alleles, concordant=concordant, comparison=result.as_dict(), note=note,
        confirmed_by_id=user.id, confirmed_at=utcnow())
    session.add(confirmation)
    session.flush()
    logger.info("hit confirmation %s of profile %s (%s, %s) by user %s", confirmation.id,
                profile.id, method, "concordant" if concordant else "discordant", user.id)
    return confirmation


def is_confirmed(session: Session, barcode: str, panel: str | None) -> bool:
    """Whether the current (live) profile of sample ``barcode`` on ``panel`` has a concordant
    confirmation (a confirmation of a superseded or rejected version counts for nothing)."""
    return session.scalar(
        sa.select(HitConfirmation.id)
        .join(GenotypeProfile, GenotypeProfile.id == HitConfirmation.profile_id)
        .join(Sample, Sample.id == GenotypeProfile.sample_id)
        .where(Sample.barcode == barcode, GenotypeProfile.panel == panel,
               GenotypeProfile.superseded.is_(False), GenotypeProfile.state != "rejected",
               HitConfirmation.concordant.is_(True)).limit(1)) is not None


def _confirmation_needed(barcode: str) -> str:
    return f"record a concordant re-extraction or re-typing of {barcode}"


def unconfirmed_hits(session: Session, result: dict) -> list[str]:
    """Why an evidential report of ``result`` (a match request's results) cannot be issued.

    A same-animal hit to another seizure or source animal joins two samples; the lab states it
    as evidence only when **both** profiles were confirmed (a concordant re-extraction or
    re-typing of each sample's current profile on the panel): either side could be the one
    mixed up or contaminated, and a reported identification is only as good as the weaker of
    its two results. The other side is checked when its sample is in this LIMS (any agency's:
    barcodes are unique); for a hit to a profile the LIMS does not hold (another
    laboratory's) only the own side can be confirmed here; the other laboratory answers for
    its own."""
    panel = (result.get("panel") or {}).get("name")
    reasons = []
    for pair in result.get("pairs", []):
        if pair.get("relationship") != "same_animal" or pair.get("node1") == pair.get("node2"):
            continue
        barcode = pair["sample1"]
        other = pair.get("sample2")
        shown = other or "a sample of another agency"
        if not is_confirmed(session, barcode, panel):
            reasons.append(f"the same-animal hit of {barcode} to {shown} is not confirmed "
                           f"({_confirmation_needed(barcode)})")
        if other and session.scalar(sa.select(Sample.id).where(Sample.barcode == other)) \
                is not None and not is_confirmed(session, other, panel):
            reasons.append(f"the same-animal hit of {barcode} to {other} is not confirmed on "
                           f"the side of {other} ({_confirmation_needed(other)})")
    return list(dict.fromkeys(reasons))


# ----------------------------------------------------------------------------- consensus
@dataclass(frozen=True)
class ReplicateConsensus:
    """The consensus of one sample's replicate typings on one panel
    (:func:`matching.contamination.consensus`), with what went into it. ``genotype`` is
    ``None`` when fewer than two replicates exist (``reason`` says so)."""

    sample_id: int
    barcode: str
    panel: str
    replicates: list[dict]
    genotype: dict[str, list[int]] | None
    left_out: dict[str, str]
    reason: str | None
    rule: str = CONSENSUS_RULE

    @property
    def n_replicates(self) -> int:
        return len(self.replicates)


def descendants(session: Session, sample: Sample) -> list[Sample]:
    """The sample and every aliquot taken from it (aliquots of aliquots included)."""
    found, frontier = [sample], [sample.id]
    while frontier:
        children = session.scalars(sa.select(Sample).where(Sample.parent_id.in_(frontier))
                                   .order_by(Sample.id)).all()
        found += children
        frontier = [child.id for child in children]
    return found


def replicate_consensus(session: Session, sample: Sample,
                        panel: str | None = None) -> list[ReplicateConsensus]:
    """The consensus genotype of ``sample`` per panel (only ``panel`` when given), computed
    from its replicates when asked and not stored.

    The replicates are the live profiles (neither superseded nor rejected) of the sample and
    of its aliquots, and the re-typings recorded as hit confirmations of those profiles (each
    is a typing of its own). It is computed, not stored: it is a function of those rows, which
    the audit trail keeps, and a stored copy would go stale, unseen, whenever a replicate is
    corrected, rejected or added."""
    tubes = {tube.id: tube for tube in descendants(session, sample)}
    statement = _live(sa.select(GenotypeProfile).where(
        GenotypeProfile.sample_id.in_(list(tubes)))).order_by(GenotypeProfile.panel,
                                                             GenotypeProfile.id)
    if panel is not None:
        statement = statement.where(GenotypeProfile.panel == panel)
    by_panel: dict[str, list[dict]] = {}
    genotypes: dict[str, list[dict]] = {}
    for profile in session.scalars(statement):
        by_panel.setdefault(profile.panel, []).append({
            "kind": "profile", "profile_id": profile.id, "confirmation_id": None,
            "barcode": tubes[profile.sample_id].barcode, "state": profile.state})
        genotypes.setdefault(profile.panel, []).append(profile.alleles)
        for retyping in session.scalars(sa.select(HitConfirmation).where(
                HitConfirmation.profile_id == profile.id,
                HitConfirmation.confirming_profile_id.is_(None))
                .order_by(HitConfirmation.id)):
            by_panel[profile.panel].append({
                "kind": retyping.method, "profile_id": profile.id,
                "confirmation_id": retyping.id, "barcode": tubes[profile.sample_id].barcode,
                "state": "concordant" if retyping.concordant else "discordant"})
            genotypes[profile.panel].append(retyping.alleles)
    results = []
    for name, replicates in by_panel.items():
        if len(replicates) < 2:
            results.append(ReplicateConsensus(
                sample.id, sample.barcode, name, replicates, None, {},
                "one typing only: a consensus needs at least two replicates"))
            continue
        found = consensus(genotypes[name])
        results.append(ReplicateConsensus(sample.id, sample.barcode, name, replicates,
                                          found.genotype, found.left_out, None))
    return results


# ----------------------------------------------------------------------------- records
def proficiency_warning(session: Session, user: User, method: str,
                        today: dt.date | None = None) -> str | None:
    """The warning an analyst gets on signing when their latest proficiency test of
    ``method`` in the last 12 months failed, or there is none."""
    today = today or utcnow().date()
    latest = session.scalars(
        sa.select(QualityRecord).where(
            QualityRecord.kind == "proficiency", QualityRecord.analyst_id == user.id,
            QualityRecord.method == method,
            QualityRecord.performed_on > today - PROFICIENCY_VALIDITY)
        .order_by(QualityRecord.performed_on.desc(), QualityRecord.id.desc()).limit(1)).first()
    if latest is None:
        return (f"{user.full_name} has no proficiency test of {method} in the last 12 months")
    if latest.outcome != "passed":
        return (f"{user.full_name}'s latest proficiency test of {method} "
                f"({latest.performed_on.isoformat()}, {latest.title}) was failed")
    return None


def validation_of(session: Session, agency_id: int, method: str) -> QualityRecord | None:
    """The latest passed validation study of ``method`` (a panel name) in the agency."""
    return session.scalars(
        sa.select(QualityRecord).where(
            QualityRecord.kind == "validation", QualityRecord.agency_id == agency_id,
            QualityRecord.method == method, QualityRecord.outcome == "passed")
        .order_by(QualityRecord.performed_on.desc(), QualityRecord.id.desc()).limit(1)).first()


def report_section(session: Session, report) -> dict:
    """What an evidential report states of the quality system: the species tests of its
    subject's samples, the validation of its panel, the hit confirmations, and the proficiency
    warnings of its signers."""
    from lims.models import SpeciesTest
    from lims.quality.species_tests import species_finding

    result = report.match_request.result or {}
    panel = (result.get("panel") or {}).get("name")
    barcodes = [profile["barcode"] for profile in result.get("subject_profiles", [])]
    hit_samples = [pair.get("sample2") for pair in result.get("pairs", [])
                   if pair.get("relationship") == "same_animal"
                   and pair.get("node1") != pair.get("node2") and pair.get("sample2")]
    confirmed_samples = list(dict.fromkeys(barcodes + hit_samples))
    tests = session.execute(
        sa.select(SpeciesTest, Sample.barcode).join(Sample, Sample.id == SpeciesTest.sample_id)
        .where(Sample.barcode.in_(barcodes)).order_by(Sample.barcode, SpeciesTest.id)).all()
    confirmations = session.execute(
        sa.select(HitConfirmation, Sample.barcode).join(Sample,
                                                        Sample.id == HitConfirmation.sample_id)
        .where(Sample.barcode.in_(confirmed_samples), HitConfirmation.concordant.is_(True))
        .order_by(Sample.barcode, HitConfirmation.id)).all()
    drafter = session.get(User, report.created_by_id)
    validation = validation_of(session, drafter.agency_id, panel) if panel else None
    warnings = []
    for signature in report.signatures:
        signer = session.get(User, signature.user_id)
        warning = proficiency_warning(session, signer, panel) if panel else None
        if warning and warning not in warnings:
            warnings.append(warning)
    return {
        "species_tests": [{
            "barcode": barcode, "marker": test.marker, "finding": species_finding(test),
            "verdict": test.verdict, "best_species": test.best_species,
            "identity": test.identity, "reason": test.reason, "file": test.filename,
            "file_sha256": test.sha256, "reference_set": test.reference_set,
            "reference_set_version": test.reference_set_version,
            "reference_set_hash": test.reference_set_hash,
        } for test, barcode in tests],
        "validation": None if validation is None else {
            "method": validation.method, "title": validation.title,
            "performed_on": validation.performed_on.isoformat(),
            "outcome": validation.outcome, "sha256": validation.sha256},
        "hit_confirmations": [{
            "barcode": barcode, "method": confirmation.method,
            "loci_compared": confirmation.comparison["loci_compared"],
            "confirmed_at": confirmation.confirmed_at.strftime("%Y-%m-%d"),
        } for confirmation, barcode in confirmations],
        "proficiency_warnings": warnings,
    }
