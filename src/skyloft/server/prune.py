"""`skyloft image prune`: delete the stored files that nothing live references.

Live are the functions of apps that are not stopped (their code, their
serialized function, the files and mounts of their images) and every stored
argument and result. A blob written or asked for within the grace period is
kept as well: clients upload files before they create the function that
references them.
"""

from __future__ import annotations

import json
import os
import time

from .._proto import pb
from ..cas import BlobStore, blob_id_of
from ..worker.agent import WorkerAgent
from .store import Store

PRUNE_GRACE_S = 3600.0


def prune(store: Store, blobs: BlobStore, worker: WorkerAgent | None, all_images: bool) -> pb.ImagePruneResponse:
    """Prune the server's blobs and, with an embedded worker, its code and image caches."""
    functions = store.live_functions()
    unused_since = time.time() - PRUNE_GRACE_S
    paths = [blobs.root, *(worker.disk_paths() if worker else ())]
    before = _disk_usage(paths)
    manifests = _file_manifests(functions)
    keep = store.payload_blobs() | set(manifests)
    for manifest_id, files in manifests.items():
        keep.update(files if files is not None else _read_manifest(blobs, manifest_id))
    keep.update(f.serialized_function.blob_id for f in functions if f.serialized_function.blob_id)
    response = pb.ImagePruneResponse(files_removed=blobs.prune(keep, unused_since))
    if worker is not None:
        images = {f.image.image_id for f in functions if f.image.image_id} if all_images else None
        result = worker.prune(images, manifests, unused_since)
        response.images_removed = result.images_removed
        response.files_removed += result.files_removed
    response.bytes_freed = max(0, before - _disk_usage(paths))
    return response


def _file_manifests(functions: list[pb.FunctionSpec]) -> dict[str, dict[str, str] | None]:
    """Every manifest of files the functions use, by blob id: their code (read from the store when
    needed) and the files their images copy or mount (carried in the image steps themselves)."""
    manifests: dict[str, dict[str, str] | None] = {}
    for function in functions:
        if function.code_manifest_id:
            manifests[function.code_manifest_id] = None
        for step in function.image.steps:
            if step.kind in ("copy", "mount"):
                manifests[blob_id_of(step.args[1].encode())] = json.loads(step.args[1])
    return manifests


def _read_manifest(blobs: BlobStore, manifest_id: str) -> list[str]:
    try:
        return list(json.loads(blobs.get(manifest_id)).values())
    except (OSError, ValueError):
        return []  # gone or corrupt: the app's next container fails to start and says so


def _disk_usage(paths: list[str]) -> int:
    """Bytes in the files under `paths`, each hard-linked file counted once."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        for dirpath, _, filenames in os.walk(path):
            for name in filenames:
                try:
                    info = os.lstat(os.path.join(dirpath, name))
                except OSError:
                    continue
                if (info.st_dev, info.st_ino) not in seen:
                    seen.add((info.st_dev, info.st_ino))
                    total += info.st_size
    return total
