"""``dnatrack warmup``: compile the matching engine's numba kernels into numba's on-disk cache,
so that no user's first analysis waits on compilation (run it after installing, or in CI)."""

from __future__ import annotations

import argparse
import time


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "warmup",
        help="compile the matching engine ahead (after installing)",
        description="Run every analysis once on a few animals of a bundled reference set, so "
        "numba compiles its kernels into its cache (NUMBA_CACHE_DIR, else beside the code). "
        "Takes a minute or two on a cold cache, seconds on a warm one.",
    )
    parser.set_defaults(func=_warmup)


def _warmup(args: argparse.Namespace) -> int:
    from dnatrack.cli import CommandError
    from matching.warmup import EngineWarmup

    started = time.perf_counter()
    engine = EngineWarmup()
    steps = engine.run()
    if not engine.ready:
        raise CommandError(f"the engine warm-up failed: {engine.error}")
    for step in steps:
        print(f"  {step.name:<30} {step.seconds:6.1f} s")
    print(f"engine ready in {time.perf_counter() - started:.1f} s")
    return 0
