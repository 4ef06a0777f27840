"""The one place that sets numba compilation options for every kernel in ``matching``.

``nogil`` lets Dask and thread pools run kernels side by side; ``cache`` keeps compiled code
between runs. ``fastmath`` is off: LR sums must be reproducible against the numpy references.
"""

from __future__ import annotations

import numba

NUMBA_OPTIONS = {"nogil": True, "cache": True}

kernel = numba.njit(**NUMBA_OPTIONS)
parallel_kernel = numba.njit(parallel=True, **NUMBA_OPTIONS)
