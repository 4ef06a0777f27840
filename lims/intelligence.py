"""Seizure intelligence in the LIMS: which coded seizures a user may count, the AITR and
ETIS-style tables of them, and the all-or-nothing import of an AITR table.

Need-to-know is applied here, once, for every figure and download: a seizure counts only when
the user may read its case (:func:`lims.access.visible`). Statistics over the rows are
computed in :mod:`matching.intelligence`; this module only loads and shapes the data.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
from collections import defaultdict
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lims import aitr
from lims.access import visible
from lims.models import MatchRequest, Seizure, SeizureLink, SeizureOrigin, SeizureRecord, User
from lims.trade_records import check_record, record_values, save_record
from lims.vocabularies import Vocabularies
from matching.intelligence import SeizureFacts, data_statement

logger = logging.getLogger(__name__)


def visible_seizures(
    session: Session,
    user: User,
    *,
    year: int | None = None,
    agency_id: int | None = None,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    coded_only: bool = False,
) -> list[tuple[Seizure, SeizureRecord | None]]:
    """The seizures ``user`` may read, with their coded records, ordered by date and id."""
    statement = (
        sa.select(Seizure, SeizureRecord)
        .outerjoin(SeizureRecord, SeizureRecord.seizure_id == Seizure.id)
        .where(visible(Seizure, user))
    )
    if coded_only:
        statement = statement.where(SeizureRecord.seizure_id.is_not(None))
    if year is not None:
        statement = statement.where(
            Seizure.seized_on >= dt.date(year, 1, 1), Seizure.seized_on <= dt.date(year, 12, 31)
        )
    if agency_id is not None:
        statement = statement.where(Seizure.agency_id == agency_id)
    if date_from is not None:
        statement = statement.where(Seizure.seized_on >= date_from)
    if date_to is not None:
        statement = statement.where(Seizure.seized_on <= date_to)
    statement = statement.order_by(Seizure.seized_on.is_(None), Seizure.seized_on, Seizure.id)
    return [tuple(row) for row in session.execute(statement)]


def _seizure_fields(seizure: Seizure) -> dict:
    return {"reference": seizure.reference, "seized_on": seizure.seized_on,
            "place": seizure.place}


def aitr_rows(session: Session, user: User, *, year: int | None, agency_id: int | None):
    """The AITR table rows of the coded seizures ``user`` may read."""
    rows = []
    for seizure, record in visible_seizures(
        session, user, year=year, agency_id=agency_id, coded_only=True
    ):
        rows += aitr.record_rows(_seizure_fields(seizure), record_values(record))
    return rows


def etis_rows(session: Session, user: User, *, year: int | None, agency_id: int | None):
    """One ETIS-style row with its trade chain per coded seizure ``user`` may read."""
    return [
        aitr.etis_row(_seizure_fields(seizure), record_values(record), record.quantity_kg,
                      record.pieces)
        for seizure, record in visible_seizures(
            session, user, year=year, agency_id=agency_id, coded_only=True
        )
    ]


def _total(species: list | None, key: str):
    values = [entry[key] for entry in species or () if entry.get(key) is not None]
    return sum(values) if values else None


def seizure_facts(
    session: Session,
    user: User,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
) -> list[SeizureFacts]:
    """The coded seizures ``user`` may read, as the plain records the statistics take (read
    column by column: these figures count every visible seizure)."""
    record = SeizureRecord
    statement = (
        sa.select(Seizure.id, Seizure.seized_on, record.discovery_country, record.commodity,
                  record.species, record.origins, record.transits, record.export_country,
                  record.destination_country)
        .join(record, record.seizure_id == Seizure.id)
        .where(visible(Seizure, user))
        .order_by(Seizure.id)
    )
    if date_from is not None:
        statement = statement.where(Seizure.seized_on >= date_from)
    if date_to is not None:
        statement = statement.where(Seizure.seized_on <= date_to)
    facts = []
    for row in session.execute(statement):
        chain = {entry["country"] for entry in row.origins or ()}
        chain |= {entry["country"] for entry in row.transits or ()}
        chain |= {row.export_country, row.destination_country}
        facts.append(SeizureFacts(
            seizure_id=row.id, seized_on=row.seized_on, discovery_country=row.discovery_country,
            commodity=row.commodity, quantity_kg=_total(row.species, "quantity_kg"),
            chain_countries=tuple(sorted(chain - {None})),
        ))
    return facts


def import_aitr(
    session: Session, user: User, content: bytes, filename: str, agency_id: int
) -> tuple[int, list[dict]]:
    """Code the seizures named in an AITR table: ``(records saved, problems)``.

    Rows are grouped by seizure reference; a reference names a seizure of ``agency_id`` that
    ``user`` may change. Every problem is listed as ``{"row", "column", "message"}`` and, if
    there is any, nothing is saved (the caller commits only on success).
    """
    try:
        table = aitr.read_table(content, filename)
    except aitr.TableError as error:
        return 0, [{"row": None, "column": None, "message": str(error)}]
    problems: list[dict] = []

    def problem(row, column, message):
        problems.append({"row": row, "column": column, "message": message})

    if not table:
        problem(None, None, "the table has no rows")
    groups: dict[str, list[tuple[int, dict]]] = defaultdict(list)
    for number, row in table:
        if row[aitr.REFERENCE] is None:
            problem(number, aitr.REFERENCE, "is required")
            continue
        groups[str(row[aitr.REFERENCE])].append((number, row))
    writable = {
        seizure.reference: seizure
        for seizure in session.scalars(
            sa.select(Seizure).where(
                Seizure.agency_id == agency_id,
                Seizure.reference.in_(list(groups)),
                visible(Seizure, user, for_writing=True),
            )
        )
    }
    vocabularies = Vocabularies(session)
    checked = []
    for reference, rows in groups.items():
        first_number, first = rows[0]
        seizure = writable.get(reference)
        if seizure is None:
            for number, _ in rows:
                problem(number, aitr.REFERENCE,
                        f"{reference!r} names no seizure of this agency that you may change")
        data, cell_problems = aitr.seizure_values(first)
        for column, message in cell_problems:
            problem(first_number, column, message)
        for number, row in rows[1:]:
            for column in aitr.SEIZURE_COLUMNS:
                if row[column] != first[column]:
                    problem(number, column, f"differs from row {first_number} of this seizure")
        species_rows = []
        for number, row in rows:
            try:
                day = aitr.row_date(row)
            except ValueError as error:
                problem(number, aitr.DATE, str(error))
            else:
                if seizure is not None and day is not None and day != seizure.seized_on:
                    problem(number, aitr.DATE, f"{day.isoformat()} is not the seizure's date "
                            f"({seizure.seized_on.isoformat() if seizure.seized_on else 'none'})")
            entry = aitr.species_entry(row)
            if entry is not None:
                species_rows.append(number)
                data.setdefault("species", []).append(entry)
        existing = session.get(SeizureRecord, seizure.id) if seizure is not None else None
        values, record_problems = check_record(data, vocabularies, existing)
        for found in record_problems:
            number, column = _locate(found["field"], first_number, species_rows)
            problem(number, column, found["message"])
        if seizure is not None:
            checked.append((seizure, values))
    if problems:
        logger.info("AITR import %s by user %s refused: %d problems", filename, user.id,
                    len(problems))
        return 0, problems
    for seizure, values in checked:
        save_record(seizure, values, user.id, session)
    logger.info("AITR import %s by user %s coded %d seizures", filename, user.id, len(checked))
    return len(checked), []


def _locate(field: str, first_row: int, species_rows: list[int]) -> tuple[int, str]:
    """The table row and column of a record problem's ``field`` (``species[2].pieces``)."""
    head, _, rest = field.partition("[")
    if head == "species" and rest:
        index = int(rest.split("]")[0])
        sub = rest.split("].", 1)[1] if "]." in rest else "name"
        return species_rows[index], aitr.FIELD_COLUMNS[f"species.{sub}"]
    return first_row, aitr.FIELD_COLUMNS.get(head, head)


# --------------------------------------------------------------------------- the network
#: Relationships from the strongest (as stored results label them) to the weakest.
RELATIONSHIPS = ("same_animal", "parent_offspring", "full_sibling", "half_sibling")
_RELATIONSHIP_OF_LABEL = {
    "same animal": "same_animal",
    "parent–offspring": "parent_offspring",
    "full siblings": "full_sibling",
    "half siblings": "half_sibling",
}


@dataclass(frozen=True)
class StoredLink:
    """A link between two seizures found in a stored match result."""

    seizure1: int
    seizure2: int
    n_pairs: int
    relationships: dict[str, int]
    best_log10_lr: float | None


def stored_links(result: dict) -> list[StoredLink]:
    """The seizure-to-seizure links of one stored match result (links to source animals or
    to records the requester could not see are left out).

    This is the one place that reads the stored result's layout (``links`` of ``node1``,
    ``node2``, ``n_pairs``, ``relationships`` by label, ``max_log10_lr``), so a new result
    type needs only this adapter changed.
    """
    links = []
    for link in result.get("links") or []:
        ends = (link.get("node1", ""), link.get("node2", ""))
        if not all(end.startswith("seizure:") for end in ends) or not link.get("visible"):
            continue
        first, second = sorted(int(end.split(":", 1)[1]) for end in ends)
        links.append(StoredLink(
            first, second, int(link["n_pairs"]),
            {_RELATIONSHIP_OF_LABEL.get(label, label): int(count)
             for label, count in (link.get("relationships") or {}).items()},
            link.get("max_log10_lr"),
        ))
    return links


_LINK = SeizureLink.__table__


def fold_links(session: Session, request_id: int, found_at: dt.datetime, result: dict) -> int:
    """Fold the seizure links of one finished match request into ``seizure_link`` (not
    committed): a pair's row is replaced when this request finished later than the one it
    came from (ties broken by request id), so folding requests in any order gives what
    folding them in the order they finished gives. Returns the links folded."""
    links = stored_links(result or {})
    if not links:
        return 0
    key = (found_at, request_id)
    existing = {
        (row.seizure1_id, row.seizure2_id): (row.found_at, row.match_request_id)
        for row in session.execute(
            sa.select(_LINK.c.seizure1_id, _LINK.c.seizure2_id, _LINK.c.found_at,
                      _LINK.c.match_request_id)
            .where(sa.tuple_(_LINK.c.seizure1_id, _LINK.c.seizure2_id).in_(
                [(link.seizure1, link.seizure2) for link in links]))
        )
    }
    present = set(session.scalars(sa.select(Seizure.id).where(
        Seizure.id.in_({i for link in links for i in (link.seizure1, link.seizure2)}))))
    folded = 0
    for link in links:
        pair = (link.seizure1, link.seizure2)
        if not set(pair) <= present:
            continue  # a seizure deleted since the request ran
        values = {r: link.relationships.get(r, 0) for r in RELATIONSHIPS}
        # link_search_id is left alone (migration 0010 folds with this code before the
        # column exists): a row with a request is the request's, whatever search wrote it
        # before.
        values.update(best_log10_lr=link.best_log10_lr, match_request_id=request_id,
                      found_at=found_at)
        if pair in existing and _naive(existing[pair]) > _naive(key):
            continue
        if pair not in existing:
            try:
                with session.begin_nested():
                    session.execute(_LINK.insert().values(
                        seizure1_id=pair[0], seizure2_id=pair[1], **values))
                folded += 1
                continue
            except IntegrityError:
                pass  # another request's job inserted it meanwhile: the later one wins
        folded += session.execute(
            _LINK.update().where(
                _LINK.c.seizure1_id == pair[0], _LINK.c.seizure2_id == pair[1],
                sa.or_(_LINK.c.found_at < found_at, sa.and_(
                    _LINK.c.found_at == found_at,
                    sa.func.coalesce(_LINK.c.match_request_id, 0) <= request_id)),
            ).values(**values)
        ).rowcount
    logger.info("match request %s: %d seizure links folded into the network", request_id, folded)
    return folded


def _naive(key: tuple[dt.datetime, int | None]) -> tuple[dt.datetime, int]:
    moment, request_id = key  # a row from a network search has no request: it ranks first
    return (moment.replace(tzinfo=None) if moment.tzinfo else moment), request_id or 0


def rebuild_links(session: Session) -> int:
    """Forget the links folded from match requests and fold every finished request again (a
    full rerun, used by the migration and to check the incremental folding); committed. The
    links of the network searches of released profiles stay (:func:`lims.network.rebuild_network`
    reruns those), and a request's link replaces one only where it is later."""
    session.execute(_LINK.delete().where(_LINK.c.match_request_id.is_not(None)))
    requests = session.execute(
        sa.select(MatchRequest.id, MatchRequest.finished_at, MatchRequest.result)
        .where(MatchRequest.status == "done")
        .order_by(MatchRequest.finished_at, MatchRequest.id)
    ).all()
    unknown = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)  # a finished request without a time
    total = sum(fold_links(session, row.id, row.finished_at or unknown, row.result)
                for row in requests)
    session.commit()
    return total


def _links(session: Session, kept: sa.Select, relationships: tuple[str, ...]
           ) -> dict[tuple[int, int], StoredLink]:
    """The stored links between two seizures of ``kept`` (a SELECT of seizure ids) with a
    pair of one of ``relationships``."""
    statement = sa.select(_LINK).where(
        _LINK.c.seizure1_id.in_(kept), _LINK.c.seizure2_id.in_(kept),
        sa.or_(*(_LINK.c[r] > 0 for r in relationships)),
    )
    return {
        (row.seizure1_id, row.seizure2_id): StoredLink(
            row.seizure1_id, row.seizure2_id,
            sum(getattr(row, r) for r in RELATIONSHIPS),
            {r: getattr(row, r) for r in RELATIONSHIPS if getattr(row, r)},
            row.best_log10_lr,
        )
        for row in session.execute(statement)
    }


def seizure_network(
    session: Session,
    user: User,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    country: str | None = None,
    relationships: tuple[str, ...] = RELATIONSHIPS,
    around: int | None = None,
) -> dict:
    """The network of linked seizures ``user`` may see: ``{"nodes", "edges", "data"}``
    (``around``: only seizure ``around`` and the seizures linked to it, its neighbourhood).

    An edge joins two seizures both visible to ``user`` and counts only the pairs of the
    chosen ``relationships``; a node is kept when it is seized within the dates (an undated
    seizure only without dates), in ``country`` (of discovery, by code, or by its free-text
    country while uncoded) and has an edge left.
    """
    linked_ids = sa.union(sa.select(_LINK.c.seizure1_id), sa.select(_LINK.c.seizure2_id))
    statement = (
        sa.select(Seizure.id, Seizure.reference, Seizure.agency_id, Seizure.seized_on,
                  Seizure.place, Seizure.country, Seizure.latitude, Seizure.longitude,
                  Seizure.declared_weight_kg, SeizureRecord.discovery_country,
                  SeizureRecord.species)
        .outerjoin(SeizureRecord, SeizureRecord.seizure_id == Seizure.id)
        .where(Seizure.id.in_(linked_ids), visible(Seizure, user))
    )
    if date_from is not None:
        statement = statement.where(Seizure.seized_on >= date_from)
    if date_to is not None:
        statement = statement.where(Seizure.seized_on <= date_to)
    if country is not None:
        statement = statement.where(sa.or_(SeizureRecord.discovery_country == country,
                                           Seizure.country == country))
    if around is not None:
        statement = statement.where(Seizure.id.in_(sa.union(
            sa.select(sa.literal(around)),
            sa.select(_LINK.c.seizure2_id).where(_LINK.c.seizure1_id == around),
            sa.select(_LINK.c.seizure1_id).where(_LINK.c.seizure2_id == around),
        )))
    if not relationships:
        return {"nodes": [], "edges": [], "data": data_statement([])}
    links = _links(session, statement.with_only_columns(Seizure.id), relationships)
    nodes = {}
    ends = {seizure_id for pair in links for seizure_id in pair}
    for row in session.execute(statement) if ends else ():
        if row.id not in ends:
            continue
        weight = _total(row.species, "quantity_kg")
        nodes[row.id] = {
            "id": f"seizure:{row.id}",
            "seizure_id": row.id,
            "reference": row.reference,
            "agency_id": row.agency_id,
            "seized_on": row.seized_on.isoformat() if row.seized_on else None,
            "port": row.place,
            "country": row.discovery_country or row.country,
            "quantity_kg": weight if weight is not None else row.declared_weight_kg,
            "latitude": row.latitude,
            "longitude": row.longitude,
        }
    edges = []
    for (first, second), link in sorted(links.items()):
        if first not in nodes or second not in nodes:
            continue
        counts = {r: n for r, n in link.relationships.items() if r in relationships and n}
        if not counts:
            continue
        edges.append({
            "source": f"seizure:{first}",
            "target": f"seizure:{second}",
            "n_pairs": sum(counts.values()),
            "relationships": counts,
            "strongest": next(r for r in RELATIONSHIPS if r in counts),
            "best_log10_lr": link.best_log10_lr,
        })
    linked = {end for edge in edges for end in (edge["source"], edge["target"])}
    kept = [node for node in nodes.values() if node["id"] in linked]
    kept.sort(key=lambda node: (node["seized_on"] or "", node["reference"], node["seizure_id"]))
    data = data_statement([
        SeizureFacts(node["seizure_id"], dt.date.fromisoformat(node["seized_on"])
                     if node["seized_on"] else None, node["country"], None, node["quantity_kg"])
        for node in kept
    ])
    return {"nodes": kept, "edges": edges, "data": data}


NETWORK_COLUMNS = (
    "seizure1", "seizure1_date", "seizure1_port", "seizure1_country", "seizure1_kg",
    "seizure2", "seizure2_date", "seizure2_port", "seizure2_country", "seizure2_kg",
    "n_pairs", *RELATIONSHIPS, "strongest", "best_log10_lr",
)


def network_csv(network: dict) -> bytes:
    """One spreadsheet-safe row per edge, with both seizures' reference, date, port,
    country and weight."""
    nodes = {node["id"]: node for node in network["nodes"]}
    rows = []
    for edge in network["edges"]:
        row = {}
        for side, key in (("seizure1", edge["source"]), ("seizure2", edge["target"])):
            node = nodes[key]
            row.update({side: node["reference"], f"{side}_date": node["seized_on"],
                        f"{side}_port": node["port"], f"{side}_country": node["country"],
                        f"{side}_kg": node["quantity_kg"]})
        row.update({r: edge["relationships"].get(r, 0) for r in RELATIONSHIPS})
        row.update(n_pairs=edge["n_pairs"], strongest=edge["strongest"],
                   best_log10_lr=edge["best_log10_lr"])
        rows.append(row)
    return aitr.write_csv(rows, NETWORK_COLUMNS)


def _point(node: dict) -> list[float] | None:
    if node["latitude"] is None or node["longitude"] is None:
        return None
    return [node["longitude"], node["latitude"]]


def network_geojson(network: dict) -> dict:
    """A GeoJSON FeatureCollection: a Point per seizure and a LineString per edge (geometry
    null where a seizure has no coordinates), with the data statement as a member."""
    nodes = {node["id"]: node for node in network["nodes"]}
    features = []
    for node in network["nodes"]:
        point = _point(node)
        features.append({
            "type": "Feature",
            "id": node["id"],
            "geometry": {"type": "Point", "coordinates": point} if point else None,
            "properties": {key: value for key, value in node.items()
                           if key not in ("latitude", "longitude")} | {"kind": "seizure"},
        })
    for edge in network["edges"]:
        ends = [_point(nodes[edge["source"]]), _point(nodes[edge["target"]])]
        features.append({
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": ends} if all(ends) else None,
            "properties": {**edge, "kind": "link"},
        })
    return {"type": "FeatureCollection", "features": features, "data": network["data"]}


def network_graphml(network: dict) -> bytes:
    """The network as GraphML (networkx), attributes without values left out."""
    import networkx as nx

    graph = nx.Graph()
    for node in network["nodes"]:
        graph.add_node(node["id"], **{k: v for k, v in node.items() if v is not None and
                                      k != "id"})
    for edge in network["edges"]:
        attributes = {f"n_{r}": edge["relationships"].get(r, 0) for r in RELATIONSHIPS}
        attributes.update(n_pairs=edge["n_pairs"], strongest=edge["strongest"])
        if edge["best_log10_lr"] is not None:
            attributes["best_log10_lr"] = float(edge["best_log10_lr"])
        graph.add_edge(edge["source"], edge["target"], **attributes)
    buffer = io.BytesIO()
    nx.write_graphml(graph, buffer)
    return buffer.getvalue()


# --------------------------------------------------------------------------- origins
@dataclass(frozen=True)
class StoredOrigin:
    """A seizure's assigned origin in a stored match result: the most likely point and the
    grid cells of the 90% credible region, each as ``(lat_lo, lat_hi, lon_lo, lon_hi)``."""

    seizure_id: int
    best_lat: float
    best_lon: float
    area90_km2: float
    region90: tuple[tuple[float, float, float, float], ...]


def stored_origins(result: dict) -> list[StoredOrigin]:
    """The seizure origins of one stored match result (its ``geographic`` surfaces keyed by
    ``seizure:<id>``; like :func:`stored_links`, the one reader of that layout)."""
    geographic = (result or {}).get("geographic") or {}
    grid = geographic.get("grid")
    if not grid:
        return []
    lat_edges, lon_edges = grid["lat_edges"], grid["lon_edges"]
    n_lon = len(lon_edges) - 1
    in_range = grid["in_range"]
    origins = []
    for surface in geographic.get("surfaces") or []:
        node = str(surface.get("node", ""))
        if not node.startswith("seizure:"):
            continue
        cells = []
        for k in surface.get("region90") or []:
            row, col = divmod(in_range[k], n_lon)
            cells.append((lat_edges[row], lat_edges[row + 1], lon_edges[col], lon_edges[col + 1]))
        origins.append(StoredOrigin(int(node.split(":", 1)[1]), surface["best_lat"],
                                    surface["best_lon"], surface["area90_km2"], tuple(cells)))
    return origins


_ORIGIN = SeizureOrigin.__table__


def fold_origins(session: Session, request_id: int, found_at: dt.datetime,
                 result: dict) -> int:
    """Fold the seizure origins of one finished match request into ``seizure_origin`` (not
    committed): a seizure's row is replaced when this request finished later than the one
    it came from (ties broken by request id), as :func:`fold_links` does. Returns the rows
    written."""
    origins = {origin.seizure_id: origin for origin in stored_origins(result or {})}
    if not origins:
        return 0
    present = set(session.scalars(sa.select(Seizure.id).where(Seizure.id.in_(list(origins)))))
    existing = {
        row.seizure_id: (row.found_at, row.match_request_id)
        for row in session.execute(sa.select(_ORIGIN.c.seizure_id, _ORIGIN.c.found_at,
                                             _ORIGIN.c.match_request_id)
                                   .where(_ORIGIN.c.seizure_id.in_(list(present))))
    }
    written = 0
    for seizure_id, origin in origins.items():
        if seizure_id not in present:
            continue  # deleted since the request ran
        values = {"best_lat": origin.best_lat, "best_lon": origin.best_lon,
                  "area90_km2": origin.area90_km2,
                  "region90": [list(cell) for cell in origin.region90],
                  "match_request_id": request_id, "found_at": found_at}
        if seizure_id not in existing:
            try:
                with session.begin_nested():
                    session.execute(_ORIGIN.insert().values(seizure_id=seizure_id, **values))
                written += 1
                continue
            except IntegrityError:
                pass  # another request's job inserted it meanwhile: the later one wins
        elif _naive(existing[seizure_id]) > _naive((found_at, request_id)):
            continue
        written += session.execute(_ORIGIN.update().where(
            _ORIGIN.c.seizure_id == seizure_id,
            sa.or_(_ORIGIN.c.found_at < found_at, sa.and_(
                _ORIGIN.c.found_at == found_at, _ORIGIN.c.match_request_id <= request_id)),
        ).values(**values)).rowcount
    return written


def rebuild_origins(session: Session) -> int:
    """Empty ``seizure_origin`` and fold every finished match request again, in the order
    they finished (a full rerun, used by migration 0013); not committed."""
    session.execute(_ORIGIN.delete())
    unknown = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    total = 0
    for row in session.execute(
        sa.select(MatchRequest.id, MatchRequest.finished_at, MatchRequest.result)
        .where(MatchRequest.status == "done")
        .order_by(MatchRequest.finished_at, MatchRequest.id)
    ):
        total += fold_origins(session, row.id, row.finished_at or unknown, row.result)
    return total


def seizure_origins(session: Session, user: User, *, date_from: dt.date | None = None,
                    date_to: dt.date | None = None) -> dict:
    """Per seizure ``user`` may see, its location and its origin as the latest finished match
    request assigned it (``seizure_origin``, kept as requests finish): ``{"seizures": [...],
    "data": ...}``."""
    statement = (sa.select(Seizure, SeizureOrigin)
                 .join(SeizureOrigin, SeizureOrigin.seizure_id == Seizure.id)
                 .where(visible(Seizure, user)))
    if date_from is not None:
        statement = statement.where(Seizure.seized_on >= date_from)
    if date_to is not None:
        statement = statement.where(Seizure.seized_on <= date_to)
    found = sorted(session.execute(statement).all(),
                   key=lambda row: (row[0].seized_on or dt.date.max, row[0].id))
    rows = [{
        "seizure_id": seizure.id, "reference": seizure.reference,
        "seized_on": seizure.seized_on.isoformat() if seizure.seized_on else None,
        "latitude": seizure.latitude, "longitude": seizure.longitude,
        "origin_lat": origin.best_lat, "origin_lon": origin.best_lon,
        "area90_km2": origin.area90_km2,
        "region90": [list(cell) for cell in origin.region90],
    } for seizure, origin in found]
    facts = [SeizureFacts(s.id, s.seized_on, None, None, None) for s, _ in found]
    return {"seizures": rows, "data": data_statement(facts)}


def origins_geojson(origins: dict) -> dict:
    """Per seizure: its location (Point, null without coordinates), its most likely origin
    (Point) and its 90% credible region (MultiPolygon of grid cells)."""
    features = []
    for row in origins["seizures"]:
        common = {"seizure_id": row["seizure_id"], "reference": row["reference"],
                  "seized_on": row["seized_on"]}
        location = ([row["longitude"], row["latitude"]]
                    if row["latitude"] is not None and row["longitude"] is not None else None)
        features.append({"type": "Feature", "properties": {**common, "kind": "seizure"},
                         "geometry": {"type": "Point", "coordinates": location}
                         if location else None})
        features.append({"type": "Feature",
                         "properties": {**common, "kind": "most_likely_origin",
                                        "area90_km2": row["area90_km2"]},
                         "geometry": {"type": "Point",
                                      "coordinates": [row["origin_lon"], row["origin_lat"]]}})
        polygons = [[[[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]]
                    for lat0, lat1, lon0, lon1 in row["region90"]]
        features.append({"type": "Feature", "properties": {**common, "kind": "region90"},
                         "geometry": {"type": "MultiPolygon", "coordinates": polygons}})
    return {"type": "FeatureCollection", "features": features, "data": origins["data"]}
