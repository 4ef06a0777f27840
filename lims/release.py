"""Release to matching: the released profiles of a panel as one engine-ready GenotypeTable."""

from __future__ import annotations

from collections import Counter

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel
from lims.access import visible
from lims.models import Agency, GenotypeProfile, Item, Sample, Seizure, SourceAnimal, User


def _origins(session: Session, sample_ids: set[int]) -> dict[int, tuple[int | None, int | None]]:
    """``sample id -> (item id, source animal id)`` of the sample at the top of each lineage.

    Walks up parent samples one generation per query, so aliquots of aliquots resolve too.
    """
    parent_of: dict[int, int] = {}
    origin_of: dict[int, tuple[int | None, int | None]] = {}
    pending = set(sample_ids)
    while pending:
        rows = session.execute(
            sa.select(Sample.id, Sample.parent_id, Sample.item_id, Sample.source_animal_id).where(
                Sample.id.in_(pending)
            )
        ).all()
        pending = set()
        for sample_id, parent_id, item_id, source_animal_id in rows:
            if parent_id is None:
                origin_of[sample_id] = (item_id, source_animal_id)
            else:
                parent_of[sample_id] = parent_id
                if parent_id not in origin_of and parent_id not in parent_of:
                    pending.add(parent_id)

    def root(sample_id: int) -> tuple[int | None, int | None]:
        while sample_id in parent_of:
            sample_id = parent_of[sample_id]
        return origin_of[sample_id]

    return {sample_id: root(sample_id) for sample_id in sample_ids}


def seizure_labels(seizures: dict[int, tuple[str, str]]) -> dict[int, str]:
    """Distinct labels of seizures: ``seizure id -> label`` from ``seizure id -> (reference,
    holding agency's code)``.

    References are unique per agency only, so the bare reference names a seizure only while no
    other seizure among ``seizures`` has it; the others are labelled ``"<reference> (<code>)"``
    (an agency code is unique, so that pair names one seizure). A bare reference that happens
    to read like another seizure's qualified label is qualified in turn.

    Examples
    --------
    >>> seizure_labels({1: ("KE-001", "KWS"), 2: ("KE-001", "UWA"), 3: ("TZ-7", "UWA")})
    {1: 'KE-001 (KWS)', 2: 'KE-001 (UWA)', 3: 'TZ-7'}
    """
    labels = {seizure_id: reference for seizure_id, (reference, _) in seizures.items()}
    while True:
        uses = Counter(labels.values())
        clashing = [seizure_id for seizure_id, label in labels.items()
                    if uses[label] > 1 and label == seizures[seizure_id][0]]
        if not clashing:
            return labels
        for seizure_id in clashing:
            reference, code = seizures[seizure_id]
            labels[seizure_id] = f"{reference} ({code})"


def released_genotypes(
    session: Session, panel: Panel, *, user: User | None = None
) -> GenotypeTable:
    """Every current released profile typed on ``panel``, ready for the matching engine.

    Parameters
    ----------
    session
        A database session.
    panel
        The panel; its loci, in its order, are the table's loci.
    user
        When given, only profiles this user may see (need-to-know); otherwise all of them,
        as the engine needs to find links across agencies.

    Returns
    -------
    GenotypeTable
        ``profile_ids`` are sample barcodes; ``group`` labels the seizure of the item the
        sample comes from (``""`` for reference animals and carcasses): its reference, with
        the holding agency's code where two seizures of the table share the reference
        (:func:`seizure_labels`), so one group is always one seizure; ``population``
        and ``lat``/``lon`` are the source animal's where known (``""``/NaN otherwise), and
        absent when no profile has them.
    """
    statement = (
        sa.select(GenotypeProfile.sample_id, GenotypeProfile.alleles, Sample.barcode)
        .join(Sample, Sample.id == GenotypeProfile.sample_id)
        .where(
            GenotypeProfile.panel == panel.name,
            GenotypeProfile.state == "released",
            GenotypeProfile.superseded.is_(False),
        )
        .order_by(GenotypeProfile.id)
    )
    if user is not None:
        statement = statement.where(visible(GenotypeProfile, user))
    rows = session.execute(statement).all()
    loci = panel.locus_names
    alleles = np.full((len(rows), len(loci), 2), MISSING, dtype=np.int16)
    column = {locus: j for j, locus in enumerate(loci)}
    for i, row in enumerate(rows):
        for locus, pair in row.alleles.items():
            alleles[i, column[locus]] = pair

    origins = _origins(session, {row.sample_id for row in rows})
    item_ids = {item for item, _ in origins.values() if item is not None}
    animal_ids = {animal for _, animal in origins.values() if animal is not None}
    item_rows = session.execute(
        sa.select(Item.id, Seizure.id, Seizure.reference, Agency.code)
        .join(Seizure, Seizure.id == Item.seizure_id)
        .join(Agency, Agency.id == Seizure.agency_id)
        .where(Item.id.in_(item_ids))
    ).all()
    labels = seizure_labels(
        {seizure_id: (reference, code) for _, seizure_id, reference, code in item_rows}
    )
    seizure_of_item = {item_id: labels[seizure_id] for item_id, seizure_id, _, _ in item_rows}
    animals = {
        animal.id: animal
        for animal in session.scalars(
            sa.select(SourceAnimal).where(SourceAnimal.id.in_(animal_ids))
        )
    }
    group, population, lat, lon = [], [], [], []
    for row in rows:
        item_id, animal_id = origins[row.sample_id]
        animal = animals.get(animal_id)
        group.append(seizure_of_item.get(item_id, ""))
        population.append((animal.population or "") if animal else "")
        lat.append(animal.latitude if animal and animal.latitude is not None else np.nan)
        lon.append(animal.longitude if animal and animal.longitude is not None else np.nan)
    has_coordinates = any(not np.isnan(value) for value in lat)
    return GenotypeTable(
        alleles,
        [row.barcode for row in rows],
        loci,
        group=group,
        population=population if any(population) else None,
        lat=lat if has_coordinates else None,
        lon=lon if has_coordinates else None,
    )
