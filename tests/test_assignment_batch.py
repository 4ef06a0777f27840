"""Batch assignment: chunked and Dask runs give exactly the local, one-piece results."""

from __future__ import annotations

import numpy as np
import pytest

from matching.assignment import AssignmentModel, self_assign
from tests.assignment_formulas import reference_and_queries

distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def data():
    reference, queries = reference_and_queries(9, 5, 0.1, 3, n_pop=6)
    return AssignmentModel.from_table(reference), queries


def assert_same(first, second):
    np.testing.assert_array_equal(first.log_likelihood, second.log_likelihood)
    np.testing.assert_array_equal(first.z_score, second.z_score)
    np.testing.assert_array_equal(first.exclusion_p_value, second.exclusion_p_value)
    np.testing.assert_array_equal(first.profile_ids, second.profile_ids)
    assert first.records() == second.records()


@pytest.mark.parametrize("chunk_size", [1, 4, 7])
def test_chunked_local_equals_whole(data, chunk_size):
    model, queries = data
    whole = model.assign(queries, exclusion_simulations=400, seed=2)
    finished = []
    chunked = model.assign(queries, exclusion_simulations=400, seed=2, chunk_size=chunk_size,
                           progress=finished.append)
    assert_same(whole, chunked)
    assert sum(finished) == len(queries)
    assert len(finished) == -(-len(queries) // chunk_size)


def test_dask_equals_local(data, client):
    model, queries = data
    local = model.assign(queries, exclusion_simulations=400, seed=3)
    finished = []
    remote = model.assign(queries, exclusion_simulations=400, seed=3, chunk_size=5,
                          dask_client=client, progress=finished.append)
    assert_same(local, remote)
    assert sum(finished) == len(queries)


def test_dask_self_assignment_equals_local(data, client):
    model, _ = data
    local = self_assign(model, exclusion_simulations=200, seed=1)
    remote = self_assign(model, exclusion_simulations=200, seed=1, chunk_size=6,
                         dask_client=client)
    assert_same(local.assignment, remote.assignment)
    np.testing.assert_array_equal(local.confusion, remote.confusion)
