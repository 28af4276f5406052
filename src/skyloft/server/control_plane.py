"""The control plane process: state, scheduler, API server and, in the
embedded default, one worker agent living in the same process."""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from concurrent import futures

import grpc

from .. import __version__
from .._client.config import image_cache_dir
from .._proto import pb
from ..cas import BlobStore
from ..records import ResultRecord
from ..sockets import socket_dir
from ..worker.agent import WorkerAgent
from ..worker.blobs import BlobCache
from ..worker.runtime import NOT_ISOLATED, detect_runtime
from .api import Api, generic_handler
from .lane_server import LaneServer
from .logs import LogHub
from .scheduler import Scheduler
from .store import Store

log = logging.getLogger("skyloft.server")

MAX_MESSAGE_BYTES = 64 << 20
_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.so_reuseport", 0),
]


def ensure_token(home: str) -> str:
    """The server's token, created (readable by its owner only) on first start."""
    path = os.path.join(home, "token")
    if not os.path.exists(path):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(32))
    with open(path) as f:
        return f.read().strip()


class EmbeddedLink:
    """The in-process worker reports straight to the scheduler."""

    def __init__(self, scheduler: Scheduler) -> None:
        self._scheduler = scheduler

    def container_event(self, event: pb.ContainerEvent) -> None:
        self._scheduler.container_event(event)

    def container_outputs(self, container_id: str, results: list[ResultRecord]) -> None:
        self._scheduler.record_outputs(container_id, results)

    def container_log(self, container_id: str, stream: int, text: str) -> None:
        self._scheduler.container_log(container_id, stream, text)


class ControlPlane:
    def __init__(self, home: str, host: str = "127.0.0.1", port: int = 0, with_worker: bool = True,
                 runtime: str | None = None) -> None:
        self.home = home
        os.makedirs(home, exist_ok=True)
        self.token = ensure_token(home)
        self.blobs = BlobStore(os.path.join(home, "blobs"))
        self.logs = LogHub(os.path.join(home, "logs"))
        self.store = Store(os.path.join(home, "state.db"))
        self.scheduler = Scheduler(self.store, self.logs)
        self.worker: WorkerAgent | None = None
        if with_worker:
            self.worker = WorkerAgent(os.path.join(home, "worker"), BlobCache(self.blobs), detect_runtime(runtime),
                                      EmbeddedLink(self.scheduler), image_cache_dir())
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=256, thread_name_prefix="api"),
                                   options=_GRPC_OPTIONS)
        api = Api(self.scheduler, self.blobs, self.logs, self.worker)
        self._server.add_generic_rpc_handlers([generic_handler(api, self.token)])
        self.lane = LaneServer(api, self.token, os.path.join(socket_dir(home, len("lane.sock")), "lane.sock"))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}; is another server using that port?")
        self.url = f"{host}:{self.port}"
        self.unix_path = os.path.join(socket_dir(home, len("server.sock")), "server.sock")
        if os.path.exists(self.unix_path):
            os.unlink(self.unix_path)
        self._server.add_insecure_port(f"unix:{self.unix_path}")
        self._done = threading.Event()

    def start(self) -> None:
        requeued = self.scheduler.recover()
        if requeued:
            log.info("requeued %d unfinished inputs from the last run", requeued)
        self.scheduler.start()
        self._server.start()
        self.lane.start()
        if self.worker is not None:
            if not self.worker.runtime.isolated:
                log.warning(NOT_ISOLATED)
            self.scheduler.add_worker(self.worker)
        self._write_server_file()
        log.info("skyloft server %s listening on %s", __version__, self.url)

    def _write_server_file(self) -> None:
        info = {"pid": os.getpid(), "url": self.url, "unix": self.unix_path, "lane": self.lane.path,
                "version": __version__}
        tmp = os.path.join(self.home, ".server.json.tmp")
        with open(tmp, "w") as f:
            json.dump(info, f)
        os.replace(tmp, os.path.join(self.home, "server.json"))

    def wait(self) -> None:
        self._done.wait()

    def stop(self) -> None:
        """Stop serving; containers are stopped, accepted inputs stay in the store."""
        if self._done.is_set():
            return
        self.lane.stop()
        self.scheduler.shutdown()
        if self.worker is not None:
            self.worker.shutdown()
        self._server.stop(grace=1.0).wait()
        try:
            with open(os.path.join(self.home, "server.json")) as f:
                if json.load(f).get("pid") == os.getpid():
                    os.unlink(os.path.join(self.home, "server.json"))
        except (OSError, ValueError):
            pass
        self._done.set()
