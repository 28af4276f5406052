"""Many containers of one function started at once, on the bubblewrap runtime.

    python benchmarks/fan_out.py [--containers 100] [--reps 3] [--no-ray]

skyloft: a `.map` over N inputs that each sleep, with `max_containers=N`, on a
fresh app (so no container is warm); each input notes when it started, and
the time until the last of them started is the time until all N containers
run. The floor starts N `bwrap` sandboxes of `debian_slim`'s Python at once,
each on its own overlay root, each printing when it runs (no server, no
skyloft). Ray starts N actors
(`num_cpus=0`, so all fit) and calls each once. Dask has no per-task
processes to compare. Results go to
benchmarks/results/<date>-<host>-fan-out.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path[0] = str(REPO_ROOT)

from benchmarks.common import bubblewrap_server, percentile, run_app  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402
from skyloft._client.config import image_cache_dir  # noqa: E402
from skyloft.cas import BlobStore  # noqa: E402

HOLD_S = 15.0  # longer than any start, so no container takes a second input

APP = """
import socket
import sys
import time

import skyloft

app = skyloft.App("fan-out")


@app.function(max_containers={n})
def hold(seconds):
    started = time.time()
    time.sleep(seconds)
    return started, socket.gethostname()


if __name__ == "__main__":
    for rep in range(int(sys.argv[1]) + 1):  # the first, untimed, builds the image
        with app.run():  # a new app each time: no container is warm
            begin = time.time()
            results = list(hold.map([{hold_s}] * ({n} if rep else 1)))
        if rep:
            assert len({{host for _, host in results}}) == {n}, "an input ran on a container that ran another"
            print("RESULT", ",".join("%.4f" % (started - begin) for started, _ in results), flush=True)
"""


def _floor(n: int, cache: str) -> list[float]:
    """N bubblewrap sandboxes of `debian_slim`'s Python, each on an overlay root of its own as skyloft's
    are, started at once: seconds until each runs. No server, no skyloft in the sandbox."""
    from skyloft.image import Image
    from skyloft.worker.blobs import BlobCache
    from skyloft.worker.images import ImageBuilder
    from skyloft.worker.image_runtime import ImageRuntime
    from skyloft.worker.runtime.bubblewrap import SANDBOX_ARGS
    from skyloft.worker.runtime.overlay import mount_overlay, unmount_overlay

    scratch = tempfile.mkdtemp(prefix="skyloft-floor-")
    builder = ImageBuilder(cache, os.path.join(scratch, "build"), BlobCache(BlobStore(os.path.join(scratch, "blobs"))),
                           ImageRuntime(os.path.join(scratch, "runtime")))
    layers = [builder.layers.path(layer) for layer in builder.ensure(Image.debian_slim().to_proto(), print).layers]
    code = "import time; print(time.time(), flush=True); time.sleep(%s)" % HOLD_S

    def start(i: int) -> tuple[subprocess.Popen[str], float]:
        root = mount_overlay(os.path.join(scratch, str(i)), layers)
        process = subprocess.Popen(["bwrap", "--bind", root, "/", *SANDBOX_ARGS, "--", "python3", "-c", code],
                                   stdout=subprocess.PIPE, text=True)
        return process, float(process.stdout.readline())

    begin = time.time()
    with ThreadPoolExecutor(n) as pool:
        started = list(pool.map(start, range(n)))
    for i, (process, _) in enumerate(started):
        process.kill()
        process.wait()
        unmount_overlay(os.path.join(scratch, str(i)))
    shutil.rmtree(scratch, ignore_errors=True)
    return [at - begin for _, at in started]


def _ray(n: int, reps: int) -> list[list[float]]:
    """N fresh Ray actors at once, each called once: seconds until each call started."""
    import logging

    import ray

    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=False)
    try:
        @ray.remote(num_cpus=0)
        class Holder:
            def started(self) -> float:
                return time.time()

        ray.get(Holder.remote().started.remote())  # exports the class (untimed)
        runs = []
        for _ in range(reps):
            begin = time.time()
            actors = [Holder.remote() for _ in range(n)]
            runs.append([at - begin for at in ray.get([actor.started.remote() for actor in actors])])
            for actor in actors:
                ray.kill(actor)
        return runs
    finally:
        ray.shutdown()


def _summary(runs: list[list[float]]) -> dict:
    return {"all_running_s": [max(run) for run in runs], "median_all_running_s": statistics.median(max(r) for r in runs),
            "median_p50_s": statistics.median(percentile(run, 50) for run in runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=100)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true")
    args = parser.parse_args()
    rows = {}
    with bubblewrap_server() as (home, env):
        stdout = run_app(home, env, APP.format(hold_s=HOLD_S, n=args.containers), str(args.reps))
    runs = [[float(s) for s in line.split()[1].split(",")] for line in stdout.splitlines()
            if line.startswith("RESULT ")]
    rows["skyloft"] = _summary(runs)
    rows["floor: bwrap + image python"] = _summary([_floor(args.containers, image_cache_dir())
                                                    for _ in range(args.reps)])
    if not args.no_ray:
        rows["ray: actors"] = _summary(_ray(args.containers, args.reps))
    result = {"machine": machine_info(), "containers": args.containers, "reps": args.reps, "rows": rows}
    out = REPO_ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-{os.uname().nodename}-fan-out.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for label, row in rows.items():
        print(f"{label:24s} all running: median {row['median_all_running_s']:6.2f} s   "
              f"half running: median {row['median_p50_s']:6.2f} s   runs {row['all_running_s']}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
