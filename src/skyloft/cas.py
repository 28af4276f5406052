"""Content-addressed blob store on disk: a blob's id is the sha256 of its bytes.

Used by the control plane for uploaded code and large payloads, and by
workers as their local cache of it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Collection

# Arguments and results larger than this travel as blobs, not inside messages.
MAX_INLINE_BYTES = 2 << 20


def blob_id_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_blob_id(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashing(source: str, dest: str) -> str:
    """Copy a file in chunks and return the sha256 of what was copied."""
    digest = hashlib.sha256()
    with open(source, "rb") as f, open(dest, "wb") as out:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


class CorruptBlobError(Exception):
    """A stored blob no longer matches its hash; it has been deleted so it is fetched or rebuilt."""

    def __init__(self, blob_id: str) -> None:
        super().__init__(f"blob {blob_id} was corrupt on disk; it was deleted")
        self.blob_id = blob_id


class BlobStore:
    """Blobs as files under `root/ab/abcdef…`, written atomically."""

    def __init__(self, root: str) -> None:
        self.root = root
        os.makedirs(root, exist_ok=True)

    def path(self, blob_id: str) -> str:
        if len(blob_id) != 64 or not all(c in "0123456789abcdef" for c in blob_id):
            raise ValueError(f"not a blob id: {blob_id!r}")
        return os.path.join(self.root, blob_id[:2], blob_id)

    def has(self, blob_id: str) -> bool:
        return os.path.exists(self.path(blob_id))

    def touch(self, blob_id: str) -> None:
        """Mark the blob as just used, so that `prune`'s grace period protects it again."""
        try:
            os.utime(self.path(blob_id))
        except FileNotFoundError:
            pass

    def prune(self, keep: Collection[str], unused_since: float) -> int:
        """Delete the blobs not in `keep` that were not written or touched after `unused_since`
        (a `time.time()`), and leftovers of interrupted writes; returns how many blobs went."""
        removed = 0
        for entry in _scan(self.root):
            name = entry.name
            if name in keep or (len(name) != 64 and not name.startswith(".tmp-")):
                continue
            if entry.stat(follow_symlinks=False).st_mtime < unused_since:
                os.unlink(entry.path)
                removed += len(name) == 64
        return removed

    def put(self, data: bytes, expected_id: str | None = None) -> str:
        """Store `data`; refuse it when it does not hash to `expected_id`."""
        blob_id = blob_id_of(data)
        if expected_id and expected_id != blob_id:
            raise ValueError(f"blob content hashes to {blob_id}, not {expected_id}")
        if self.has(blob_id):
            self.touch(blob_id)
        else:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            self._install(tmp, blob_id)
        return blob_id

    def put_file(self, source: str) -> str:
        """Store a file's content without reading it all into memory; returns its blob id."""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        os.close(fd)
        try:
            blob_id = _copy_hashing(source, tmp)
        except BaseException:
            os.unlink(tmp)
            raise
        self._install(tmp, blob_id)
        return blob_id

    def _install(self, tmp: str, blob_id: str) -> None:
        """Make the written temporary file the blob, read-only; drop it if the blob exists already."""
        path = self.path(blob_id)
        if os.path.exists(path):
            os.unlink(tmp)
            self.touch(blob_id)
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.chmod(tmp, 0o444)
        os.replace(tmp, path)

    def get(self, blob_id: str) -> bytes:
        """The blob's bytes, checked against its id."""
        with open(self.path(blob_id), "rb") as f:
            data = f.read()
        if blob_id_of(data) != blob_id:
            self._discard(blob_id)
        return data

    def copy_to(self, blob_id: str, dest: str) -> None:
        """Copy the blob to `dest`, checking its hash on the way."""
        if _copy_hashing(self.path(blob_id), dest) != blob_id:
            os.unlink(dest)
            self._discard(blob_id)

    def _discard(self, blob_id: str) -> None:
        os.unlink(self.path(blob_id))
        raise CorruptBlobError(blob_id)


def _scan(root: str) -> list[os.DirEntry]:
    """The files of a store: blobs in their two-letter folders, and temporary files at the top."""
    entries: list[os.DirEntry[str]] = []
    with os.scandir(root) as top:
        for entry in top:
            if entry.is_dir(follow_symlinks=False):
                with os.scandir(entry.path) as folder:
                    entries.extend(folder)
            else:
                entries.append(entry)
    return entries
