"""The engine warm-up: it compiles what a match request compiles, and a job on a cold engine
says it is preparing the engine, with a bar that moves, instead of sitting at 0."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pytest

import matching.warmup
from lims import jobs
from matching.warmup import STAGE, EngineWarmup
from tests.lims.test_match_requests import request_body, world  # noqa: F401 (fixture)


@pytest.fixture
def investigator(login):
    return login("investigator")


#: The numba kernels a fresh process has compiled after one LIMS match request with all five
#: analyses (test_match_requests' request, measured with the dispatchers' ``signatures`` at
#: the end of a pytest run of only that test). The warm-up compiles these, for the same
#: argument types, and a few more.
MATCH_REQUEST_KERNELS = {
    "_assignment_kernels.leave_one_out_exclusion_p_values",
    "_assignment_kernels.leave_one_out_pools", "_assignment_kernels.locus_log_moments",
    "_assignment_kernels.log_tables", "_assignment_kernels.population_log_likelihoods",
    "_assignment_kernels.resample_population", "_assignment_kernels.sample_log_moments",
    "_assignment_kernels.shared_exclusion_p_values",
    "_identity_kernels.candidate_groups", "_identity_kernels.gather_rows",
    "_identity_kernels.genotype_codes", "_identity_kernels.hash_set",
    "_identity_kernels.packed_keys", "_identity_kernels.share_a_key",
    "_identity_kernels.verify_rows", "_kinship_kernels.scan_pairs",
    "_kinship_kernels.typed_bits", "_mixture_kernels.em_mixtures",
    "_mixture_kernels.gibbs_mixtures", "_rng_kernels.state_for",
}

# Run in a process of its own: only there are the dispatchers untouched by other tests.
_COMPILED_AFTER_WARMUP = """
import importlib, json, pkgutil
from numba.core.dispatcher import Dispatcher
import matching
from dnatrack.cli import main
assert main(["warmup"]) == 0
compiled = {}
for found in pkgutil.iter_modules(matching.__path__):
    if found.name.endswith("_kernels"):
        module = importlib.import_module(f"matching.{found.name}")
        for name, value in vars(module).items():
            if (isinstance(value, Dispatcher) and value.signatures
                    and value.py_func.__module__ == module.__name__):
                compiled[f"{found.name}.{name}"] = len(value.signatures)
print(json.dumps(compiled))
"""


def test_the_warmup_command_compiles_every_kernel_a_match_request_uses():
    done = subprocess.run([sys.executable, "-c", _COMPILED_AFTER_WARMUP], capture_output=True,
                          text=True, timeout=600, check=True)
    *printed, compiled = done.stdout.strip().splitlines()
    compiled = json.loads(compiled)
    assert MATCH_REQUEST_KERNELS <= set(compiled), MATCH_REQUEST_KERNELS - set(compiled)
    assert {compiled[name] for name in MATCH_REQUEST_KERNELS} == {1}
    step_names = [line.rsplit(None, 2)[0].strip() for line in printed[:-1]]
    assert step_names == [name for name, _, _ in matching.warmup.STEPS]
    assert printed[-1].startswith("engine ready in ")


def slow_steps(calls: list[str], seconds: float = 0.4):
    def step(name):
        def run(data):
            assert len(data.subject) and len(data.others)  # the warm-up's data reach the steps
            calls.append(name)
            time.sleep(seconds)
        return name, run, seconds

    return [step("first"), step("second"), step("third")]


def test_a_warmup_runs_once_and_every_caller_sees_it_move():
    calls: list[str] = []
    engine = EngineWarmup(slow_steps(calls))
    seen: list[tuple[float, str]] = []
    waiter = threading.Thread(target=engine.run, kwargs={"interval": 0.05})
    waiter.start()
    steps = engine.run(lambda fraction, stage: seen.append((fraction, stage)), interval=0.05)
    waiter.join()
    assert calls == ["first", "second", "third"]  # two callers, one warm-up
    assert [step.name for step in steps] == calls and all(s.seconds >= 0.4 for s in steps)
    fractions = [fraction for fraction, _ in seen]
    assert {stage for _, stage in seen} == {STAGE}
    assert fractions == sorted(fractions) and 0 <= fractions[0] < 0.1 and fractions[-1] < 1
    assert len(set(fractions)) > 10  # the bar moves within a step, not only between them
    assert engine.ready and engine.fraction_done() == 1.0
    assert engine.run() == [] and calls == ["first", "second", "third"]


def test_a_failed_warmup_is_logged_and_does_not_stop_the_engine(caplog):
    def broken(data):
        raise RuntimeError("no compiler")

    engine = EngineWarmup([("broken", broken, 1.0)])
    assert engine.run() == []
    assert not engine.ready and str(engine.error) == "no compiler"
    assert "engine warm-up failed" in caplog.text


def test_a_job_on_a_cold_engine_reports_preparing_the_engine(app, world, investigator,  # noqa: F811
                                                             monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(matching.warmup, "ENGINE", EngineWarmup(slow_steps(calls)))
    seen: list[tuple[int, float, str]] = []
    original = jobs._Progress.__call__

    def recorded(progress, fraction, stage):
        seen.append((progress.request_id, fraction, stage))
        original(progress, fraction, stage)

    monkeypatch.setattr(jobs._Progress, "__call__", recorded)
    body = request_body(world, analyses=["identity"])
    first, second = (investigator.post("/api/v1/match-requests", json=body).json["id"]
                     for _ in range(2))
    assert jobs.run_queued(app) == [first, second]
    assert calls == ["first", "second", "third"]
    stages = {request: [stage for r, _, stage in seen if r == request]
              for request in (first, second)}
    assert stages[first][0] == STAGE
    assert list(dict.fromkeys(stages[first]))[:2] == [STAGE, "loading released profiles"]
    preparing = [fraction for r, fraction, stage in seen if r == first and stage == STAGE]
    assert len(set(preparing)) >= 2 and preparing == sorted(preparing)
    assert STAGE not in stages[second]  # first run only
    for request in (first, second):
        assert investigator.get(f"/api/v1/match-requests/{request}").json["status"] == "done"
