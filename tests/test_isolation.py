"""The `bubblewrap` runtime: containers in their own namespaces, with cgroup limits.

A server started with `--runtime bubblewrap` runs a script whose functions
report what they can see; the script prints one line per check.
"""

import os
import signal
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from skyloft.worker.runtime import BubblewrapRuntime

pytestmark = pytest.mark.skipif(
    not BubblewrapRuntime.available(),
    reason="bubblewrap cannot create namespaces here (scripts/bootstrap installs it; needs root or userns)",
)

ISOLATION_APP = """
import os
import socket
import time

import skyloft

app = skyloft.App("isolation")


@app.function()
def pids():
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit())


@app.function()
def whoami():
    return socket.gethostname(), os.getcwd(), skyloft.current_input_id() is not None


@app.function()
def sees(path):
    return os.path.exists(path)


@app.function()
def write_outside(path):
    try:
        with open(path, "w") as f:
            f.write("escaped")
    except OSError as e:
        return type(e).__name__
    return "written"


@app.function()
def write_scratch():
    with open("scratch.txt", "w") as f:
        f.write("ok")
    with open("/tmp/t.txt", "w") as f:
        f.write("ok")
    return open("scratch.txt").read() + open("/tmp/t.txt").read()


@app.function(memory=64)
def hog(mb):
    block = bytearray(mb << 20)
    return len(block)


@app.function(cpu=0.25)
def spin(seconds):
    start, cpu_start = time.time(), time.process_time()
    while time.time() - start < seconds:
        pass
    return (time.process_time() - cpu_start) / seconds


if __name__ == "__main__":
    import sys

    host_file, outside = sys.argv[1], sys.argv[2]
    with app.run():
        print("PIDS=%s" % pids.remote())
        print("WHOAMI=%s|%s|%s" % whoami.remote())
        print("SEES-HOST-TMP=%s" % sees.remote(host_file))
        print("SEES-HOST-PIDS=%s" % sees.remote("/proc/%d" % os.getpid()))
        print("WRITE-OUTSIDE=%s" % write_outside.remote(outside))
        print("SCRATCH=%s" % write_scratch.remote())
        print("SEES-OTHER-CONTAINER=%s" % sees.remote(os.path.join(whoami.remote()[1], "scratch.txt")))
        print("HOG-SMALL=%d" % hog.remote(8))
        try:
            hog.remote(400)
            print("HOG-BIG=no error")
        except skyloft.exception.ContainerCrashError as e:
            print("HOG-BIG=%s" % e)
        print("CPU-SHARE=%.2f" % spin.remote(1.5))
"""


@pytest.mark.timeout(180)
def test_bubblewrap_isolation_and_limits(server_factory, run_cmd_fixture, tmp_path):
    srv = server_factory(runtime="bubblewrap")
    script = tmp_path / "isolation_app.py"
    script.write_text(textwrap.dedent(ISOLATION_APP))
    host_file = tmp_path / "host-only.txt"
    host_file.write_text("the host's")
    # On the host's root, away from the private /tmp.
    outside = Path("/var/tmp") / f"skyloft-escape-{uuid.uuid4().hex}.txt"
    r = run_cmd_fixture([sys.executable, script, host_file, outside], env=srv.env, timeout=150, cwd=tmp_path)
    assert r.returncode == 0, r
    lines = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)

    # Own PID namespace: the function runs as a low pid and sees no host process.
    visible = [int(p) for p in lines["PIDS"].strip("[]").split(",")]
    assert max(visible) < 10, lines["PIDS"]
    assert lines["SEES-HOST-PIDS"] == "False"
    # Own UTS namespace (hostname = container id) and scratch directory.
    hostname, cwd, in_input = lines["WHOAMI"].split("|")
    assert hostname.startswith("ta-") and cwd == "/root" and in_input == "True", lines["WHOAMI"]
    # The host's /tmp is not visible; the container writes its own root (the default image's overlay),
    # never the host's, and one container does not see another's files.
    assert lines["SEES-HOST-TMP"] == "False"
    assert lines["WRITE-OUTSIDE"] == "written", lines["WRITE-OUTSIDE"]
    assert not outside.exists()
    assert lines["SCRATCH"] == "okok"
    assert lines["SEES-OTHER-CONTAINER"] == "False"
    # memory= is a hard limit reported as out of memory, not a hang; cpu= caps the share of a core.
    assert lines["HOG-SMALL"] == str(8 << 20)
    assert "out of memory" in lines["HOG-BIG"] and "64 MiB" in lines["HOG-BIG"], lines["HOG-BIG"]
    assert float(lines["CPU-SHARE"]) < 0.5, lines["CPU-SHARE"]


ZYGOTE_APP = """
import os
import sys
import time

import skyloft

app = skyloft.App("zygote")


@app.function()
def init_command():
    return open("/proc/1/cmdline").read().split(chr(0))[:3]


@app.function()
def hold():
    time.sleep(120)


if __name__ == "__main__":
    go = sys.argv[1]
    with app.run():
        print("FIRST=%s" % init_command.remote(), flush=True)
        call = hold.spawn()
        while not os.path.exists(go):
            time.sleep(0.05)
        try:
            call.get(timeout=60)
            print("HOLD=no error")
        except skyloft.exception.Error as e:
            print("HOLD=%s: %s" % (type(e).__name__, e))
        print("AFTER=%s" % init_command.remote())
"""


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _descendants(pid: int) -> list[int]:
    children = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(_parent(int(entry.name)), []).append(int(entry.name))
            except (OSError, IndexError):
                continue
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _zygotes(srv) -> list[int]:
    """The zygotes running under a server (not the containers forked from them)."""
    forks = set()
    for pid in _descendants(srv.proc.pid):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"python3\0-m\0skyloft.container.zygote"):
                forks.add(pid)
        except OSError:
            continue
    return sorted(pid for pid in forks if _parent(pid) not in forks)


ONE_CALL_APP = """
import skyloft

app = skyloft.App("one-call")


@app.function()
def square(x):
    return x * x


if __name__ == "__main__":
    with app.run():
        print("SQUARE=%d" % square.remote(7))
"""


@pytest.mark.timeout(180)
def test_a_zygote_outlives_the_containers_that_started_it(server_factory, run_cmd_fixture, tmp_path):
    srv = server_factory(runtime="bubblewrap")
    script = tmp_path / "one_call.py"
    script.write_text(textwrap.dedent(ONE_CALL_APP))
    first = run_cmd_fixture([sys.executable, script], env=srv.env, timeout=120, cwd=tmp_path)
    assert first.returncode == 0 and "SQUARE=49" in first.stdout, first
    zygotes = _zygotes(srv)
    assert len(zygotes) == 1, zygotes  # the app and its container are gone; the image's zygote is not
    second = run_cmd_fixture([sys.executable, script], env=srv.env, timeout=120, cwd=tmp_path)
    assert second.returncode == 0 and "SQUARE=49" in second.stdout, second
    assert _zygotes(srv) == zygotes


@pytest.mark.timeout(180)
def test_containers_fork_from_a_zygote_that_may_die(server_factory, procs, skyloft_cmd_fixture, tmp_path):
    srv = server_factory(runtime="bubblewrap")
    script = tmp_path / "zygote_app.py"
    script.write_text(textwrap.dedent(ZYGOTE_APP))
    app = procs([sys.executable, script, tmp_path / "go"], env=srv.env, cwd=tmp_path)
    # A container's PID 1 is a fork of its image's warm zygote, not a new interpreter.
    app.wait_for(r"FIRST=\['python3', '-m', 'skyloft.container.zygote'\]", timeout=120)
    zygotes = _zygotes(srv)
    assert len(zygotes) == 1, zygotes
    time.sleep(1)  # let `hold` start
    os.kill(zygotes[0], signal.SIGKILL)
    (tmp_path / "go").touch()
    # Its containers die with it, and say so; the next container comes from a new zygote.
    app.wait_for(r"HOLD=ContainerCrashError: .*SIGKILL", timeout=60)
    app.wait_for(r"AFTER=\['python3', '-m', 'skyloft.container.zygote'\]", timeout=60)
    assert app.wait(timeout=30) == 0, app.output()
