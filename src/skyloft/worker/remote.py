"""`skyloft worker`: a worker agent in its own process, joined to a control
plane over one long-lived gRPC stream (`WorkerSession`)."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator

from .._client.blobs import download_blob, upload_blob
from .._client.config import image_cache_dir
from .._proto import pb
from ..cas import BlobStore
from ..exception import Error
from ..records import InputRecord, ResultRecord
from .agent import WorkerAgent
from .blobs import BlobCache
from .runtime import NOT_ISOLATED, detect_runtime

log = logging.getLogger("skyloft.worker")

_RECONNECT_MAX_S = 5.0


class SessionLink:
    """The agent's reports, queued for the current session's request stream."""

    def __init__(self) -> None:
        self.outbox: queue.Queue[pb.WorkerMessage] = queue.Queue()

    def container_event(self, event: pb.ContainerEvent) -> None:
        self.outbox.put(pb.WorkerMessage(event=event))

    def container_outputs(self, container_id: str, results: list[ResultRecord]) -> None:
        outputs = pb.ContainerOutputs(container_id=container_id, outputs=[r.to_proto() for r in results])
        self.outbox.put(pb.WorkerMessage(outputs=outputs))

    def container_log(self, container_id: str, stream: int, text: str) -> None:
        self.outbox.put(pb.WorkerMessage(log=pb.ContainerLog(container_id=container_id, stream=stream, text=text)))


def run_worker(client, home: str, runtime_name: str | None = None) -> None:
    """Serve the control plane until interrupted, reconnecting after failures."""
    link = SessionLink()
    blobs = BlobCache(BlobStore(os.path.join(home, "blobs")), fetch=lambda blob_id: download_blob(client, blob_id),
                      upload=lambda data: upload_blob(client, data))
    agent = WorkerAgent(home, blobs, detect_runtime(runtime_name), link, image_cache_dir())
    if not agent.runtime.isolated:
        log.warning(NOT_ISOLATED)
    delay = 0.1
    try:
        while True:
            started = time.monotonic()
            try:
                _session(client, agent, link)
            except Error as exc:
                log.warning("lost the control plane at %s: %s", client.url, exc)
            agent.stop_all("the worker lost its control plane")
            delay = 0.1 if time.monotonic() - started > 10 else min(delay * 2, _RECONNECT_MAX_S)
            time.sleep(delay)
    finally:
        agent.shutdown()


def _session(client, agent: WorkerAgent, link: SessionLink) -> None:
    ended = threading.Event()
    while not link.outbox.empty():
        link.outbox.get_nowait()

    def requests() -> Iterator[pb.WorkerMessage]:
        yield pb.WorkerMessage(hello=agent.hello())
        while not ended.is_set():
            try:
                yield link.outbox.get(timeout=0.5)
            except queue.Empty:
                continue

    log.info("worker %s joining %s", agent.worker_id, client.url)
    try:
        for message in client.stream("WorkerSession", requests()):
            kind = message.WhichOneof("msg")
            if kind == "start":
                agent.start_container(message.start.container_id, message.start.spec)
            elif kind == "stop":
                agent.stop_container(message.stop.container_id, message.stop.reason)
            elif kind == "inputs":
                agent.dispatch(message.inputs.container_id,
                               [InputRecord.from_proto(item) for item in message.inputs.inputs])
    finally:
        ended.set()
