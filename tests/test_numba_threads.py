"""Parallel kernels called from several threads at once, as the web process does.

numba's ``workqueue`` threading layer aborts the process when two threads launch parallel
kernels together; ``matching._numba`` picks a thread-safe layer unless told otherwise, and
serialises the launches when the environment forces one that is not. Each case runs in a
subprocess of its own: the layer is chosen once per process, and an abort must not take the
test run with it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Three threads run the same all-pairs kinship search four times each while the main thread
# has run it once alone; they must all give the serial result.
THREE_THREADS = """
import json, threading
import numba
import numpy as np
from dnatrack.reference import load_reference_set
from matching.kinship import KinshipSearch

table = load_reference_set("savanna_elephant_simulated").table
search = KinshipSearch.from_reference(table, table, theta=0.047)

def pairs():
    hits = search.all_pairs(table)
    return hits.query_index.tolist(), hits.target_index.tolist(), hits.log10_lr.round(9).tolist()

serial = pairs()
results = []
start = threading.Barrier(3)

def run():
    start.wait()
    for _ in range(4):
        results.append(pairs() == serial)

threads = [threading.Thread(target=run) for _ in range(3)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
print(json.dumps({"layer": numba.threading_layer(), "configured": numba.config.THREADING_LAYER,
                  "n_pairs": len(serial[0]), "same": results}))
"""


def run_three_threads(layer: str | None) -> subprocess.CompletedProcess:
    environment = {name: value for name, value in os.environ.items()
                   if name != "NUMBA_THREADING_LAYER"}
    if layer is not None:
        environment["NUMBA_THREADING_LAYER"] = layer
    return subprocess.run([sys.executable, "-c", THREE_THREADS], capture_output=True,
                          text=True, env=environment, timeout=300)


def outcome(process: subprocess.CompletedProcess) -> dict:
    assert process.returncode == 0, (process.returncode, process.stderr[-2000:])
    return json.loads(process.stdout.strip().splitlines()[-1])


def test_forced_workqueue_layer_serialises_concurrent_searches_instead_of_aborting():
    result = outcome(run_three_threads("workqueue"))
    assert result["layer"] == "workqueue"
    assert result["n_pairs"] > 0 and result["same"] == [True] * 12


@pytest.mark.parametrize("layer", [None, "default"])
def test_default_layer_is_thread_safe_and_concurrent_searches_equal_serial(layer):
    result = outcome(run_three_threads(layer))
    assert result["configured"] == "threadsafe"
    assert result["layer"] in ("tbb", "omp")
    assert result["n_pairs"] > 0 and result["same"] == [True] * 12
