"""skyloft against its own daemon, started with the CLI in a throw-away ``SKYLOFT_HOME``.

* round trip: ``noop.remote(x)`` inside one ``with app.run():``;
* map: ``list(noop.map(range(n)))``;
* cold start: each iteration opens a fresh ``with cold_app.run():`` (the containers of a
  stopped app are gone) and times its first ``cold_noop.remote(1)``;
* hello: wall time of ``skyloft run examples/hello.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from benchmarks.common import (
    Params,
    command_error,
    latency_row,
    percentile,
    throughput_row,
    time_calls,
    timed,
    timed_command,
    wall_row,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
HELLO = "examples/hello.py"  # relative to REPO_ROOT, as a user would type it
HELLO_EXPECTED = "the square is 1764"


def _cli() -> str:
    """Return the path of the ``skyloft`` console script next to this interpreter."""
    beside = Path(sys.executable).with_name("skyloft")
    found = str(beside) if beside.exists() else shutil.which("skyloft")
    if found is None:
        raise RuntimeError("the `skyloft` console script is not installed")
    return found


def _skyloft(*args: str) -> None:
    """Run ``skyloft ARGS...``; raise with its error output if it fails."""
    _, proc = timed_command([_cli(), *args], timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"`skyloft {' '.join(args)}` failed, {command_error(proc)}")


@contextmanager
def session():
    """Start a skyloft server in ``$SKYLOFT_HOME`` and stop it afterwards.

    ``run.py`` points SKYLOFT_HOME at a throw-away directory it owns, so the benchmark
    never touches the user's own server state.
    """
    if "SKYLOFT_HOME" not in os.environ:
        raise RuntimeError("SKYLOFT_HOME must name a throw-away directory")
    os.environ.pop("SKYLOFT_SERVER_URL", None)
    _skyloft("server", "start")
    try:
        _skyloft("server", "status")
        yield None
    finally:
        _skyloft("server", "stop")


def stop_leftover_server(home: str) -> None:
    """Best-effort ``skyloft server stop`` for a server left in ``home`` by a killed run."""
    env = {**os.environ, "SKYLOFT_HOME": home}
    env.pop("SKYLOFT_SERVER_URL", None)
    try:
        timed_command([_cli(), "server", "stop"], env=env, timeout=60)
    except (RuntimeError, OSError, subprocess.TimeoutExpired):
        pass


def round_trip(_, p: Params) -> list[dict]:
    """Latency of one ``.remote()`` call at a time to a warm container."""
    from benchmarks import skyloft_apps as apps

    with apps.app.run():
        samples = time_calls(apps.noop.remote, p.calls, p.warmup)
    return [latency_row("f.remote(x)", samples)]


def map_throughput(_, p: Params) -> list[dict]:
    """Throughput of ``list(f.map(range(n)))``."""
    from benchmarks import skyloft_apps as apps

    with apps.app.run():
        list(apps.noop.map(range(p.map_n // 10)))  # warm-up
        runs = [timed(lambda: list(apps.noop.map(range(p.map_n)))) for _ in range(p.map_reps)]
    return [throughput_row("list(f.map(range(n)))", p.map_n, runs)]


def cold_start(_, p: Params) -> list[dict]:
    """Time the first ``.remote()`` of a freshly started app, and app start-up plus that call."""
    from benchmarks import skyloft_apps as apps

    first_call, with_app_run = [], []
    for _ in range(p.cold_iters):
        start = time.perf_counter()
        with apps.cold_app.run():
            running = time.perf_counter()
            apps.cold_noop.remote(1)
            done = time.perf_counter()
        first_call.append(done - running)
        with_app_run.append(done - start)
    row = latency_row("first f.remote(x) after `with app.run():`", first_call)
    row["with_app_run_p50_ms"] = percentile([s * 1000 for s in with_app_run], 50)
    return [row]


def hello(_, p: Params) -> list[dict]:
    """Wall time of ``skyloft run examples/hello.py``; the first, untimed run warms caches."""
    label = f"skyloft run {HELLO}"
    argv = [_cli(), "run", HELLO]
    runs = []
    for _ in range(p.hello_runs + 1):
        seconds, proc = timed_command(argv, cwd=REPO_ROOT, timeout=120)
        if proc.returncode != 0:
            return [{"label": label, "error": command_error(proc)}]
        if HELLO_EXPECTED not in proc.stdout:
            error = f"output lacks {HELLO_EXPECTED!r}: {proc.stdout[-200:]!r}"
            return [{"label": label, "error": error}]
        runs.append(seconds)
    return [wall_row(label, runs[1:], first_s=runs[0])]
