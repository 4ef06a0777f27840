"""Running the engine's block tasks on a Dask cluster (``dask.distributed``).

The same picklable block tasks the local path runs in a loop are submitted as Dask tasks; the
results are gathered in submission order, so the output is identical to the local path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence


def connect(address_or_client):
    """A ``dask.distributed.Client`` for a scheduler address (or the client itself)."""
    try:
        from dask.distributed import Client
    except ImportError:  # pragma: no cover - exercised only without the extra installed
        raise ValueError(
            "Dask is not installed; install the 'dask' extra: pip install 'dnatrack[dask]'"
        ) from None
    if isinstance(address_or_client, Client):
        return address_or_client
    return Client(address_or_client)


def _call(task, chunk):
    return task(chunk)


def run_blocks(
    client_or_address,
    task: Callable,
    chunks: Sequence,
    progress: Callable[[int], None] | None = None,
) -> list:
    """Run ``task(chunk)`` for every chunk on the cluster; results in chunk order.

    ``task`` is sent to the workers once (scattered); ``progress`` is called with the size of
    each finished chunk (``len`` of its row ranges summed) as results arrive.
    """
    from dask.distributed import as_completed

    client = connect(client_or_address)
    shared_task = client.scatter(task, broadcast=True)
    futures = [client.submit(_call, shared_task, chunk, pure=False) for chunk in chunks]
    position = {future.key: k for k, future in enumerate(futures)}
    results: list = [None] * len(futures)
    for future in as_completed(futures):
        k = position[future.key]
        results[k] = future.result()
        if progress is not None:
            progress(int(sum(stop - start for start, stop in chunks[k])))
    return results
