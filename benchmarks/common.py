"""Shared pieces: benchmark catalogue, run parameters and timing statistics."""

from __future__ import annotations

import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

# Benchmark name -> (title, skyloft target). Order is the order they run in.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "round_trip": ("Warm round trip (one call to a warm worker)", "p50 ≤ 0.5 ms"),
    "map_throughput": ("Map throughput (trivial inputs)", "≥ 20,000 inputs/s"),
    "cold_start": ("Cold start (first call to a function scaled to zero)", "p50 ≤ 100 ms"),
    "hello": ("`skyloft run examples/hello.py` wall time, server up", "median ≤ 0.7 s"),
}

# The skyloft target for each benchmark as (metric key, comparison, bound).
TARGETS: dict[str, tuple[str, str, float]] = {
    "round_trip": ("p50_ms", "<=", 0.5),
    "map_throughput": ("inputs_per_s", ">=", 20_000),
    "cold_start": ("p50_ms", "<=", 100.0),
    "hello": ("median_s", "<=", 0.7),
}


@dataclass(frozen=True)
class Params:
    """Sizes of one benchmark run."""

    calls: int = 2000  # timed calls for the round-trip benchmark
    warmup: int = 200  # untimed calls before timing starts
    map_n: int = 10_000  # inputs per map
    map_reps: int = 3  # maps per system; the median is reported
    cold_iters: int = 20  # cold starts per system
    hello_runs: int = 5  # timed `skyloft run` invocations

    def to_dict(self) -> dict:
        """Return the parameters as a JSON-friendly dict."""
        return asdict(self)


FULL = Params()
QUICK = Params(calls=200, warmup=20, map_n=1000, map_reps=1, cold_iters=3, hello_runs=2)


def percentile(samples: list[float], q: float) -> float:
    """Return the nearest-rank ``q``-th percentile (0 < q ≤ 100) of ``samples``."""
    ordered = sorted(samples)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def time_calls(call: Callable[[int], object], n: int, warmup: int = 0) -> list[float]:
    """Call ``call(i)`` ``warmup`` times untimed, then ``n`` times; return seconds per timed call."""
    for i in range(warmup):
        call(i)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - start)
    return samples


def timed(fn: Callable[[], object]) -> float:
    """Return the seconds taken by one call of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def timed_command(argv: list[str], **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``argv`` capturing its output; return its wall time in seconds and the result."""
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    return time.perf_counter() - start, proc


def command_error(proc: subprocess.CompletedProcess) -> str:
    """Describe a failed command by its exit status and last line of error output."""
    lines = (proc.stderr or proc.stdout or "").strip().splitlines()
    return f"exit {proc.returncode}: {lines[-1] if lines else 'no output'}"


def latency_row(label: str, seconds: list[float]) -> dict:
    """Summarise per-call latencies (in seconds) as a result row in milliseconds."""
    ms = [s * 1000 for s in seconds]
    return {
        "label": label,
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p99_ms": percentile(ms, 99),
        "mean_ms": statistics.fmean(ms),
        "max_ms": max(ms),
    }


def throughput_row(label: str, n: int, durations: list[float]) -> dict:
    """Summarise repeated maps of ``n`` inputs (seconds each) as inputs/s of the median run."""
    return {
        "label": label,
        "n": n,
        "runs_s": durations,
        "inputs_per_s": n / statistics.median(durations),
    }


def wall_row(label: str, seconds: list[float], **extra: object) -> dict:
    """Summarise repeated wall-clock measurements of a whole command."""
    return {
        "label": label,
        "n": len(seconds),
        "median_s": statistics.median(seconds),
        "min_s": min(seconds),
        "runs_s": seconds,
        **extra,
    }


@contextmanager
def bubblewrap_server() -> Iterator[tuple[Path, dict[str, str]]]:
    """A throw-away skyloft server on the bubblewrap runtime: yields its home and a client env."""
    cli = str(Path(sys.executable).with_name("skyloft"))
    home = Path(tempfile.mkdtemp(prefix="skyloft-bench-"))
    env = {**os.environ, "SKYLOFT_HOME": str(home)}
    env.pop("SKYLOFT_SERVER_URL", None)
    subprocess.run([cli, "server", "start", "--runtime", "bubblewrap"], env=env, check=True)
    try:
        yield home, env
    finally:
        subprocess.run([cli, "server", "stop"], env=env, check=False, capture_output=True)
        shutil.rmtree(home, ignore_errors=True)


def run_app(home: Path, env: dict[str, str], source: str, *args: str) -> str:
    """Run an app script against the server; its stdout, or exit with its error output."""
    script = home / "bench_app.py"
    script.write_text(textwrap.dedent(source))
    proc = subprocess.run([sys.executable, str(script), *args], env=env, cwd=home, capture_output=True,
                          text=True, timeout=3600)
    if proc.returncode != 0:
        sys.exit(f"benchmark app failed:\n{proc.stderr[-3000:]}")
    return proc.stdout
