"""Exchange between two real LIMS instances on loopback (issue 16's done-when).

Instance A (the test database: SQLite, and PostgreSQL when configured) holds seizure SZ-A;
instance B (a SQLite file of its own) holds SZ-B and SZ-C. The scenario of
``test_match_requests`` plants a tusk pair split between SZ-A and SZ-B and a parent–offspring
pair between SZ-A and SZ-C. Both instances run as Werkzeug servers in threads; every exchange
goes over HTTP between them.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import shutil
import socket
import threading
import urllib.request
from dataclasses import dataclass

import numpy as np
import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from werkzeug.serving import make_server

from dnatrack.formats import interchange
from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import load_panel
from dnatrack.reference import load_reference_set
from dnatrack.simulate import simulate
from lims import create_app, exchange
from lims.auth import new_api_token
from lims.custody import canonical_json, format_time
from lims.extensions import db
from lims.migrate import upgrade
from lims.models import (
    Agency,
    ApiToken,
    AuditRecord,
    Case,
    ExchangeEvent,
    ExchangePackage,
    ExchangeProfile,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    User,
    hash_token,
)
from lims.permissions import ROLES, permissions_of
from matching.identity import IdentityCriteria
from matching.kinship import DEFAULT_CUTOFFS, KinshipSearch
from matching.pair_search import Scoring, find_pairs, theta_for
from matching.relationships import RELATIONSHIPS, ErrorModel
from tests.lims.conftest import TEST_PASSWORD_METHOD
from tests.lims.test_match_requests import PANEL, REFERENCE, SCENARIO_SEED, SPEC, load_profiles

RELATED = {"same_animal", "parent_offspring"}


@pytest.fixture(scope="module")
def scenario():
    return simulate(load_reference_set(REFERENCE), SPEC, seed=SCENARIO_SEED)


@pytest.fixture(scope="module")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("exchange-template") / "template.sqlite"
    upgrade(f"sqlite:///{path}")
    return path


@dataclass
class Instance:
    app: object
    url: str
    agency_id: int
    tokens: dict  # role -> API token

    def call(self, method: str, path: str, body=None, token: str | None = None,
             role: str = "admin", raw: bytes | None = None) -> tuple[int, bytes]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        request = urllib.request.Request(
            self.url + "/api/v1" + path, data=data, method=method,
            headers={"Authorization": f"Bearer {token or self.tokens[role]}",
                     "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def json(self, method: str, path: str, body=None, **options) -> tuple[int, dict]:
        status, raw = self.call(method, path, body, **options)
        return status, json.loads(raw)

    def count(self, model) -> int:
        with self.app.app_context():
            return db.session.scalar(sa.select(sa.func.count()).select_from(model))


def _serve(app):
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, f"http://127.0.0.1:{server.server_port}"


def _staff(app, agency_id: int, code: str) -> dict:
    tokens = {}
    with app.app_context():
        for role in ROLES:
            token = new_api_token()
            user = User(agency_id=agency_id, username=f"{role}-{code}", full_name=role)
            user.set_roles({role})
            db.session.add(user)
            db.session.flush()
            db.session.add(ApiToken(user_id=user.id, name="t", token_hash=hash_token(token)))
            tokens[role] = token
        db.session.commit()
    return tokens


def _instance(database_url: str, tmp_path, name: str, code: str, **config):
    app = create_app({"TESTING": True, "DATABASE_URL": database_url, "SECRET_KEY": "test secret",
                      "PASSWORD_HASH_METHOD": TEST_PASSWORD_METHOD,
                      "INSTANCE_PATH": str(tmp_path / f"instance-{name}"),
                      "EXCHANGE_TIMEOUT_SECONDS": 20.0, **config})
    with app.app_context():
        agency = Agency(code=code, name=f"Laboratory {code}", kind="laboratory")
        db.session.add(agency)
        db.session.commit()
        agency_id = agency.id
    return app, agency_id


@pytest.fixture
def world(database_url, sqlite_template, tmp_path, scenario):
    """Instances A and B serving on loopback, partners of each other, each with its profiles."""
    b_path = tmp_path / "b.sqlite"
    shutil.copyfile(sqlite_template, b_path)
    app_a, agency_a = _instance(database_url, tmp_path, "a", "KWS")
    app_b, agency_b = _instance(f"sqlite:///{b_path}", tmp_path, "b", "UWA")
    observed = scenario.observed
    rows = {name: [i for i, g in enumerate(observed.group) if g == name]
            for name in ("SZ-A", "SZ-B", "SZ-C")}
    load_profiles(app_a, {"A": agency_a}, observed.take(rows["SZ-A"]), {"SZ-A": "A"})
    load_profiles(app_b, {"B": agency_b}, observed.take(rows["SZ-B"] + rows["SZ-C"]),
                  {"SZ-B": "B", "SZ-C": "B"})
    servers = []
    instances = {}
    for name, app, agency in (("A", app_a, agency_a), ("B", app_b, agency_b)):
        server, url = _serve(app)
        servers.append(server)
        instances[name] = Instance(app, url, agency, _staff(app, agency, name))
    yield instances
    for server in servers:
        server.shutdown()
        server.server_close()
    for instance in instances.values():
        db.engine_for(instance.app).dispose()


def public_key(instance: Instance) -> str:
    return exchange.public_key_text(exchange.app_signing_key(instance.app))


def case_id(instance: Instance, reference: str) -> int:
    with instance.app.app_context():
        return db.session.scalar(sa.select(Case.id).where(Case.reference == reference))


@pytest.fixture
def partners(world):
    """A and B registered with each other: A shares its case A-CASE, B all its cases, on the
    elephant panel. Returns the partner ids on each side."""
    a, b = world["A"], world["B"]
    status, on_b = b.json("POST", "/exchange/partners", {
        "name": "kws", "base_url": a.url, "public_key": public_key(a),
        "shared_panels": [PANEL], "share_all_cases": True})
    assert status == 201, on_b
    status, on_a = a.json("POST", "/exchange/partners", {
        "name": "uwa", "base_url": b.url, "public_key": public_key(b),
        "outbound_token": on_b["issued_token"], "shared_panels": [PANEL],
        "shared_case_ids": [case_id(a, "A-CASE")]})
    assert status == 201, on_a
    assert "outbound_token" not in on_a
    status, _ = b.json("PATCH", f"/exchange/partners/{on_b['id']}",
                       {"outbound_token": on_a["issued_token"]})
    assert status == 200
    return {"A": on_a["id"], "B": on_b["id"], "token_for_a": on_b["issued_token"]}


def truth_pairs(scenario) -> dict[str, tuple[str, str]]:
    """Relationship -> (SZ-A item, other item) of the planted pairs."""
    pairs = {}
    for truth in scenario.relationships:
        if truth.relationship in RELATED:
            one, other = sorted((truth.item1, truth.item2),
                                key=lambda item: not item.startswith("SZ-A"))
            pairs[truth.relationship] = (one, other)
    return pairs


def engine_log10_lr(scenario, item1: str, item2: str) -> dict[str, float]:
    """The engine's own log10 LRs of one pair, run directly on the two profiles."""
    reference = load_reference_set(REFERENCE)
    panel = load_panel(PANEL)
    table = scenario.observed.select_loci(panel.locus_names)
    ids = [str(i) for i in table.profile_ids]
    one, other = table.take([ids.index(item1)]), table.take([ids.index(item2)])
    one = GenotypeTable(one.alleles, one.profile_ids, one.loci)
    other = GenotypeTable(other.alleles, other.profile_ids, other.loci)
    reference_table = reference.table.select_loci(panel.locus_names)
    scoring = Scoring.for_reference(reference_table, theta_for(reference).value, ErrorModel(),
                                    frequencies="pooled")
    search = KinshipSearch.from_reference(
        reference_table, one, other, **scoring.search_options(), relationships=tuple(RELATIONSHIPS),
        cutoffs=dict(DEFAULT_CUTOFFS))
    row = find_pairs(search, one, other, criteria=IdentityCriteria("moderate")).rows[0]
    return row


def test_a_package_goes_from_a_to_b_and_b_finds_the_planted_pairs(world, partners, scenario):
    a, b = world["A"], world["B"]
    status, content = a.call("POST", f"/exchange/partners/{partners['A']}/packages",
                             {"panel": PANEL})
    assert status == 200, content
    package = json.loads(content)["payload"]
    # Only released profiles of the shared case leave, without names or internal references.
    sz_a = [str(i) for i, g in zip(scenario.observed.profile_ids, scenario.observed.group,
                                   strict=True) if g == "SZ-A"]
    assert len(package["profiles"]) == len(sz_a)
    for secret in [*sz_a, "SZ-A", "A-CASE", "KWS", "Laboratory"]:
        assert secret.encode() not in content
    assert set(package["profiles"][0]) == {"reference", "alleles", "sample_type", "species",
                                           "seizure_country", "seizure_year"}
    assert package["panel"]["definition"]["name"] == PANEL
    assert {r["name"] for r in package["reference_sets"]} >= {REFERENCE}

    status, imported = b.json("POST", "/exchange/packages", raw=content)
    assert status == 201, imported
    assert imported["profiles"] == len(sz_a)
    status, found = b.json("GET", f"/exchange/imported-matches?panel={PANEL}"
                                  f"&reference_set={REFERENCE}", role="investigator")
    assert status == 200, found
    references = {p["reference"]: p for p in package["profiles"]}
    expected = truth_pairs(scenario)
    for relationship, (item_a, item_b) in expected.items():
        row = engine_log10_lr(scenario, item_a, item_b)
        assert row["relationship"] == relationship
        hits = [m for m in found["matches"] if m["barcode"] == item_b
                and m["imported"].removeprefix("kws:") in references]
        assert [m["relationship"] for m in hits] == [relationship]
        assert hits[0]["log10_lr"] == pytest.approx(row["log10_lr"], abs=1e-3)
    # Imported profiles keep their origin and cannot be changed, even in the database.
    with b.app.app_context():
        profile = db.session.scalars(sa.select(ExchangeProfile)).first()
        assert profile.partner.name == "kws"
        with pytest.raises(sa.exc.DatabaseError):
            db.session.execute(sa.update(ExchangeProfile).values(seizure_year=1999))
            db.session.flush()
        db.session.rollback()
        kinds = [e.kind for e in db.session.scalars(sa.select(ExchangeEvent))]
        assert "import" in kinds
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditRecord).where(
            AuditRecord.table_name == "exchange_package")) == 1


def _package(a: Instance, partner_id: int) -> bytes:
    status, content = a.call("POST", f"/exchange/partners/{partner_id}/packages",
                             {"panel": PANEL})
    assert status == 200
    return content


def _resigned(content: bytes, key: Ed25519PrivateKey, **changes) -> bytes:
    payload = {**json.loads(content)["payload"], **changes}
    return exchange.sign_payload(payload, key)


def _attack(attack: str, content: bytes, a_key: Ed25519PrivateKey) -> bytes:
    """``content`` altered as ``attack`` says (a replay is the package as it is)."""
    if attack == "tampered":
        # One byte: the first allele digit of the first profile, one higher.
        position = content.index(b'"alleles"')
        while not chr(content[position]).isdigit():
            position += 1
        changed = bytes([(content[position] - 48 + 1) % 10 + 48])
        return content[:position] + changed + content[position + 1:]
    if attack == "unknown_key":
        stranger = Ed25519PrivateKey.generate()
        return _resigned(content, stranger, sender_key=exchange.public_key_text(stranger))
    if attack == "expired":
        past = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
        return _resigned(content, a_key, created_at=format_time(past - dt.timedelta(days=1)),
                         expires_at=format_time(past))
    if attack == "wrong_recipient":
        other = exchange.public_key_text(Ed25519PrivateKey.generate())
        return _resigned(content, a_key, recipient_key=other)
    if attack == "bad_allele":
        payload = json.loads(content)["payload"]
        payload["profiles"][-1]["alleles"]["FH67"] = [1, 2]
        return exchange.sign_payload(payload, a_key)
    if attack == "not_json":
        return content[: len(content) // 2]
    return content


def test_refused_packages_give_their_reason_and_import_nothing(world, partners):
    a, b = world["A"], world["B"]
    a_key = exchange.app_signing_key(a.app)
    content = _package(a, partners["A"])
    expected = {"tampered": ("bad_signature", 422), "unknown_key": ("unknown_signer", 422),
                "expired": ("expired", 422), "wrong_recipient": ("wrong_recipient", 422),
                "bad_allele": ("invalid_profile", 422), "not_json": ("malformed", 422)}
    for attack, (code, status) in expected.items():
        before = (b.count(ExchangePackage), b.count(ExchangeProfile), b.count(AuditRecord))
        answer_status, answer = b.json("POST", "/exchange/packages",
                                       raw=_attack(attack, content, a_key))
        assert (answer["error"], answer_status) == (code, status), (attack, answer)
        assert answer["message"]
        after = (b.count(ExchangePackage), b.count(ExchangeProfile), b.count(AuditRecord))
        assert after == before, attack
    # The package itself imports once; a replay is refused and changes nothing.
    assert b.call("POST", "/exchange/packages", raw=content)[0] == 201
    before = (b.count(ExchangePackage), b.count(ExchangeProfile), b.count(AuditRecord))
    status, answer = b.json("POST", "/exchange/packages", raw=content)
    assert (answer["error"], status) == ("replayed", 409)
    assert (b.count(ExchangePackage), b.count(ExchangeProfile), b.count(AuditRecord)) == before


def test_a_search_of_b_answers_hit_or_no_hit_and_nothing_else(world, partners, scenario):
    a, b = world["A"], world["B"]
    sz_a = [str(i) for i, g in zip(scenario.observed.profile_ids, scenario.observed.group,
                                   strict=True) if g == "SZ-A"]
    expected = truth_pairs(scenario)
    # The raw answer B gives a partner.
    with a.app.app_context():
        key = exchange.app_signing_key(a.app)
        partner = db.session.get(exchange.ExchangePartner, partners["A"])
        profiles = [{"reference": p.reference, "alleles": p.alleles}
                    for p in exchange.shared_profiles(db.session, partner, PANEL, key)]
    status, raw = b.call("POST", "/exchange/search", {"panel": PANEL, "profiles": profiles,
                                                      "reference_set": REFERENCE},
                         token=partners["token_for_a"])
    assert status == 200, raw
    body = json.loads(raw)
    assert list(body) == ["results"]
    for result in body["results"]:
        assert set(result) == {"reference", "hit", "matches"}
        for match in result["matches"]:
            assert set(match) == {"relationship", "log10_lr", "partner_reference"}
    with b.app.app_context():
        b_words = [w for row in db.session.execute(sa.select(
            Sample.barcode, Seizure.reference, Case.reference, Item.label).join(
            Item, Item.id == Sample.item_id).join(Seizure, Seizure.id == Item.seizure_id).join(
            Case, Case.id == Sample.case_id)) for w in row]
        b_alleles = db.session.scalars(sa.select(GenotypeProfile.alleles)).all()
    for word in [*b_words, "UWA"]:
        assert word.encode() not in raw
    assert not any(json.dumps(alleles).encode()[1:-1] in raw for alleles in b_alleles)
    hits = sum(r["hit"] for r in body["results"])
    assert hits == len(expected)

    # The same through A's API, which names A's own samples, with B's references.
    status, answer = a.json("POST", "/exchange/partner-search",
                            {"panel": PANEL, "barcodes": sz_a, "reference_set": REFERENCE},
                            role="investigator")
    assert status == 200, answer
    (only,) = answer["partners"]
    assert only["status"] == "answered"
    by_barcode = {r["barcode"]: r for r in only["results"]}
    for relationship, (item_a, _) in expected.items():
        assert [m["relationship"] for m in by_barcode[item_a]["matches"]] == [relationship]
    assert sum(r["hit"] for r in only["results"]) == len(expected)

    # Follow-up: the details of the same-animal match, once B's admin approves.
    match = by_barcode[expected["same_animal"][0]]["matches"][0]
    status, sent = a.json("POST", "/exchange/partner-requests", {
        "partner_id": partners["A"], "reference": match["partner_reference"], "panel": PANEL,
        "reason": "case KE-2026-17, prosecution"}, role="investigator")
    assert sent["status"] == "pending", sent
    path = f"/exchange/partner-requests/{partners['A']}/{sent['id']}"
    assert "details" not in a.json("GET", path, role="investigator")[1]
    status, queue = b.json("GET", "/exchange/follow-ups?status=pending")
    assert [q["reference"] for q in queue["items"]] == [match["partner_reference"]]
    assert b.json("POST", f"/exchange/follow-ups/{sent['id']}/decision", {"approve": True},
                  role="investigator")[0] == 403
    status, decided = b.json("POST", f"/exchange/follow-ups/{sent['id']}/decision",
                             {"approve": True, "note": "approved under MoU"})
    assert decided["status"] == "approved"
    status, raw = a.call("GET", path, role="investigator")
    answer = json.loads(raw)
    assert answer["details"]["sample_barcode"] == expected["same_animal"][1]
    assert answer["details"]["seizure"]["reference"] == "SZ-B"
    others = [w for w in b_words if w.startswith("SZ-") and "-T" in w
              and w != expected["same_animal"][1]]
    assert others and not any(w.encode() in raw for w in others)


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_partner_that_is_down_or_silent_is_reported_unreachable(world, partners, scenario):
    a = world["A"]
    a.app.config["EXCHANGE_TIMEOUT_SECONDS"] = 4.0  # B answers well within it
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(0)  # accepts connections into the backlog, never answers
    try:
        for name, port in (("down", _dead_port()), ("silent", silent.getsockname()[1])):
            status, _ = a.json("POST", "/exchange/partners", {
                "name": name, "base_url": f"http://127.0.0.1:{port}",
                "public_key": exchange.public_key_text(Ed25519PrivateKey.generate()),
                "outbound_token": "dtx_nothing", "shared_panels": [PANEL],
                "shared_case_ids": [case_id(a, "A-CASE")]})
            assert status == 201
        sz_a = [str(i) for i, g in zip(scenario.observed.profile_ids, scenario.observed.group,
                                       strict=True) if g == "SZ-A"]
        status, answer = a.json("POST", "/exchange/partner-search",
                                {"panel": PANEL, "barcodes": sz_a[:2], "reference_set": REFERENCE},
                                role="analyst")
    finally:
        silent.close()
    assert status == 200, answer
    statuses = {p["partner"]: p["status"] for p in answer["partners"]}
    assert statuses == {"uwa": "answered", "down": "unreachable", "silent": "unreachable"}


def test_searches_are_rate_limited_per_partner(world, partners):
    b = world["B"]
    assert b.json("PATCH", f"/exchange/partners/{partners['B']}",
                  {"searches_per_minute": 1})[0] == 200
    body = {"panel": PANEL, "profiles": [], "reference_set": REFERENCE}
    assert b.call("POST", "/exchange/search", body, token=partners["token_for_a"])[0] == 200
    status, answer = b.json("POST", "/exchange/search", body, token=partners["token_for_a"])
    assert (status, answer["error"]) == (429, "rate_limited")
    assert b.call("POST", "/exchange/search", body, token="dtx_wrong")[0] == 401
    assert b.call("POST", "/exchange/search", body, role="admin")[0] == 401


@pytest.mark.parametrize("role", ROLES)
def test_only_admins_manage_partners(login, role):
    caller = login(role)
    allowed = role == "admin"
    assert ("exchange.manage" in permissions_of({role})) == allowed
    response = caller.post("/api/v1/exchange/partners", json={
        "name": f"p-{role}", "base_url": "http://127.0.0.1:9",
        "public_key": exchange.public_key_text(Ed25519PrivateKey.generate())})
    assert response.status_code == (201 if allowed else 403)
    for method, path in (("GET", "/exchange/partners"), ("GET", "/exchange/follow-ups"),
                         ("POST", "/exchange/packages"), ("POST", "/exchange/partners/1/packages"),
                         ("POST", "/exchange/follow-ups/1/decision"),
                         ("POST", "/exchange/partners/1/interchange"),
                         ("POST", "/exchange/partners/1/interchange-imports")):
        response = caller.client.open("/api/v1" + path, method=method, data=b"{}",
                                      headers=caller.headers, content_type="application/json")
        assert (response.status_code != 403) == allowed, (method, path, response.status_code)
    for method, path, permission in (("POST", "/exchange/partner-search", "match.request"),
                                     ("POST", "/exchange/partner-requests", "match.request"),
                                     ("GET", "/exchange/imported-matches", "exchange.read")):
        response = caller.client.open("/api/v1" + path, method=method, data=b"{}",
                                      headers=caller.headers, content_type="application/json")
        may = permission in permissions_of({role})
        assert (response.status_code != 403) == may, (method, path, response.status_code)
    assert permissions_of({"researcher"}).isdisjoint({"exchange.read", "exchange.manage"})


def test_partner_endpoints_need_a_partner_token(client, login):
    user = login("admin")
    for method, path in (("POST", "/exchange/search"), ("POST", "/exchange/requests"),
                         ("GET", "/exchange/requests/1")):
        for headers in ({}, user.headers, {"Authorization": "Bearer dtx_unknown"}):
            response = client.open("/api/v1" + path, method=method, json={}, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.get_json()["error"] == "unauthorized"


def test_partner_records_follow_need_to_know_and_input_is_checked(world, partners):
    a = world["A"]
    with a.app.app_context():
        other = Agency(code="OTHER", name="Other agency", kind="laboratory")
        db.session.add(other)
        db.session.commit()
        other_id = other.id
    token = new_api_token()
    with a.app.app_context():
        user = User(agency_id=other_id, username="admin-other", full_name="x")
        user.set_roles({"admin"})
        db.session.add(user)
        db.session.flush()
        db.session.add(ApiToken(user_id=user.id, name="t", token_hash=hash_token(token)))
        db.session.commit()
    assert a.call("GET", f"/exchange/partners/{partners['A']}", token=token)[0] == 404
    status, listed = a.json("GET", "/exchange/partners", token=token)
    assert listed["items"] == []
    # Another agency's case cannot be shared; a bad key or URL is named.
    status, answer = a.json("POST", "/exchange/partners", {
        "name": "x", "base_url": "ftp://x", "public_key": "bm90IGEga2V5"}, token=token)
    assert status == 422 and answer["details"]["problems"][0]["field"] == "public_key"
    key = exchange.public_key_text(Ed25519PrivateKey.generate())
    status, answer = a.json("POST", "/exchange/partners", {
        "name": "x", "base_url": "http://x", "public_key": key,
        "shared_case_ids": [case_id(a, "A-CASE")]}, token=token)
    assert status == 422 and answer["details"]["problems"][0]["field"] == "shared_case_ids"
    # The other agency's admin cannot export A's profiles through A's partner.
    assert a.call("POST", f"/exchange/partners/{partners['A']}/packages", {"panel": PANEL},
                  token=token)[0] == 404


def test_released_profiles_outside_the_shared_scope_never_leave(world, partners, scenario):
    a = world["A"]
    with a.app.app_context():
        admin = db.session.scalar(sa.select(User).where(User.username == "analyst-A"))
        reviewer = db.session.scalar(sa.select(User).where(User.username == "reviewer-A"))
        other_case = Case(agency_id=a.agency_id, reference="A-SECRET", title="t")
        shared_case = db.session.get(Case, case_id(a, "A-CASE"))
        samples = []
        for barcode, case in (("SECRET-1", other_case), ("PENDING-1", shared_case)):
            seizure = Seizure(case=case, reference=f"SZ-{barcode}")
            item = Item(seizure=seizure, label="T1", kind="tusk")
            samples.append(Sample(barcode=barcode, case=case, sample_type="tissue", item=item))
            db.session.add_all([seizure, item, samples[-1]])
        secret, pending = samples
        db.session.flush()
        alleles = {"FH67": [111, 113]}
        db.session.add_all([
            GenotypeProfile(sample_id=secret.id, panel=PANEL, alleles={"FH67": [201, 203]},
                            n_loci_typed=1, state="released", analyst_id=admin.id,
                            reviewer_id=reviewer.id),
            GenotypeProfile(sample_id=pending.id, panel=PANEL, alleles=alleles, n_loci_typed=1,
                            state="pending", analyst_id=admin.id)])
        db.session.commit()
        secret_id, pending_id = secret.id, pending.id
    payload = json.loads(_package(a, partners["A"]))["payload"]
    with a.app.app_context():
        key = exchange.app_signing_key(a.app)
        leaked = {exchange.opaque_reference(key, partners["A"], i, PANEL)
                  for i in (secret_id, pending_id)}
    assert not leaked & {p["reference"] for p in payload["profiles"]}
    assert [201, 203] not in [p["alleles"].get("FH67") for p in payload["profiles"]]
    status, answer = a.json("POST", "/exchange/partner-search",
                            {"panel": PANEL, "barcodes": ["SECRET-1"],
                             "reference_set": REFERENCE}, role="investigator")
    assert status == 422 and "not shared" in answer["message"]


def test_signing_key_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "instance" / exchange.SIGNING_KEY_FILE
    key = exchange.load_signing_key(path)
    assert oct(path.stat().st_mode & 0o777) == "0o600"
    assert exchange.public_key_text(exchange.load_signing_key(path)) == \
        exchange.public_key_text(key)
    raw = base64.b64decode(exchange.public_key_text(key))
    assert len(raw) == 32
    signature = key.sign(canonical_json({"a": 1}))
    key.public_key().verify(signature, b'{"a":1}')
    assert np.frombuffer(raw, dtype=np.uint8).any()


def test_the_command_line_exports_and_imports_packages(app, agencies, runner, tmp_path,
                                                       monkeypatch, scenario):
    """Two instance folders (two signing keys) on one database: A exports for its partner
    "peer", B (the peer) imports from its partner "origin"; a second import is a replay."""
    rows = [i for i, g in enumerate(scenario.observed.group) if g == "SZ-A"]
    load_profiles(app, {"A": agencies["A"]}, scenario.observed.take(rows), {"SZ-A": "A"})
    folders = {name: tmp_path / f"cli-{name}" for name in ("a", "b")}
    keys = {name: exchange.public_key_text(exchange.load_signing_key(
        folder / exchange.SIGNING_KEY_FILE)) for name, folder in folders.items()}
    with app.app_context():
        for name, key, agency in (("peer", keys["b"], "A"), ("origin", keys["a"], "B")):
            db.session.add(exchange.ExchangePartner(
                agency_id=agencies[agency], name=name, base_url="http://127.0.0.1:9",
                public_key=key, inbound_token_hash=hash_token(name), shared_panels=[PANEL],
                share_all_cases=True))
        db.session.commit()
    package = tmp_path / "package.json"
    monkeypatch.setenv("DNATRACK_INSTANCE_PATH", str(folders["a"]))
    assert runner("exchange", "key").out.strip() == keys["a"]
    result = runner("exchange", "export", "--partner", "peer", "--panel", PANEL, "-o",
                    str(package))
    assert result.status == 0, result.err
    monkeypatch.setenv("DNATRACK_INSTANCE_PATH", str(folders["b"]))
    result = runner("exchange", "import", str(package))
    assert result.status == 0, result.err
    assert f"{len(rows)} profiles on {PANEL} imported" in result.out
    result = runner("exchange", "import", str(package))
    assert result.status == 1
    assert "replayed: package" in result.err and "already imported" in result.err
    # The app's log line of the refusal, then the command's one-line error, no traceback.
    assert result.err.strip().splitlines()[-1].startswith("dnatrack exchange: error: ")
    assert "Traceback" not in result.err
    result = runner("exchange", "export", "--partner", "nobody", "--panel", PANEL, "-o",
                    str(package))
    assert result.status == 1 and "no partner 'nobody'" in result.err


def test_the_queue_page_lets_an_admin_approve_or_refuse_follow_ups(app, agencies):
    from lims.models import ExchangeFollowUp, ExchangePartner
    from tests.lims.web_support import make_browser

    with app.app_context():
        partner = ExchangePartner(
            agency_id=agencies["A"], name="peer", base_url="http://127.0.0.1:9",
            public_key=exchange.public_key_text(Ed25519PrivateKey.generate()),
            inbound_token_hash=hash_token("peer"), shared_panels=[PANEL])
        db.session.add(partner)
        db.session.flush()
        ids = []
        for reference in ("xaaa", "xbbb"):
            follow_up = ExchangeFollowUp(partner_id=partner.id, reference=reference,
                                         panel=PANEL, reason="seizure SZ-9 at Haiphong")
            db.session.add(follow_up)
            db.session.flush()
            ids.append(follow_up.id)
        db.session.commit()
    admin = make_browser(app, agencies, "admin")
    page = admin.get("/exchange").get_data(as_text=True)
    assert "seizure SZ-9 at Haiphong" in page and "xaaa" in page and "peer" in page
    assert admin.post(f"/exchange/follow-ups/{ids[0]}/decide", {f"f{ids[0]}-approve": "Approve"},
                      csrf=False).status_code == 400
    response = admin.post(f"/exchange/follow-ups/{ids[0]}/decide",
                          {f"f{ids[0]}-approve": "Approve", f"f{ids[0]}-note": "MoU 2026"})
    assert response.status_code == 302
    admin.post(f"/exchange/follow-ups/{ids[1]}/decide", {f"f{ids[1]}-refuse": "Refuse"})
    with app.app_context():
        decided = {f.reference: (f.status, f.decision_note, f.decided_by_id)
                   for f in db.session.scalars(sa.select(ExchangeFollowUp))}
    assert decided == {"xaaa": ("approved", "MoU 2026", admin.user_id),
                       "xbbb": ("refused", None, admin.user_id)}
    # Decided once; other roles and other agencies' admins see nothing.
    admin.post(f"/exchange/follow-ups/{ids[1]}/decide", {f"f{ids[1]}-approve": "Approve"})
    with app.app_context():
        assert db.session.get(ExchangeFollowUp, ids[1]).status == "refused"
    assert make_browser(app, agencies, "reviewer").get("/exchange").status_code == 403
    other = make_browser(app, agencies, "admin", agency="B")
    assert "xaaa" not in other.get("/exchange").get_data(as_text=True)
    assert other.post(f"/exchange/follow-ups/{ids[0]}/decide",
                      {f"f{ids[0]}-refuse": "Refuse"}).status_code == 404


def _upload(instance: Instance, partner_id: int, content: bytes, format: str,
            name: str = "profiles") -> tuple[int, dict]:
    """A multipart upload of an interchange file to ``instance`` by its admin."""
    with instance.app.test_client() as client:
        response = client.post(
            f"/api/v1/exchange/partners/{partner_id}/interchange-imports",
            headers={"Authorization": f"Bearer {instance.tokens['admin']}"},
            data={"panel": PANEL, "format": format,
                  "file": (io.BytesIO(content), name + interchange.EXTENSIONS.get(format, ".bin"))},
            content_type="multipart/form-data")
        return response.status_code, response.get_json()


def _counts(instance: Instance) -> tuple[int, int, int]:
    return (instance.count(ExchangePackage), instance.count(ExchangeProfile),
            instance.count(AuditRecord))


def test_interchange_files_go_from_a_to_b_with_the_shared_profiles_only(world, partners,
                                                                       scenario):
    """A exports its shared released profiles as CODIS-style XML and Type-18, B imports them
    (origin: partner kws) and finds the planted pairs; the genotypes are those of A's signed
    package; hostile, replayed and misfitting files change nothing on B."""
    a, b = world["A"], world["B"]
    payload = json.loads(_package(a, partners["A"]))["payload"]
    expected = {p["reference"]: p["alleles"] for p in payload["profiles"]}
    files = {}
    for format in interchange.FORMATS:
        status, content = a.call("POST", f"/exchange/partners/{partners['A']}/interchange",
                                 {"panel": PANEL, "format": format})
        assert status == 200, content
        files[format] = content
        sz_a = [str(i) for i, g in zip(scenario.observed.profile_ids, scenario.observed.group,
                                       strict=True) if g == "SZ-A"]
        for secret in [*sz_a, "A-CASE", "Laboratory"]:
            assert secret.encode() not in content, (format, secret)
        table = interchange.loads(format, content, interchange.load_kit_mapping(PANEL))
        assert {str(r): alleles for r, alleles in interchange.table_as_profiles(table)} == \
            {ref: {locus: sorted(pair) for locus, pair in alleles.items()}
             for ref, alleles in expected.items()}
    assert b"<SPECIMENID>" in files["codis-xml"] and b"18.016:" in files["type18"]
    status, answer = a.json("POST", f"/exchange/partners/{partners['A']}/interchange",
                            {"panel": PANEL, "format": "type18", "part": 2})
    assert (status, answer["error"]) == (422, "invalid")

    on_b = partners["B"]  # B's record of partner kws (= A)
    status, imported = _upload(b, on_b, files["codis-xml"], "codis-xml")
    assert status == 201, imported
    assert imported["profiles"] == len(expected) and imported["partner"] == "kws"
    with b.app.app_context():
        stored = {p.reference: (p.alleles, p.partner.name)
                  for p in db.session.scalars(sa.select(ExchangeProfile))}
    assert {ref: alleles for ref, (alleles, _) in stored.items()} == {
        ref: {locus: sorted(pair) for locus, pair in alleles.items()}
        for ref, alleles in expected.items()}
    assert {origin for _, origin in stored.values()} == {"kws"}
    status, found = b.json("GET", f"/exchange/imported-matches?panel={PANEL}"
                                  f"&reference_set={REFERENCE}", role="investigator")
    assert status == 200
    for relationship, (_, item_b) in truth_pairs(scenario).items():
        assert [m["relationship"] for m in found["matches"] if m["barcode"] == item_b] == \
            [relationship]
    # The same profiles as Type-18: a new file, no new profile (kept once).
    before = _counts(b)
    status, again = _upload(b, on_b, files["type18"], "type18")
    assert status == 201 and again["profiles"] == len(expected)
    assert b.count(ExchangeProfile) == before[1] and b.count(ExchangePackage) == before[0] + 1
    # Refusals name their reason and change nothing.
    hostile = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
               b"<CODISImportFile><SPECIMEN><SPECIMENID>&e;</SPECIMENID></SPECIMEN>"
               b"</CODISImportFile>")
    foreign = files["codis-xml"].replace(b"<LOCUSNAME>FH67</LOCUSNAME>",
                                         b"<LOCUSNAME>D3S1358</LOCUSNAME>", 1)
    # One allele of a known reference changed (FH67, the first locus, takes 100-300 bp).
    start = files["codis-xml"].index(b"<ALLELEVALUE>") + len(b"<ALLELEVALUE>")
    end = files["codis-xml"].index(b"<", start)
    value = int(files["codis-xml"][start:end])
    conflicting = (files["codis-xml"][:start] + str(value + 2 if value < 298 else value - 2)
                   .encode() + files["codis-xml"][end:])
    for content, format, error, code in (
            (hostile, "codis-xml", "invalid_profile", 422),
            (foreign, "codis-xml", "invalid_profile", 422),
            (files["codis-xml"], "codis-xml", "replayed", 409),
            (files["codis-xml"], "vcf", "unknown_format", 422),
            (files["codis-xml"], "type18", "invalid_profile", 422),
            (conflicting, "codis-xml", "conflict", 409)):
        before = _counts(b)
        status, answer = _upload(b, on_b, content, format)
        assert (status, answer["error"]) == (code, error), (format, answer)
        assert "root:" not in json.dumps(answer)
        assert _counts(b) == before
    status, answer = _upload(b, on_b, foreign, "codis-xml")
    assert "locus 'D3S1358' is not in kit mapping" in answer["message"]
    assert "SPECIMEN x" in answer["message"]
    with b.app.app_context():
        events = [e.detail for e in db.session.scalars(
            sa.select(ExchangeEvent).where(ExchangeEvent.kind == "import"))]
    assert [e["format"] for e in events] == ["codis-xml", "type18"]


def test_the_command_line_exports_and_imports_interchange_files(app, agencies, runner,
                                                                tmp_path, scenario,
                                                                monkeypatch):
    rows = [i for i, g in enumerate(scenario.observed.group) if g == "SZ-A"]
    # Type-18 files of 3 profiles here, so the 4 profiles take two numbered files.
    monkeypatch.setitem(interchange.PROFILES_PER_FILE, "type18", 3)
    load_profiles(app, {"A": agencies["A"]}, scenario.observed.take(rows), {"SZ-A": "A"})
    with app.app_context():
        for name, agency in (("peer", "A"), ("origin", "B")):
            db.session.add(exchange.ExchangePartner(
                agency_id=agencies[agency], name=name, base_url="http://127.0.0.1:9",
                public_key=exchange.public_key_text(Ed25519PrivateKey.generate()),
                inbound_token_hash=hash_token(name), shared_panels=[PANEL],
                share_all_cases=True))
        db.session.commit()
    for format, name in (("codis-xml", "out.xml"), ("type18", "out.an2")):
        path = tmp_path / name
        result = runner("exchange", "export", "--partner", "peer", "--panel", PANEL,
                        "--format", format, "-o", str(path))
        assert result.status == 0, result.err
        written = sorted(tmp_path.glob(f"out*{path.suffix}"))
        assert [f.name for f in written] == (["out.xml"] if format == "codis-xml"
                                             else ["out-001.an2", "out-002.an2"])
        result = runner("exchange", "import", "--format", format, str(written[0]))
        assert result.status == 1 and "needs --partner and --panel" in result.err
        for file in written:
            result = runner("exchange", "import", "--format", format, "--partner", "origin",
                            "--panel", PANEL, str(file))
            assert result.status == 0, result.err
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ExchangeProfile)) == \
            len(rows)
    result = runner("exchange", "import", "--format", "codis-xml", "--partner", "origin",
                    "--panel", PANEL, str(tmp_path / "out.xml"))
    assert result.status == 1 and "replayed" in result.err
    bad = tmp_path / "bad.xml"
    bad.write_text("<CODISImportFile><SPECIMEN><SPECIMENID>s1</SPECIMENID><LOCUS><LOCUSNAME>"
                   "TH01</LOCUSNAME></LOCUS></SPECIMEN></CODISImportFile>")
    result = runner("exchange", "import", "--format", "codis-xml", "--partner", "origin",
                    "--panel", PANEL, str(bad))
    assert result.status == 1
    assert "bad.xml" in result.err and "SPECIMEN s1: locus 'TH01'" in result.err
    assert "Traceback" not in result.err


def test_the_token_a_partner_issued_us_is_stored_encrypted(world, partners):
    """A keeps the token B issued it (partners fixture) only as Fernet ciphertext under the
    key in its instance folder (owner-only); the database row does not contain it."""
    a = world["A"]
    token = partners["token_for_a"]
    with a.app.app_context():
        row = db.session.execute(sa.text("SELECT * FROM exchange_partner WHERE id = :id"),
                                 {"id": partners["A"]}).mappings().one()
        key_file = exchange.token_key_path(a.app.config, a.app.instance_path)
    assert token not in repr(dict(row)) and "outbound_token" not in row
    assert exchange.decrypt_token(exchange.load_token_key(key_file),
                                  row["outbound_token_encrypted"]) == token
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    # A new token replaces it, still encrypted; the API never shows it.
    status, answer = a.json("PATCH", f"/exchange/partners/{partners['A']}",
                            {"outbound_token": "dtx_replaced"})
    assert status == 200 and "dtx_replaced" not in json.dumps(answer)
    with a.app.app_context():
        stored = db.session.scalar(sa.text(
            "SELECT outbound_token_encrypted FROM exchange_partner WHERE id = :id"),
            {"id": partners["A"]})
    assert "dtx_replaced" not in stored
    assert exchange.decrypt_token(exchange.load_token_key(key_file), stored) == "dtx_replaced"


def test_imported_profiles_are_searched_with_their_origin_on_need_to_know(world, partners,
                                                                          scenario):
    """B's imported profiles (from partner kws) are searched against B's released profiles,
    or one seizure's; each match names its origin; another agency's users on B, and roles
    without exchange.read, see none of them."""
    a, b = world["A"], world["B"]
    assert b.call("POST", "/exchange/packages", raw=_package(a, partners["A"]))[0] == 201
    query = f"/exchange/imported-matches?panel={PANEL}&reference_set={REFERENCE}"
    expected = truth_pairs(scenario)
    with b.app.app_context():
        seizure_b = db.session.scalar(sa.select(Seizure.id).where(Seizure.reference == "SZ-B"))
    status, found = b.json("GET", f"{query}&seizure_id={seizure_b}", role="analyst")
    assert status == 200, found
    by_barcode = {m["barcode"]: m for m in found["matches"]}
    assert set(by_barcode) == {expected["same_animal"][1]}
    match = by_barcode[expected["same_animal"][1]]
    assert match["relationship"] == "same_animal"
    assert match["origin"]["partner"] == "kws" and match["origin"]["editable"] is False
    assert match["imported"] == f"kws:{match['origin']['reference']}"
    assert found["local_profiles"] < b.count(GenotypeProfile)
    # Another agency on instance B: no partner of its own, so no imported profile.
    with b.app.app_context():
        other = Agency(code="OTHER", name="Other agency", kind="laboratory")
        db.session.add(other)
        db.session.commit()
        other_tokens = _staff(b.app, other.id, "O")
    status, hidden = b.json("GET", query, token=other_tokens["analyst"])
    assert status == 200 and hidden["imported_profiles"] == 0 and hidden["matches"] == []
    assert b.call("GET", query, role="researcher")[0] == 403
    assert b.call("GET", f"{query}&seizure_id=999999", role="analyst")[0] == 404


def test_admins_register_partners_on_a_form_with_csrf(app, agencies):
    from lims.models import ExchangePartner
    from tests.lims.web_support import field_errors, make_browser

    with app.app_context():
        case = Case(agency_id=agencies["A"], reference="A-SHARED", title="t")
        other = Case(agency_id=agencies["B"], reference="B-CASE", title="t")
        db.session.add_all([case, other])
        db.session.commit()
        case_a, case_b = case.id, other.id
    admin = make_browser(app, agencies, "admin")
    page = admin.get("/exchange/partners/new").get_data(as_text=True)
    assert 'name="csrf_token"' in page and "A-SHARED" in page and "B-CASE" not in page
    key = exchange.public_key_text(Ed25519PrivateKey.generate())
    form = {"name": "kenya", "base_url": "https://lims.example", "public_key": key,
            "outbound_token": "dtx_from-kenya", "shared_panels": [PANEL],
            "shared_case_ids": [str(case_a)], "searches_per_minute": "12"}
    assert admin.post("/exchange/partners/new", form, csrf=False).status_code == 400
    # The API's rules, next to their fields: a bad key and URL; nothing saved.
    response = admin.post("/exchange/partners/new",
                          {**form, "public_key": "bm90IGEga2V5", "base_url": "ftp://x"})
    assert response.status_code == 422
    assert "must be 32 bytes" in response.get_data(as_text=True)
    response = admin.post("/exchange/partners/new", {**form, "shared_case_ids": [str(case_b)]})
    assert response.status_code == 422  # another agency's case is no choice
    assert field_errors(response.get_data(as_text=True), "shared_case_ids") == [
        f"'{case_b}' is not a valid choice for this field."]
    # (with a bad key too, only the key's problem is shown: the URL's, on its own)
    response = admin.post("/exchange/partners/new", {**form, "base_url": "ftp://x"})
    assert response.status_code == 422
    assert field_errors(response.get_data(as_text=True), "base_url") == [
        "must start with http:// or https://"]
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ExchangePartner)) == 0
    response = admin.post("/exchange/partners/new", form)
    assert response.status_code == 200
    shown = response.get_data(as_text=True)
    with app.app_context():
        partner = db.session.scalar(sa.select(ExchangePartner))
        assert (partner.name, partner.agency_id, partner.shared_panels, partner.shared_case_ids,
                partner.share_all_cases, partner.searches_per_minute) == \
            ("kenya", agencies["A"], [PANEL], [case_a], False, 12)
        issued = shown.split('id="issued-token">')[1].split("<")[0]
        assert partner.inbound_token_hash == hash_token(issued)
        assert exchange.decrypt_token(exchange.app_token_key(app),
                                      partner.outbound_token_encrypted) == "dtx_from-kenya"
        assert "dtx_from-kenya" not in shown
    again = admin.post("/exchange/partners/new", form)
    assert again.status_code == 409 and "is already in use" in again.get_data(as_text=True)
    for role in ("analyst", "reviewer", "custodian"):
        browser = make_browser(app, agencies, role)
        assert browser.get("/exchange/partners/new").status_code == 403
        assert browser.post("/exchange/partners/new", form).status_code == 403
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(ExchangePartner)) == 1


def test_match_requests_search_imported_profiles_as_marked_background(world, partners,
                                                                       scenario):
    """On B, a match request of seizure SZ-B finds the planted tusk pair with A's imported
    profile (node partner:<id>, named kws:<reference>, caveat); a user of another agency on B
    gets no imported profile in their request, and may not read that node in B's result."""
    from lims import jobs
    from lims.reports.access import records_withdrawn_from
    from tests.lims.test_match_requests import FAST

    a, b = world["A"], world["B"]
    content = _package(a, partners["A"])
    payload = json.loads(content)["payload"]
    assert b.call("POST", "/exchange/packages", raw=content)[0] == 201
    with b.app.app_context():
        seizure_b = db.session.scalar(sa.select(Seizure.id).where(Seizure.reference == "SZ-B"))
    body = {"seizure_id": seizure_b, "analyses": ["identity", "kinship"],
            "reference_sets": [REFERENCE], "parameters": dict(FAST)}
    status, created = b.json("POST", "/match-requests", body, role="investigator")
    assert status == 201, created
    jobs.run_queued(b.app)
    status, result = b.json("GET", f"/match-requests/{created['id']}/result",
                            role="investigator")
    assert status == 200, result
    result = result.get("result", result)
    tusk_b = truth_pairs(scenario)["same_animal"][1]
    node = f"partner:{partners['B']}"
    hits = [p for p in result["pairs"] if node in (p["node1"], p["node2"])]
    assert [(p["relationship"], p["visible"]) for p in hits] == [("same_animal", True)]
    samples = {hits[0]["sample1"], hits[0]["sample2"]}
    assert tusk_b in samples
    (imported,) = samples - {tusk_b}
    assert imported in {f"kws:{p['reference']}" for p in payload["profiles"]}
    assert result["nodes"][node]["kind"] == "partner"
    assert result["nodes"][node]["agency"] == "exchange partner kws"
    assert any("imported from your agency's exchange partners" in c for c in result["caveats"])
    from tests.lims.web_support import make_browser

    page = make_browser(b.app, {"B": b.agency_id}, "investigator", agency="B").get(
        f"/match-requests/{created['id']}")
    assert page.status_code == 200
    assert "partner kws" in page.get_data(as_text=True)
    with b.app.app_context():
        reader = db.session.scalar(sa.select(User).where(User.username == "investigator-B"))
        other = Agency(code="OTHER", name="Other agency", kind="laboratory")
        db.session.add(other)
        db.session.flush()
        stranger = User(agency_id=other.id, username="stranger", full_name="x")
        stranger.set_roles({"investigator"})
        researcher = db.session.scalar(sa.select(User).where(User.username == "researcher-B"))
        db.session.add(stranger)
        db.session.commit()
        assert node not in records_withdrawn_from(db.session, result, reader)
        assert node in records_withdrawn_from(db.session, result, stranger)
        assert node in records_withdrawn_from(db.session, result, researcher)
