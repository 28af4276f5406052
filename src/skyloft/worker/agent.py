"""The worker agent: starts containers when told, relays their traffic, and
reports what became of them.

The agent faces the control plane through `ControlPlaneLink` (a direct object
in the embedded server, a gRPC session for `skyloft worker`) and faces each
container through a private Unix socket carrying `frames`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Protocol

import skyloft

from .. import frames, ids
from .._proto import pb
from ..cas import MAX_INLINE_BYTES
from ..frames import FrameSocket
from ..records import InputRecord, ResultRecord
from ..sockets import socket_dir
from .blobs import BlobCache
from .code import CodeMounts
from .image_runtime import ImageRuntime
from .images import BuiltImage, ImageBuilder, ImageBuildFailed, PruneResult
from .runtime import ContainerConfig, ContainerRuntime, Mount
from .runtime.base import ContainerProcess
from .runtime.overlay import OverlayMountError

log = logging.getLogger("skyloft.worker")

_ACCEPT_TIMEOUT_S = 60.0
_STOP_GRACE_S = 3.0
_WATCHDOG_S = 0.05
_RUNTIME_SOURCE = os.path.dirname(os.path.dirname(os.path.abspath(skyloft.__file__)))
# What an image runs with unless its own environment sets PATH (as docker does).
_IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ControlPlaneLink(Protocol):
    """What the agent reports to the control plane."""

    def container_event(self, event: pb.ContainerEvent) -> None: ...
    def container_outputs(self, container_id: str, results: list[ResultRecord]) -> None: ...
    def container_log(self, container_id: str, stream: int, text: str) -> None: ...


@dataclass
class _Container:
    container_id: str
    spec: pb.FunctionSpec
    workdir: str
    socket_dir: str
    channel: FrameSocket | None = None
    process: ContainerProcess | None = None
    pending: list[list[bytes]] = field(default_factory=list)
    inflight: list[str] = field(default_factory=list)
    busy_since: float = 0.0
    exit_reason: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


class WorkerAgent:
    def __init__(self, home: str, blobs: BlobCache, runtime: ContainerRuntime, link: ControlPlaneLink,
                 image_cache: str, worker_id: str | None = None) -> None:
        self.worker_id = worker_id or ids.new_id("wk")
        self._home = home
        self._blobs = blobs
        self._code = CodeMounts(os.path.join(home, "code"), blobs)
        self._image_runtime = ImageRuntime(os.path.join(home, "image-runtime"))
        self.images = ImageBuilder(image_cache, os.path.join(home, "build"), blobs, self._image_runtime)
        self.runtime = runtime
        self.link = link
        self._containers: dict[str, _Container] = {}
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        os.makedirs(os.path.join(home, "containers"), exist_ok=True)
        threading.Thread(target=self._watchdog, name="skyloft-watchdog", daemon=True).start()

    def hello(self) -> pb.WorkerHello:
        return pb.WorkerHello(worker_id=self.worker_id, hostname=socket.gethostname(),
                              cpu=float(os.cpu_count() or 1), runtime=self.runtime.name,
                              memory_mb=_memory_mb())

    # ---- commands from the control plane (must not block) ----

    def start_container(self, container_id: str, spec: pb.FunctionSpec) -> None:
        workdir = os.path.join(self._home, "containers", container_id)
        sockets = os.path.join(socket_dir(self._home, len("sockets/") + len(container_id) + len("/agent.sock")),
                               "sockets", container_id)
        c = _Container(container_id, spec, workdir, sockets)
        with self._lock:
            self._containers[container_id] = c
        threading.Thread(target=self._run_container, args=(c,), name=f"container-{container_id}",
                         daemon=True).start()

    def stop_container(self, container_id: str, reason: str) -> None:
        with self._lock:
            c = self._containers.get(container_id)
        if c is not None:
            self._kill(c, f"stopped: {reason}", graceful=True)

    def dispatch(self, container_id: str, inputs: list[InputRecord]) -> None:
        with self._lock:
            c = self._containers.get(container_id)
        if c is None:
            return
        fields: list[bytes] = []
        for item in inputs:
            args = self._blobs.read(item.args_blob) if item.args_blob else item.args
            fields += [item.input_id.encode(), item.call_id.encode(), args]
        with c.lock:
            if not c.inflight:
                c.busy_since = time.monotonic()
            c.inflight.extend(i.input_id for i in inputs)
            if c.channel is None:
                c.pending.append(fields)
                return
        try:
            c.channel.send(frames.INPUTS, fields)
        except ConnectionError:
            pass  # the container is gone; its exit reports the inputs it held

    def stop_all(self, reason: str) -> None:
        with self._lock:
            containers = list(self._containers.values())
        for c in containers:
            self._kill(c, f"stopped: {reason}", graceful=False)

    def shutdown(self) -> None:
        self._stopped.set()
        self.stop_all("worker shutting down")
        self.runtime.close()

    # ---- disk ----

    def prune(self, keep_images: Collection[str] | None, code: Collection[str], unused_since: float) -> PruneResult:
        """Delete the code (manifests not in `code`, older than `unused_since`), the copies of
        older skyloft versions and the images (see `ImageBuilder.prune`) that nothing live needs."""
        self._code.prune(code, unused_since)
        self._image_runtime.prune()
        self.runtime.release_cached()  # idle zygotes hold images' layers
        return self.images.prune(keep_images)

    def disk_paths(self) -> list[str]:
        """Where this worker keeps files: what `prune` frees space in."""
        return [os.path.join(self._home, "code"), self._image_runtime.root, self.images.cache_dir]

    # ---- one container's life ----

    def _run_container(self, c: _Container) -> None:
        reason = ""
        try:
            listener = self._launch(c)
            self._serve(c, listener)
        except (ImageBuildFailed, OverlayMountError) as exc:
            reason = f"image build failed: {exc}"
        except Exception as exc:
            log.exception("container %s failed", c.container_id)
            reason = f"could not start: {exc}"
            self.link.container_log(c.container_id, pb.LogLine.SYSTEM, f"container failed to start: {exc}\n")
        exit_code = self._reap(c)
        reason = (c.exit_reason or reason or self.runtime.describe_exit(c.container_id, exit_code)
                  or _describe_exit(exit_code))
        self.runtime.cleanup(c.container_id)
        running = _current_input(c.socket_dir)
        with self._lock:
            self._containers.pop(c.container_id, None)
        shutil.rmtree(c.workdir, ignore_errors=True)
        shutil.rmtree(c.socket_dir, ignore_errors=True)
        self.link.container_event(pb.ContainerEvent(
            container_id=c.container_id, kind=pb.ContainerEvent.EXITED, exit_code=exit_code, reason=reason,
            input_id=running))

    def _launch(self, c: _Container) -> socket.socket:
        os.makedirs(c.workdir, exist_ok=True)
        os.makedirs(c.socket_dir, mode=0o700, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(os.path.join(c.socket_dir, "agent.sock"))
        listener.listen(1)
        code_dir = self._code.materialize(c.spec.code_manifest_id) if c.spec.code_manifest_id else ""
        image = self._image_for(c)
        runtime_source = self._image_runtime.path() if image.layers else _RUNTIME_SOURCE
        mounts = [Mount(runtime_source, "/skyloft/runtime"), Mount(c.socket_dir, "/skyloft/agent", False)]
        if code_dir:
            mounts.append(Mount(code_dir, "/skyloft/code"))
        for remote_dir, manifest in image.mounts:
            files = self._code.materialize(self._blobs.store.put(manifest.encode()))
            mounts.append(Mount(files, remote_dir, absolute=True))
        seen = {m.target: self.runtime.visible_path(m) for m in mounts}
        env = {
            "PATH": _IMAGE_PATH if image.layers else os.environ.get("PATH", _IMAGE_PATH),
            "LANG": "C.UTF-8",
            "HOME": c.workdir,
            "PYTHONPATH": os.pathsep.join(p for p in (seen.get("/skyloft/code"), seen["/skyloft/runtime"]) if p),
            "SKYLOFT_CODE_DIR": seen.get("/skyloft/code", ""),
            "SKYLOFT_CONTAINER_ID": c.container_id,
            "SKYLOFT_CONTAINER_SOCKET": os.path.join(seen["/skyloft/agent"], "agent.sock"),
            **image.env,
            **dict(c.spec.env),
        }
        layers = [self.images.layers.path(layer) for layer in image.layers]
        config = ContainerConfig(c.container_id, ["-m", "skyloft.container"], env, c.workdir, mounts,
                                 cpu=c.spec.cpu, memory_mb=c.spec.memory_mb, layers=layers,
                                 cwd=image.workdir if layers else "")
        if not self.runtime.isolated and (c.spec.cpu or c.spec.memory_mb):
            self.link.container_log(c.container_id, pb.LogLine.SYSTEM,
                                    "skyloft: cpu= and memory= are not enforced by the 'process' runtime\n")
        c.process = self.runtime.start(config)
        for stream, pipe in ((pb.LogLine.STDOUT, c.process.stdout), (pb.LogLine.STDERR, c.process.stderr)):
            threading.Thread(target=self._pump_pipe, args=(c, stream, pipe), daemon=True).start()
        return listener

    def _image_for(self, c: _Container) -> BuiltImage:
        """The container's image, built first if need be (its output goes to the app's logs)."""
        if not c.spec.image.steps or (c.spec.image.implicit and not self.runtime.isolated):
            return BuiltImage()
        if not self.runtime.isolated:
            raise ImageBuildFailed("functions with image= need an isolating runtime, and this worker runs the "
                                   "'process' runtime: install bubblewrap (apt-get install -y bubblewrap) and "
                                   "restart the server")
        return self.images.ensure(c.spec.image, lambda text: self.link.container_log(
            c.container_id, pb.LogLine.SYSTEM, text))

    def _serve(self, c: _Container, listener: socket.socket) -> None:
        """Accept the container's connection, then relay its frames until it closes."""
        listener.settimeout(0.05)
        deadline = time.monotonic() + _ACCEPT_TIMEOUT_S
        while True:
            try:
                conn, _ = listener.accept()
                break
            except socket.timeout:
                if c.process.poll() is not None or c.exit_reason:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError("the container did not connect to its worker within 60s") from None
        listener.close()
        conn.settimeout(None)
        channel = FrameSocket(conn)
        hello = channel.recv()
        if hello is None or hello != (frames.HELLO, [c.container_id.encode()]):
            raise ConnectionError("the container sent no valid hello")
        channel.send(frames.INIT, [_definition(c.spec), c.spec.serialized_function.data])
        with c.lock:
            c.channel = channel
            pending, c.pending = c.pending, []
        for fields in pending:
            channel.send(frames.INPUTS, fields)
        try:
            self._relay(c, channel)
        finally:
            channel.close()

    def _relay(self, c: _Container, channel: FrameSocket) -> None:
        while True:
            frame = channel.recv()
            if frame is None:
                return
            kind, fields = frame
            if kind == frames.READY:
                self.link.container_event(pb.ContainerEvent(
                    container_id=c.container_id, kind=pb.ContainerEvent.STARTED, pid=c.process.pid))
            elif kind == frames.OUTPUTS:
                results = _results(fields, self._blobs)
                self._note_outputs(c, results)
                self.link.container_outputs(c.container_id, results)
            elif kind == frames.LOG and len(fields) == 2:
                self.link.container_log(c.container_id, int(fields[0]), fields[1].decode("utf-8", "replace"))

    def _note_outputs(self, c: _Container, results: list[ResultRecord]) -> None:
        """Track which input the container works on now, for its timeout."""
        done = {r.input_id for r in results if r.status != pb.GEN_ITEM}
        with c.lock:
            if done:
                c.inflight = [i for i in c.inflight if i not in done]
                c.busy_since = time.monotonic()

    def _pump_pipe(self, c: _Container, stream: int, pipe) -> None:
        """Forward what the process wrote to its stdout/stderr file descriptors."""
        fd = pipe.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.link.container_log(c.container_id, stream, chunk.decode("utf-8", "replace"))

    def _reap(self, c: _Container) -> int:
        if c.process is None:
            return -1
        try:
            return c.process.wait(timeout=_STOP_GRACE_S + 1)
        except subprocess.TimeoutExpired:
            _signal_group(c.process, signal.SIGKILL)
            return c.process.wait()

    def _kill(self, c: _Container, reason: str, graceful: bool) -> None:
        with c.lock:
            if c.exit_reason:
                return
            c.exit_reason = reason
        if c.process is None:
            return
        if graceful:
            _signal_group(c.process, signal.SIGTERM)
            threading.Timer(_STOP_GRACE_S, _signal_group, args=(c.process, signal.SIGKILL)).start()
        else:
            _signal_group(c.process, signal.SIGKILL)

    def _watchdog(self) -> None:
        """Kill containers whose current input ran past the function's timeout."""
        while not self._stopped.wait(_WATCHDOG_S):
            now = time.monotonic()
            with self._lock:
                containers = list(self._containers.values())
            for c in containers:
                timeout = c.spec.timeout
                if timeout > 0 and c.inflight and now - c.busy_since > timeout:
                    self._kill(c, "timeout", graceful=False)


def _current_input(socket_dir: str) -> str:
    """The input the container last started (see `frames.CURRENT_INPUT_FILE`), or ""."""
    try:
        with open(os.path.join(socket_dir, frames.CURRENT_INPUT_FILE), "rb") as f:
            return f.read(frames.CURRENT_INPUT_WIDTH).decode("ascii", "replace").strip()
    except OSError:
        return ""


def _definition(spec: pb.FunctionSpec) -> bytes:
    """What the in-container runtime needs to find and run the function."""
    return json.dumps({"module": spec.module, "qualname": spec.qualname, "name": spec.name,
                       "is_generator": spec.is_generator, "function_id": spec.function_id,
                       "app_id": spec.app_id, "app_name": spec.app_name}).encode()


def _results(fields: list[bytes], blobs: BlobCache) -> list[ResultRecord]:
    """Parse an OUTPUTS frame; the pickled data stays opaque bytes, large ones become blobs."""
    if len(fields) % frames.OUTPUT_FIELDS:
        raise ValueError("malformed outputs frame from container")
    results = []
    for i in range(0, len(fields), frames.OUTPUT_FIELDS):
        input_id, status, data, text, tb, duration = fields[i:i + frames.OUTPUT_FIELDS]
        blob = ""
        if len(data) > MAX_INLINE_BYTES:
            blob, data = blobs.put(data), b""
        results.append(ResultRecord(input_id.decode(), int(status), data, blob, text.decode("utf-8", "replace"),
                                    tb.decode("utf-8", "replace"), float(duration)))
    return results


def _signal_group(process: ContainerProcess, sig: int) -> None:
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _describe_exit(code: int) -> str:
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        detail = {"SIGSEGV": " (segmentation fault)", "SIGKILL": " (killed; out of memory?)"}.get(name, "")
        return f"killed by signal {name}{detail}"
    return f"exited with code {code}"


def _memory_mb() -> int:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // (1 << 20)
    except (ValueError, OSError):
        return 0
