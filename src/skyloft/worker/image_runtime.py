"""The copy of skyloft that containers on an image run with.

An image has its own Python, so containers cannot use the worker's
site-packages: they get skyloft, cloudpickle and tblib copied once per
skyloft version, byte-compiled, and mounted read-only.
"""

from __future__ import annotations

import compileall
import functools
import hashlib
import os
import shutil
import tempfile
import threading

import skyloft


class ImageRuntime:
    def __init__(self, root: str) -> None:
        self.root = root
        self._lock = threading.Lock()

    def path(self) -> str:
        """The copy for this version of skyloft, made on first use."""
        target = os.path.join(self.root, _source_fingerprint())
        with self._lock:
            if not os.path.isdir(target):
                self._copy(target)
        return target

    def prune(self) -> None:
        """Remove the copies of other versions of skyloft."""
        for name in os.listdir(self.root) if os.path.isdir(self.root) else ():
            if name != _source_fingerprint():
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)

    def _copy(self, target: str) -> None:
        import cloudpickle
        import tblib

        os.makedirs(self.root, exist_ok=True)
        staging = tempfile.mkdtemp(dir=self.root, prefix=".tmp-")
        ignore = shutil.ignore_patterns("__pycache__", "_proto", "server", "cli", "_client")
        for package in (skyloft, cloudpickle, tblib):
            source = os.path.dirname(os.path.abspath(package.__file__))
            shutil.copytree(source, os.path.join(staging, os.path.basename(source)), ignore=ignore)
        # Containers mount this read-only: compile now, or every start compiles it again.
        compileall.compile_dir(staging, quiet=1, legacy=False)
        os.rename(staging, target)


@functools.lru_cache(maxsize=1)
def _source_fingerprint() -> str:
    """Changes whenever skyloft's own files do, so a copy of them is never stale."""
    digest = hashlib.sha256(skyloft.__version__.encode())
    for dirpath, dirnames, filenames in os.walk(os.path.dirname(os.path.abspath(skyloft.__file__))):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(f for f in filenames if f.endswith(".py")):
            info = os.stat(os.path.join(dirpath, name))
            digest.update(f"{dirpath}/{name}:{info.st_size}:{info.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]
