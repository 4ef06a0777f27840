"""The first match request of a fresh demo, on a cold numba cache, with and without the engine
warm-up, and what the warm-up itself costs.

    python -m benchmarks.bench_first_request                     # every scenario
    python -m benchmarks.bench_first_request --scenarios no-warmup warmup-at-start

Each scenario runs in a process of its own on a new demo folder and a new, empty
``NUMBA_CACHE_DIR`` (so nothing is compiled yet), except ``installed``, whose cache was filled
by ``dnatrack warmup`` first (as an installer would). The request is the README's first
report: all five analyses of seizure KE-MBA-2401 against the savanna elephant set, default
settings, as the investigator; it runs as a queued job in the process.

Scenarios:

- ``no-warmup``: the engine compiles as the analysis goes (the behaviour before the warm-up).
- ``warmup-at-start``: the warm-up starts in the background as ``dnatrack demo`` starts it,
  and the request is submitted at once (the worst case: the user is faster than the compiler).
- ``warmup-then-request``: the request is submitted once the background warm-up is done (the
  user logged in meanwhile); ``warmup_s`` is the warm-up's cost.
- ``installed``: ``dnatrack warmup`` filled the cache at install (``warmup_s`` is its whole
  process); the demo process then loads the kernels from the cache.

Printed per scenario: the request's seconds from submission to done, the longest stretch in
which its progress bar did not move, and the stages it showed with their start times.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SCENARIOS = ("no-warmup", "warmup-at-start", "warmup-then-request", "installed")
SEIZURE = "KE-MBA-2401"
REFERENCE = "savanna_elephant_simulated"


def _request(app) -> int:
    import sqlalchemy as sa

    from lims.extensions import db
    from lims.models import ANALYSES, MatchRequest, Seizure, User

    with app.app_context():
        seizure = db.session.scalars(sa.select(Seizure).filter_by(reference=SEIZURE)).one()
        investigator = db.session.scalars(
            sa.select(User).filter_by(username="investigator")).one()
        request = MatchRequest(case_id=seizure.case_id, seizure_id=seizure.id,
                               analyses=list(ANALYSES), reference_sets=[REFERENCE],
                               parameters={}, requested_by_id=investigator.id)
        db.session.add(request)
        db.session.commit()
        return request.id


def run_scenario(scenario: str) -> dict:
    """One scenario in this process (its ``NUMBA_CACHE_DIR`` set by the caller)."""
    import matching.warmup
    from lims import jobs
    from lims.demo import open_demo
    from matching.warmup import EngineWarmup

    with tempfile.TemporaryDirectory() as folder:
        app, _, _ = open_demo(Path(folder) / "demo", config={"JOB_WORKERS": 0})
        figures: dict = {"scenario": scenario}
        started = time.perf_counter()
        if scenario == "no-warmup":
            matching.warmup.ENGINE = EngineWarmup(steps=())
            matching.warmup.ENGINE.run()
        else:
            matching.warmup.ENGINE.start_in_background()
        if scenario == "warmup-then-request":
            while not matching.warmup.ENGINE.ready:
                time.sleep(0.1)
            figures["warmup_s"] = round(time.perf_counter() - started, 1)

        timeline: list[tuple[float, float, str]] = []
        report = jobs._Progress.__call__

        def recorded(progress, fraction, stage):
            timeline.append((time.perf_counter(), fraction, stage))
            report(progress, fraction, stage)

        jobs._Progress.__call__ = recorded
        request_id = _request(app)
        submitted = time.perf_counter()
        # requests are claimed before the network searches the demo queued (they run later)
        assert jobs.run_queued(app, limit=1) == [request_id]
        finished = time.perf_counter()
        with app.app_context():
            from lims.extensions import db
            from lims.models import MatchRequest

            request = db.session.get(MatchRequest, request_id)
            figures["status"] = request.status
            figures["error"] = request.error
        # The bar is still while neither the fraction nor the stage changes.
        changes, previous = [submitted], None
        for moment, fraction, stage in timeline:
            if (round(fraction, 3), stage) != previous:
                changes.append(moment)
                previous = (round(fraction, 3), stage)
        changes.append(finished)
        figures["request_s"] = round(finished - submitted, 1)
        figures["longest_still_bar_s"] = round(max(
            later - earlier for earlier, later in zip(changes, changes[1:], strict=False)), 1)
        stages: dict[str, float] = {}
        for moment, _, stage in timeline:
            stages.setdefault(stage, round(moment - submitted, 1))
        figures["stage_starts_s"] = stages
        return figures


def _child(scenario: str, cache: str) -> dict:
    environment = {**os.environ, "NUMBA_CACHE_DIR": cache}
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_first_request", "--child",
                           scenario], env=environment, capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--child", choices=SCENARIOS, help=argparse.SUPPRESS)
    parser.add_argument("--json", metavar="FILE", help="also write the figures here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_scenario(args.child)))
        return
    results = []
    for scenario in args.scenarios:
        with tempfile.TemporaryDirectory(prefix="numba-cache-") as cache:
            warmup_s = None
            if scenario == "installed":
                started = time.perf_counter()
                subprocess.run([sys.executable, "-m", "dnatrack", "warmup"], check=True,
                               env={**os.environ, "NUMBA_CACHE_DIR": cache},
                               capture_output=True)
                warmup_s = round(time.perf_counter() - started, 1)
            figures = _child(scenario if scenario != "installed" else "warmup-at-start", cache)
            figures["scenario"] = scenario
            if warmup_s is not None:
                figures["warmup_s"] = warmup_s
            print(json.dumps(figures), flush=True)
            results.append(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
