"""The Dask path runs the same block tasks as the local path and returns the same pairs."""

import numpy as np
import pytest

from matching.kinship import KinshipSearch
from matching.relationships import RELATIONSHIPS
from tests.test_kinship import random_table

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


def test_dask_all_pairs_equal_local(client, monkeypatch):
    import matching.kinship as kinship

    # Small chunks, so the search really is split over several tasks.
    monkeypatch.setattr(kinship, "ROWS_PER_BLOCK", 8)
    monkeypatch.setattr(kinship, "PAIRS_PER_CHUNK", 2000)
    table = random_table(300, n_loci=8, n_alleles=4, seed=11)
    search = KinshipSearch.from_reference(
        table, cutoffs={name: 0.5 for name in RELATIONSHIPS}, min_loci=4
    )
    chunks = kinship._row_chunks(len(table), True, len(table))
    assert len(chunks) > 1
    local = search.all_pairs(table)
    finished = []
    remote = search.all_pairs(table, progress=finished.append, dask_client=client)
    assert len(local) > 0
    assert np.array_equal(local.query_index, remote.query_index)
    assert np.array_equal(local.target_index, remote.target_index)
    assert np.array_equal(local.log10_lr, remote.log10_lr)
    assert sum(finished) == len(table)


def test_dask_new_vs_existing_equal_local(client):
    existing = random_table(200, seed=12)
    new = random_table(40, seed=13, prefix="n")
    search = KinshipSearch.from_reference(
        existing, new, cutoffs={name: 0.0 for name in RELATIONSHIPS}, min_loci=3
    )
    local = search.new_vs_existing(new, existing)
    remote = search.new_vs_existing(new, existing, dask_client=client)
    assert len(local) > 0
    assert np.array_equal(local.query_index, remote.query_index)
    assert np.array_equal(local.target_index, remote.target_index)
    assert np.array_equal(local.log10_lr, remote.log10_lr)


def test_block_tasks_survive_pickling():
    """Worker processes receive the task pickled; the copy must compute the same pairs."""
    import pickle

    import matching.kinship as kinship

    table = random_table(120, seed=14)
    search = KinshipSearch.from_reference(table, cutoffs={n: 0.0 for n in RELATIONSHIPS},
                                          min_loci=3)
    codes = search.codes(table)
    task = kinship._BlockTask(search, search.tables, codes, codes, True)
    chunk = kinship._row_chunks(len(table), True, len(table))[0]
    copy = pickle.loads(pickle.dumps(task))
    original, copied = task(chunk), copy(chunk)
    assert len(original) > 0
    assert np.array_equal(original.log10_lr, copied.log10_lr)


def test_dask_with_worker_processes():
    table = random_table(150, seed=15)
    search = KinshipSearch.from_reference(table, cutoffs={n: 0.0 for n in RELATIONSHIPS},
                                          min_loci=3)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as process_client:
        remote = search.all_pairs(table, dask_client=process_client)
    local = search.all_pairs(table)
    assert np.array_equal(local.query_index, remote.query_index)
    assert np.array_equal(local.log10_lr, remote.log10_lr)
