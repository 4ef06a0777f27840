"""Migration 0013 (the growing network): up from 0010, down keeping the links of match
requests and dropping those only a network search found, and up again."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import command

from lims.database import create_database_engine
from lims.migrate import alembic_config, current_revision, upgrade
from tests.lims.test_database import WHEN, empty_database_url, insert_rows  # noqa: F401

# A stored result placing seizure 1 (a 1 x 2 grid, both cells in range, the 90% region the
# second: lat 0..10, lon 5..10).
GEOGRAPHIC = {"geographic": {
    "grid": {"lat_edges": [0.0, 10.0], "lon_edges": [0.0, 5.0, 10.0], "in_range": [0, 1]},
    "surfaces": [{"node": "seizure:1", "best_lat": 4.0, "best_lon": 7.5, "area90_km2": 12.5,
                  "region90": [1]}]}}


def _rows() -> dict:
    return {
        "agency": [{"id": 1, "code": "A", "name": "Agency A", "kind": "laboratory",
                    "created_at": WHEN}],
        "user_account": [{"id": 1, "agency_id": 1, "username": "u", "full_name": "U",
                          "active": True, "created_at": WHEN}],
        "case_file": [{"id": 1, "agency_id": 1, "reference": "C", "title": "t",
                       "kind": "investigation", "status": "open", "created_at": WHEN}],
        "seizure": [{"id": k, "case_id": 1, "agency_id": 1, "reference": f"S{k}",
                     "created_at": WHEN}
                    for k in (1, 2, 3)],
        "match_request": [{"id": 1, "case_id": 1, "analyses": ["identity"],
                           "reference_sets": ["x"], "parameters": {}, "status": "done",
                           "progress": 1.0, "result": GEOGRAPHIC, "requested_by_id": 1,
                           "created_at": WHEN, "finished_at": WHEN, "attempts": 1}],
    }


def test_0013_up_down_and_up_again(empty_database_url):  # noqa: F811
    url = empty_database_url
    upgrade(url, revision="0010")
    engine = create_database_engine(url)
    with engine.begin() as connection:
        tables = set(sa.inspect(connection).get_table_names())
        for table, rows in _rows().items():
            insert_rows(connection, table, [
                {key: value for key, value in row.items()
                 if key in {c["name"] for c in sa.inspect(connection).get_columns(table)}}
                for row in rows])
        link = {"seizure1_id": 1, "seizure2_id": 2, "same_animal": 1, "parent_offspring": 0,
                "full_sibling": 0, "half_sibling": 0, "best_log10_lr": 9.5,
                "match_request_id": 1, "found_at": WHEN}
        insert_rows(connection, "seizure_link", [link])
    assert {"link_search", "profile_link", "searched_profile"}.isdisjoint(tables)
    upgrade(url)
    with engine.begin() as connection:
        # The origins of the results stored before 0013 are folded in.
        assert connection.execute(sa.text(
            "SELECT seizure_id, best_lat, best_lon, area90_km2, match_request_id "
            "FROM seizure_origin")).all() == [(1, 4.0, 7.5, 12.5, 1)]
        insert_rows(connection, "link_search", [{
            "id": 1, "panel": "p", "status": "done", "progress": 1.0, "attempts": 1,
            "created_at": WHEN}])
        # A link only a network search found: no match request.
        insert_rows(connection, "seizure_link", [{**link, "seizure2_id": 3,
                                                  "match_request_id": None,
                                                  "link_search_id": 1}])
        assert connection.execute(sa.text("SELECT count(*) FROM seizure_link")).scalar() == 2
    command.downgrade(alembic_config(url), "0010")
    with engine.connect() as connection:
        assert current_revision(connection) == "0010"
        inspector = sa.inspect(connection)
        assert {"link_search", "profile_link", "searched_profile",
                "seizure_origin"}.isdisjoint(inspector.get_table_names())
        columns = {c["name"]: c for c in inspector.get_columns("seizure_link")}
        assert "link_search_id" not in columns and not columns["match_request_id"]["nullable"]
        assert connection.execute(sa.text(
            "SELECT seizure1_id, seizure2_id, match_request_id FROM seizure_link")).all() == [
            (1, 2, 1)]
    upgrade(url)
    with engine.connect() as connection:
        columns = {c["name"]: c for c in sa.inspect(connection).get_columns("seizure_link")}
        assert columns["match_request_id"]["nullable"] and "link_search_id" in columns
    engine.dispose()
