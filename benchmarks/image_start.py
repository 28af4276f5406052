"""Container start against image size, on the bubblewrap runtime.

    python benchmarks/image_start.py [--iters 10] [--big-mb 2048]

Builds two images on `debian_slim` that differ only by one file of 20 MB or
`--big-mb` MB, then times the first `.remote()` of a fresh app (a cold start)
on each, and on `debian_slim` itself. The floor is bubblewrap starting the
host's Python on the host's root, with no image, no server and no skyloft.
Ray and Dask have no images to compare with. Results go to
benchmarks/results/<date>-<host>-image-start.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path[0] = str(REPO_ROOT)

from benchmarks.common import bubblewrap_server, percentile, run_app  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402

APP = """
import sys
import time

import skyloft

base = skyloft.Image.debian_slim()
images = {{
    "debian_slim": base,
    "20 MB file": base.run_commands("head -c 20M /dev/urandom > /payload"),
    "{big_mb} MB file": base.run_commands("head -c {big_mb}M /dev/urandom > /payload"),
}}
apps = {{}}
for label, image in images.items():
    app = skyloft.App("image-start", image=image)

    @app.function(serialized=True)
    def noop(x):
        return x

    apps[label] = (app, noop)

if __name__ == "__main__":
    iters = int(sys.argv[1])
    for label, (app, noop) in apps.items():
        with app.run():  # builds the image (untimed)
            noop.remote(0)
        samples = []
        for _ in range(iters):
            with app.run():
                start = time.perf_counter()
                noop.remote(1)
                samples.append(time.perf_counter() - start)
        print("RESULT", label, ",".join("%.6f" % s for s in samples), flush=True)
"""


def _floor(iters: int) -> list[float]:
    """bubblewrap + the host's Python, nothing else: the least a namespaced start can cost."""
    argv = ["bwrap", "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-pid",
            "--unshare-ipc", "--unshare-uts", sys.executable, "-c", "pass"]
    samples = []
    for _ in range(iters):
        start = time.perf_counter()
        subprocess.run(argv, check=True)
        samples.append(time.perf_counter() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--big-mb", type=int, default=2048)
    args = parser.parse_args()
    with bubblewrap_server() as (home, env):
        stdout = run_app(home, env, APP.format(big_mb=args.big_mb), str(args.iters))
        rows = {}
        for line in stdout.splitlines():
            if line.startswith("RESULT "):
                label, samples = line[len("RESULT "):].rsplit(" ", 1)
                rows[label] = [float(s) for s in samples.split(",")]
        rows["floor: bwrap + python -c pass"] = _floor(args.iters)
        store_bytes = sum(f.stat().st_size for f in (home / "blobs").rglob("*") if f.is_file())
    result = {
        "machine": machine_info(),
        "iters": args.iters,
        "p50_ms": {label: percentile([s * 1000 for s in samples], 50) for label, samples in rows.items()},
        "max_ms": {label: max(samples) * 1000 for label, samples in rows.items()},
        "ratio_big_to_small": percentile(rows[f"{args.big_mb} MB file"], 50) / percentile(rows["20 MB file"], 50),
        "blob_store_bytes": store_bytes,
    }
    out = REPO_ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-{os.uname().nodename}-image-start.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    for label in rows:
        print(f"{label:32s} p50 {result['p50_ms'][label]:8.1f} ms   max {result['max_ms'][label]:8.1f} ms")
    print(f"start time ratio, {args.big_mb} MB vs 20 MB image: {result['ratio_big_to_small']:.2f}")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
