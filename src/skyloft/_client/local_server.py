"""The embedded default: find the local server daemon, or start one."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass

from ..exception import ConnectionError

_START_TIMEOUT_S = 30.0


@dataclass
class ServerInfo:
    pid: int
    url: str
    unix: str
    lane: str


def read_server_file(home: str) -> ServerInfo | None:
    """The running local server described in `home/server.json`, if its process lives."""
    try:
        with open(os.path.join(home, "server.json")) as f:
            info = json.load(f)
        pid = int(info["pid"])
    except (OSError, ValueError, KeyError):
        return None
    if not _alive(pid):
        return None
    return ServerInfo(pid=pid, url=info["url"], unix=info.get("unix", ""), lane=info.get("lane", ""))


def start_daemon(home: str, host: str = "127.0.0.1", port: int = 0, with_worker: bool = True,
                 quiet: bool = False, runtime: str | None = None) -> ServerInfo:
    """Start `python -m skyloft.server` detached, unless one runs already; wait until it serves."""
    os.makedirs(home, exist_ok=True)
    with open(os.path.join(home, "server.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        running = read_server_file(home)
        if running is not None:
            return running
        args = [sys.executable, "-m", "skyloft.server", "--home", home, "--host", host, "--port", str(port)]
        if not with_worker:
            args.append("--no-worker")
        if runtime:
            args += ["--runtime", runtime]
        with open(os.path.join(home, "server.log"), "ab") as out:
            process = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                       start_new_session=True, close_fds=True)
        deadline = time.monotonic() + _START_TIMEOUT_S
        while time.monotonic() < deadline:
            info = read_server_file(home)
            if info is not None and info.pid == process.pid:
                if not quiet:
                    print(f"Started a local skyloft server at {info.url} (state in {home}); "
                          "stop it with `skyloft server stop`.", file=sys.stderr)
                return info
            if process.poll() is not None:
                break
            time.sleep(0.02)
        raise ConnectionError(
            f"the local skyloft server did not start; see {os.path.join(home, 'server.log')}")


def stop_daemon(home: str, timeout: float = 10.0) -> ServerInfo | None:
    """Stop the local server; returns what was stopped, or None if none ran."""
    info = read_server_file(home)
    if info is None:
        return None
    os.kill(info.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(info.pid):
            return info
        time.sleep(0.05)
    os.kill(info.pid, signal.SIGKILL)
    return info


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie waiting to be reaped does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
