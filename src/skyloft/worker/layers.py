"""Image layers stored per file in the content-addressed store.

A layer is a manifest (itself a blob) listing every entry a build step
changed: files by blob id, symlinks, directories, and deletions (overlayfs
whiteouts and opaque directories). A file that two layers or two images
share is stored once. Each machine materializes each layer once, as a tree of
hard links, and containers stack layers as overlayfs lower directories.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Collection

from ..cas import BlobStore

_OPAQUE = "trusted.overlay.opaque"


def ingest(directory: str, blobs: BlobStore) -> str:
    """Record `directory` (a build step's overlay upper dir, or a whole root) as a layer."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(directory):
        for name in sorted(dirnames) + sorted(filenames):
            path = os.path.join(dirpath, name)
            entry = _entry(path, os.path.relpath(path, directory), blobs)
            if entry is not None:
                entries.append(entry)
        dirnames.sort()
    manifest = json.dumps({"entries": entries}, separators=(",", ":")).encode()
    return blobs.put(manifest)


def manifest_entries(blobs: BlobStore, manifest_id: str) -> list[list]:
    """The entries a layer's manifest lists: [path, kind, mode, uid, gid, value, (mtime)]."""
    return json.loads(blobs.get(manifest_id))["entries"]


def layer_files(blobs: BlobStore, manifest_id: str) -> list[str]:
    """The blob ids of the regular files a layer holds."""
    return [entry[5] for entry in manifest_entries(blobs, manifest_id) if entry[1] == "f"]


def _entry(path: str, rel: str, blobs: BlobStore) -> list | None:
    info = os.lstat(path)
    mode, owner = stat.S_IMODE(info.st_mode), (info.st_uid, info.st_gid)
    if stat.S_ISDIR(info.st_mode):
        opaque = _getxattr(path, _OPAQUE) == b"y"
        return [rel, "o" if opaque else "d", mode, *owner, ""]
    if stat.S_ISREG(info.st_mode):
        # The modification time matters: Python checks .pyc files against their source's.
        return [rel, "f", mode, *owner, blobs.put_file(path), info.st_mtime_ns]
    if stat.S_ISLNK(info.st_mode):
        return [rel, "l", mode, *owner, os.readlink(path)]
    if stat.S_ISCHR(info.st_mode) and info.st_rdev == 0:
        return [rel, "w", 0, 0, 0, ""]
    return None  # devices, fifos and sockets: the runtime provides /dev


def _getxattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


class LayerStore:
    """Materialized layers, built from manifests on first use (by any worker sharing the cache)."""

    def __init__(self, root: str, blobs: BlobStore) -> None:
        self._root = root
        self._blobs = blobs
        self._inodes = os.path.join(root, "inodes")
        self._lock = threading.Lock()
        os.makedirs(self._inodes, exist_ok=True)

    def path(self, manifest_id: str) -> str:
        """The layer's directory, made on first use."""
        target = os.path.join(self._root, manifest_id)
        if os.path.isdir(target):
            return target
        with self._lock:
            if not os.path.isdir(target):
                self._materialize(manifest_id, target)
        return target

    def prune(self, keep: Collection[str]) -> None:
        """Remove the layers not in `keep` (and what interrupted materializations left), then the
        files that no remaining layer links to. The caller makes sure no container uses them."""
        for name in os.listdir(self._root):
            if name != "inodes" and name not in keep:
                shutil.rmtree(os.path.join(self._root, name), ignore_errors=True)
        with os.scandir(self._inodes) as files:
            for entry in files:
                if entry.stat(follow_symlinks=False).st_nlink == 1:
                    os.unlink(entry.path)

    def _materialize(self, manifest_id: str, target: str) -> None:
        entries = manifest_entries(self._blobs, manifest_id)
        os.makedirs(self._inodes, exist_ok=True)  # a cache: may have been cleared under us
        staging = tempfile.mkdtemp(dir=self._root, prefix=".layer-")
        try:
            self._fill(staging, entries)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        try:
            os.rename(staging, target)
        except OSError:
            if not os.path.isdir(target):  # not another worker sharing the cache that got there first
                raise
            shutil.rmtree(staging, ignore_errors=True)

    def _fill(self, staging: str, entries: list) -> None:
        directories = []
        for rel, kind, mode, uid, gid, value, *mtime in entries:
            dest = os.path.join(staging, rel)
            if kind in ("d", "o"):
                os.makedirs(dest, exist_ok=True)
                directories.append((dest, kind, mode, uid, gid))
            elif kind == "f":
                os.link(self._inode(value, mode, uid, gid, mtime[0]), dest)
            elif kind == "l":
                os.symlink(value, dest)
                os.lchown(dest, uid, gid)
            elif kind == "w":
                os.mknod(dest, stat.S_IFCHR | 0o000, os.makedev(0, 0))
        for dest, kind, mode, uid, gid in reversed(directories):
            os.chown(dest, uid, gid)
            os.chmod(dest, mode)
            if kind == "o":
                os.setxattr(dest, _OPAQUE, b"y")

    def _inode(self, blob_id: str, mode: int, uid: int, gid: int, mtime_ns: int) -> str:
        """One file per (content, mode, owner, mtime): hard links share them all."""
        path = os.path.join(self._inodes, f"{blob_id}-{mode:o}-{uid}-{gid}-{mtime_ns}")
        if not os.path.exists(path):
            fd, tmp = tempfile.mkstemp(dir=self._inodes, prefix=".tmp-")
            os.close(fd)
            self._blobs.copy_to(blob_id, tmp)
            os.chown(tmp, uid, gid)
            os.chmod(tmp, mode)
            os.utime(tmp, ns=(mtime_ns, mtime_ns))
            os.replace(tmp, path)
        return path
