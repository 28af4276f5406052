"""Code shipping: the user's local modules, uploaded content-addressed.

Like Modal's automount, every imported module that lives outside the Python
installation (not stdlib, not site-packages, not skyloft) is shipped: a
top-level module as its file, a package as its directory's `.py` files. Files
go up as blobs named by their hash, so a re-run uploads only what changed;
the manifest maps relative paths to blob ids and is itself a blob.
"""

from __future__ import annotations

import functools
import json
import os
import site
import sys
import sysconfig
from collections.abc import Sequence
from types import ModuleType

import skyloft

from .._proto import pb
from ..cas import blob_id_of, file_blob_id
from .blobs import upload_blob
from .connection import Client

_MAX_FILES = 5000


@functools.lru_cache(maxsize=1)
def _installed_roots() -> tuple[str, ...]:
    paths = {sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    paths.update(site.getsitepackages() if hasattr(site, "getsitepackages") else [])
    paths.add(os.path.dirname(os.path.dirname(os.path.abspath(skyloft.__file__))))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}:
        paths.add(os.path.join(prefix, "lib"))
    return tuple(os.path.realpath(p) + os.sep for p in paths if p)


def _module_root(module: ModuleType) -> tuple[str, str] | None:
    """(sys.path root, top-level name) for a local module, or None if installed or built in."""
    path = getattr(module, "__file__", None)
    name = getattr(module, "__name__", "")
    if not path or not path.endswith(".py") or name == "__main__":
        return None
    path = os.path.realpath(path)
    depth = name.count(".") + (1 if os.path.basename(path) == "__init__.py" else 0)
    root = os.path.dirname(path)
    for _ in range(depth):
        root = os.path.dirname(root)
    if (root + os.sep).startswith(_installed_roots()) or "site-packages" in root or "dist-packages" in root:
        return None
    return root, name.split(".")[0]


def local_files(extra: Sequence[tuple[str, str]] = ()) -> dict[str, str]:
    """{relative path: absolute path} of every local module's files."""
    tops: set[tuple[str, str]] = set(extra)
    for module in list(sys.modules.values()):
        found = _module_root(module) if isinstance(module, ModuleType) else None
        if found:
            tops.add(found)
    files: dict[str, str] = {}
    for root, top in sorted(tops):
        package_dir = os.path.join(root, top)
        if os.path.isfile(os.path.join(package_dir, "__init__.py")):
            for dirpath, dirnames, filenames in os.walk(package_dir):
                dirnames[:] = [d for d in dirnames if not d.startswith((".", "__pycache__"))]
                for filename in filenames:
                    if filename.endswith(".py"):
                        full = os.path.join(dirpath, filename)
                        files[os.path.relpath(full, root)] = full
        elif os.path.isfile(package_dir + ".py"):
            files[top + ".py"] = package_dir + ".py"
        if len(files) > _MAX_FILES:
            raise ValueError(f"more than {_MAX_FILES} local Python files to ship from {root}")
    return files


def main_module_entry(path: str) -> tuple[str, str]:
    """How a script run as `__main__` is shipped: its directory and its file's stem."""
    path = os.path.realpath(path)
    return os.path.dirname(path), os.path.splitext(os.path.basename(path))[0]


def sync_code(client: Client, extra: Sequence[tuple[str, str]] = (),
              also: dict[str, str | bytes] | None = None) -> tuple[str, dict[str, str]]:
    """Upload what the server lacks of the local code, and of the blobs in `also`, in one exchange.

    Returns the manifest's blob id and the shipped files ({relative: local path}).
    """
    files = local_files(extra)
    manifest = {rel: file_blob_id(path) for rel, path in sorted(files.items())}
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    manifest_id = blob_id_of(manifest_bytes)
    blobs: dict[str, str | bytes] = {**(also or {}), **{blob: files[rel] for rel, blob in manifest.items()}}
    blobs[manifest_id] = manifest_bytes
    upload_files(client, blobs)
    return manifest_id, files


def upload_files(client: Client, blobs: dict[str, str | bytes]) -> None:
    """Upload the blobs the server lacks, each given as a local path or as bytes."""
    if not blobs:
        return
    request = pb.BlobMissingRequest(blob_ids=sorted(blobs))
    for blob in client.call("BlobMissing", request, retry=True).blob_ids:
        source = blobs[blob]
        if isinstance(source, str):
            with open(source, "rb") as f:
                source = f.read()
        upload_blob(client, source, blob)
