"""Fault handling: unreachable/killed servers, auth, standalone workers, auto-started daemon.

These tests mostly drive separate processes (scripts / `skyloft run`) so that
each gets a pristine client configuration.
"""

import json
import os
import re
import signal
import textwrap
import time
from pathlib import Path

import pytest


def _write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


# Functions in the scripts below leave their traces in the test's `ledger` (containers see none of
# the host's files) through this helper, which each script includes.
NOTE = """
def note(ledger, name, line="x"):
    import json, socket
    host, port = ledger.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(json.dumps(["add", name, line]).encode() + b"\\n")
        return json.loads(conn.makefile().readline())
"""


def _ancestors(pid: int) -> list[int]:
    """`pid` and the processes above it, on this machine."""
    chain = [pid]
    while pid > 1:
        with open(f"/proc/{pid}/stat") as f:
            pid = int(f.read().rsplit(")", 1)[1].split()[1])
        chain.append(pid)
    return chain


PROBE_SCRIPT = """
import sys
import skyloft
import skyloft.exception

app = skyloft.App("probe")

@app.function(serialized=True)
def f(x):
    return x + 1

try:
    with app.run():
        print("RESULT=%r" % (f.remote(41),), flush=True)
except BaseException as e:
    print("EXC-TYPE=%s.%s" % (type(e).__module__, type(e).__name__), flush=True)
    print("EXC-IS-SKYLOFT-ERROR=%s" % isinstance(e, skyloft.exception.Error), flush=True)
    print("EXC-IS-CONNECTION=%s" % isinstance(e, skyloft.exception.ConnectionError), flush=True)
    print("EXC-IS-AUTH=%s" % isinstance(e, skyloft.exception.AuthError), flush=True)
    print("EXC-MSG=%s" % str(e).replace("\\n", " "), flush=True)
    sys.exit(3)
"""


def _probe(tmp_path, run_cmd, env, timeout=90):
    import sys

    script = _write(tmp_path / "probe_script.py", PROBE_SCRIPT)
    return run_cmd([sys.executable, script], env=env, timeout=timeout, cwd=tmp_path)


# ---------------------------------------------------------------- unreachable


@pytest.mark.timeout(120)
def test_unreachable_server_raises_connection_error(tmp_path, run_cmd_fixture, clean_env_fixture, free_port_fixture):
    port = free_port_fixture()
    url = f"127.0.0.1:{port}"
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text("some-token\n")
    env = clean_env_fixture(SKYLOFT_HOME=home, SKYLOFT_SERVER_URL=url)
    r = _probe(tmp_path, run_cmd_fixture, env)
    assert r.returncode == 3, r
    assert "RESULT=" not in r.stdout, r
    assert "EXC-IS-CONNECTION=True" in r.stdout, r
    msg = re.search(r"EXC-MSG=(.*)", r.stdout).group(1)
    assert url in msg, r
    # an explicit URL must never auto-start a local daemon
    assert not (home / "server.json").exists()


@pytest.mark.timeout(120)
def test_unreachable_server_cli_run(tmp_path, cli, clean_env_fixture, free_port_fixture):
    port = free_port_fixture()
    url = f"127.0.0.1:{port}"
    home = tmp_path / "home"
    home.mkdir()
    app_file = _write(
        tmp_path / "unreach_app.py",
        """
        import skyloft
        app = skyloft.App("unreach")

        @app.function()
        def f():
            return 1

        @app.local_entrypoint()
        def main():
            print("MAIN-RAN", f.remote())
        """,
    )
    r = cli("run", app_file, env=clean_env_fixture(SKYLOFT_HOME=home, SKYLOFT_SERVER_URL=url), cwd=tmp_path)
    assert r.returncode != 0, r
    assert url in r.output, r
    assert "MAIN-RAN" not in r.stdout, r


# ---------------------------------------------------------------- auth


def test_wrong_token_is_auth_error(server, tmp_path, run_cmd_fixture):
    env = dict(server.env)
    env["SKYLOFT_TOKEN"] = "definitely-the-wrong-token"
    r = _probe(tmp_path, run_cmd_fixture, env)
    assert r.returncode == 3, r
    assert "RESULT=" not in r.stdout, r
    msg = re.search(r"EXC-MSG=(.*)", r.stdout).group(1)
    assert "EXC-IS-AUTH=True" in r.stdout or "token" in msg.lower(), r
    assert "definitely-the-wrong-token" not in msg, "token must not be echoed back"


def test_token_from_env_without_home_token(server, tmp_path, run_cmd_fixture):
    """SKYLOFT_TOKEN in the env is honoured when $SKYLOFT_HOME has no token file."""
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    env = dict(server.env)
    env["SKYLOFT_HOME"] = str(empty_home)
    env["SKYLOFT_TOKEN"] = server.token
    r = _probe(tmp_path, run_cmd_fixture, env)
    assert r.returncode == 0, r
    assert "RESULT=42" in r.stdout, r


def test_missing_token_is_auth_error(server, tmp_path, run_cmd_fixture):
    empty_home = tmp_path / "empty-home"
    empty_home.mkdir()
    env = dict(server.env)
    env["SKYLOFT_HOME"] = str(empty_home)
    env.pop("SKYLOFT_TOKEN", None)
    r = _probe(tmp_path, run_cmd_fixture, env)
    assert r.returncode == 3, r
    msg = re.search(r"EXC-MSG=(.*)", r.stdout).group(1)
    assert "EXC-IS-AUTH=True" in r.stdout or "token" in msg.lower(), r


# ---------------------------------------------------------------- standalone worker


WORKER_APP = """
import os
import socket
import time
import skyloft

app = skyloft.App("standalone-worker-app")

@app.function()
def where(x):
    return "%d-%s" % (x * x, socket.gethostname())

@app.local_entrypoint()
def main(gate: str):
    print("WORKER-RESULT=" + where.remote(12), flush=True)
    while not os.path.exists(gate):  # keep the app (and its warm container) up while the test looks
        time.sleep(0.1)
"""


@pytest.mark.timeout(120)
def test_standalone_worker(server_factory, procs, skyloft_cmd_fixture, clean_env_fixture, tmp_path, cli, short_tmp):
    srv = server_factory(no_worker=True)
    worker_home = short_tmp("slwk-")
    worker_env = clean_env_fixture(SKYLOFT_HOME=worker_home, SKYLOFT_TOKEN=srv.token)
    worker = procs(skyloft_cmd_fixture("worker", "--server", srv.url), env=worker_env, cwd=worker_home)
    app_file = _write(tmp_path / "worker_app.py", WORKER_APP)
    gate = tmp_path / "gate"
    runner = procs(skyloft_cmd_fixture("run", app_file, "--gate", gate), env=srv.env, cwd=tmp_path)
    container_id = runner.wait_for(r"WORKER-RESULT=144-(ta-\w+)", timeout=90).group(1)
    assert worker.proc.poll() is None, worker.output()
    # the container (by the host pid `container list` shows) descends from the standalone worker process
    listed = cli("container", "list", env=srv.env, extra_env={"COLUMNS": "400"})
    row = next(line.split() for line in listed.stdout.splitlines() if container_id in line)
    ancestors = _ancestors(int(row[4]))
    assert worker.pid in ancestors, (worker.pid, ancestors)
    assert srv.proc.pid not in ancestors, (srv.proc.pid, ancestors)
    gate.write_text("go")
    assert runner.wait(timeout=60) == 0, runner.output()


def test_worker_with_bad_token_rejected(server_factory, procs, skyloft_cmd_fixture, clean_env_fixture, short_tmp):
    srv = server_factory(no_worker=True)
    wh = short_tmp("slwk-")
    worker_env = clean_env_fixture(SKYLOFT_HOME=wh, SKYLOFT_TOKEN="wrong-worker-token")
    worker = procs(skyloft_cmd_fixture("worker", "--server", srv.url), env=worker_env, cwd=wh)
    rc = worker.wait(timeout=45)
    assert rc != 0, worker.output()
    assert re.search(r"auth|token", worker.output(), re.I), worker.output()


@pytest.mark.timeout(120)
def test_long_skyloft_home_path(server_factory, tmp_path, run_cmd_fixture):
    """A deep SKYLOFT_HOME (the worker keeps Unix sockets below it) still runs functions."""
    home = tmp_path / ("deep-" + "d" * 40) / ("deeper-" + "e" * 40)
    home.mkdir(parents=True)
    assert len(str(home)) > 110
    srv = server_factory(home=home)
    r = _probe(tmp_path, run_cmd_fixture, srv.env, timeout=60)
    assert r.returncode == 0 and "RESULT=42" in r.stdout, r


def test_server_stop_foreground_server(server_factory, cli):
    srv = server_factory()
    proc = srv.proc
    r = cli("server", "stop", env=srv.env, timeout=60)
    assert r.returncode == 0, r
    rc = proc.wait(timeout=30)
    assert rc is not None
    st = cli("server", "status", env=srv.env, timeout=60)
    assert st.returncode != 0, st


WORKER_DEATH_APP = NOTE + """
import os
import time
import skyloft

app = skyloft.App("worker-death")

@app.function()
def slow(x, ledger):
    note(ledger, "started")
    time.sleep(3)
    return x * 2

@app.local_entrypoint()
def main(gate: str, ledger: str):
    call = slow.spawn(21, ledger)
    print("CALL-ID=" + call.object_id, flush=True)
    while not os.path.exists(gate):
        time.sleep(0.1)
    try:
        print("RESULT=%r" % (call.get(timeout=60),), flush=True)
    except Exception as e:
        print("EXC-TYPE=%s.%s EXC-MSG=%s" % (type(e).__module__, type(e).__name__, e), flush=True)
"""


@pytest.mark.timeout(150)
def test_worker_killed_mid_input(server_factory, procs, skyloft_cmd_fixture, clean_env_fixture, tmp_path, short_tmp,
                                 ledger):
    """A worker that dies mid-input: the input is re-run on another worker."""
    srv = server_factory(no_worker=True)

    def start_worker():
        h = short_tmp("slwk-")
        return procs(
            skyloft_cmd_fixture("worker", "--server", srv.url),
            env=clean_env_fixture(SKYLOFT_HOME=h, SKYLOFT_TOKEN=srv.token),
            cwd=h,
        )

    w1 = start_worker()
    app_file = _write(tmp_path / "worker_death_app.py", WORKER_DEATH_APP)
    gate = tmp_path / "gate"
    runner = procs(
        skyloft_cmd_fixture("run", app_file, "--gate", gate, "--ledger", ledger.address), env=srv.env, cwd=tmp_path
    )
    runner.wait_for(r"CALL-ID=", timeout=60)
    deadline = time.monotonic() + 30
    while not ledger.count("started") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert ledger.count("started"), runner.output() + w1.output()
    # kill the worker and its process group; its containers die with it (bubblewrap's --die-with-parent)
    os.killpg(w1.pid, signal.SIGKILL)
    w1.proc.wait(timeout=10)
    start_worker()
    gate.write_text("go")
    runner.wait_for(r"RESULT=|EXC-TYPE=", timeout=90)
    out = runner.output()
    # Modal semantics: an input lost to an infrastructure failure is re-run
    assert "RESULT=42" in out, out
    assert ledger.count("started") == 2


# ---------------------------------------------------------------- durability


DURABLE_APP = NOTE + """
import os
import time
import skyloft

app = skyloft.App("durable-app")

@app.function()
def slow_square(x, ledger):
    note(ledger, "started")
    time.sleep(2)
    return x * x

@app.local_entrypoint()
def main(gate: str, ledger: str):
    call = slow_square.spawn(12, ledger)
    print("CALL-ID=" + call.object_id, flush=True)
    while not os.path.exists(gate):
        time.sleep(0.1)
    print("RESULT=%r" % (call.get(timeout=60),), flush=True)
"""


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kill_when", ["after_spawn", "while_running"])
@pytest.mark.parametrize("transport", ["grpc", "local-lane"])
def test_server_crash_durability(server_factory, procs, skyloft_cmd_fixture, tmp_path, cli, kill_when, transport,
                                 ledger):
    srv = server_factory()
    app_file = _write(tmp_path / "durable_app.py", DURABLE_APP)
    gate = tmp_path / "gate"
    # Without SKYLOFT_SERVER_URL the client finds the server through server.json and uses the lane.
    run_env = dict(srv.env)
    if transport == "local-lane":
        run_env.pop("SKYLOFT_SERVER_URL")
    runner = procs(
        skyloft_cmd_fixture("run", app_file, "--gate", gate, "--ledger", ledger.address), env=run_env, cwd=tmp_path
    )
    runner.wait_for(r"CALL-ID=\S+", timeout=60)
    if kill_when == "while_running":
        deadline = time.monotonic() + 30
        while not ledger.count("started") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ledger.count("started"), runner.output()

    pid_from_json = srv.server_json()["pid"]
    assert pid_from_json == srv.proc.pid
    srv.kill9()
    # the server really is gone
    st = cli("server", "status", env=srv.env, timeout=60)
    assert st.returncode != 0, st

    # restart on the same home + port
    srv.start(timeout=45)
    gate.write_text("go")
    runner.wait_for(r"RESULT=|Error|Traceback", timeout=90)
    rc = runner.wait(timeout=60)
    out = runner.output()
    assert "RESULT=144" in out, out + "\n--- server ---\n" + srv.proc.output()[-4000:]
    assert rc == 0, out

    # the restarted server keeps working for new calls
    probe = _write(
        tmp_path / "after_app.py",
        """
        import skyloft
        app = skyloft.App("after-restart")

        @app.function()
        def f(x):
            return x + 1

        @app.local_entrypoint()
        def main():
            print("AFTER=" + str(f.remote(1)))
        """,
    )
    r = cli("run", probe, env=srv.env, cwd=tmp_path)
    assert r.returncode == 0 and "AFTER=2" in r.stdout, r


DURABLE_MAP_APP = NOTE + """
import time
import skyloft

app = skyloft.App("durable-map-app")

@app.function()
def slow_square(x, ledger):
    time.sleep(0.3)
    note(ledger, "progress", str(x))
    return x * x

@app.local_entrypoint()
def main(ledger: str):
    print("MAP-START", flush=True)
    total = sum(slow_square.map(range(30), [ledger] * 30))
    print("MAP-SUM=%d" % total, flush=True)
"""


@pytest.mark.timeout(180)
def test_server_crash_during_map(server_factory, procs, skyloft_cmd_fixture, tmp_path, ledger):
    srv = server_factory()
    app_file = _write(tmp_path / "durable_map_app.py", DURABLE_MAP_APP)
    runner = procs(skyloft_cmd_fixture("run", app_file, "--ledger", ledger.address), env=srv.env, cwd=tmp_path)
    runner.wait_for("MAP-START", timeout=60)
    # wait until the map is under way, then crash the server
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and ledger.count("progress") < 3:
        time.sleep(0.05)
    assert ledger.count("progress") >= 3, runner.output()
    srv.kill9()
    srv.start(timeout=45)
    runner.wait_for(r"MAP-SUM=|Error|Traceback", timeout=120)
    rc = runner.wait(timeout=60)
    out = runner.output()
    assert f"MAP-SUM={sum(i * i for i in range(30))}" in out, out + "\n--- server ---\n" + srv.proc.output()[-4000:]
    assert rc == 0, out
    # every input ran at least once
    assert set(map(int, ledger.lines["progress"])) == set(range(30))


@pytest.mark.timeout(120)
def test_server_restart_keeps_completed_results(server_factory, tmp_path, cli, run_cmd_fixture):
    """A finished call's result survives a graceful restart (FunctionCall.from_id)."""
    import sys

    srv = server_factory()
    script = _write(
        tmp_path / "fc_script.py",
        """
        import sys
        import skyloft

        app = skyloft.App("fc-persist")

        @app.function(serialized=True)
        def f(x):
            return x * 3

        with app.run():
            if sys.argv[1] == "spawn":
                call = f.spawn(14)
                print("VAL=%r" % (call.get(timeout=60),))
                print("CALL-ID=" + call.object_id)
        """,
    )
    r = run_cmd_fixture([sys.executable, script, "spawn"], env=srv.env, timeout=90, cwd=tmp_path)
    assert r.returncode == 0 and "VAL=42" in r.stdout, r
    call_id = re.search(r"CALL-ID=(\S+)", r.stdout).group(1)

    srv.stop()
    srv.start(timeout=45)

    getter = _write(
        tmp_path / "fc_get.py",
        f"""
        import skyloft
        print("GOT=%r" % (skyloft.FunctionCall.from_id({call_id!r}).get(timeout=30),))
        """,
    )
    r = run_cmd_fixture([sys.executable, getter], env=srv.env, timeout=90, cwd=tmp_path)
    assert r.returncode == 0 and "GOT=42" in r.stdout, r


# ---------------------------------------------------------------- auto-started daemon


AUTO_APP = """
import skyloft

app = skyloft.App("auto-daemon-app")

@app.function()
def triple(x):
    return 3 * x

@app.local_entrypoint()
def main():
    print("AUTO-RESULT=" + str(triple.remote(7)))
"""


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.timeout(180)
def test_auto_started_daemon(tmp_path, cli, clean_env_fixture, short_tmp):
    home = short_tmp("slauto-")
    env = clean_env_fixture(SKYLOFT_HOME=home)  # no URL, no token
    app_file = _write(tmp_path / "auto_app.py", AUTO_APP)

    def start_lines(text):
        return [
            ln
            for ln in text.splitlines()
            if re.search(r"start|launch", ln, re.I) and re.search(r"server|daemon", ln, re.I)
        ]

    daemon_pid = None
    try:
        r1 = cli("run", app_file, env=env, cwd=tmp_path, timeout=120)
        if (home / "server.json").exists():
            daemon_pid = json.loads((home / "server.json").read_text())["pid"]
        assert r1.returncode == 0, r1
        assert "AUTO-RESULT=21" in r1.stdout, r1
        assert len(start_lines(r1.output)) == 1, r1
        assert daemon_pid is not None and _pid_alive(daemon_pid), r1
        assert (home / "token").exists()

        r2 = cli("run", app_file, env=env, cwd=tmp_path, timeout=120)
        assert r2.returncode == 0, r2
        assert "AUTO-RESULT=21" in r2.stdout, r2
        assert start_lines(r2.output) == [], r2
        assert json.loads((home / "server.json").read_text())["pid"] == daemon_pid

        st = cli("server", "status", env=env)
        assert st.returncode == 0, st

        stop = cli("server", "stop", env=env, timeout=60)
        assert stop.returncode == 0, stop
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and _pid_alive(daemon_pid):
            time.sleep(0.2)
        assert not _pid_alive(daemon_pid)
        st = cli("server", "status", env=env, timeout=60)
        assert st.returncode != 0, st
    finally:
        if daemon_pid is None and (home / "server.json").exists():
            try:
                daemon_pid = json.loads((home / "server.json").read_text())["pid"]
            except (ValueError, KeyError, OSError):
                pass
        if daemon_pid is not None and _pid_alive(daemon_pid):
            try:
                cli("server", "stop", env=env, timeout=60)
            except AssertionError:
                pass
            time.sleep(1)
            if _pid_alive(daemon_pid):
                os.kill(daemon_pid, signal.SIGKILL)
