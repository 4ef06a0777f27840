"""Exchange between instances: export and import of signed packages, and a partner's hit/no-hit
search against a large database.

    python -m benchmarks.bench_exchange                                   # the issue's sizes
    python -m benchmarks.bench_exchange --profiles 10000 --queries 1000 --targets 100000

Package: ``--profiles`` released elephant 16-STR profiles (alleles drawn from the savanna
reference set's allele pools) in a migrated SQLite database of instance A; A signs a package
for B (:func:`lims.exchange.export_package`: load the shared profiles, compute their opaque
references, sign); B verifies and imports it (:func:`lims.exchange.import_package`: signature,
every profile against the panel, one bulk insert), each timed inside its transaction. The same
profiles then go as a CODIS-style XML file (:func:`lims.exchange.export_interchange` and
:func:`lims.exchange.import_interchange`, in files of 5,000 profiles, into a second partner of
B so every profile is new),
and as Type-18 transactions of 100 records written and read by the format layer alone
(:mod:`dnatrack.formats.interchange`).

Search: ``--queries`` profiles (1% of them copies of targets, with one dropout) searched against
``--targets`` as a partner's search is (:func:`lims.exchange.search_matches`: kinship new-vs-all
for every relationship, moderate identity search, LRs with pooled frequencies and θ). Building
the target table from stored allele dictionaries (:func:`lims.exchange.genotype_table`) is
timed apart, on at most 100,000 of them and scaled linearly. Planted copies found are checked.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

import lims.models  # noqa: F401  (loaded before lims.custody, which lims.exchange imports)
from dnatrack.formats import interchange
from dnatrack.genotypes import GenotypeTable
from dnatrack.panels import load_panel
from dnatrack.reference import load_reference_set
from lims import exchange
from lims.database import create_database_engine, utcnow
from lims.migrate import upgrade
from lims.models import (
    Agency,
    Case,
    ExchangePartner,
    GenotypeProfile,
    Item,
    Sample,
    Seizure,
    User,
    hash_token,
)

PANEL = "elephant_16str"
REFERENCE = "savanna_elephant_simulated"
TABLE_SAMPLE = 100_000


def allele_pools(reference_table: GenotypeTable) -> list[np.ndarray]:
    return [column[column > 0] for column in
            reference_table.alleles.transpose(1, 0, 2).reshape(len(reference_table.loci), -1)]


def random_alleles(pools: list[np.ndarray], n: int, rng: np.random.Generator) -> np.ndarray:
    alleles = np.empty((n, len(pools), 2), dtype=np.int16)
    for j, pool in enumerate(pools):
        alleles[:, j] = rng.choice(pool, size=(n, 2))
    alleles.sort(axis=2)
    return alleles


def as_dicts(alleles: np.ndarray, loci) -> list[dict]:
    return [{locus: [int(a), int(b)] for locus, (a, b) in zip(loci, row, strict=True)}
            for row in alleles]


def _database(folder: Path, name: str):
    url = f"sqlite:///{folder / name}.sqlite"
    upgrade(url)
    return create_database_engine(url)


def bench_package(n: int, pools, loci, folder: Path) -> dict:
    rng = np.random.default_rng(1)
    key_a, key_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    engine_a, engine_b = _database(folder, "a"), _database(folder, "b")
    with Session(engine_a) as session:
        agency = Agency(code="A", name="A", kind="laboratory")
        user = User(agency=agency, username="u", full_name="u")
        case = Case(agency=agency, reference="C", title="c")
        seizure = Seizure(case=case, reference="S", country="Kenya")
        session.add_all([agency, user, case, seizure])
        session.flush()
        session.execute(sa.insert(Item), [{"seizure_id": seizure.id, "label": f"T{i}",
                                           "kind": "tusk"} for i in range(n)])
        item_ids = session.scalars(sa.select(Item.id).order_by(Item.id)).all()
        session.execute(sa.insert(Sample), [
            {"barcode": f"B{i}", "case_id": case.id, "sample_type": "powder", "item_id": item}
            for i, item in enumerate(item_ids)])
        sample_ids = session.scalars(sa.select(Sample.id).order_by(Sample.id)).all()
        now = utcnow()
        session.execute(sa.insert(GenotypeProfile), [
            {"sample_id": sample, "panel": PANEL, "alleles": alleles, "n_loci_typed": len(loci),
             "state": "released", "analyst_id": user.id, "released_at": now}
            for sample, alleles in zip(sample_ids, as_dicts(random_alleles(pools, n, rng), loci),
                                       strict=True)])
        partner = ExchangePartner(agency_id=agency.id, name="b", base_url="http://b",
                                  public_key=exchange.public_key_text(key_b),
                                  inbound_token_hash=hash_token("b"), shared_panels=[PANEL],
                                  share_all_cases=True)
        session.add(partner)
        session.commit()
        started = time.perf_counter()
        content = exchange.export_package(session, partner, load_panel(PANEL), key_a)
        session.commit()
        export_s = time.perf_counter() - started
        started = time.perf_counter()
        xml, _ = exchange.export_interchange(session, partner, load_panel(PANEL), key_a,
                                             "codis-xml", part=None)
        session.commit()
        xml_export_s = time.perf_counter() - started
    with Session(engine_b) as session:
        agency = Agency(code="B", name="B", kind="laboratory")
        session.add(agency)
        session.flush()
        session.add(ExchangePartner(agency_id=agency.id, name="a", base_url="http://a",
                                    public_key=exchange.public_key_text(key_a),
                                    inbound_token_hash=hash_token("a"), shared_panels=[PANEL]))
        xml_partner = ExchangePartner(
            agency_id=agency.id, name="a-xml", base_url="http://a",
            public_key=exchange.public_key_text(Ed25519PrivateKey.generate()),
            inbound_token_hash=hash_token("a-xml"), shared_panels=[PANEL])
        session.add(xml_partner)
        session.commit()
        started = time.perf_counter()
        package = exchange.import_package(session, content, key_b, load_panel)
        session.commit()
        import_s = time.perf_counter() - started
        assert package.n_profiles == n
        started = time.perf_counter()
        imported = [exchange.import_interchange(session, xml_partner, load_panel(PANEL), part,
                                                "codis-xml") for part in xml]
        session.commit()
        xml_import_s = time.perf_counter() - started
        assert sum(package.n_profiles for package in imported) == n
    engine_a.dispose()
    engine_b.dispose()
    return {"profiles": n, "package_mb": round(len(content) / 1e6, 1),
            "export_s": round(export_s, 2), "import_s": round(import_s, 2),
            "codis_xml_files": len(xml), "codis_xml_mb": round(sum(map(len, xml)) / 1e6, 1),
            "codis_xml_export_s": round(xml_export_s, 2),
            "codis_xml_import_s": round(xml_import_s, 2), **bench_type18(n, pools, loci)}


def bench_type18(n: int, pools, loci) -> dict:
    """Type-18 transactions of 100 records: ``n`` profiles written, then read back."""
    kit = interchange.load_kit_mapping(PANEL)
    table = GenotypeTable(random_alleles(pools, n, np.random.default_rng(3)),
                          [f"x{i:031x}" for i in range(n)], loci)
    started = time.perf_counter()
    parts = [interchange.write_type18(part, kit)
             for part in interchange.file_parts(table, "type18")]
    write_s = time.perf_counter() - started
    started = time.perf_counter()
    read = [interchange.read_type18(part, kit) for part in parts]
    read_s = time.perf_counter() - started
    assert sum(len(t) for t in read) == n
    assert np.array_equal(np.concatenate([t.alleles for t in read]), np.sort(table.alleles, 2))
    return {"type18_transactions": len(parts), "type18_write_s": round(write_s, 2),
            "type18_read_s": round(read_s, 2)}


def bench_search(n_queries: int, n_targets: int, pools, loci) -> dict:
    rng = np.random.default_rng(2)
    panel, reference = load_panel(PANEL), load_reference_set(REFERENCE)
    targets = random_alleles(pools, n_targets, rng)
    queries = random_alleles(pools, n_queries, rng)
    planted = rng.choice(n_targets, size=max(1, n_queries // 100), replace=False)
    queries[: len(planted)] = targets[planted]
    queries[: len(planted), 0, 1] = queries[: len(planted), 0, 0]  # one dropout each
    # The stored allele dictionaries of 1M profiles would take gigabytes here: the table is
    # built from the first TABLE_SAMPLE of them and its time scaled linearly.
    sample = min(n_targets, TABLE_SAMPLE)
    sample_dicts = as_dicts(targets[:sample], loci)
    started = time.perf_counter()
    exchange.genotype_table(panel, [f"t{i}" for i in range(sample)], sample_dicts)
    table_s = (time.perf_counter() - started) * n_targets / sample
    target_table = GenotypeTable(targets, [f"t{i}" for i in range(n_targets)], loci)
    query_table = GenotypeTable(queries, [f"q{i}" for i in range(n_queries)], loci)
    started = time.perf_counter()
    matches = exchange.search_matches(panel, reference, query_table, target_table)
    search_s = time.perf_counter() - started
    found = {(m.query, m.target) for m in matches if m.relationship == "same_animal"}
    wanted = {(f"q{i}", f"t{t}") for i, t in enumerate(planted)}
    return {"queries": n_queries, "targets": n_targets, "table_s_scaled": round(table_s, 2),
            "search_s": round(search_s, 2), "planted_found": len(wanted & found),
            "planted": len(wanted), "matches": len(matches)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1_000)
    parser.add_argument("--targets", type=int, default=1_000_000)
    parser.add_argument("--json")
    args = parser.parse_args(argv)
    reference = load_reference_set(REFERENCE)
    loci = load_panel(PANEL).locus_names
    pools = allele_pools(reference.table.select_loci(loci))
    results = {}
    if args.targets:
        # First, so the engine is compiled before the timed run: a small warm-up search.
        bench_search(20, 200, pools, loci)
        results["search"] = bench_search(args.queries, args.targets, pools, loci)
        print(json.dumps(results["search"]), flush=True)
    if args.profiles:
        with tempfile.TemporaryDirectory() as folder:
            results["package"] = bench_package(args.profiles, pools, loci, Path(folder))
        print(json.dumps(results["package"]), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
