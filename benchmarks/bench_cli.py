"""Whole-process times of the ``dnatrack`` command against rubias's whole R process.

What a user waits for: each command runs as its own process (``python -m dnatrack ...``),
start-up, file reading, numba kernels loaded from the cache, and writing included. Each is
run once first, untimed, so the numba cache is warm, with ``PYTHONDONTWRITEBYTECODE``
unset so that Python's byte-code cache is written as an installation writes it (this
project's machines set it; without ``.pyc`` files every process compiles the ``dnatrack``,
``matching`` and ``lims`` sources again, about half a second). Then it runs ``--repeats``
times; the fastest wall time is quoted together with the user + system CPU time of that run
(less sensitive to other work on the machine than the wall time). A cold first run, with an
empty numba cache (``NUMBA_CACHE_DIR`` set to a fresh temporary folder, so every kernel is
compiled), is timed once per command unless ``--no-cold``.

The rubias figures are whole ``Rscript`` processes measured on this project's 2-core machine
(rubias 0.3.4): ``self_assign`` of the Chinook baseline 5.9 s, ``infer_mixture`` of the Chinook
mixture with 2,000 sweeps 8.2 s, ``self_assign`` of alewife 2.0 s. Targets (issue 14): at
least 5x faster on the Chinook tasks and 3x on alewife with a warm cache. rubias runs no
exclusion test; the mixture is timed with dnatrack's default exclusion test and without it
(``--exclusion-sims 0``). ``match`` on alewife has no rubias counterpart and is timed alone;
``analyze`` (a match request's whole pipeline from files) is quoted against the mixture run.

    python -m benchmarks.bench_cli                 # needs ../shared/datasets or --datasets
    python -m benchmarks.bench_cli --repeats 1 --no-cold --json cli.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

DEFAULT_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


@dataclass(frozen=True)
class Task:
    """One command line, and rubias's time and the speed-up target where there are any."""

    name: str
    arguments: tuple[str, ...]
    rubias_seconds: float | None = None
    target_speedup: float | None = None


def tasks(datasets: Path, out: Path, sweeps: int) -> list[Task]:
    baseline = str(datasets / "chinook_baseline_rubias.csv")
    mixture = str(datasets / "chinook_mixture_rubias.csv")
    alewife = str(datasets / "alewife_rubias.csv")
    mixture_arguments = ("assign", mixture, "--reference", baseline, "--mixture",
                         "--sweeps", str(sweeps), "--group-column", "population")
    return [
        Task("chinook self-assign", ("self-assign", baseline, "--out",
                                     str(out / "chinook_self.csv")), 5.9, 5.0),
        Task(f"chinook assign --mixture ({sweeps:,} sweeps, default exclusion test)",
             (*mixture_arguments, "--out", str(out / "chinook_mixture.csv")), 8.2, 5.0),
        Task(f"chinook assign --mixture ({sweeps:,} sweeps, --exclusion-sims 0)",
             (*mixture_arguments, "--exclusion-sims", "0",
              "--out", str(out / "chinook_mixture0.csv")), 8.2, 5.0),
        Task("alewife self-assign", ("self-assign", alewife, "--out",
                                     str(out / "alewife_self.csv")), 2.0, 3.0),
        Task("alewife match", ("match", alewife, "--reference", alewife,
                               "--out", str(out / "alewife_pairs.csv"))),
        # The whole pipeline of a match request (dnatrack analyze): result JSON and tables.
        Task(f"chinook analyze assignment,mixture ({sweeps:,} sweeps, no exclusion test)",
             ("analyze", mixture, "--reference", baseline, "--analyses", "assignment,mixture",
              "--parameters", json.dumps({"mixture_sweeps": sweeps, "exclusion_simulations": 0}),
              "--no-report", "--out", str(out / "chinook_analyze")), 8.2, 5.0),
        Task("alewife analyze identity,kinship,assignment",
             ("analyze", alewife, "--reference", alewife, "--analyses",
              "identity,kinship,assignment", "--parameters",
              json.dumps({"exclusion_simulations": 0}), "--no-report",
              "--out", str(out / "alewife_analyze"))),
    ]


def run_once(task: Task, environment: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, user + system CPU seconds) of one whole process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-m", "dnatrack", *task.arguments],
                               env=environment, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if completed.returncode != 0:
        raise RuntimeError(f"{task.name} failed ({completed.returncode}): "
                           f"{completed.stderr.strip()}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.1f} / {five:.1f} / {fifteen:.1f} on {os.cpu_count()} cores"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=Path, default=DEFAULT_DATASETS,
                        help="folder with the rubias Chinook and alewife CSV files")
    parser.add_argument("--sweeps", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-cold", action="store_true",
                        help="skip the runs with an empty numba cache")
    parser.add_argument("--only", metavar="TEXT", help="run only the tasks whose name has TEXT")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    figures: dict = {"load_before": load(), "repeats": args.repeats, "tasks": {}}
    print(f"whole processes, best of {args.repeats} after one untimed warm-up run each; "
          f"{figures['load_before']}")
    print(f"{'task':62s} {'wall s':>7s} {'cpu s':>6s} {'rubias':>7s} {'speed-up':>9s} "
          f"{'target':>6s} {'cold s':>7s}")
    with tempfile.TemporaryDirectory(prefix="bench_cli_") as scratch:
        scratch = Path(scratch)
        for task in tasks(args.datasets, scratch, args.sweeps):
            if args.only and args.only not in task.name:
                continue
            warm_environment = dict(os.environ)
            run_once(task, {k: v for k, v in os.environ.items()
                            if k != "PYTHONDONTWRITEBYTECODE"})
            best_wall, best_cpu = math.inf, math.nan
            for _ in range(args.repeats):
                wall, cpu = run_once(task, warm_environment)
                if wall < best_wall:
                    best_wall, best_cpu = wall, cpu
            row = {"arguments": list(task.arguments), "wall_seconds": round(best_wall, 2),
                   "cpu_seconds": round(best_cpu, 2), "rubias_seconds": task.rubias_seconds,
                   "target_speedup": task.target_speedup}
            if not args.no_cold:
                with tempfile.TemporaryDirectory(prefix="numba_cold_") as cache:
                    cold_wall, cold_cpu = run_once(task, {**os.environ, "NUMBA_CACHE_DIR": cache})
                row.update(cold_wall_seconds=round(cold_wall, 2),
                           cold_cpu_seconds=round(cold_cpu, 2))
            speedup = task.rubias_seconds / best_wall if task.rubias_seconds else None
            row["speedup"] = round(speedup, 2) if speedup else None
            figures["tasks"][task.name] = row
            print(f"{task.name:62s} {best_wall:7.2f} {best_cpu:6.2f} "
                  f"{_text(task.rubias_seconds, '7.1f')} {_text(speedup, '8.2f')}x "
                  f"{_text(task.target_speedup, '5.0f')}x "
                  f"{_text(row.get('cold_wall_seconds'), '7.2f')}")
    figures["load_after"] = load()
    print(f"{figures['load_after']}; wall times on a loaded machine overstate what a user "
          "waits for alone, cpu s (user + system) is less load-sensitive")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return figures


def _text(value: float | None, spec: str) -> str:
    width = int(spec.split(".")[0])
    return f"{value:{spec}}" if value is not None else "-".rjust(width)


if __name__ == "__main__":
    main()
