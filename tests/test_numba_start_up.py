"""``matching._numba`` loads SciPy's ``cython_blas`` alone, so that numba's BLAS check at the
first kernel load does not import all of ``scipy.linalg``; SciPy, BLAS calls in numba and
``scipy.linalg`` itself must work as before. Runs in a fresh interpreter (the point is what
is imported when)."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import json, sys
import numpy as np
import matching._numba
from matching._assignment_kernels import log_moments

log_moments(np.log(np.array([0.25, 0.75])))  # loads a kernel: numba's registries and BLAS check
before = "scipy.linalg" in sys.modules
import numba

@numba.njit
def dot(a, b):
    return np.dot(a, b)

import scipy.linalg
import scipy.linalg.cython_blas as blas
from scipy.cluster.hierarchy import linkage

print(json.dumps({
    "linalg_imported_by_kernel_load": before,
    "dot": dot(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([1.0, 1.0])).tolist(),
    "solve": scipy.linalg.solve(np.array([[2.0, 0.0], [0.0, 4.0]]), np.array([2.0, 2.0])).tolist(),
    "same_blas": scipy.linalg.cython_blas is blas is sys.modules["scipy.linalg.cython_blas"],
    "linkage": linkage(np.array([[0.0], [1.0], [5.0]]), "single")[:, 2].tolist(),
}))
"""


def test_kernels_load_without_scipy_linalg_and_scipy_still_works():
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True,
                          check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {
        "linalg_imported_by_kernel_load": False,
        "dot": [3.0, 7.0],
        "solve": [1.0, 0.5],
        "same_blas": True,
        "linkage": [1.0, 4.0],
    }
