"""Release to matching: the released profiles of a panel as one engine-ready GenotypeTable."""

from __future__ import annotations

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from dnatrack.genotypes import MISSING, GenotypeTable
from dnatrack.panels import Panel
from lims.access import visible
from lims.models import GenotypeProfile, Item, Sample, Seizure, SourceAnimal, User


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
        ``profile_ids`` are sample barcodes; ``group`` is the seizure reference of the item
        the sample comes from (``""`` for reference animals and carcasses); ``population``
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
    seizure_of_item = dict(
        session.execute(
            sa.select(Item.id, Seizure.reference)
            .join(Seizure, Seizure.id == Item.seizure_id)
            .where(Item.id.in_(item_ids))
        ).all()
    )
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
