"""The worker's view of the blob store: local files, fetched from the
control plane on first use when the worker runs on another machine."""

from __future__ import annotations

from collections.abc import Callable

from ..cas import BlobStore


class BlobCache:
    def __init__(self, store: BlobStore, fetch: Callable[[str], bytes] | None = None,
                 upload: Callable[[bytes], str] | None = None) -> None:
        self._store = store
        self._fetch = fetch
        self._upload = upload

    @property
    def store(self) -> BlobStore:
        """The local store behind the cache."""
        return self._store

    def path(self, blob_id: str) -> str:
        """Local path of the blob, fetched first if this worker lacks it."""
        if not self._store.has(blob_id):
            if self._fetch is None:
                raise FileNotFoundError(f"blob {blob_id} is not in the store")
            self._store.put(self._fetch(blob_id), expected_id=blob_id)
        return self._store.path(blob_id)

    def read(self, blob_id: str) -> bytes:
        with open(self.path(blob_id), "rb") as f:
            return f.read()

    def put(self, data: bytes) -> str:
        """Store a blob where the control plane (and so the caller) can reach it."""
        blob_id = self._store.put(data)
        if self._upload is not None:
            self._upload(data)
        return blob_id
