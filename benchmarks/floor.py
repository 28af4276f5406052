"""Local floor: what plain processes on this machine can do with no framework at all.

* round trip: ``ProcessPoolExecutor.submit().result()`` and a raw Unix-socket ping-pong
  between two processes;
* map: ``ProcessPoolExecutor.map`` per item (chunksize=1) and batched (chunksize=100);
* cold start: a fresh forked process, and a fresh spawned interpreter, running one call;
* hello: interpreter start-up alone and with each framework imported.
"""

from __future__ import annotations

import multiprocessing
import socket
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

from benchmarks.common import (
    Params,
    command_error,
    latency_row,
    throughput_row,
    time_calls,
    timed,
    timed_command,
    wall_row,
)

WORKERS = 2
PING = b"ping0000"


def noop(x):
    """Return the input unchanged; the workload of every benchmark."""
    return x


@contextmanager
def session():
    """The floor needs no shared state between benchmarks."""
    yield None


def _echo(sock: socket.socket) -> None:
    """Echo every message received on ``sock`` until the peer closes it."""
    while data := sock.recv(64):
        sock.sendall(data)


def _socket_ping_pong(n: int, warmup: int) -> list[float]:
    """Time ``n`` 8-byte ping-pongs with a forked echo process over a Unix socket pair."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    echo = multiprocessing.get_context("fork").Process(target=_echo, args=(theirs,), daemon=True)
    echo.start()
    theirs.close()

    def ping(_: int) -> None:
        ours.sendall(PING)
        ours.recv(64)  # 8 bytes on a local stream socket arrive in one piece

    try:
        return time_calls(ping, n, warmup)
    finally:
        ours.close()
        echo.join(timeout=5)


def round_trip(_, p: Params) -> list[dict]:
    """Single-call latency through a process pool and over a raw Unix socket."""
    with ProcessPoolExecutor(WORKERS) as pool:
        pool_samples = time_calls(lambda i: pool.submit(noop, i).result(), p.calls, p.warmup)
    return [
        latency_row("ProcessPoolExecutor submit().result()", pool_samples),
        latency_row("Unix socket ping-pong, 8 bytes", _socket_ping_pong(p.calls, p.warmup)),
    ]


def map_throughput(_, p: Params) -> list[dict]:
    """Throughput of ``ProcessPoolExecutor.map`` unbatched and batched."""
    rows = []
    with ProcessPoolExecutor(WORKERS) as pool:
        for chunksize in (1, 100):
            list(pool.map(noop, range(p.map_n // 10), chunksize=chunksize))  # warm-up
            runs = [
                timed(lambda: list(pool.map(noop, range(p.map_n), chunksize=chunksize)))
                for _ in range(p.map_reps)
            ]
            rows.append(throughput_row(f"ProcessPoolExecutor.map chunksize={chunksize}", p.map_n, runs))
    return rows


def _fresh_process_call(method: str) -> float:
    """Time creating a one-process pool with ``method`` and running one call in it."""
    ctx = multiprocessing.get_context(method)
    pool = ProcessPoolExecutor(1, mp_context=ctx)
    try:
        return timed(lambda: pool.submit(noop, 1).result())
    finally:
        pool.shutdown()


def cold_start(_, p: Params) -> list[dict]:
    """First call in a brand-new process: forked (cheapest) and spawned (new interpreter)."""
    return [
        latency_row(
            f"new {method}ed process + first call",
            [_fresh_process_call(method) for _ in range(p.cold_iters)],
        )
        for method in ("fork", "spawn")
    ]


def hello(_, p: Params) -> list[dict]:
    """Wall time of ``python -c ...`` baselines to put `skyloft run` in context."""
    rows = []
    for code in ("pass", "import skyloft", "import ray", "import distributed"):
        label = f"python -c '{code}'"
        runs = []
        for _ in range(p.hello_runs):
            seconds, proc = timed_command([sys.executable, "-c", code])
            if proc.returncode != 0:
                rows.append({"label": label, "error": command_error(proc)})
                break
            runs.append(seconds)
        else:
            rows.append(wall_row(label, runs))
    return rows
