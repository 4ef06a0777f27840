"""Preparing the engine: every numba kernel a match request uses, compiled before a user waits.

numba compiles a kernel the first time it is called and keeps the machine code in its on-disk
cache (``cache=True``, :mod:`matching._numba`); a fresh install's first match request otherwise
spends half a minute compiling. :func:`warm_up` runs each analysis once on a few animals of a
bundled reference set, through the same public functions the analyses call (so the arrays have
the same types and the same compiled versions are made), which fills the cache; later
processes only load from it.

One warm-up runs per process, in a thread of its own: :data:`ENGINE` remembers it is done, and
every caller that needs the engine waits for the running one and sees its progress.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from dnatrack.genotypes import GenotypeTable
from dnatrack.reference import ReferenceSet, load_reference_set
from matching.assignment import AssignmentModel
from matching.calibration import calibrate
from matching.geo import GeographicModel
from matching.identity import IdentityCriteria
from matching.kinship import DEFAULT_CUTOFFS, KinshipSearch
from matching.match_probability import match_probabilities
from matching.mixture import estimate_mixture
from matching.pair_search import (
    Scoring,
    find_pairs,
    identical_loci,
    locus_log10_lrs,
    pairs_compared,
)
from matching.relationships import RELATIONSHIPS, ErrorModel

logger = logging.getLogger(__name__)

#: The stage name a job shows while it waits for the engine.
STAGE = "preparing the engine (first run only)"

#: The bundled reference set the warm-up draws its animals from (any set would do: the kernels
#: are compiled for the array types, which every set shares).
REFERENCE_SET = "black_rhino_simulated"

# Few animals and few iterations: the compile, not the run, is what the warm-up is for.
_SUBJECTS = 6
_OTHERS = 6
_SIMULATIONS = 20
_CALIBRATION_SIMULATIONS = 200
_SWEEPS = 20
_CELLS = 100

Progress = Callable[[float, str], None]


@dataclass(frozen=True)
class WarmupStep:
    """One analysis run by the warm-up, and how long it took."""

    name: str
    seconds: float


class _Sample:
    """The warm-up's data: a reference set, its table, and subject and other profiles."""

    def __init__(self, reference: ReferenceSet) -> None:
        self.reference = reference
        self.table = reference.table
        rows = np.arange(len(self.table))
        self.subject = self.table.take(rows[:_SUBJECTS]).replace(population=None)
        self.others = self.table.take(rows[_SUBJECTS:_SUBJECTS + _OTHERS]).replace(
            population=None)
        self.groups = [f"seizure {k % 2}" for k in range(len(self.subject))]
        self.theta = 0.05
        # As a match request scores its pairs: the reference's own choice of frequencies.
        self.scoring = Scoring.for_reference(self.table, self.theta, ErrorModel())
        self.calibration = None
        self.search: KinshipSearch | None = None
        self.assignment = None


def _calibration(data: _Sample) -> None:
    # search_calibration's own simulation count would take seconds each time a warm process
    # starts; calibrate is what it calls, with the same argument types.
    data.calibration = calibrate(
        data.table, **data.scoring.calibration_options(), relationships=tuple(RELATIONSHIPS),
        pairs_compared=pairs_compared(len(data.subject), len(data.others)),
        n_simulations=_CALIBRATION_SIMULATIONS, reference_name=data.reference.name,
        reference_hash=data.reference.content_hash)


def _pair_search(data: _Sample) -> None:
    data.search = KinshipSearch.from_reference(
        data.table, data.subject, data.others, **data.scoring.search_options(),
        relationships=tuple(RELATIONSHIPS), cutoffs=dict(DEFAULT_CUTOFFS),
        calibration=data.calibration)
    find_pairs(data.search, data.subject, data.others, kinship=True,
               criteria=IdentityCriteria("moderate"), kinship_progress=lambda _: None)
    find_pairs(data.search, data.subject, data.others, kinship=False,
               criteria=IdentityCriteria("high"))


def _pair_statistics(data: _Sample) -> None:
    combined = GenotypeTable.concat([data.subject, data.others])
    locus_log10_lrs(data.search, combined, [0], [1])
    identical_loci(combined, 0, 1)
    match_probabilities(data.subject, data.search.counts, data.search.theta)


def _assignment(data: _Sample) -> None:
    model = AssignmentModel.from_reference(data.reference)
    model.log_likelihoods(model.encode(data.subject))
    data.assignment = model.assign(data.subject, exclusion_simulations=_SIMULATIONS, seed=0,
                                   progress=lambda _: None)


def _mixture(data: _Sample) -> None:
    estimate_mixture(data.assignment, data.groups, n_sweeps=_SWEEPS, burn_in=_SWEEPS // 2,
                     seed=0)


def _geographic(data: _Sample) -> None:
    geo = GeographicModel.from_reference(data.reference, n_cells=_CELLS)
    surfaces = geo.seizure_surfaces(data.subject, data.groups, method="pooled")
    surfaces.credible_regions(0.9)
    surfaces.region_area_km2(0.9)
    geo.assign(data.subject).records()


#: The warm-up's steps in the order a match request meets them, each with the seconds its
#: compilation took on a cold cache (one busy core), which shapes the progress bar.
STEPS: tuple[tuple[str, Callable[[_Sample], None], float], ...] = (
    ("calibration", _calibration, 3.0),
    ("kinship and identity search", _pair_search, 55.0),
    ("pair statistics", _pair_statistics, 1.0),
    ("population assignment", _assignment, 36.0),
    ("mixture proportions", _mixture, 15.0),
    ("geographic assignment", _geographic, 1.0),
)


class EngineWarmup:
    """The warm-up state of one process: run once, in a thread of its own, and waited for by
    every caller that needs the engine.

    Parameters
    ----------
    steps
        ``(name, function, expected seconds)`` run in order on the warm-up's data (default
        :data:`STEPS`).
    reference_set
        Name or folder of the reference set the data come from.
    """

    def __init__(self, steps: Sequence[tuple[str, Callable, float]] = STEPS,
                 reference_set: str = REFERENCE_SET) -> None:
        self.steps = tuple(steps)
        self.reference_set = reference_set
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._done: list[WarmupStep] = []
        self._step_started = 0.0
        self._finished = False
        #: Why the last warm-up failed, if it did.
        self.error: Exception | None = None

    @property
    def ready(self) -> bool:
        """True once a warm-up has finished in this process."""
        with self._changed:
            return self._finished

    def fraction_done(self) -> float:
        """How far the warm-up is, 0 to 1: the finished steps' expected seconds, and the
        running step's share creeping towards its end (it never stops, so the bar moves)."""
        with self._changed:
            if self._finished:
                return 1.0
            expected = [seconds for _, _, seconds in self.steps]
            done = sum(expected[:len(self._done)])
            if len(self._done) < len(expected):
                current = expected[len(self._done)]
                elapsed = time.perf_counter() - self._step_started
                done += current * (1.0 - math.exp(-elapsed / current))
            return done / sum(expected)

    def start_in_background(self) -> None:
        """Start the warm-up in a daemon thread unless it runs or ran (a server answers
        meanwhile; a job that needs the engine waits for it)."""
        with self._changed:
            if self._finished or (self._thread is not None and self._thread.is_alive()):
                return
            self._done = []
            self.error = None
            self._step_started = time.perf_counter()
            self._thread = threading.Thread(target=self._run_logged, daemon=True,
                                            name="dnatrack-engine-warmup")
            self._thread.start()

    def run(self, progress: Progress | None = None, interval: float = 0.5) -> list[WarmupStep]:
        """Warm the engine up, or wait for the warm-up already running; ``progress`` is called
        with ``(fraction done, STAGE)`` every ``interval`` seconds meanwhile. Returns the steps
        run (empty when the engine was already warm). A failed warm-up is logged, not raised:
        the analyses then compile as they go."""
        if self.ready:
            return []
        self.start_in_background()
        with self._changed:
            while self._thread.is_alive() and not self._finished:
                if progress is not None:
                    self._changed.release()
                    try:
                        progress(self.fraction_done(), STAGE)
                    finally:
                        self._changed.acquire()
                self._changed.wait(interval)
            return list(self._done) if self._finished else []

    def _run_logged(self) -> None:
        try:
            self._run_steps()
        except Exception as error:  # the warm-up only saves time; a server must not die of it
            self.error = error
            logger.exception("engine warm-up failed; analyses compile on first use")
        finally:
            with self._changed:
                self._changed.notify_all()

    def _run_steps(self) -> None:
        started = time.perf_counter()
        logger.info("preparing the engine: compiling or loading numba kernels")
        data = _Sample(load_reference_set(self.reference_set))
        for name, step, _ in self.steps:
            step_started = time.perf_counter()
            step(data)
            with self._changed:
                self._done.append(WarmupStep(name, time.perf_counter() - step_started))
                self._step_started = time.perf_counter()
                self._changed.notify_all()
        with self._changed:
            self._finished = True
            done = list(self._done)
        logger.info("engine ready in %.1f s (%s)", time.perf_counter() - started,
                    ", ".join(f"{step.name} {step.seconds:.1f} s" for step in done))


#: This process's engine.
ENGINE = EngineWarmup()
