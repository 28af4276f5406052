"""Shared fixtures for the skyloft test-suite.

Everything here starts REAL processes: a skyloft server (with its in-process
worker unless asked otherwise), standalone workers and CLI invocations.  Every
server gets a free port and a temporary SKYLOFT_HOME.

NOTE: test modules that define remote functions are imported by containers by
their module name, so they must not import anything from this file -- helpers
are handed out as fixtures instead.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
SERVER_START_TIMEOUT = 30.0

# Filled in by pytest_configure.
_SESSION: dict = {}


# --------------------------------------------------------------------------
# generic helpers
# --------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(**overrides) -> dict:
    """os.environ without any SKYLOFT_* variables but the session's image cache, plus overrides (None = unset)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYLOFT_") or k == "SKYLOFT_IMAGE_CACHE"}
    for k, v in overrides.items():
        if v is None:
            env.pop(k, None)
        else:
            env[k] = str(v)
    return env


class CliResult:
    def __init__(self, args, returncode, stdout, stderr):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout or ""
        self.stderr = stderr or ""

    @property
    def output(self) -> str:
        return self.stdout + "\n" + self.stderr

    def __repr__(self):
        return (
            f"<CliResult {' '.join(map(str, self.args))!r} rc={self.returncode}>\n"
            f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"
        )

    __str__ = __repr__


def run_cmd(cmd, *, env, timeout=60, cwd=None) -> CliResult:
    proc = subprocess.Popen(
        [str(c) for c in cmd],
        env=env,
        cwd=str(cwd) if cwd else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(
            f"command {cmd!r} did not finish within {timeout}s\n"
            f"--- stdout ---\n{(out or '')[-6000:]}\n--- stderr ---\n{(err or '')[-6000:]}"
        )
    return CliResult(cmd, proc.returncode, out, err)


def skyloft_cmd(*args):
    return [PYTHON, "-m", "skyloft", *[str(a) for a in args]]


class StreamingProc:
    """A subprocess whose merged stdout/stderr is collected line by line."""

    def __init__(self, cmd, *, env, cwd=None, new_session=True):
        self.cmd = [str(c) for c in cmd]
        self.proc = subprocess.Popen(
            self.cmd,
            env=env,
            cwd=str(cwd) if cwd else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=new_session,
        )
        self.lines: list[str] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append(line)

    @property
    def pid(self):
        return self.proc.pid

    def output(self) -> str:
        with self._lock:
            return "".join(self.lines)

    def wait_for(self, pattern, timeout=30.0):
        """Wait until `pattern` (regex) matches the output; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.output())
            if m:
                return m
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                m = rx.search(self.output())
                if m:
                    return m
                raise AssertionError(
                    f"process {self.cmd!r} exited (rc={self.proc.returncode}) before "
                    f"printing {pattern!r}; output:\n{self.output()[-6000:]}"
                )
            time.sleep(0.05)
        raise AssertionError(
            f"{pattern!r} not seen within {timeout}s from {self.cmd!r}; output:\n{self.output()[-6000:]}"
        )

    def wait(self, timeout=60.0) -> int:
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"process {self.cmd!r} did not exit within {timeout}s; output:\n{self.output()[-6000:]}"
            )
        self._reader.join(timeout=5)
        return rc

    def terminate(self, grace=10.0):
        """SIGTERM, then SIGKILL the process and the process group it leads."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        # The group was created by us (start_new_session=True): reap leftovers
        # (containers, in-process worker children) of this process only.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def _server_env(home: Path, port: int) -> dict:
    return clean_env(
        SKYLOFT_HOME=home,
        SKYLOFT_SERVER_URL=f"127.0.0.1:{port}",
    )


class ServerHandle:
    """A real `skyloft server start --foreground` process."""

    def __init__(self, home: Path, port: int, no_worker: bool = False, runtime: str | None = None):
        self.home = Path(home)
        self.port = port
        self.no_worker = no_worker
        self.runtime = runtime
        self.url = f"127.0.0.1:{port}"
        self.proc: StreamingProc | None = None
        self.old_procs: list[StreamingProc] = []

    # env for clients (CLI subprocesses) talking to this server
    @property
    def env(self) -> dict:
        return _server_env(self.home, self.port)

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def start(self, timeout=SERVER_START_TIMEOUT):
        self.home.mkdir(parents=True, exist_ok=True)
        args = ["server", "start", "--foreground", "--host", "127.0.0.1", "--port", str(self.port)]
        if self.no_worker:
            args.append("--no-worker")
        if self.runtime:
            args += ["--runtime", self.runtime]
        self.proc = StreamingProc(skyloft_cmd(*args), env=self.env, cwd=self.home)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=SERVER_START_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.proc.poll() is not None:
                raise RuntimeError(
                    f"skyloft server exited early (rc={self.proc.proc.returncode}):\n{self.proc.output()[-6000:]}"
                )
            if (self.home / "server.json").exists():
                try:
                    last = run_cmd(skyloft_cmd("server", "status"), env=self.env, timeout=20)
                except AssertionError as e:  # status hung
                    last = e
                if isinstance(last, CliResult) and last.returncode == 0:
                    return
            time.sleep(0.3)
        raise RuntimeError(
            f"skyloft server on {self.url} not ready after {timeout}s; last status: {last}\n"
            f"server output:\n{self.proc.output()[-6000:] if self.proc else ''}"
        )

    def server_json(self) -> dict:
        return json.loads((self.home / "server.json").read_text())

    def kill9(self):
        """Simulate a crash: SIGKILL the server process only."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.proc.wait(timeout=10)
        self.old_procs.append(self.proc)
        self.proc = None

    def stop(self):
        for p in [self.proc, *self.old_procs]:
            if p is not None:
                p.terminate()
        self.proc = None
        self.old_procs = []


# --------------------------------------------------------------------------
# pytest hooks
# --------------------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: slower end-to-end tests")
    # Decide the session server's home + port *before* any test module (and so
    # skyloft) is imported, so that the in-process SDK sees a consistent config.
    if "home" not in _SESSION:
        home = Path(tempfile.mkdtemp(prefix="skyloft-test-home-"))
        port = free_port()
        _SESSION.update(home=home, port=port)
        # Every server of the session shares one image cache, so Debian is bootstrapped once;
        # SKYLOFT_TEST_IMAGE_CACHE keeps it across sessions.
        cache = os.environ.get("SKYLOFT_TEST_IMAGE_CACHE") or tempfile.mkdtemp(prefix="skyloft-test-images-")
        _SESSION.update(image_cache=None if os.environ.get("SKYLOFT_TEST_IMAGE_CACHE") else cache)
        for k in [k for k in os.environ if k.startswith("SKYLOFT_")]:
            del os.environ[k]
        os.environ["SKYLOFT_IMAGE_CACHE"] = cache
        os.environ["SKYLOFT_HOME"] = str(home)
        os.environ["SKYLOFT_SERVER_URL"] = f"127.0.0.1:{port}"


def pytest_unconfigure(config):
    srv = _SESSION.get("server")
    if srv is not None:
        srv.stop()
    home = _SESSION.get("home")
    if home is not None and not os.environ.get("SKYLOFT_TEST_KEEP_HOME"):
        shutil.rmtree(home, ignore_errors=True)
    if _SESSION.get("image_cache"):
        shutil.rmtree(_SESSION["image_cache"], ignore_errors=True)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server():
    """The shared session server (with in-process worker)."""
    srv = _SESSION.get("server")
    if srv is None:
        srv = ServerHandle(_SESSION["home"], _SESSION["port"])
        _SESSION["server"] = srv
        try:
            srv.start()
        except Exception:
            srv.stop()
            _SESSION.pop("server", None)
            raise
    # make sure the in-process SDK points here (tests may monkeypatch env)
    os.environ["SKYLOFT_HOME"] = str(srv.home)
    os.environ["SKYLOFT_SERVER_URL"] = srv.url
    return srv


@pytest.fixture
def short_tmp():
    """Factory of short temporary directories under /tmp (SKYLOFT_HOMEs hold
    Unix sockets, whose paths are limited to ~107 bytes)."""
    made: list[str] = []

    def make(prefix="sl-") -> Path:
        d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
        made.append(d)
        return Path(d)

    yield make
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def server_factory(short_tmp):
    """Function-scoped servers with their own home and port (for fault tests)."""
    servers: list[ServerHandle] = []

    def make(no_worker: bool = False, home: Path | None = None, port: int | None = None, start=True,
             runtime: str | None = None):
        h = home or short_tmp("slsrv-")
        srv = ServerHandle(h, port or free_port(), no_worker=no_worker, runtime=runtime)
        servers.append(srv)
        if start:
            srv.start()
        return srv

    yield make
    for srv in servers:
        srv.stop()


@pytest.fixture
def procs():
    """Track StreamingProcs started by a test and clean them up afterwards."""
    started: list[StreamingProc] = []

    def start(cmd, *, env, cwd=None, new_session=True):
        p = StreamingProc(cmd, env=env, cwd=cwd, new_session=new_session)
        started.append(p)
        return p

    yield start
    for p in started:
        p.terminate()


@pytest.fixture
def cli(server):
    """Run `python -m skyloft ...` against the session server."""

    def run(*args, env=None, timeout=90, cwd=None, extra_env=None):
        e = dict(env if env is not None else server.env)
        if extra_env:
            for k, v in extra_env.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = str(v)
        return run_cmd(skyloft_cmd(*args), env=e, timeout=timeout, cwd=cwd)

    return run


class Ledger(socketserver.ThreadingTCPServer):
    """Named lists of lines that containers append to over TCP and tests read.

    Containers see none of the host's files, so functions that must leave a
    trace for the test (attempts, markers) send it here. A request is one JSON
    line `[op, name, line]`: op "add" appends and answers the new length,
    op "count" answers the length.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        self.lines: dict[str, list[str]] = {}
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _LedgerHandler)

    @property
    def address(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    def count(self, name: str) -> int:
        with self.lock:
            return len(self.lines.get(name, []))


class _LedgerHandler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for raw in self.rfile:
            op, name, line = json.loads(raw)
            with self.server.lock:
                lines = self.server.lines.setdefault(name, [])
                if op == "add":
                    lines.append(line)
                answer = len(lines)
            self.wfile.write(json.dumps(answer).encode() + b"\n")


@pytest.fixture
def ledger():
    """A `Ledger` on a free port, for functions' side effects."""
    server = Ledger()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def run_cmd_fixture():
    return run_cmd


@pytest.fixture
def skyloft_cmd_fixture():
    return skyloft_cmd


@pytest.fixture
def clean_env_fixture():
    return clean_env


@pytest.fixture(scope="session")
def free_port_fixture():
    return free_port


@pytest.fixture
def repo_root():
    return REPO_ROOT
