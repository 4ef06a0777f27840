"""The one place that sets numba compilation options for every kernel in ``matching``.

``nogil`` lets Dask and thread pools run kernels side by side; ``cache`` keeps compiled code
between runs. ``fastmath`` is off: LR sums must be reproducible against the numpy references.

Threading layer: the web process runs analyses in several threads at once, and numba's
``workqueue`` layer aborts the whole process ("Concurrent access has been detected") when two
threads launch parallel kernels together. Unless ``NUMBA_THREADING_LAYER`` names a layer,
numba is told to use a thread-safe one (``threadsafe``: TBB, a dependency of this package, or
else OpenMP), never ``workqueue``; with neither, the first parallel kernel raises numba's
"No threading layer could be loaded" error instead of running unsafely. Where the environment
does name a layer that is not thread-safe, parallel kernels take one process-wide lock, so
concurrent callers run one after another instead of killing the process.

numba checks, the first time it loads or compiles a kernel, that SciPy's BLAS is there by
importing ``scipy.linalg.cython_blas``, which imports all of ``scipy.linalg`` (a quarter of a
second of every command's start-up; no kernel here calls BLAS). The extension module is loaded
here on its own instead, under its own name, so numba's check finds it; ``scipy.linalg``
itself still imports as usual for whoever needs it, and finds the module already loaded.

pip installs TBB's library into the environment's ``lib`` folder, where the dynamic loader
does not look when numba asks for ``libtbb.so.12``; it is loaded here by its installed path
first, so numba's request finds it already loaded.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import logging
import sys
import threading
from pathlib import Path

import numba

logger = logging.getLogger(__name__)

NUMBA_OPTIONS = {"nogil": True, "cache": True}

#: numba threading-layer choices under which parallel kernels may be launched from several
#: threads at once (``threadsafe`` and ``safe`` only ever pick TBB or OpenMP).
THREAD_SAFE_LAYERS = frozenset({"tbb", "omp", "threadsafe", "safe"})

_TBB_LIBRARIES = ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll")


def _load_installed_tbb() -> None:
    try:
        files = importlib.metadata.files("tbb") or ()
    except importlib.metadata.PackageNotFoundError:
        return
    for file in files:
        if file.name in _TBB_LIBRARIES:
            ctypes.CDLL(str(file.locate()), mode=ctypes.RTLD_GLOBAL)
            return


def _load_cython_blas_alone() -> None:
    """``scipy.linalg.cython_blas`` loaded without ``scipy.linalg``'s package start-up (see the
    module's description); nothing is done when it is loaded already or cannot be found."""
    name = "scipy.linalg.cython_blas"
    if name in sys.modules or "scipy.linalg" in sys.modules:
        return
    spec = importlib.util.find_spec("scipy")
    if spec is None or not spec.submodule_search_locations:
        return
    folder = Path(next(iter(spec.submodule_search_locations))) / "linalg"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"cython_blas{suffix}"
        if path.is_file():
            break
    else:
        return
    import scipy  # noqa: F401  (the package itself is light; its parent of the module)

    extension = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(extension)
    sys.modules[name] = module
    try:
        extension.loader.exec_module(module)
    except Exception:  # numba then imports scipy.linalg itself, as it would have
        del sys.modules[name]
        return
    sys.meta_path.insert(0, _LinalgFinder(module))


class _LinalgFinder(importlib.abc.MetaPathFinder):
    """Gives ``scipy.linalg``, when it is imported, its ``cython_blas`` attribute (a package
    import sets it for the submodules it loads; this one was loaded before)."""

    def __init__(self, blas) -> None:
        self.blas = blas

    def find_spec(self, fullname, path, target=None):
        if fullname != "scipy.linalg":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader, blas = spec.loader, self.blas

        class Loader(importlib.abc.Loader):
            def create_module(self, spec):
                return loader.create_module(spec)

            def exec_module(self, module):
                module.cython_blas = blas
                loader.exec_module(module)

            def __getattr__(self, name):  # resource readers and the like: the real loader's
                return getattr(loader, name)

        spec.loader = Loader()
        return spec


_load_cython_blas_alone()

if numba.config.THREADING_LAYER == "default":
    _load_installed_tbb()
    numba.config.THREADING_LAYER = "threadsafe"

_launch_lock = threading.Lock()


def launches_serialised() -> bool:
    """True when the configured threading layer is not thread-safe, so parallel kernels run
    one at a time in this process."""
    return numba.config.THREADING_LAYER not in THREAD_SAFE_LAYERS


def _serialised(dispatcher):
    @functools.wraps(dispatcher)
    def one_at_a_time(*arguments, **options):
        with _launch_lock:
            return dispatcher(*arguments, **options)

    return one_at_a_time


def parallel_kernel(function):
    """``numba.njit(parallel=True)`` with the common options; under a threading layer that is
    not thread-safe, wrapped so that only one thread launches a parallel kernel at a time."""
    dispatcher = numba.njit(parallel=True, **NUMBA_OPTIONS)(function)
    return _serialised(dispatcher) if launches_serialised() else dispatcher


if launches_serialised():
    logger.warning("numba threading layer %r (NUMBA_THREADING_LAYER) is not thread-safe: "
                   "parallel kernels run one call at a time in this process",
                   numba.config.THREADING_LAYER)


kernel = numba.njit(**NUMBA_OPTIONS)
