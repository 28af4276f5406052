"""Code mounts: a manifest of {relative path: blob id} turned into a directory.

Each manifest is materialized once per worker, by hard links into the blob
cache, and shared read-only by every container that runs that code.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from collections.abc import Collection

from .blobs import BlobCache


class CodeMounts:
    def __init__(self, root: str, blobs: BlobCache) -> None:
        self._root = root
        self._blobs = blobs
        self._lock = threading.Lock()
        os.makedirs(root, exist_ok=True)

    def materialize(self, manifest_id: str) -> str:
        """The directory holding the manifest's files, built on first use."""
        target = os.path.join(self._root, manifest_id)
        if os.path.isdir(target):
            return target
        with self._lock:
            if os.path.isdir(target):
                return target
            manifest = json.loads(self._blobs.read(manifest_id))
            staging = tempfile.mkdtemp(dir=self._root, prefix=".build-")
            for relpath, blob_id in manifest.items():
                if relpath.startswith("/") or ".." in relpath.split("/"):
                    raise ValueError(f"unsafe path in code manifest: {relpath!r}")
                dest = os.path.join(staging, relpath)
                os.makedirs(os.path.dirname(dest), exist_ok=True)
                source = self._blobs.path(blob_id)
                try:
                    os.link(source, dest)
                except OSError:
                    shutil.copyfile(source, dest)
            os.rename(staging, target)
            return target

    def prune(self, keep: Collection[str], unused_since: float) -> None:
        """Remove the materialized manifests not in `keep` made before `unused_since`."""
        for entry in os.scandir(self._root):
            if entry.name not in keep and entry.stat(follow_symlinks=False).st_mtime < unused_since:
                shutil.rmtree(entry.path, ignore_errors=True)
