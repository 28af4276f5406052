"""Ray on one machine: ``ray.init(num_cpus=2, include_dashboard=False)``.

* round trip: ``ray.get(noop.remote(x))``;
* map: ``ray.get([noop.remote(i) for i in range(n)])``;
* cold start: a new actor plus its first method call; Ray has no scale-to-zero for
  tasks, and each actor needs a worker process of its own.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

from benchmarks.common import Params, latency_row, throughput_row, time_calls, timed


@contextmanager
def session():
    """Start a local Ray instance with two CPUs and shut it down afterwards."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def _noop_task(ray):
    """Return a Ray task that returns its input."""

    @ray.remote
    def noop(x):
        return x

    return noop


def round_trip(ray, p: Params) -> list[dict]:
    """Latency of one task submitted and awaited at a time."""
    noop = _noop_task(ray)
    samples = time_calls(lambda i: ray.get(noop.remote(i)), p.calls, p.warmup)
    return [latency_row("ray.get(f.remote(x))", samples)]


def map_throughput(ray, p: Params) -> list[dict]:
    """Throughput of submitting ``n`` tasks and gathering all results."""
    noop = _noop_task(ray)
    ray.get([noop.remote(i) for i in range(p.map_n // 10)])  # warm-up
    runs = [timed(lambda: ray.get([noop.remote(i) for i in range(p.map_n)])) for _ in range(p.map_reps)]
    return [throughput_row("ray.get([f.remote(i) for i in range(n)])", p.map_n, runs)]


def cold_start(ray, p: Params) -> list[dict]:
    """Time creating a fresh actor and getting the result of its first call."""

    @ray.remote
    class Pinger:
        def ping(self, x):
            return x

    samples = []
    for _ in range(p.cold_iters + 1):
        start = time.perf_counter()
        actor = Pinger.remote()
        ray.get(actor.ping.remote(1))
        samples.append(time.perf_counter() - start)
        ray.kill(actor)
    # The first actor also pays for exporting the class, so it is not counted.
    return [latency_row("new actor + first method call", samples[1:])]
