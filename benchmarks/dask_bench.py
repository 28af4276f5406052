"""Dask distributed on one machine: ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)``.

* round trip: ``client.submit(noop, x, pure=False).result()``;
* map: ``client.gather(client.map(noop, range(n), pure=False))``.

Dask has no per-function scale-to-zero, so there is no cold-start figure for it.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

from benchmarks.common import Params, latency_row, throughput_row, time_calls, timed


@contextmanager
def session():
    """Start a two-process local cluster and a client connected to it."""
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.CRITICAL,  # workers log a harmless heartbeat error at shutdown
    ) as cluster, Client(cluster) as client:
        yield client


def _noop(x):
    return x


def round_trip(client, p: Params) -> list[dict]:
    """Latency of one task submitted and awaited at a time."""
    samples = time_calls(lambda i: client.submit(_noop, i, pure=False).result(), p.calls, p.warmup)
    return [latency_row("client.submit(f, x, pure=False).result()", samples)]


def map_throughput(client, p: Params) -> list[dict]:
    """Throughput of mapping over ``n`` inputs and gathering all results."""

    def run(n: int) -> None:
        client.gather(client.map(_noop, range(n), pure=False))

    run(p.map_n // 10)  # warm-up
    runs = [timed(lambda: run(p.map_n)) for _ in range(p.map_reps)]
    return [throughput_row("client.gather(client.map(f, range(n), pure=False))", p.map_n, runs)]
