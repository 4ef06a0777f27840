"""``dnatrack aitr export`` / ``import`` against the instance database: the same table as the
API, the user's need-to-know and permissions, all-or-nothing imports with every problem by row
and column, and the import in the audit trail under the user's name."""

from __future__ import annotations

import sqlalchemy as sa

from lims import aitr
from lims.models import AuditRecord, SeizureRecord
from tests.lims.test_intelligence import _code_two, _stored, trees  # noqa: F401  (fixture)


def test_export_writes_the_apis_table_and_import_restores_it(runner, login, trees,  # noqa: F811
                                                             session, tmp_path):
    analyst = login("analyst", "investigator")
    _code_two(analyst, trees)
    before = {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")}
    for table_format in ("csv", "xlsx"):
        out = tmp_path / f"aitr.{table_format}"
        result = runner("aitr", "export", "--user", analyst.username, "--out", str(out))
        assert result.status == 0, result.err
        assert result.out.strip() == f"3 rows written to {out}"
        api = analyst.get(f"/api/v1/intelligence/aitr.{table_format}").data
        assert aitr.read_table(out.read_bytes(), out.name) == aitr.read_table(api, out.name)
    year = tmp_path / "2025.csv"
    assert runner("aitr", "export", "--user", analyst.username, "--year", "2025", "--agency",
                  "A", "--format", "csv", "--out", str(year)).status == 0
    assert [row[aitr.REFERENCE] for _, row in aitr.read_table(year.read_bytes(), "t.csv")] \
        == ["KE2-SZ"]

    for key in ("a1", "a2"):
        session.delete(session.get(SeizureRecord, trees[key].seizure_id))
    session.commit()
    result = runner("aitr", "import", str(tmp_path / "aitr.xlsx"), "--user", analyst.username)
    assert result.status == 0, result.err
    assert result.out.strip().startswith("2 seizure records coded")
    assert {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")} == before
    actors = set(session.scalars(sa.select(AuditRecord.actor_id).where(
        AuditRecord.table_name == "seizure_record", AuditRecord.action == "insert")))
    assert analyst.user_id in actors


def test_a_malformed_table_changes_nothing_and_every_problem_is_printed(
        runner, login, trees, session, tmp_path):  # noqa: F811
    analyst = login("analyst")
    _code_two(analyst, trees)
    before = {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")}
    table = [row for _, row in aitr.read_table(analyst.get("/api/v1/intelligence/aitr.csv")
                                               .data, "t.csv")]
    table[0]["Country of seizure"] = "Kenya"
    table[1]["Country of seizure"] = "Kenya"
    table[1][aitr.PIECES] = "three"
    table.append({**table[2], aitr.REFERENCE: "UG-SZ"})  # another agency's seizure
    bad = tmp_path / "bad.csv"
    bad.write_bytes(aitr.write_csv(table))
    result = runner("aitr", "import", str(bad), "--user", analyst.username)
    assert result.status == 1
    assert f"{bad}: row 2, column Country of seizure:" in result.err
    assert f"{bad}: row 3, column {aitr.PIECES}:" in result.err
    assert f"{bad}: row 5, column {aitr.REFERENCE}: 'UG-SZ' names no seizure" in result.err
    assert "nothing was changed" in result.err
    assert {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")} == before


def test_bad_users_agencies_files_and_formats_are_refused_in_one_line(
        runner, login, trees, tmp_path):  # noqa: F811
    researcher = login("researcher")
    analyst = login("analyst")
    cases = [
        (("export", "--user", "nobody", "--out", str(tmp_path / "a.csv")),
         "--user: no active user 'nobody'"),
        (("export", "--user", researcher.username, "--out", str(tmp_path / "a.csv")),
         "lacks the permission intelligence.read"),
        (("import", str(tmp_path / "a.csv"), "--user", researcher.username),
         "cannot read"),
        (("export", "--user", analyst.username, "--out", str(tmp_path / "a.txt")),
         "--format: give csv or xlsx"),
        (("export", "--user", analyst.username, "--agency", "ZZ", "--out",
          str(tmp_path / "a.csv")), "--agency: no agency 'ZZ'"),
    ]
    for argv, message in cases:
        result = runner("aitr", *argv)
        assert result.status == 1, argv
        assert message in result.err and result.err.count("\n") == 1, result.err
    # A readable table, but a user who may not change evidence: refused before reading it.
    table = tmp_path / "table.csv"
    table.write_bytes(analyst.get("/api/v1/intelligence/aitr.csv").data)
    result = runner("aitr", "import", str(table), "--user", researcher.username)
    assert result.status == 1
    assert "lacks the permission evidence.write" in result.err, result.err
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    result = runner("aitr", "import", str(empty), "--user", analyst.username)
    assert result.status == 1 and "nothing was changed" in result.err
