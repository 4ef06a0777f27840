"""Genotype profiles: checking alleles against a panel, and the review workflow.

Workflow: a profile is entered (or imported) as ``pending`` by its analyst; a reviewer who is
not that analyst marks it ``reviewed``; it is then ``released`` (again not by its analyst),
and only released, current profiles are searched. A pending or reviewed profile can be
``rejected`` with a reason. A correction never edits a profile: it adds the next version
(``pending`` again, naming the one it corrects) and marks the old version superseded.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session, object_session

from dnatrack.panels import Panel, load_panel
from lims.database import utcnow
from lims.models import Extract, GenotypeProfile, Sample, User


class ProfileError(ValueError):
    """A profile operation that cannot be done; ``status`` is the HTTP status it maps to
    (403 separation of duties, 409 state conflict, 422 bad input) and ``problems`` lists
    ``{"field", "message"}`` entries."""

    def __init__(self, status: int, message: str, problems: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


def resolve_panel(name: str, panel_directory: str | os.PathLike | None = None) -> Panel:
    """The panel called ``name``: a JSON file in ``panel_directory`` if there is one, else a
    bundled panel. ``ValueError`` when there is no such panel."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"invalid panel name {name!r}")
    if panel_directory is not None:
        path = Path(panel_directory) / f"{name}.json"
        if path.is_file():
            return load_panel(path)
    return load_panel(name)


def normalise_alleles(panel: Panel, alleles: Mapping) -> dict[str, list[int]]:
    """Check ``{locus: [allele, allele]}`` against ``panel``; the typed loci, smaller allele
    first, in panel order.

    A locus given as ``[]`` or ``null`` is untyped; a single allele ``[152]`` is a homozygote.
    Raises :class:`ProfileError` (422) listing every problem by ``alleles.<locus>``.
    """
    problems = []
    typed: dict[str, list[int]] = {}
    for locus, pair in alleles.items():
        field = f"alleles.{locus}"
        if locus not in panel:
            problems.append(
                {"field": field, "message": f"unknown locus (not in panel {panel.name})"}
            )
            continue
        if pair is None or pair == []:
            continue
        if not isinstance(pair, list) or not 1 <= len(pair) <= 2:
            problems.append({"field": field, "message": "must be a list of one or two alleles"})
            continue
        if any(isinstance(a, bool) or not isinstance(a, int) for a in pair):
            problems.append({"field": field, "message": "alleles must be whole numbers"})
            continue
        bad = [panel.allele_problem(locus, allele) for allele in pair]
        bad = [problem for problem in bad if problem]
        if bad:
            problems.append({"field": field, "message": bad[0]})
            continue
        typed[locus] = sorted(pair * 2 if len(pair) == 1 else pair)
    if problems:
        raise ProfileError(422, "the alleles do not fit the panel", problems)
    if not typed:
        raise ProfileError(422, "no locus is typed", [{"field": "alleles", "message": "empty"}])
    return {locus: typed[locus] for locus in panel.locus_names if locus in typed}


def current_profile(session: Session, sample: Sample, panel: str) -> GenotypeProfile | None:
    """The sample's live profile on ``panel``: current (not superseded) and not rejected."""
    return session.execute(
        sa.select(GenotypeProfile).where(
            GenotypeProfile.sample_id == sample.id,
            GenotypeProfile.panel == panel,
            GenotypeProfile.superseded.is_(False),
            GenotypeProfile.state != "rejected",
        )
    ).scalar_one_or_none()


def _refuse_second_live_profile(
    session: Session, sample: Sample, panel: str, replacing: GenotypeProfile | None = None
) -> None:
    """409 when the sample has a live profile on ``panel`` other than ``replacing``. The
    database backs this check with the unique index ``uq_genotype_profile_live``; checking
    first gives the reason and the profile to correct instead."""
    live = current_profile(session, sample, panel)
    if live is not None and live is not replacing:
        raise ProfileError(
            409,
            f"sample {sample.barcode} already has profile {live.id} on panel {panel}; "
            "correct that profile instead",
            [{"field": "sample_id", "message": "duplicate profile"}],
        )


def create_profile(
    session: Session,
    *,
    sample: Sample,
    panel: Panel,
    alleles: Mapping,
    analyst: User,
    extract: Extract | None = None,
    run: str | None = None,
    import_id: int | None = None,
) -> GenotypeProfile:
    """A new pending profile (added to the session, not committed).

    Raises :class:`ProfileError`: 422 for alleles that do not fit the panel or an extract of
    another sample, 409 when the sample already has a live profile on the panel (correct that
    one instead).
    """
    typed = normalise_alleles(panel, alleles)
    if extract is not None and extract.sample_id != sample.id:
        raise ProfileError(
            422,
            "the extract is not from this sample",
            [{"field": "extract_id", "message": f"extract {extract.barcode} is of another sample"}],
        )
    _refuse_second_live_profile(session, sample, panel.name)
    profile = GenotypeProfile(
        sample_id=sample.id,
        extract_id=extract.id if extract is not None else None,
        panel=panel.name,
        alleles=typed,
        n_loci_typed=len(typed),
        run=run,
        import_id=import_id,
        state="pending",
        analyst_id=analyst.id,
        version=1,
        superseded=False,
    )
    session.add(profile)
    _screen(session, profile)
    return profile


def _screen(session: Session, profile: GenotypeProfile) -> None:
    """Screen a new profile for contamination and duplicates before review
    (:func:`lims.quality.checks.screen_profile`)."""
    from lims.quality.checks import screen_profile

    session.flush()
    screen_profile(session, profile)


def _not_the_analyst(profile: GenotypeProfile, user: User, action: str) -> None:
    if profile.analyst_id == user.id:
        raise ProfileError(403, f"the analyst of a profile cannot {action} it")


def _require_state(profile: GenotypeProfile, states: tuple[str, ...], action: str) -> None:
    if profile.superseded:
        raise ProfileError(409, f"profile {profile.id} was superseded by a correction")
    if profile.state not in states:
        raise ProfileError(
            409, f"cannot {action} a {profile.state} profile (only {' or '.join(states)})"
        )


def review_profile(profile: GenotypeProfile, reviewer: User) -> None:
    """pending → reviewed, by someone other than the analyst."""
    _require_state(profile, ("pending",), "review")
    _not_the_analyst(profile, reviewer, "review")
    from lims.quality.checks import review_blockers

    blockers = review_blockers(object_session(profile), profile)
    if blockers:
        raise ProfileError(
            409,
            f"profile {profile.id} cannot be reviewed: {'; '.join(blockers)}",
            [{"field": "state", "message": reason} for reason in blockers],
        )
    profile.state = "reviewed"
    profile.reviewer_id = reviewer.id
    profile.reviewed_at = utcnow()


def release_profile(profile: GenotypeProfile, releaser: User) -> None:
    """reviewed → released (searchable), by someone other than the analyst; queues the
    network search of the newly released profiles of its panel (:mod:`lims.network`)."""
    from lims.network import queue_search

    _require_state(profile, ("reviewed",), "release")
    _not_the_analyst(profile, releaser, "release")
    profile.state = "released"
    profile.released_by_id = releaser.id
    profile.released_at = utcnow()
    queue_search(object_session(profile), profile.panel)


def reject_profile(profile: GenotypeProfile, reviewer: User, reason: str) -> None:
    """pending or reviewed → rejected, with the reason, by someone other than the analyst."""
    if not reason or not reason.strip():
        raise ProfileError(
            422, "a rejection needs a reason", [{"field": "reason", "message": "empty"}]
        )
    _require_state(profile, ("pending", "reviewed"), "reject")
    _not_the_analyst(profile, reviewer, "reject")
    profile.state = "rejected"
    profile.rejection_reason = reason.strip()
    if profile.reviewer_id is None:
        profile.reviewer_id = reviewer.id
        profile.reviewed_at = utcnow()


def correct_profile(
    session: Session,
    profile: GenotypeProfile,
    *,
    panel: Panel,
    alleles: Mapping,
    analyst: User,
    reason: str,
) -> GenotypeProfile:
    """The next version of ``profile`` with corrected alleles (pending); the old one is kept
    unchanged apart from being marked superseded."""
    if not reason or not reason.strip():
        raise ProfileError(
            422, "a correction needs a reason", [{"field": "reason", "message": "empty"}]
        )
    if profile.superseded:
        raise ProfileError(409, f"profile {profile.id} was already corrected; correct the newest")
    # A rejected version corrected after a newer profile was entered would be a second one.
    _refuse_second_live_profile(session, profile.sample, profile.panel, replacing=profile)
    typed = normalise_alleles(panel, alleles)
    profile.superseded = True
    if profile.state == "released":  # its links leave the network at the next search
        from lims.network import queue_search

        queue_search(session, profile.panel)
    corrected = GenotypeProfile(
        sample_id=profile.sample_id,
        extract_id=profile.extract_id,
        panel=profile.panel,
        alleles=typed,
        n_loci_typed=len(typed),
        run=profile.run,
        import_id=profile.import_id,
        state="pending",
        analyst_id=analyst.id,
        version=profile.version + 1,
        previous_version_id=profile.id,
        correction_reason=reason.strip(),
        superseded=False,
    )
    session.add(corrected)
    _screen(session, corrected)
    return corrected
