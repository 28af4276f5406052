"""The worker's side of `skyloft.container.zygote`: one warm Python per image that forks containers.

Starting a Python and importing skyloft costs a container more than all the
rest of its start; a zygote pays it once per image. A zygote runs in a
bubblewrap sandbox on the image (host PID namespace, so the PIDs it reports
are the host's), sees the worker's directories at their own paths, and keeps
the capabilities it needs to mount each container's root, as bubblewrap does.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import threading
from typing import IO

from .overlay import mount_overlay, unmount_overlay

log = logging.getLogger("skyloft.worker.zygote")

_START_TIMEOUT_S = 60.0


class ZygoteError(Exception):
    """The zygote could not start, or died: the caller starts the container without it."""


class ZygoteProcess:
    """A container forked by a zygote, with the part of `subprocess.Popen` the worker uses."""

    def __init__(self, pid: int, stdout: IO[bytes] | None, stderr: IO[bytes] | None) -> None:
        self.pid = pid
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._done = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if not self._done.wait(timeout):
            raise subprocess.TimeoutExpired(f"container {self.pid}", timeout or 0)
        assert self.returncode is not None
        return self.returncode

    def exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()


class Zygote:
    """One image's zygote: started on first use, shared by every container of that image."""

    def __init__(self, base: str, layers: list[str], runtime_dir: str, visible: list[str], env: dict[str, str]) -> None:
        self.visible = set(visible)
        self._base = base
        self._lock = threading.Lock()
        self._send_lock = threading.Lock()  # not `_lock`: the reader must never wait for a send
        self._children: dict[int, ZygoteProcess] = {}  # by PID
        self._forking: dict[str, tuple[ZygoteProcess, threading.Event]] = {}  # by container id, until forked
        self.alive = True
        root = mount_overlay(base, layers)
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # No --die-with-parent: it follows the thread that started the zygote, not the worker. The
        # zygote ends when the worker closes its socket (or dies), and its containers with it.
        argv = ["bwrap", "--bind", root, "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
                "--tmpfs", "/run", "--ro-bind", runtime_dir, "/run/skyloft/runtime"]
        for path in sorted(self.visible):
            argv += ["--bind", path, path]
        argv += ["--", "python3", "-m", "skyloft.container.zygote", str(theirs.fileno())]
        self._channel = ours
        try:
            self._process = subprocess.Popen(argv, env=env, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        finally:
            theirs.close()
        self._channel.settimeout(_START_TIMEOUT_S)
        try:
            ready = self._channel.recv(4096)
        except OSError:
            ready = b""
        if not ready:
            self._process.kill()
            error = self._process.communicate()[1].decode("utf-8", "replace").strip()
            self.close()
            raise ZygoteError(f"the image's zygote did not start: {error[-2000:]}")
        self._channel.settimeout(None)
        # The zygote's namespace holds its root now: the worker's mount would only outlive a crash.
        unmount_overlay(base, lazy=True)
        threading.Thread(target=self._read, name="zygote-reader", daemon=True).start()
        threading.Thread(target=self._log_stderr, name="zygote-stderr", daemon=True).start()

    @property
    def idle(self) -> bool:
        with self._lock:
            return not self._children and not self._forking

    def spawn(self, request: dict) -> ZygoteProcess:
        """Fork a container; `request` says how to build its sandbox (see `skyloft.container.zygote`)."""
        out_read, out_write = os.pipe()
        err_read, err_write = os.pipe()
        process = ZygoteProcess(0, os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb"))
        forked = threading.Event()
        try:
            with self._lock:
                if not self.alive:
                    raise ZygoteError("the image's zygote has exited")
                self._forking[request["id"]] = (process, forked)
            with self._send_lock:
                socket.send_fds(self._channel, [json.dumps(request).encode()], [out_write, err_write])
            if not forked.wait(_START_TIMEOUT_S) or not process.pid:
                raise ZygoteError("the image's zygote did not fork the container")
        except (OSError, ZygoteError) as exc:
            with self._lock:
                self._forking.pop(request["id"], None)
            for pipe in (process.stdout, process.stderr):
                assert pipe is not None
                pipe.close()
            if isinstance(exc, ZygoteError):
                raise
            raise ZygoteError(f"the image's zygote is gone: {exc}") from exc
        finally:
            os.close(out_write)
            os.close(err_write)
        return process

    def _read(self) -> None:
        """Replies to `spawn` (a PID), then exits of containers, in the order the zygote sent them."""
        while True:
            try:
                data = self._channel.recv(4096)
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            with self._lock:
                if "exit" in message:
                    exited = self._children.pop(message["pid"], None)
                    if exited is not None:
                        exited.exited(message["exit"])
                elif message["id"] in self._forking:  # else `spawn` gave up on it
                    process, forked = self._forking.pop(message["id"])
                    process.pid = message["pid"]
                    self._children[process.pid] = process
                    forked.set()
                else:
                    log.warning("zygote forked container %s after the worker gave up on it", message["id"])
        with self._lock:
            self.alive = False
            orphans = list(self._children.values())
            self._children.clear()
            waiting = list(self._forking.values())
        for process in orphans:  # a zygote's containers die with it
            process.exited(-9)
        for _, forked in waiting:
            forked.set()

    def _log_stderr(self) -> None:
        assert self._process.stderr is not None
        for line in self._process.stderr:
            log.warning("zygote: %s", line.decode("utf-8", "replace").rstrip())

    def close(self) -> None:
        """Stop the zygote (and so its containers) and release its root."""
        self._channel.close()
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        unmount_overlay(self._base)  # still mounted here if the zygote never got ready
        shutil.rmtree(self._base, ignore_errors=True)
