"""Networks grow with the database: each release of profiles queues a search of the newly
released profiles against every released profile of their panel (new-vs-all), run by the job
workers (:mod:`lims.jobs`); the pairs it reports are kept (``profile_link``) and the links of
the seizures they join are folded into ``seizure_link``, so the network page only reads.

The search is the analysis pipeline's (:func:`matching.analysis.analyse`, identity and kinship),
with the reference sets of the panel (``NETWORK_REFERENCE_SETS``: panel name → bundled set
names; by default every bundled set typed on the panel) and the settings
``NETWORK_SEARCH_PARAMETERS`` (a match request's ``parameters``). Its cutoffs are calibrated
once for ``NETWORK_PAIRS_COMPARED`` pairs (:func:`matching.analysis.fixed_scale_calibration`,
kept in the instance folder as the sets' standing calibration), never for the size of a
batch, so a pair is reported or not whatever batch its profiles were released in:
maintaining the links batch by batch gives what one search of all profiles gives
(:func:`rebuild_network`; ``tests/lims/test_network.py``). One caveat, of the pipeline's
rule for several reference sets: two profiles assigned to *different* sets and released in
one batch are reported only when both sets' searches report them, while released in two
batches they are searched with the later one's set only.

A seizure pair's ``seizure_link`` row from a search counts every current released pair
between the two seizures (a correction queues a search, which drops the superseded profile's
pairs and redoes its seizures' links), and replaces a row from an older search or match
request (the latest evidence wins, as in :func:`lims.intelligence.fold_links`). These rows
are derived data, written with Core statements outside the audit trail like the job columns
of a request: the audit trail covers what they are derived from (the released profiles, their
corrections, the queued searches), and :func:`rebuild_network` derives them again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from flask import Flask
from sqlalchemy.orm import Session

from dnatrack.panels import Panel
from dnatrack.reference import ReferenceSet, load_reference_set
from lims.database import utcnow
from lims.genotyping import resolve_panel
from lims.intelligence import RELATIONSHIPS
from lims.models import (
    GenotypeProfile,
    LinkSearch,
    ProfileLink,
    Sample,
    SearchedProfile,
    SeizureLink,
)
from lims.release import released_genotypes
from matching.analysis import AnalysisSettings, Progress, analyse, fixed_scale_calibration
from matching.analysis.references import shared_loci
from matching.calibration import CALIBRATION_FILE
from matching.links import link_seizures
from reference_data import list_reference_sets

logger = logging.getLogger(__name__)

#: Pairs the network search's cutoffs are calibrated for, unless ``NETWORK_PAIRS_COMPARED``
#: says otherwise: a database of about 1,400 profiles of a panel compared among themselves.
#: An installation sets it to the pairs its database will hold, ``n (n - 1) / 2``: the
#: higher it is, the fewer false links and the less power for distant relatives.
DEFAULT_PAIRS_COMPARED = 1e6
_PROFILE_LINK = ProfileLink.__table__
_SEIZURE_LINK = SeizureLink.__table__
_SEARCHED = SearchedProfile.__table__
#: Calibrations made in this process, by the key their folder is named with.
_CALIBRATIONS: dict[str, object] = {}


# ----------------------------------------------------------------------------- queueing
def queue_search(session: Session, panel: str) -> LinkSearch:
    """The queued network search of ``panel``: the one already waiting, or a new one (added
    to ``session``, committed with the release that asked for it)."""
    waiting = session.scalar(
        sa.select(LinkSearch).where(LinkSearch.panel == panel, LinkSearch.status == "queued")
        .order_by(LinkSearch.id).limit(1)
    )
    if waiting is not None:
        return waiting
    search = LinkSearch(panel=panel, status="queued", progress=0.0)
    session.add(search)
    logger.info("network search of panel %s queued", panel)
    return search


def _unsearched(panel: str) -> sa.Select:
    """Current released profiles of ``panel`` no network search has covered."""
    return sa.select(GenotypeProfile.id).where(
        GenotypeProfile.panel == panel,
        GenotypeProfile.state == "released",
        GenotypeProfile.superseded.is_(False),
        GenotypeProfile.id.not_in(sa.select(_SEARCHED.c.profile_id)),
    )


# ----------------------------------------------------------------------------- configuration
def network_references(panel: Panel, config) -> list[ReferenceSet]:
    """The reference sets the network search of ``panel`` uses (``NETWORK_REFERENCE_SETS``)."""
    chosen = (config.get("NETWORK_REFERENCE_SETS") or {}).get(panel.name)
    if chosen is None:
        references = [load_reference_set(name) for name in list_reference_sets()]
        references = [reference for reference in references if reference.panel == panel.name]
    else:
        references = [load_reference_set(name) for name in chosen]
        wrong = [r.name for r in references if r.panel != panel.name]
        if wrong:
            raise ValueError(f"NETWORK_REFERENCE_SETS: {wrong[0]} is not typed on panel "
                             f"{panel.name}")
    if not references:
        raise ValueError(f"no bundled reference set is typed on panel {panel.name}: the "
                         "network search has no allele frequencies (NETWORK_REFERENCE_SETS)")
    return references


def network_settings(config) -> AnalysisSettings:
    return AnalysisSettings.from_parameters(config.get("NETWORK_SEARCH_PARAMETERS") or {})


def calibration_folders(app: Flask, references: Iterable[ReferenceSet], loci, settings,
                        pairs: float) -> dict[str, Path]:
    """``reference name -> folder`` holding the network search's standing calibration for it,
    made on first use (:func:`matching.analysis.fixed_scale_calibration`); the folder's name
    carries what the calibration depends on, so changed settings get a new one."""
    root = Path(app.instance_path) / "network_calibration"
    folders = {}
    for reference in references:
        key = hashlib.sha256(json.dumps(
            [reference.content_hash, list(loci), settings.as_dict(), pairs], sort_keys=True,
            default=str).encode()).hexdigest()[:16]
        folder = root / f"{reference.name}-{key}"
        if not (folder / CALIBRATION_FILE).is_file():
            folder.mkdir(parents=True, exist_ok=True)
            calibration = _CALIBRATIONS.get(key)
            if calibration is None:
                calibration = fixed_scale_calibration(reference, loci, settings, pairs)
                _CALIBRATIONS[key] = calibration
            # Written whole, then renamed: a concurrent search never reads half a file.
            handle, temporary = tempfile.mkstemp(dir=folder, suffix=".json")
            os.close(handle)
            calibration.save(temporary)
            os.replace(temporary, folder / CALIBRATION_FILE)
            logger.info("network search: cutoffs for %s calibrated for %.0f pairs",
                        reference.name, pairs)
        folders[reference.name] = folder
    return folders


# ----------------------------------------------------------------------------- the search
def _node_id(node: str) -> int | None:
    kind, _, record = node.partition(":")
    return int(record) if kind == "seizure" else None


def run_search(session: Session, search_id: int, app: Flask,
               progress: Progress | None = None) -> dict:
    """Search the panel's released profiles not yet searched against all its released
    profiles, keep the pairs and fold the seizure links (not committed: the caller commits
    with the search's status). Returns ``new_profiles``, ``pairs_found``, ``links_folded``."""
    from lims.reports.analysis import Describer

    search = session.get(LinkSearch, search_id)
    panel = resolve_panel(search.panel, app.config.get("PANEL_DIRECTORY"))
    references = network_references(panel, app.config)
    settings = network_settings(app.config)
    pairs_scale = float(app.config.get("NETWORK_PAIRS_COMPARED") or DEFAULT_PAIRS_COMPARED)
    loci = shared_loci(references, panel)
    new_ids = set(session.scalars(_unsearched(panel.name)))
    counts = {"new_profiles": len(new_ids), "pairs_found": 0, "links_folded": 0}
    now = utcnow()
    # Pairs of profiles superseded by a correction leave; their seizures' links are redone.
    superseded = sa.select(GenotypeProfile.id).where(GenotypeProfile.panel == panel.name,
                                                     GenotypeProfile.superseded.is_(True))
    gone = (_PROFILE_LINK.c.profile1_id.in_(superseded)
            | _PROFILE_LINK.c.profile2_id.in_(superseded))
    stale = {tuple(sorted(pair)) for pair in session.execute(
        sa.select(_PROFILE_LINK.c.seizure1_id, _PROFILE_LINK.c.seizure2_id).where(
            gone, _PROFILE_LINK.c.seizure1_id.is_not(None),
            _PROFILE_LINK.c.seizure2_id.is_not(None),
            _PROFILE_LINK.c.seizure1_id != _PROFILE_LINK.c.seizure2_id))}
    if stale:
        session.execute(_PROFILE_LINK.delete().where(gone))
    if not new_ids:
        counts["links_folded"] = fold_profile_links(session, stale, search_id, now)
        return counts
    id_of = dict(session.execute(
        sa.select(Sample.barcode, GenotypeProfile.id)
        .join(Sample, Sample.id == GenotypeProfile.sample_id)
        .where(GenotypeProfile.panel == panel.name, GenotypeProfile.state == "released",
               GenotypeProfile.superseded.is_(False))
    ).all())
    released = released_genotypes(session, panel).select_loci(loci)
    held = len(released) * (len(released) - 1) / 2
    if held > pairs_scale:
        logger.warning("network search of %s: the database holds %.0f pairs of released "
                       "profiles, more than the %.0f its cutoffs are calibrated for "
                       "(NETWORK_PAIRS_COMPARED); more false links than one may pass",
                       panel.name, held, pairs_scale)
    is_new = np.array([id_of[str(barcode)] in new_ids for barcode in released.profile_ids],
                      dtype=bool)
    folders = calibration_folders(app, references, loci, settings, pairs_scale)
    result = analyse(
        released.take(np.flatnonzero(is_new)), released.take(np.flatnonzero(~is_new)),
        references, analyses=["identity", "kinship"], settings=settings, panel=panel,
        describe=Describer(session),
        reference_folder=lambda reference: folders[reference.name], progress=progress,
    )
    rows = {}
    for pair in result.pairs:
        ends = sorted([(id_of[pair.sample1], _node_id(pair.node1)),
                       (id_of[pair.sample2], _node_id(pair.node2))])
        rows[(ends[0][0], ends[1][0])] = {
            "profile1_id": ends[0][0], "profile2_id": ends[1][0],
            "seizure1_id": ends[0][1], "seizure2_id": ends[1][1],
            "relationship": pair.relationship, "log10_lr": pair.log10_lr,
            "link_search_id": search_id,
        }
    if rows:  # a pair found again (its profiles were in two searches) is replaced
        session.execute(_PROFILE_LINK.delete().where(
            sa.tuple_(_PROFILE_LINK.c.profile1_id, _PROFILE_LINK.c.profile2_id).in_(
                list(rows))))
        session.execute(_PROFILE_LINK.insert(), list(rows.values()))
    session.execute(_SEARCHED.insert(), [
        {"profile_id": profile_id, "link_search_id": search_id} for profile_id in new_ids])
    touched = {tuple(sorted((row["seizure1_id"], row["seizure2_id"])))
               for row in rows.values()
               if None not in (row["seizure1_id"], row["seizure2_id"])
               and row["seizure1_id"] != row["seizure2_id"]}
    counts["pairs_found"] = len(rows)
    counts["links_folded"] = fold_profile_links(session, touched | stale, search_id, now)
    # Profiles released while this search ran get a search of their own.
    if session.scalar(sa.select(sa.func.count()).select_from(
            _unsearched(panel.name).subquery())):
        queue_search(session, panel.name)
    logger.info("link search %s: %d new profiles on %s, %d pairs, %d seizure links folded",
                search_id, counts["new_profiles"], panel.name, counts["pairs_found"],
                counts["links_folded"])
    return counts


def fold_profile_links(session: Session, seizure_pairs: Iterable[tuple[int, int]],
                       search_id: int, found_at: dt.datetime) -> int:
    """Write each seizure pair's link from every current released profile pair between the
    two seizures (:func:`matching.links.link_seizures`), replacing an older row; the rows
    written."""
    seizure_pairs = sorted(set(seizure_pairs))
    if not seizure_pairs:
        return 0
    current = sa.select(GenotypeProfile.id).where(
        GenotypeProfile.state == "released", GenotypeProfile.superseded.is_(False))
    wanted = set(seizure_pairs)
    seizures = {s for pair in seizure_pairs for s in pair}
    pairs, seizure_of = [], {}
    for row in session.execute(sa.select(_PROFILE_LINK).where(
            _PROFILE_LINK.c.seizure1_id.in_(seizures), _PROFILE_LINK.c.seizure2_id.in_(seizures),
            _PROFILE_LINK.c.profile1_id.in_(current), _PROFILE_LINK.c.profile2_id.in_(current))):
        key = tuple(sorted((row.seizure1_id, row.seizure2_id)))
        if key not in wanted:
            continue
        first, second = str(row.profile1_id), str(row.profile2_id)
        seizure_of[first], seizure_of[second] = str(row.seizure1_id), str(row.seizure2_id)
        pairs.append({"sample1": first, "sample2": second, "relationship": row.relationship,
                      "log10_lr": row.log10_lr})
    links = {tuple(sorted((int(link.seizure1), int(link.seizure2)))): link
             for link in link_seizures(pairs, seizure_of).links}
    written = 0
    for pair in seizure_pairs:
        link = links.get(pair)
        later = _SEIZURE_LINK.c.found_at <= found_at
        where = (_SEIZURE_LINK.c.seizure1_id == pair[0], _SEIZURE_LINK.c.seizure2_id == pair[1])
        if link is None:  # its pairs were superseded: the search no longer links them
            written += session.execute(_SEIZURE_LINK.delete().where(
                *where, _SEIZURE_LINK.c.match_request_id.is_(None), later)).rowcount
            continue
        counted = link.relationships
        values = {r: counted.get(r, 0) for r in RELATIONSHIPS}
        values.update(best_log10_lr=link.max_log10_lr, match_request_id=None,
                      link_search_id=search_id, found_at=found_at)
        updated = session.execute(_SEIZURE_LINK.update().where(*where, later)
                                  .values(**values)).rowcount
        if not updated and not session.scalar(sa.select(sa.func.count()).select_from(
                _SEIZURE_LINK).where(*where)):
            session.execute(_SEIZURE_LINK.insert().values(
                seizure1_id=pair[0], seizure2_id=pair[1], **values))
            updated = 1
        written += updated
    return written


def rebuild_network(session: Session, app: Flask) -> dict[str, dict]:
    """A full rerun: forget every network search's pairs and links and search all released
    profiles of each panel at once (committed). Returns each panel's counts."""
    session.execute(_SEIZURE_LINK.delete().where(_SEIZURE_LINK.c.match_request_id.is_(None)))
    session.execute(_PROFILE_LINK.delete())
    session.execute(_SEARCHED.delete())
    panels = session.scalars(sa.select(GenotypeProfile.panel).where(
        GenotypeProfile.state == "released").distinct().order_by(GenotypeProfile.panel)).all()
    outcome = {}
    for panel in panels:
        search = LinkSearch(panel=panel, status="running", progress=0.0, attempts=1,
                            started_at=utcnow())
        session.add(search)
        session.flush()
        counts = run_search(session, search.id, app)
        search.status, search.progress, search.finished_at = "done", 1.0, utcnow()
        search.new_profiles = counts["new_profiles"]
        search.pairs_found, search.links_folded = counts["pairs_found"], counts["links_folded"]
        outcome[panel] = counts
    session.commit()
    return outcome
