"""Bytes stored for two images that pip-install the same packages on different bases.

    python benchmarks/image_dedup.py [--packages requests rich]

Image A is `debian_slim().pip_install(...)`, image B is
`debian_slim().apt_install("curl").pip_install(...)`: the pip layers sit on
different parents, so a per-layer store keeps both, while skyloft's per-file
store keeps each file once. Reports the two pip layers' sizes, their sum, and
the bytes the blob store holds for them. Results go to
benchmarks/results/<date>-<host>-image-dedup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):
    sys.path[0] = str(REPO_ROOT)

from benchmarks.common import bubblewrap_server, run_app  # noqa: E402
from benchmarks.machine import machine_info  # noqa: E402

APP = """
import skyloft

packages = {packages!r}
images = {{
    "A": skyloft.Image.debian_slim().pip_install(*packages),
    "B": skyloft.Image.debian_slim().apt_install("curl").pip_install(*packages),
}}
for name, image in images.items():
    app = skyloft.App("dedup-" + name, image=image)

    @app.function(serialized=True)
    def ping():
        return "ok"

    with app.run():
        assert ping.remote() == "ok"
"""


def _layer_files(blobs: Path, manifest_id: str) -> dict[str, int]:
    """{blob id: size} of the files a layer holds."""
    manifest = json.loads((blobs / manifest_id[:2] / manifest_id).read_bytes())
    sizes = {}
    for entry in manifest["entries"]:
        kind, value = entry[1], entry[5]
        if kind == "f":
            sizes[value] = (blobs / value[:2] / value).stat().st_size
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="+", default=["requests", "rich"])
    args = parser.parse_args()
    with bubblewrap_server() as (home, env):
        run_app(home, env, APP.format(packages=args.packages))
        blobs = home / "blobs"
        records = [json.loads(p.read_text()) for p in (home / "worker" / "images" / "images").glob("*.json")]
        # B's chain is (debian, apt, pip); A's is (debian, pip): its second layer is not B's apt layer.
        chain_b = next(r["layers"] for r in records if len(r["layers"]) == 3)
        pip_a = next(r["layers"][1] for r in records if len(r["layers"]) == 2 and r["layers"][1] != chain_b[1])
        layers = [_layer_files(blobs, pip_a), _layer_files(blobs, chain_b[2])]
        sizes = [sum(files.values()) for files in layers]
        unique = {blob: size for files in layers for blob, size in files.items()}
    result = {
        "machine": machine_info(),
        "packages": args.packages,
        "pip_layer_bytes": sizes,
        "sum_bytes": sum(sizes),
        "stored_bytes": sum(unique.values()),
    }
    out = REPO_ROOT / "benchmarks" / "results" / f"{time.strftime('%Y-%m-%d')}-{os.uname().nodename}-image-dedup.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"pip layers: {sizes[0]:,} + {sizes[1]:,} = {sum(sizes):,} bytes; "
          f"stored once: {result['stored_bytes']:,} bytes ({result['stored_bytes'] / sum(sizes):.0%})")
    print(f"results: {out}")


if __name__ == "__main__":
    main()
