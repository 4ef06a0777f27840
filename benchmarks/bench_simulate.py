"""Scenario simulation and writing speed at growing numbers of items.

    python -m benchmarks.bench_simulate                        # 10k, 100k, 1M items
    python -m benchmarks.bench_simulate --sizes 50000 200000

The reference is 2,000 synthetic animals at 16 STRs in 10 populations; each scenario has 10
seizures drawing from all of them, with 5% of items in related pairs of each kind and the
default error rates. Prints one JSON line per size.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks._synthetic import peak_memory_mb, str_panel_table
from dnatrack.reference import PopulationInfo, ReferenceSet
from dnatrack.simulate import RELATIONSHIPS, ScenarioSpec, simulate, write_scenario

N_POPULATIONS = 10


def synthetic_reference() -> ReferenceSet:
    table = str_panel_table(2000)
    labels = [f"POP{i % N_POPULATIONS}" for i in range(len(table))]
    populations = tuple(PopulationInfo(f"POP{i}") for i in range(N_POPULATIONS))
    return ReferenceSet(
        "bench-simulated",
        "synthetic",
        table.replace(population=labels),
        populations,
        simulated=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    args = parser.parse_args()
    reference = synthetic_reference()
    for n_items in args.sizes:
        pairs = max(n_items // 40, 1)  # 2 items per pair, 4 kinds: 5% of items each
        spec = ScenarioSpec(
            n_seizures=10,
            items_per_seizure=n_items // 10,
            sources={f"POP{i}": 1 for i in range(N_POPULATIONS)},
            **{f"{relationship}_pairs": pairs for relationship in RELATIONSHIPS},
        )
        start = time.perf_counter()
        scenario = simulate(reference, spec, seed=1)
        simulated = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            write_scenario(scenario, Path(folder) / "scenario")
        written = time.perf_counter()
        print(
            json.dumps(
                {
                    "items": scenario.observed.n_profiles,
                    "animals": scenario.animals.n_profiles,
                    "simulate_s": round(simulated - start, 2),
                    "write_s": round(written - simulated, 2),
                    "peak_memory_mb": round(peak_memory_mb()),
                }
            )
        )


if __name__ == "__main__":
    main()
