"""The growing network's search on a large database: ``--new`` newly released profiles
searched against ``--released`` released ones (lims.network, one link-search job), with the
cutoffs' calibration made beforehand (it is made once per installation and settings).

    python -m benchmarks.bench_network_search --released 20000 --new 50
    python -m benchmarks.bench_network_search --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Genotypes are simulated from the bundled savanna elephant set (dnatrack.simulate, 50 tusks
per seizure, tusk pairs and relatives planted across seizures) and written with plain INSERTs
(no audit trail); the released profiles are marked searched by an earlier search. Printed:
wall and CPU seconds of the job, pairs compared (new x all) and the pairs and links it kept.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

ITEMS_PER_SEIZURE = 50


def _fill(engine: sa.Engine, n_released: int, n_new: int, seed: int) -> None:
    from dnatrack.reference import load_reference_set
    from dnatrack.simulate import ScenarioSpec, simulate
    from lims.models import (
        Agency,
        Case,
        GenotypeProfile,
        Item,
        LinkSearch,
        Sample,
        SearchedProfile,
        Seizure,
        User,
    )

    total = n_released + n_new
    n_seizures = -(-total // ITEMS_PER_SEIZURE)
    spec = ScenarioSpec(n_seizures=n_seizures, items_per_seizure=ITEMS_PER_SEIZURE,
                        same_animal_pairs=n_seizures // 10, parent_offspring_pairs=n_seizures // 20,
                        full_sibling_pairs=0, half_sibling_pairs=0)
    observed = simulate(load_reference_set("savanna_elephant_simulated"), spec,
                        seed=seed).observed
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as connection:
        def insert(model, rows):
            for start in range(0, len(rows), 5000):
                connection.execute(model.__table__.insert(), rows[start:start + 5000])

        insert(Agency, [{"id": 1, "code": "A", "name": "Agency A", "kind": "laboratory",
                         "created_at": now}])
        analyst = connection.execute(User.__table__.insert().returning(User.__table__.c.id), {
            "agency_id": 1, "username": "analyst", "full_name": "Analyst", "active": True,
            "session_version": 1, "created_at": now}).scalar_one()
        insert(Case, [{"id": 1, "agency_id": 1, "reference": "C1", "title": "case",
                       "kind": "investigation", "status": "open", "created_at": now}])
        groups = sorted(set(observed.group))
        seizure_id = {group: k + 1 for k, group in enumerate(groups)}
        insert(Seizure, [{"id": k, "case_id": 1, "agency_id": 1, "reference": group,
                          "created_at": now} for group, k in seizure_id.items()])
        items, samples, profiles = [], [], []
        for p, (item_id, group) in enumerate(zip(observed.profile_ids[:total],
                                                  observed.group[:total], strict=True), 1):
            row = p - 1
            alleles = {locus: [int(a), int(b)] for locus, (a, b) in
                       zip(observed.loci, observed.alleles[row], strict=True) if a > 0}
            items.append({"id": p, "seizure_id": seizure_id[group], "label": str(item_id),
                          "kind": "tusk", "created_at": now})
            samples.append({"id": p, "barcode": str(item_id), "case_id": 1,
                            "sample_type": "powder", "item_id": p, "consumed": False,
                            "created_at": now})
            profiles.append({"id": p, "sample_id": p, "panel": "elephant_16str",
                             "alleles": alleles, "n_loci_typed": len(alleles),
                             "state": "released", "analyst_id": analyst, "version": 1,
                             "created_at": now})
        insert(Item, items)
        insert(Sample, samples)
        insert(GenotypeProfile, profiles)
        insert(LinkSearch, [{"id": 1, "panel": "elephant_16str", "status": "done",
                             "progress": 1.0, "attempts": 1, "created_at": now},
                            {"id": 2, "panel": "elephant_16str", "status": "queued",
                             "progress": 0.0, "attempts": 0, "created_at": now}])
        insert(SearchedProfile, [{"profile_id": p, "link_search_id": 1}
                                 for p in range(1, n_released + 1)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="PostgreSQL URL (default: a SQLite file)")
    parser.add_argument("--released", type=int, default=20_000)
    parser.add_argument("--new", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path)
    options = parser.parse_args(argv)

    from lims import create_app, jobs
    from lims.database import create_database_engine
    from lims.extensions import db
    from lims.genotyping import resolve_panel
    from lims.migrate import upgrade
    from lims.models import LinkSearch
    from lims.network import calibration_folders, network_references, network_settings
    from matching.analysis.references import shared_loci

    with tempfile.TemporaryDirectory() as folder:
        schema = admin = None
        if options.database_url:
            from sqlalchemy.engine import make_url

            schema = f"bench_network_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(options.database_url)
            with admin.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
            url = make_url(options.database_url).update_query_dict(
                {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
        else:
            url = f"sqlite:///{Path(folder) / 'bench.sqlite'}"
        try:
            upgrade(url)
            engine = create_database_engine(url)
            started = time.perf_counter()
            _fill(engine, options.released, options.new, options.seed)
            figures = {"backend": engine.dialect.name, "released": options.released,
                       "new": options.new, "fill_s": round(time.perf_counter() - started, 1)}
            engine.dispose()
            pairs = options.released + options.new
            app = create_app({"TESTING": True, "DATABASE_URL": url, "SECRET_KEY": "bench",
                              "INSTANCE_PATH": folder, "JOB_WORKERS": 0,
                              "NETWORK_PAIRS_COMPARED": pairs * (pairs - 1) / 2})
            with app.app_context():
                panel = resolve_panel("elephant_16str")
                references = network_references(panel, app.config)
                settings = network_settings(app.config)
                began = time.perf_counter()
                calibration_folders(app, references, shared_loci(references, panel), settings,
                                    app.config["NETWORK_PAIRS_COMPARED"])
                figures["calibration_s"] = round(time.perf_counter() - began, 1)
            wall, cpu = time.perf_counter(), time.process_time()
            ran = jobs.run_queued(app)
            figures["search_wall_s"] = round(time.perf_counter() - wall, 2)
            figures["search_cpu_s"] = round(time.process_time() - cpu, 2)
            with app.app_context():
                search = db.session.get(LinkSearch, ran[0])
                assert search.status == "done", search.error
                figures.update(new_profiles=search.new_profiles, pairs_found=search.pairs_found,
                               links_folded=search.links_folded,
                               pairs_compared=options.new * (options.new - 1) // 2
                               + options.new * options.released)
            db.engine_for(app).dispose()
        finally:
            if admin is not None:
                with admin.begin() as connection:
                    connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
                admin.dispose()
    print(json.dumps(figures, indent=2))
    if options.json:
        options.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
