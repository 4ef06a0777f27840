"""Seizure-intelligence pages on a large database: the network and the country-role table for
20,000 coded seizures and 200,000 released profiles (one per sample, one sample per item).

    python -m benchmarks.bench_intelligence --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test
    python -m benchmarks.bench_intelligence --seizures 2000 --profiles 20000   # a quick look

The data go into a schema of their own (dropped at the end; SQLite: a temporary file): two
agencies, 500 cases, seizures over 2010-2024 with coded trade chains drawn from 30 countries,
and ``--links`` seizure links (as finished match requests leave them). Records are written
with plain INSERTs (no audit trail: it is not what is measured). Each endpoint is called by an
investigator of agency A, who sees agency A's cases and one case in ten of agency B's (shared),
so need-to-know filters every figure; printed per endpoint: the best and median of
``--repeats`` calls in seconds, the answer's size and what it counted. Figures: whole HTTP
request through the Flask test client (authentication, query, JSON), one process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

COUNTRIES = ("KE", "TZ", "UG", "MZ", "ZA", "NG", "CM", "CG", "CD", "GA", "AO", "ZM", "MW", "ET",
             "SD", "AE", "MY", "SG", "TH", "VN", "CN", "HK", "LA", "KH", "PH", "JP", "BE", "FR",
             "TG", "BJ")
ENDPOINTS = (
    "/api/v1/intelligence/network",
    "/api/v1/intelligence/network?from=2018-01-01&to=2020-12-31&relationship=same_animal",
    "/api/v1/intelligence/country-roles",
    "/api/v1/intelligence/trends",
)


def _schema_url(base_url: str) -> tuple[str, str, sa.Engine]:
    from sqlalchemy.engine import make_url

    name = f"bench_intel_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(base_url)
    with admin.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{name}"'))
    url = make_url(base_url).update_query_dict({"options": f"-csearch_path={name}"})
    return url.render_as_string(hide_password=False), name, admin


def _fill(engine: sa.Engine, n_seizures: int, n_profiles: int, n_links: int, seed: int) -> dict:
    from lims.models import (
        Agency,
        Case,
        CaseShare,
        GenotypeProfile,
        Item,
        MatchRequest,
        Sample,
        Seizure,
        SeizureLink,
        SeizureRecord,
        User,
    )

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    tables = {model: model.__table__ for model in (
        Agency, Case, CaseShare, Seizure, SeizureRecord, Item, Sample, GenotypeProfile, User,
        SeizureLink, MatchRequest)}
    with engine.begin() as connection:
        def insert(model, rows):
            for start in range(0, len(rows), 5000):
                connection.execute(tables[model].insert(), rows[start:start + 5000])

        insert(Agency, [{"id": 1, "code": "A", "name": "Agency A", "kind": "laboratory",
                         "created_at": now},
                        {"id": 2, "code": "B", "name": "Agency B", "kind": "laboratory",
                         "created_at": now}])
        # Ids from the sequence: the app adds users later.
        analyst = connection.execute(tables[User].insert().returning(tables[User].c.id), {
            "agency_id": 1, "username": "analyst", "full_name": "Analyst", "active": True,
            "session_version": 1, "created_at": now}).scalar_one()
        n_cases = 500
        insert(Case, [{"id": c, "agency_id": 1 + c % 2, "reference": f"C{c}", "title": "case",
                       "kind": "investigation", "status": "open", "created_at": now}
                      for c in range(1, n_cases + 1)])
        insert(CaseShare, [{"case_id": c, "agency_id": 1, "access": "read", "shared_at": now}
                           for c in range(1, n_cases + 1, 20)])
        seizures, records = [], []
        for s in range(1, n_seizures + 1):
            case = 1 + (s - 1) % n_cases
            day = dt.date(2010, 1, 1) + dt.timedelta(days=rng.randrange(15 * 365))
            chain = rng.sample(COUNTRIES, 4)
            seizures.append({"id": s, "case_id": case, "agency_id": 1 + case % 2,
                             "reference": f"SZ-{s}", "seized_on": day, "place": f"Port {s % 40}",
                             "country": chain[0], "latitude": rng.uniform(-30, 30),
                             "longitude": rng.uniform(-10, 120), "created_at": now})
            records.append({
                "seizure_id": s, "discovery_country": chain[0],
                "origins": [{"country": chain[1], "share": None}], "export_country": chain[2],
                "transits": [{"country": chain[3], "seizure_opportunity": rng.random() < 0.3}],
                "destination_country": rng.choice(COUNTRIES),
                "commodity": rng.choice(("ivory", "horn")), "commodity_form": "raw",
                "species": [{"name": "Loxodonta africana",
                             "quantity_kg": round(rng.lognormvariate(3, 1.5), 1),
                             "pieces": rng.randrange(1, 200)}],
                "offender_nationalities": [], "validation_status": "validated",
                "updated_at": now})
        insert(Seizure, seizures)
        insert(SeizureRecord, records)
        items, samples, profiles = [], [], []
        for p in range(1, n_profiles + 1):
            seizure = seizures[(p - 1) % n_seizures]
            items.append({"id": p, "seizure_id": seizure["id"], "label": f"T{p}", "kind": "tusk",
                          "created_at": now})
            samples.append({"id": p, "barcode": f"S{p}", "case_id": seizure["case_id"],
                            "sample_type": "powder", "item_id": p, "consumed": False,
                            "created_at": now})
            profiles.append({"id": p, "sample_id": p, "panel": "elephant_16str",
                             "alleles": {"FH67": [100, 102]}, "n_loci_typed": 16,
                             "state": "released", "analyst_id": analyst, "version": 1,
                             "created_at": now})
        insert(Item, items)
        insert(Sample, samples)
        insert(GenotypeProfile, profiles)
        insert(MatchRequest, [{"id": 1, "case_id": 1, "analyses": ["kinship"],
                               "reference_sets": [], "parameters": {}, "status": "done",
                               "progress": 1.0, "attempts": 1, "result": {"links": []},
                               "requested_by_id": analyst, "created_at": now, "finished_at": now}])
        pairs = set()
        while len(pairs) < n_links:
            first, second = sorted(rng.sample(range(1, n_seizures + 1), 2))
            pairs.add((first, second))
        insert(SeizureLink, [
            {"seizure1_id": a, "seizure2_id": b, "same_animal": rng.randrange(0, 2),
             "parent_offspring": rng.randrange(0, 2), "full_sibling": 1, "half_sibling": 0,
             "best_log10_lr": rng.uniform(3, 15), "match_request_id": 1, "found_at": now}
            for a, b in sorted(pairs)])
    return {"seizures": n_seizures, "profiles": n_profiles, "links": n_links}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--seizures", type=int, default=20_000)
    parser.add_argument("--profiles", type=int, default=200_000)
    parser.add_argument("--links", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args(argv)

    from lims import create_app
    from lims.auth import new_api_token
    from lims.database import create_database_engine
    from lims.extensions import db
    from lims.migrate import upgrade
    from lims.models import ApiToken, User, hash_token

    with tempfile.TemporaryDirectory() as folder:
        schema = admin = None
        if options.database_url:
            url, schema, admin = _schema_url(options.database_url)
        else:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite'}"
        try:
            upgrade(url)
            engine = create_database_engine(url)
            started = time.perf_counter()
            figures = {"backend": engine.dialect.name,
                       **_fill(engine, options.seizures, options.profiles, options.links,
                               options.seed)}
            figures["fill_s"] = round(time.perf_counter() - started, 1)
            engine.dispose()
            app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "bench",
                              "INSTANCE_PATH": folder, "JOB_WORKERS": 0})
            token = new_api_token()
            with app.app_context():
                user = User(agency_id=1, username="investigator", full_name="Investigator")
                user.set_roles({"investigator"})
                db.session.add(user)
                db.session.flush()
                db.session.add(ApiToken(user_id=user.id, name="bench",
                                        token_hash=hash_token(token)))
                db.session.commit()
            client = app.test_client()
            headers = {"Authorization": f"Bearer {token}"}
            figures["endpoints"] = {}
            for endpoint in ENDPOINTS:
                times, answer = [], None
                for _ in range(options.repeats):
                    began = time.perf_counter()
                    answer = client.get(endpoint, headers=headers)
                    times.append(time.perf_counter() - began)
                    assert answer.status_code == 200, answer.get_data(as_text=True)[:300]
                body = answer.get_json()
                figures["endpoints"][endpoint] = {
                    "best_s": round(min(times), 3),
                    "median_s": round(statistics.median(times), 3),
                    "bytes": len(answer.data),
                    "counted_seizures": body["data"]["seizures"],
                    "rows": len(body.get("rows", body.get("edges", []))),
                }
            db.engine_for(app).dispose()
        finally:
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(json.dumps(figures, indent=1))
    if options.json:
        options.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
