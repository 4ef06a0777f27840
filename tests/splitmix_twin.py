"""Plain-Python twin of :mod:`matching._rng_kernels`, draw for draw (for the kernel twins)."""

from __future__ import annotations

import math

import numpy as np

MASK = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


def py_mix(z: int) -> int:
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def py_seed(seed: int) -> int:
    """The base seed the kernels get for an integer seed."""
    return int(np.random.SeedSequence(seed).generate_state(1, dtype=np.uint64)[0])


class PySplitMix:
    """The random stream ``key`` of base seed ``seed``."""

    def __init__(self, seed: int, key: int):
        self.state = py_mix((seed + (key + 1) * GOLDEN) & MASK)

    def uniform(self) -> float:
        self.state = (self.state + GOLDEN) & MASK
        return (py_mix(self.state) >> 11) * 2.0**-53

    def standard_normal(self) -> float:
        u1 = 1.0 - self.uniform()
        u2 = self.uniform()
        return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)

    def gamma(self, shape: float) -> float:
        boost = 1.0
        if shape < 1.0:
            boost = math.exp(math.log(1.0 - self.uniform()) / shape)
            shape += 1.0
        d = shape - 1.0 / 3.0
        c = 1.0 / math.sqrt(9.0 * d)
        while True:
            x = self.standard_normal()
            v = 1.0 + c * x
            if v <= 0.0:
                continue
            v = v * v * v
            u = 1.0 - self.uniform()
            if math.log(u) < 0.5 * x * x + d - d * v + d * math.log(v):
                return d * v * boost
