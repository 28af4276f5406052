"""Blob transfer over the API: upload in chunks, download as a stream."""

from __future__ import annotations

from .._proto import pb
from ..cas import blob_id_of

_CHUNK = 1 << 20


def upload_blob(client, data: bytes, blob_id: str | None = None) -> str:
    blob_id = blob_id or blob_id_of(data)

    def chunks():
        for start in range(0, max(len(data), 1), _CHUNK):
            yield pb.BlobChunk(blob_id=blob_id if start == 0 else "", data=data[start:start + _CHUNK])

    client.stream_in("BlobPut", chunks())
    return blob_id


def download_blob(client, blob_id: str) -> bytes:
    return b"".join(chunk.data for chunk in client.stream("BlobGet", pb.BlobRef(blob_id=blob_id)))
