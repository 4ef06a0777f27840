"""Migration 0012 (partners' outbound tokens encrypted at rest) on a database holding a token
in the clear, and back."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from lims import exchange
from lims.database import create_database_engine
from lims.migrate import current_revision, downgrade, upgrade
from tests.lims import test_database
from tests.lims.test_database import WHEN, insert_rows

empty_database_url = test_database.empty_database_url

TOKEN = "dtx_issued-to-us-by-the-partner"


def partner_columns(engine) -> set[str]:
    with engine.connect() as connection:
        return {c["name"] for c in sa.inspect(connection).get_columns("exchange_partner")}


def test_0012_encrypts_stored_tokens_and_0010_gets_them_back(empty_database_url, tmp_path):
    upgrade(empty_database_url, revision="0010")
    engine = create_database_engine(empty_database_url)
    with engine.begin() as connection:
        insert_rows(connection, "agency", [{"id": 1, "code": "A", "name": "Agency A",
                                            "kind": "laboratory", "created_at": WHEN}])
        insert_rows(connection, "exchange_partner", [
            {"id": id_, "agency_id": 1, "name": f"p{id_}", "base_url": "http://x",
             "public_key": f"key{id_}", "outbound_token": token,
             "inbound_token_hash": f"{id_:064d}", "shared_panels": [],
             "share_all_cases": False, "shared_case_ids": [], "searches_per_minute": 30,
             "active": True, "created_at": WHEN}
            for id_, token in ((1, TOKEN), (2, None))])
    # Tokens to convert and no key: stopped, nothing changed.
    with pytest.raises(RuntimeError, match="1 exchange partner token"):
        upgrade(empty_database_url)
    with engine.connect() as connection:
        assert current_revision(connection) == "0010"
    assert "outbound_token" in partner_columns(engine)

    key_file = tmp_path / "instance" / exchange.TOKEN_KEY_FILE
    upgrade(empty_database_url, revision="0012", token_key_file=key_file)
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert "outbound_token" not in partner_columns(engine)
    with engine.connect() as connection:
        assert current_revision(connection) == "0012"
        rows = connection.execute(sa.text(
            "SELECT * FROM exchange_partner ORDER BY id")).mappings().all()
    assert TOKEN not in repr([dict(row) for row in rows])
    key = exchange.load_token_key(key_file)
    assert [exchange.decrypt_token(key, row["outbound_token_encrypted"]) for row in rows] == \
        [TOKEN, None]
    with pytest.raises(ValueError, match="does not decrypt"):
        exchange.decrypt_token(exchange.load_token_key(tmp_path / "other"),
                               rows[0]["outbound_token_encrypted"])

    downgrade(empty_database_url, "0010", token_key_file=key_file)
    with engine.connect() as connection:
        assert connection.execute(sa.text(
            "SELECT outbound_token FROM exchange_partner ORDER BY id")).scalars().all() == \
            [TOKEN, None]
    assert "outbound_token_encrypted" not in partner_columns(engine)
    engine.dispose()
