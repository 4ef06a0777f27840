"""A small counter-based random number generator for kernels that must be reproducible.

Assignment exclusion tests and Gibbs mixture sampling draw their randomness here rather than
from numba's ``np.random``: the stream is then defined by this file alone (SplitMix64, Steele et
al. 2014), every parallel task can carry its own state derived from a seed and a stable key
(a row or group number), and the plain-Python twins in the tests reproduce every draw exactly.

A generator state is a one-element ``uint64`` array, advanced in place.
"""

from __future__ import annotations

import math

import numpy as np

from matching._numba import kernel

GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_UNIT = 1.0 / 9007199254740992.0  # 2**-53


@kernel
def mix64(z):
    """The SplitMix64 output function: a bijective scramble of a uint64."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@kernel
def state_for(seed, key):
    """A fresh state (uint64[1]) for stream ``key`` (int64 ≥ 0) of ``seed`` (uint64)."""
    state = np.empty(1, dtype=np.uint64)
    state[0] = mix64(seed + np.uint64(key + 1) * GOLDEN_GAMMA)
    return state


@kernel
def next_uint64(state):
    state[0] += GOLDEN_GAMMA
    return mix64(state[0])


@kernel
def uniform(state):
    """A float64 uniform on [0, 1) with 53 random bits."""
    return np.float64(next_uint64(state) >> _S11) * _UNIT


@kernel
def standard_normal(state):
    """A standard normal by Box–Muller (one of the pair; the other is discarded)."""
    u1 = 1.0 - uniform(state)  # in (0, 1], so the log is finite
    u2 = uniform(state)
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


@kernel
def gamma(state, shape):
    """A Gamma(shape, 1) variate (Marsaglia & Tsang 2000; boosted for shape < 1)."""
    boost = 1.0
    if shape < 1.0:
        # Gamma(a) = Gamma(a + 1) · U^(1/a); the log form avoids underflow for tiny shapes.
        boost = math.exp(math.log(1.0 - uniform(state)) / shape)
        shape += 1.0
    d = shape - 1.0 / 3.0
    c = 1.0 / math.sqrt(9.0 * d)
    while True:
        x = standard_normal(state)
        v = 1.0 + c * x
        if v <= 0.0:
            continue
        v = v * v * v
        u = 1.0 - uniform(state)
        if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
            return d * v * boost


def seed_state(seed: int) -> np.uint64:
    """A uint64 base seed from any non-negative integer seed (via NumPy's SeedSequence)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return np.random.SeedSequence(int(seed)).generate_state(1, dtype=np.uint64)[0]
