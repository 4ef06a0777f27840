"""Seizure intelligence in the LIMS: coded trade-chain records, vocabularies, the AITR table
(export, read-back, all-or-nothing import), the ETIS-style CSV, trends and country roles under
need-to-know, and the permission matrix of the new endpoints."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
from openpyxl import load_workbook

from lims import aitr
from lims.models import CaseShare, Seizure, SeizureRecord
from lims.trade_records import record_values
from tests.lims.factories import make_case_tree

FULL_RECORD = {
    "discovery_country": "KE",
    "origins": [{"country": "TZ", "share": 0.6}, {"country": "MZ", "share": None}],
    "export_country": "KE",
    "transits": [{"country": "AE", "seizure_opportunity": True},
                 {"country": "MY", "seizure_opportunity": False}],
    "destination_country": "VN",
    "commodity": "ivory",
    "commodity_form": "raw",
    "species": [{"name": "Loxodonta africana", "quantity_kg": 120.5, "pieces": 14},
                {"name": "Loxodonta cyclotis", "quantity_kg": None, "pieces": 3}],
    "detecting_agency": "customs",
    "detection_method": "x_ray",
    "transport_mode": "sea_cargo",
    "concealment": "container",
    "offender_nationalities": ["KE", "CN"],
    "charges": "=HYPERLINK(\"http://x\") Wildlife Conservation and Management Act s.92",
    "disposal": "evidence",
    "estimated_value": 250000,
    "currency": "USD",
    "validation_status": "validated",
}


@pytest.fixture
def trees(session, agencies):
    """Seizures KE-SZ (2024) and KE2-SZ (2025) of agency A, UG-SZ (2024) of agency B."""
    made = {
        "a1": make_case_tree(session, agencies["A"], "KE"),
        "a2": make_case_tree(session, agencies["A"], "KE2"),
        "b": make_case_tree(session, agencies["B"], "UG"),
    }
    for key, day in (("a1", dt.date(2024, 3, 1)), ("a2", dt.date(2025, 6, 2)),
                     ("b", dt.date(2024, 8, 9))):
        session.get(Seizure, made[key].seizure_id).seized_on = day
    session.commit()
    return made


def _put(caller, seizure_id, record):
    return caller.put(f"/api/v1/seizures/{seizure_id}/record", json=record)


def _stored(session, seizure_id):
    session.expire_all()
    record = session.get(SeizureRecord, seizure_id)
    return None if record is None else record_values(record)


def test_a_coded_record_is_stored_and_the_free_text_still_shown(login, trees, session):
    analyst = login("analyst")
    before = analyst.get(f"/api/v1/seizures/{trees['a1'].seizure_id}/record").get_json()
    assert before["coded"] is False
    assert before["free_text"]["place"] == "Mombasa"
    assert before["free_text"]["country"] == "Kenya"

    answer = _put(analyst, trees["a1"].seizure_id, FULL_RECORD)
    assert answer.status_code == 200, answer.get_json()
    body = answer.get_json()
    assert body["coded"] is True
    assert body["free_text"]["country"] == "Kenya"
    assert body["quantity_kg"] == 120.5 and body["pieces"] == 17
    assert _stored(session, trees["a1"].seizure_id) == {**FULL_RECORD, "estimated_value": 250000.0}


def test_bad_codes_are_refused_naming_every_field_and_nothing_is_stored(login, trees, session):
    analyst = login("analyst")
    answer = _put(analyst, trees["a1"].seizure_id, {
        "discovery_country": "XX",
        "origins": [{"country": "ke", "share": 0.7}, {"country": "TZ", "share": 0.5}],
        "transits": [{"country": "AE", "seizure_opportunity": "yes"}],
        "species": [{"name": "Mammuthus primigenius", "pieces": 2.5}],
        "commodity": "gold",
        "estimated_value": -3,
        "offender_nationalities": ["KE", "KE"],
        "colour": "white",
    })
    assert answer.status_code == 422
    fields = {problem["field"] for problem in answer.get_json()["details"]["problems"]}
    assert fields == {
        "discovery_country", "origins[0].country", "origins", "transits[0].seizure_opportunity",
        "species[0].name", "species[0].pieces", "commodity", "estimated_value",
        "offender_nationalities", "colour",
    }
    assert _stored(session, trees["a1"].seizure_id) is None


def test_a_value_needs_its_currency(login, trees):
    answer = _put(login("analyst"), trees["a1"].seizure_id, {"estimated_value": 10})
    assert answer.status_code == 422
    assert answer.get_json()["details"]["problems"] == [
        {"field": "currency", "message": "is required with an estimated value"}]


def test_shapes_that_are_not_records_get_a_422_not_a_500(login, trees):
    analyst = login("analyst")
    for body in ([], {"origins": "KE"}, {"origins": [1]}, {"species": [{"name": 3}]},
                 {"charges": 5}, {"offender_nationalities": "KE"}, {"estimated_value": True}):
        assert _put(analyst, trees["a1"].seizure_id, body).status_code == 422, body


def test_another_agencys_seizure_is_not_found_and_a_read_share_cannot_be_coded(
    login, trees, session
):
    analyst = login("analyst")
    assert _put(analyst, trees["b"].seizure_id, FULL_RECORD).status_code == 404
    assert analyst.get(f"/api/v1/seizures/{trees['b'].seizure_id}/record").status_code == 404
    session.add(CaseShare(case_id=trees["b"].case_id, agency_id=analyst.agency_id,
                          access="read"))
    session.commit()
    assert analyst.get(f"/api/v1/seizures/{trees['b'].seizure_id}/record").status_code == 200
    assert _put(analyst, trees["b"].seizure_id, FULL_RECORD).status_code == 403


def test_an_admin_adds_and_retires_terms(login, trees, session):
    admin, analyst = login("admin"), login("analyst")
    url = "/api/v1/intelligence/vocabularies"
    assert admin.put(f"{url}/detection_methods/drone", json={"label": "Drone"}).status_code == 201
    assert admin.put(f"{url}/countries/Kenya", json={"label": "K"}).status_code == 422
    assert admin.put(f"{url}/nonsense/x", json={"label": "K"}).status_code == 404
    assert analyst.put(f"{url}/detection_methods/dog", json={"label": "D"}).status_code == 403
    assert _put(analyst, trees["a1"].seizure_id,
                {"detection_method": "drone"}).status_code == 200
    terms = {t["code"]: t for t in analyst.get(url).get_json()["detection_methods"]}
    assert terms["drone"]["label"] == "Drone" and terms["drone"]["changed"]

    retire = admin.put(f"{url}/detection_methods/drone", json={"label": "Drone", "retired": True})
    assert retire.status_code == 200
    # The record that has it keeps it; a new coding may not use it.
    assert _put(analyst, trees["a1"].seizure_id,
                {"detection_method": "drone", "commodity": "horn"}).status_code == 200
    refused = _put(analyst, trees["a2"].seizure_id, {"detection_method": "drone"})
    assert refused.status_code == 422
    assert "retired" in refused.get_json()["details"]["problems"][0]["message"]
    species = admin.put(f"{url}/species/Mammuthus primigenius", json={"label": "Mammoth"})
    assert species.status_code == 201
    assert _put(analyst, trees["a2"].seizure_id,
                {"species": [{"name": "Mammuthus primigenius"}]}).status_code == 200


# --------------------------------------------------------------------------- AITR tables
SECOND_RECORD = {
    "discovery_country": "KE", "origins": [], "export_country": None, "transits": [],
    "destination_country": "CN", "commodity": "horn", "commodity_form": "worked",
    "species": [], "detecting_agency": None, "detection_method": None,
    "transport_mode": "air_passenger", "concealment": "luggage",
    "offender_nationalities": [], "charges": None, "disposal": None,
    "estimated_value": None, "currency": None, "validation_status": "unvalidated",
}


def _code_two(analyst, trees):
    assert _put(analyst, trees["a1"].seizure_id, FULL_RECORD).status_code == 200
    assert _put(analyst, trees["a2"].seizure_id, SECOND_RECORD).status_code == 200


def _upload(caller, content, filename):
    return caller.client.post(
        "/api/v1/intelligence/aitr",
        data={"file": (io.BytesIO(content), filename)},
        headers=caller.headers,
        content_type="multipart/form-data",
    )


@pytest.mark.parametrize("table_format", ["csv", "xlsx"])
def test_an_aitr_table_written_read_back_and_reimported_gives_the_same_records(
    login, trees, session, table_format
):
    analyst = login("analyst", "investigator")
    _code_two(analyst, trees)
    before = {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")}

    answer = analyst.get(f"/api/v1/intelligence/aitr.{table_format}")
    assert answer.status_code == 200
    content = answer.data
    rows = aitr.read_table(content, f"t.{table_format}")
    # One row per seizure and species: two species rows, then one row without species.
    assert [(number, row[aitr.REFERENCE], row[aitr.SPECIES]) for number, row in rows] == [
        (2, "KE-SZ", "Loxodonta africana"), (3, "KE-SZ", "Loxodonta cyclotis"),
        (4, "KE2-SZ", None)]
    assert rows[0][1]["Countries of transit"] == "AE [missed]; MY"
    assert rows[0][1]["Country of alleged origin"] == "TZ [0.6]; MZ"
    # The formula in the charges is neutralised in the file and restored on reading.
    if table_format == "csv":
        raw = list(csv.reader(io.StringIO(content.decode("utf-8-sig"))))
        charges = raw[1][raw[0].index("Law under which charges were made")]
    else:
        sheet = load_workbook(io.BytesIO(content)).active
        header = [cell.value for cell in sheet[1]]
        cell = sheet.cell(row=2, column=header.index("Law under which charges were made") + 1)
        assert cell.data_type == "s"
        charges = cell.value
    assert charges.startswith("'=HYPERLINK")
    assert rows[0][1]["Law under which charges were made"] == FULL_RECORD["charges"]

    for key in ("a1", "a2"):
        session.delete(session.get(SeizureRecord, trees[key].seizure_id))
    session.commit()
    imported = _upload(analyst, content, f"aitr.{table_format}")
    assert imported.status_code == 201, imported.get_json()
    assert imported.get_json() == {"records": 2}
    assert {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")} == before


def test_the_aitr_export_takes_a_year_and_an_agency(login, trees, agencies):
    analyst = login("analyst")
    _code_two(analyst, trees)

    def references(query):
        answer = analyst.get(f"/api/v1/intelligence/aitr.csv?{query}")
        assert answer.status_code == 200
        return [row[aitr.REFERENCE] for _, row in aitr.read_table(answer.data, "t.csv")]

    assert references("year=2025") == ["KE2-SZ"]
    assert references("year=2024") == ["KE-SZ", "KE-SZ"]
    assert references(f"agency_id={agencies['B']}") == []
    assert analyst.get("/api/v1/intelligence/aitr.csv?agency_id=999999").status_code == 400
    assert analyst.get("/api/v1/intelligence/aitr.csv?year=abc").status_code == 400
    for year in ("-180", "0", "10000"):
        assert analyst.get(f"/api/v1/intelligence/aitr.xlsx?year={year}").status_code == 400
        assert analyst.get(f"/api/v1/intelligence/etis?year={year}").status_code == 400


def test_a_malformed_table_changes_nothing_and_lists_every_problem(login, trees, session):
    analyst = login("analyst")
    _code_two(analyst, trees)
    before = {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")}
    rows = aitr.read_table(analyst.get("/api/v1/intelligence/aitr.csv").data, "t.csv")
    table = [row for _, row in rows]
    table[0]["Country of seizure"] = "Kenya"                 # row 2: not a code
    table[1]["Country of seizure"] = "Kenya"                 # row 3 agrees with row 2 ...
    table[1]["Mode of transport"] = "road"                   # ... but not here
    table[1][aitr.PIECES] = "three"                          # row 3: no number
    table[2]["Countries of transit"] = "AE [maybe]"          # row 4: bad qualifier
    table[2][aitr.DATE] = "2025-06-03"                       # row 4: not the seizure's date
    table.append({**table[2], aitr.REFERENCE: "UG-SZ"})      # row 5: another agency's seizure
    table.append({**table[2], aitr.REFERENCE: None})         # row 6: no reference
    content = aitr.write_csv(table)

    answer = _upload(analyst, content, "bad.csv")
    assert answer.status_code == 422
    found = {(p["row"], p["column"]) for p in answer.get_json()["details"]["problems"]}
    assert found == {
        (2, "Country of seizure"),
        (3, "Mode of transport"),
        (3, aitr.PIECES),
        (4, "Countries of transit"),
        (4, aitr.DATE),
        (5, aitr.REFERENCE),
        (5, "Countries of transit"),
        (6, aitr.REFERENCE),
    }
    assert {key: _stored(session, trees[key].seizure_id) for key in ("a1", "a2")} == before
    assert _stored(session, trees["b"].seizure_id) is None


def test_unreadable_tables_are_refused(login, trees):
    analyst = login("analyst")
    for content, name in ((b"a,b\n1,2\n", "t.csv"), (b"not a zip", "t.xlsx"),
                          (b"\xff\xfe", "t.csv"), (b"x", "t.txt"), (b"", "t.csv")):
        answer = _upload(analyst, content, name)
        assert answer.status_code == 422, name
        assert answer.get_json()["details"]["problems"]


def test_the_etis_export_has_the_trade_chain(login, trees):
    analyst = login("analyst")
    _code_two(analyst, trees)
    answer = analyst.get("/api/v1/intelligence/etis")
    rows = list(csv.DictReader(io.StringIO(answer.data.decode("utf-8-sig"))))
    assert [row["seizure_reference"] for row in rows] == ["KE-SZ", "KE2-SZ"]
    assert rows[0]["trade_chain"] == "TZ/MZ > KE > AE* > MY > VN"
    assert rows[0]["quantity_kg"] == "120.5" and rows[0]["pieces"] == "17"
    assert rows[1]["trade_chain"] == "? > ? > CN"
    assert rows[0]["year"] == "2024"


# --------------------------------------------------------------------------- need-to-know
def test_another_agencys_unshared_seizures_never_count(login, trees, session):
    """B's seizure is coded with a chain through TZ and 800 kg; A's caller must see none of
    it in any figure or download until B shares the case."""
    a_analyst, b_analyst = login("analyst"), login("analyst", agency="B")
    _code_two(a_analyst, trees)
    b_record = {"discovery_country": "UG", "origins": [{"country": "TZ", "share": None}],
                "commodity": "ivory",
                "species": [{"name": "Loxodonta africana", "quantity_kg": 800.0}]}
    assert _put(b_analyst, trees["b"].seizure_id, b_record).status_code == 200
    investigator = login("investigator")

    def figures():
        trends = investigator.get("/api/v1/intelligence/trends").get_json()
        roles = investigator.get("/api/v1/intelligence/country-roles").get_json()
        aitr_rows = aitr.read_table(investigator.get("/api/v1/intelligence/aitr.csv").data, "t.csv")
        xlsx = aitr.read_table(
            investigator.get("/api/v1/intelligence/aitr.xlsx").data, "t.xlsx")
        etis = investigator.get("/api/v1/intelligence/etis").data.decode("utf-8-sig")
        return trends, {row["country"]: row for row in roles["rows"]}, roles["data"], \
            {row[aitr.REFERENCE] for _, row in aitr_rows + xlsx}, etis

    trends, roles, data, references, etis = figures()
    assert data["seizures"] == 2 and trends["data"]["seizures"] == 2
    assert sum(row["seizures"] for row in trends["rows"]) == 2
    assert "UG" not in roles
    assert roles["TZ"]["seizures_out"] == 1 and roles["TZ"]["weight_out_kg"] == 120.5
    assert references == {"KE-SZ", "KE2-SZ"} and "UG-SZ" not in etis
    assert "raw seizure counts are not trends" in data["caveat"].lower()

    session.add(CaseShare(case_id=trees["b"].case_id, agency_id=investigator.agency_id))
    session.commit()
    trends, roles, data, references, etis = figures()
    assert data["seizures"] == 3
    assert roles["UG"]["seizures_in"] == 1 and roles["UG"]["large_in"] == 1
    assert roles["TZ"]["seizures_out"] == 2 and roles["TZ"]["weight_out_kg"] == 920.5
    assert "UG-SZ" in references and "UG-SZ" in etis


def test_trends_count_by_year_commodity_and_weight_class(login, trees):
    analyst = login("analyst")
    _code_two(analyst, trees)
    body = analyst.get("/api/v1/intelligence/trends").get_json()
    assert body["rows"] == [
        {"year": 2024, "commodity": "ivory", "weight_class": "100 to < 500 kg", "seizures": 1,
         "weight_kg": 120.5},
        {"year": 2025, "commodity": "horn", "weight_class": "weight unknown", "seizures": 1,
         "weight_kg": 0.0},
    ]
    assert body["data"]["years"] == [2024, 2025]
    windowed = analyst.get("/api/v1/intelligence/trends?from=2025-01-01").get_json()
    assert windowed["data"] == {**body["data"], "seizures": 1, "years": [2025]}
    assert analyst.get("/api/v1/intelligence/country-roles?from=2025-01-01&to=2024-01-01"
                       ).status_code == 400
    assert analyst.get("/api/v1/intelligence/country-roles?clusters=0").status_code == 400


# --------------------------------------------------------------------------- permission matrix
ENDPOINTS = [
    ("GET", "/api/v1/seizures/{a1}/record", "record.read"),
    ("PUT", "/api/v1/seizures/{a1}/record", "evidence.write"),
    ("GET", "/api/v1/intelligence/vocabularies", "vocab.read"),
    ("PUT", "/api/v1/intelligence/vocabularies/disposals/burnt", "vocabulary.manage"),
    ("GET", "/api/v1/intelligence/aitr.csv", "intelligence.read"),
    ("GET", "/api/v1/intelligence/aitr.xlsx", "intelligence.read"),
    ("POST", "/api/v1/intelligence/aitr", "evidence.write"),
    ("GET", "/api/v1/intelligence/etis", "intelligence.read"),
    ("GET", "/api/v1/intelligence/trends", "intelligence.read"),
    ("GET", "/api/v1/intelligence/country-roles", "intelligence.read"),
    ("GET", "/api/v1/intelligence/network", "intelligence.read"),
    ("GET", "/api/v1/intelligence/network.csv", "intelligence.read"),
    ("GET", "/api/v1/intelligence/network.geojson", "intelligence.read"),
    ("GET", "/api/v1/intelligence/network.graphml", "intelligence.read"),
    ("GET", "/api/v1/intelligence/network.svg", "intelligence.read"),
    ("GET", "/api/v1/intelligence/origins.geojson", "intelligence.read"),
]
ALLOWED = {
    "record.read": {"admin", "custodian", "analyst", "reviewer", "investigator"},
    "vocab.read": {"admin", "custodian", "analyst", "reviewer", "investigator"},
    "evidence.write": {"custodian", "analyst"},
    "vocabulary.manage": {"admin"},
    "intelligence.read": {"analyst", "reviewer", "investigator"},
}


@pytest.mark.parametrize("role", ["admin", "custodian", "analyst", "reviewer", "investigator",
                                  "researcher"])
def test_permission_matrix(app, login, trees, client, role):
    caller = login(role)
    for method, template, permission in ENDPOINTS:
        url = template.format(a1=trees["a1"].seizure_id)
        if method == "POST":
            answer = _upload(caller, aitr.write_csv([]), "t.csv")
        elif method == "PUT":
            answer = caller.put(url, json={"label": "Burnt"} if "vocab" in url else {})
        else:
            answer = caller.get(url)
        if role in ALLOWED[permission]:
            assert answer.status_code in (200, 201, 422), (role, method, url)
        else:
            assert answer.status_code == 403, (role, method, url, answer.status_code)
    assert client.get("/api/v1/intelligence/trends").status_code == 401


def test_the_matrix_covers_every_intelligence_endpoint(app):
    declared = {
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("api.") and ("/intelligence" in rule.rule
                                                 or rule.rule.endswith("/record"))
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    tested = {(method, template.replace("{a1}", "<int:record_id>")
               .replace("disposals/burnt", "<vocabulary>/<path:code>"))
              for method, template, _ in ENDPOINTS}
    assert declared == tested



@pytest.mark.parametrize("table_format", ["csv", "xlsx"])
def test_text_cells_come_back_exactly_after_neutralisation(table_format):
    texts = ["=1+1", "'=1+1", "''+2", "-", "@x", "plain", "it's", "'quoted'"]
    rows = [{column: None for column in aitr.AITR_COLUMNS} | {aitr.REFERENCE: "R",
             "Law under which charges were made": text} for text in texts]
    write = aitr.write_xlsx if table_format == "xlsx" else aitr.write_csv
    back = aitr.read_table(write(rows), f"t.{table_format}")
    assert [row["Law under which charges were made"] for _, row in back] == texts


# --------------------------------------------------------------------------- the network
def _link(first, second, relationships, lr, visible=True):
    return {"node1": f"seizure:{first}", "node2": f"seizure:{second}",
            "n_pairs": sum(relationships.values()), "same_animal": "same animal" in relationships,
            "relationships": relationships, "max_log10_lr": lr, "visible": visible}


def _done_request(session, case_id, user_id, links, finished, *, fold=True):
    """A finished match request with ``links`` in its result, folded into the network as
    the job does when it stores a result."""
    from lims.intelligence import fold_links
    from lims.models import MatchRequest

    request = MatchRequest(case_id=case_id, analyses=["kinship"], reference_sets=[],
                           status="done", result={"links": links, "nodes": {}},
                           requested_by_id=user_id, finished_at=finished)
    session.add(request)
    session.flush()
    if fold:
        fold_links(session, request.id, finished, request.result)
    session.commit()
    return request.id


@pytest.fixture
def linked(trees, session, login):
    """Links a1–a2 (same animal 2, PO 1), a1–b (full siblings), a2–animal (left out), and an
    older, superseded a1–a2 link."""
    analyst = login("analyst")
    a1, a2, b = (trees[key].seizure_id for key in ("a1", "a2", "b"))
    session.get(Seizure, a1).latitude, session.get(Seizure, a1).longitude = -4.05, 39.67
    session.commit()
    older = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    newer = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)
    _done_request(session, trees["a1"].case_id, analyst.user_id,
                  [_link(a1, a2, {"half siblings": 1}, 1.0)], older)
    _done_request(session, trees["a1"].case_id, analyst.user_id, [
        _link(a2, a1, {"same animal": 2, "parent–offspring": 1}, 12.5),
        _link(a1, b, {"full siblings": 1}, 4.2),
        {"node1": f"seizure:{a2}", "node2": "animal:7", "n_pairs": 1,
         "relationships": {"same animal": 1}, "max_log10_lr": 9.0, "visible": True},
        _link(a1, b, {"same animal": 1}, 8.0, visible=False),
    ], newer)
    return analyst


def test_the_network_holds_exactly_the_visible_links(login, trees, linked, session):
    a1, a2, b = (f"seizure:{trees[key].seizure_id}" for key in ("a1", "a2", "b"))
    investigator = login("investigator")
    network = investigator.get("/api/v1/intelligence/network").get_json()
    assert [node["id"] for node in network["nodes"]] == [a1, a2]
    (edge,) = network["edges"]
    assert (edge["source"], edge["target"]) == tuple(sorted((a1, a2), key=lambda k: int(
        k.split(":")[1])))
    assert edge["relationships"] == {"same_animal": 2, "parent_offspring": 1}
    assert edge["n_pairs"] == 3 and edge["strongest"] == "same_animal"
    assert edge["best_log10_lr"] == 12.5
    assert network["data"]["seizures"] == 2 and network["data"]["years"] == [2024, 2025]

    session.add(CaseShare(case_id=trees["b"].case_id, agency_id=investigator.agency_id))
    session.commit()
    shared = investigator.get("/api/v1/intelligence/network").get_json()
    assert {(e["source"], e["target"]) for e in shared["edges"]} == {
        tuple(sorted(pair, key=lambda k: int(k.split(":")[1]))) for pair in ((a1, a2), (a1, b))}

    def ids(query):
        answer = investigator.get(f"/api/v1/intelligence/network?{query}")
        assert answer.status_code == 200, answer.get_json()
        return {node["id"] for node in answer.get_json()["nodes"]}

    assert ids("relationship=full_sibling") == {a1, b}
    assert ids("from=2024-01-01&to=2024-12-31") == {a1, b}
    assert ids("from=2025-01-01") == set()
    assert ids("country=Kenya") == {a1, a2, b}  # the factory's free-text country
    assert investigator.get("/api/v1/intelligence/network?relationship=cousin").status_code \
        == 400


def test_the_network_downloads_carry_the_same_data(login, trees, linked):
    import json
    import xml.etree.ElementTree as ElementTree

    import networkx as nx

    investigator = login("investigator")
    network = investigator.get("/api/v1/intelligence/network").get_json()
    rows = list(csv.DictReader(io.StringIO(
        investigator.get("/api/v1/intelligence/network.csv").data.decode("utf-8-sig"))))
    assert [(r["seizure1"], r["seizure2"], r["same_animal"], r["parent_offspring"],
             r["best_log10_lr"]) for r in rows] == [("KE-SZ", "KE2-SZ", "2", "1", "12.5")]
    assert rows[0]["seizure1_date"] == "2024-03-01"

    geo = json.loads(investigator.get("/api/v1/intelligence/network.geojson").data)
    points = {f["id"]: f["geometry"] for f in geo["features"] if f["properties"]["kind"] ==
              "seizure"}
    assert points[f"seizure:{trees['a1'].seizure_id}"] == {"type": "Point",
                                                            "coordinates": [39.67, -4.05]}
    assert points[f"seizure:{trees['a2'].seizure_id}"] is None
    assert geo["data"] == network["data"]

    graphml = investigator.get("/api/v1/intelligence/network.graphml").data
    graph = nx.read_graphml(io.BytesIO(graphml))
    assert set(graph.nodes) == {node["id"] for node in network["nodes"]}
    (edge,) = graph.edges(data=True)
    assert edge[2]["n_same_animal"] == 2 and edge[2]["best_log10_lr"] == 12.5

    svg = investigator.get("/api/v1/intelligence/network.svg")
    assert svg.mimetype == "image/svg+xml"
    root = ElementTree.fromstring(svg.data)
    assert root.tag.endswith("svg")
    description = "".join(root.find(".//{http://purl.org/dc/elements/1.1/}description").itertext())
    assert description.startswith("2 seizures you may see, 2024–2025.")
    assert "not trends in trafficking" in description


def _link_rows(session):
    import sqlalchemy as sa

    from lims.models import SeizureLink

    session.expire_all()
    return sorted(tuple(row) for row in session.execute(sa.select(SeizureLink.__table__)))


def test_links_folded_as_requests_finish_equal_a_full_rerun_in_any_order(
    trees, session, login
):
    """Requests folded one by one (in the order they finish, and shuffled) keep exactly the
    links that a rebuild from every stored result gives."""
    import random

    import sqlalchemy as sa

    from lims.intelligence import fold_links, rebuild_links
    from lims.models import MatchRequest, SeizureLink

    analyst = login("analyst")
    a1, a2, b = (trees[key].seizure_id for key in ("a1", "a2", "b"))
    base = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    batches = [
        [_link(a1, a2, {"half siblings": 1}, 1.0)],
        [_link(a1, b, {"full siblings": 2}, 3.0)],
        [_link(a2, a1, {"same animal": 2}, 11.0), _link(a2, b, {"half siblings": 1}, 0.5)],
        [_link(a1, b, {"parent–offspring": 1}, 6.0, visible=False)],
        [_link(b, a1, {"parent–offspring": 1, "full siblings": 1}, 6.5)],
    ]
    # Two requests finish at the same moment: the later id wins the tie.
    times = [base, base + dt.timedelta(days=1), base + dt.timedelta(days=2),
             base + dt.timedelta(days=3), base + dt.timedelta(days=2)]
    ids = [_done_request(session, trees["a1"].case_id, analyst.user_id, links, when)
           for links, when in zip(batches, times, strict=True)]
    incremental = _link_rows(session)
    by_pair = {(row[0], row[1]): row for row in incremental}
    first, second = sorted((a1, b))
    assert by_pair[(first, second)][2:7] == (0, 1, 1, 0, 6.5)  # the last request of the tie
    assert by_pair[(first, second)][7] == ids[4]
    assert by_pair[tuple(sorted((a1, a2)))][2:7] == (2, 0, 0, 0, 11.0)

    rebuild_links(session)
    assert _link_rows(session) == incremental
    order = list(zip(ids, times, strict=True))
    for seed in range(3):
        random.Random(seed).shuffle(order)
        session.execute(sa.delete(SeizureLink))
        for request_id, when in order:
            fold_links(session, request_id, when, session.get(MatchRequest, request_id).result)
        session.commit()
        assert _link_rows(session) == incremental, seed


def _surface(seizure_id, lat, lon, region):
    return {"node": f"seizure:{seizure_id}", "group": "x", "best_lat": lat, "best_lon": lon,
            "max_posterior": 0.2, "area50_km2": 1.0, "area90_km2": 5000.0, "posterior": [],
            "region50": [], "region90": region}


def test_origins_come_from_the_latest_result_and_only_for_visible_seizures(
    login, trees, session, monkeypatch
):
    """A 2 x 3 grid (lat -10..0..10, lon 30..35..40..45) with in-range cells 1, 3 and 5
    (row-major): region90 [0, 2] are cells 1 and 5, i.e. lat -10..0 lon 35..40 and lat 0..10
    lon 40..45."""
    import json

    import lims.intelligence
    from lims.intelligence import fold_origins
    from lims.models import MatchRequest

    analyst = login("analyst")
    a1, b = trees["a1"].seizure_id, trees["b"].seizure_id
    session.get(Seizure, a1).latitude, session.get(Seizure, a1).longitude = -4.0, 39.7
    grid = {"lat_edges": [-10.0, 0.0, 10.0], "lon_edges": [30.0, 35.0, 40.0, 45.0],
            "in_range": [1, 3, 5]}
    # Folded as the job folds a result it stores, the later request last and then first:
    # the later one's origin wins either way.
    requests = []
    for when, surfaces in ((1, [_surface(a1, 1.0, 31.0, [1])]),
                           (2, [_surface(a1, -2.5, 36.0, [0, 2]), _surface(b, 3.0, 33.0, [1]),
                                {**_surface(0, 0, 0, []), "node": "held:1"}])):
        request = MatchRequest(
            case_id=trees["a1"].case_id, analyses=["geographic"], reference_sets=[],
            status="done", result={"geographic": {"grid": grid, "surfaces": surfaces}},
            requested_by_id=analyst.user_id,
            finished_at=dt.datetime(2025, 1, when, tzinfo=dt.UTC))
        session.add(request)
        session.flush()
        requests.append(request)
    for request in (*requests, *reversed(requests)):
        fold_origins(session, request.id, request.finished_at, request.result)
    session.commit()
    investigator = login("investigator")

    def unread(result):
        raise AssertionError("the origins map read a stored result")

    monkeypatch.setattr(lims.intelligence, "stored_origins", unread)
    geo = json.loads(investigator.get("/api/v1/intelligence/origins.geojson").data)
    assert {f["properties"]["reference"] for f in geo["features"]} == {"KE-SZ"}
    kinds = {f["properties"]["kind"]: f["geometry"] for f in geo["features"]}
    assert kinds["seizure"] == {"type": "Point", "coordinates": [39.7, -4.0]}
    assert kinds["most_likely_origin"] == {"type": "Point", "coordinates": [36.0, -2.5]}
    assert kinds["region90"]["coordinates"] == [
        [[[35.0, -10.0], [40.0, -10.0], [40.0, 0.0], [35.0, 0.0], [35.0, -10.0]]],
        [[[40.0, 0.0], [45.0, 0.0], [45.0, 10.0], [40.0, 10.0], [40.0, 0.0]]],
    ]
    assert geo["data"]["seizures"] == 1
    session.add(CaseShare(case_id=trees["b"].case_id, agency_id=investigator.agency_id))
    session.commit()
    geo = json.loads(investigator.get("/api/v1/intelligence/origins.geojson").data)
    assert {f["properties"]["reference"] for f in geo["features"]} == {"KE-SZ", "UG-SZ"}
    assert investigator.get("/api/v1/intelligence/origins.geojson?from=2030-01-01&to=2020-01-01"
                            ).status_code == 400
