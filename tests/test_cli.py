"""The `skyloft` command line: help, run (streaming, shipping, args), app/container commands."""

import json
import os
import re
import textwrap
import time
import uuid
from pathlib import Path

import pytest


def _write(path: Path, source: str) -> Path:
    path.write_text(textwrap.dedent(source))
    return path


# ---------------------------------------------------------------- help


HELP_COMMANDS = [
    [],
    ["run"],
    ["server"],
    ["server", "start"],
    ["server", "status"],
    ["server", "stop"],
    ["worker"],
    ["app"],
    ["app", "list"],
    ["app", "logs"],
    ["app", "stop"],
    ["container"],
    ["container", "list"],
    ["container", "logs"],
    ["container", "stop"],
]


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=[" ".join(c) or "root" for c in HELP_COMMANDS])
def test_help_exits_zero(cmd, run_cmd_fixture, skyloft_cmd_fixture, clean_env_fixture, tmp_path):
    env = clean_env_fixture(SKYLOFT_HOME=tmp_path)
    r = run_cmd_fixture(skyloft_cmd_fixture(*cmd, "--help"), env=env, timeout=30)
    assert r.returncode == 0, r
    assert "usage" in r.output.lower(), r
    # help must not auto-start anything
    assert not (tmp_path / "server.json").exists()


def test_console_script_help(run_cmd_fixture, clean_env_fixture, tmp_path):
    import sys

    script = Path(sys.executable).parent / "skyloft"
    assert script.exists(), f"console script {script} missing"
    r = run_cmd_fixture([script, "--help"], env=clean_env_fixture(SKYLOFT_HOME=tmp_path), timeout=30)
    assert r.returncode == 0, r
    for sub in ["run", "server", "app", "container"]:
        assert sub in r.stdout, r


def test_unknown_command_fails(run_cmd_fixture, skyloft_cmd_fixture, clean_env_fixture, tmp_path):
    r = run_cmd_fixture(
        skyloft_cmd_fixture("definitely-not-a-command"), env=clean_env_fixture(SKYLOFT_HOME=tmp_path), timeout=30
    )
    assert r.returncode != 0, r


# ---------------------------------------------------------------- server status


def test_server_status_ok(cli):
    r = cli("server", "status")
    assert r.returncode == 0, r


def test_server_status_unreachable(run_cmd_fixture, skyloft_cmd_fixture, clean_env_fixture, tmp_path, free_port_fixture):
    port = free_port_fixture()
    env = clean_env_fixture(SKYLOFT_HOME=tmp_path, SKYLOFT_SERVER_URL=f"127.0.0.1:{port}")
    r = run_cmd_fixture(skyloft_cmd_fixture("server", "status"), env=env, timeout=60)
    assert r.returncode != 0, r
    assert not (tmp_path / "server.json").exists(), "status must not start a server"


def test_server_json_contents(server):
    info = json.loads((server.home / "server.json").read_text())
    assert info["url"] == server.url
    assert isinstance(info["pid"], int)
    assert info["pid"] == server.proc.pid or os.path.exists(f"/proc/{info['pid']}")
    assert (server.home / "token").read_text().strip()
    # the token is a secret: not readable by other users
    assert (server.home / "token").stat().st_mode & 0o077 == 0, oct((server.home / "token").stat().st_mode)


# ---------------------------------------------------------------- run: streaming


def test_run_streams_container_stdout_before_result(cli, tmp_path):
    marker = f"REMOTE-MARKER-{uuid.uuid4().hex}"
    _write(
        tmp_path / "stream_app.py",
        f"""
        import skyloft

        app = skyloft.App("cli-stream")

        @app.function()
        def shout(x):
            import sys
            print("{marker}", x)
            print("{marker}-STDERR", file=sys.stderr)
            return x * 2

        @app.local_entrypoint()
        def main():
            r = shout.remote(21)
            print("RESULT-LINE", r)
        """,
    )
    r = cli("run", tmp_path / "stream_app.py", cwd=tmp_path)
    assert r.returncode == 0, r
    assert f"{marker} 21" in r.stdout, r
    assert "RESULT-LINE 42" in r.stdout, r
    assert r.stdout.index(marker) < r.stdout.index("RESULT-LINE 42"), r
    assert f"{marker}-STDERR" in r.stderr, r


def test_run_streams_lots_of_output(cli, tmp_path):
    _write(
        tmp_path / "chatty_app.py",
        """
        import skyloft

        app = skyloft.App("cli-chatty")

        @app.function()
        def chatty(n):
            for i in range(n):
                print("CHATTY-LINE %05d" % i)
            return n

        @app.local_entrypoint()
        def main():
            print("CHATTY-DONE", chatty.remote(3000))
        """,
    )
    r = cli("run", tmp_path / "chatty_app.py", cwd=tmp_path)
    assert r.returncode == 0, r
    got = re.findall(r"CHATTY-LINE (\d{5})", r.stdout)
    assert [int(x) for x in got] == list(range(3000)), (len(got), r)
    assert r.stdout.rindex("CHATTY-LINE") < r.stdout.index("CHATTY-DONE 3000"), r


def test_run_syntax_error_in_app(cli, tmp_path):
    (tmp_path / "broken_app.py").write_text("import skyloft\napp = skyloft.App('x')\ndef oops(:\n")
    r = cli("run", tmp_path / "broken_app.py", cwd=tmp_path)
    assert r.returncode != 0, r
    assert "SyntaxError" in r.output, r


def test_concurrent_runs(server, procs, skyloft_cmd_fixture, tmp_path):
    f = _write(
        tmp_path / "conc_app.py",
        """
        import skyloft

        app = skyloft.App("cli-concurrent")

        @app.function()
        def mul(x, k):
            return x * k

        @app.local_entrypoint()
        def main(k: int):
            print("SUM=%d" % sum(mul.map(range(50), [k] * 50)))
        """,
    )
    runners = [
        procs(skyloft_cmd_fixture("run", f, "--k", k), env=server.env, cwd=tmp_path) for k in (1, 2, 3)
    ]
    for k, p in zip((1, 2, 3), runners):
        assert p.wait(timeout=90) == 0, p.output()
        assert f"SUM={1225 * k}" in p.output(), p.output()


def test_run_hello_example(cli, repo_root):
    example = repo_root / "examples" / "hello.py"
    assert example.exists(), "examples/hello.py is missing"
    r = cli("run", example, cwd=repo_root)
    assert r.returncode == 0, r
    out = r.stdout
    a = out.find("This code is running on a remote worker!")
    b = out.find("the square is 1764")
    c = out.find("332833500")
    assert a != -1 and b != -1 and c != -1, r
    assert a < b < c, r


def test_run_remote_exception_exit_code(cli, tmp_path):
    _write(
        tmp_path / "fail_app.py",
        """
        import skyloft

        app = skyloft.App("cli-fail")

        @app.function()
        def bad():
            raise RuntimeError("remote-failure-xyz")  # FAIL-LINE

        @app.local_entrypoint()
        def main():
            bad.remote()
        """,
    )
    r = cli("run", tmp_path / "fail_app.py", cwd=tmp_path)
    assert r.returncode != 0, r
    assert "remote-failure-xyz" in r.output, r
    assert "RuntimeError" in r.output, r
    assert "FAIL-LINE" in r.output, r


def test_container_import_error_fails_call(cli, tmp_path):
    """A module that cannot be imported in the container fails the call (no endless restarts)."""
    _write(
        tmp_path / "import_fail_app.py",
        """
        import skyloft

        if not skyloft.is_local():
            raise RuntimeError("import-time-boom-in-container")

        app = skyloft.App("cli-import-fail")

        @app.function()
        def f():
            return 1

        @app.local_entrypoint()
        def main():
            print("GOT", f.remote())
        """,
    )
    r = cli("run", tmp_path / "import_fail_app.py", cwd=tmp_path, timeout=60)
    assert r.returncode != 0, r
    assert "GOT" not in r.stdout, r
    assert "import-time-boom-in-container" in r.output, r


# ---------------------------------------------------------------- run: code shipping


def test_code_shipping_picks_up_edits(cli, tmp_path):
    _write(
        tmp_path / "helper.py",
        """
        def value():
            return "first"
        """,
    )
    _write(
        tmp_path / "ship_app.py",
        """
        import skyloft
        import helper

        app = skyloft.App("cli-ship")

        @app.function()
        def get_value():
            return "VALUE=" + helper.value()

        @app.local_entrypoint()
        def main():
            print(get_value.remote())
        """,
    )
    r1 = cli("run", tmp_path / "ship_app.py", cwd=tmp_path)
    assert r1.returncode == 0, r1
    assert "VALUE=first" in r1.stdout, r1

    # different length on purpose (pyc validation uses mtime+size)
    _write(
        tmp_path / "helper.py",
        """
        def value():
            return "second-edited-version"
        """,
    )
    r2 = cli("run", tmp_path / "ship_app.py", cwd=tmp_path)
    assert r2.returncode == 0, r2
    assert "VALUE=second-edited-version" in r2.stdout, r2
    assert "VALUE=first" not in r2.stdout, r2


def test_code_shipping_package_edit(cli, tmp_path):
    pkg = tmp_path / "mypkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    _write(pkg / "sub" / "deep.py", "def value():\n    return 'pkg-one'\n")
    _write(
        tmp_path / "pkg_app.py",
        """
        import skyloft
        from mypkg.sub import deep

        app = skyloft.App("cli-ship-pkg")

        @app.function()
        def get_value():
            return "PKG=" + deep.value()

        @app.local_entrypoint()
        def main():
            print(get_value.remote())
        """,
    )
    r1 = cli("run", tmp_path / "pkg_app.py", cwd=tmp_path)
    assert r1.returncode == 0 and "PKG=pkg-one" in r1.stdout, r1
    _write(pkg / "sub" / "deep.py", "def value():\n    return 'pkg-two-changed'\n")
    r2 = cli("run", tmp_path / "pkg_app.py", cwd=tmp_path)
    assert r2.returncode == 0 and "PKG=pkg-two-changed" in r2.stdout, r2


def test_code_shipping_from_other_cwd(cli, tmp_path):
    """The app file + its sibling module are shipped even when cwd is elsewhere."""
    proj = tmp_path / "proj"
    proj.mkdir()
    _write(proj / "sibling_mod.py", "CONST = 'sibling-const-77'\n")
    _write(
        proj / "other_app.py",
        """
        import skyloft
        import sibling_mod

        app = skyloft.App("cli-ship-other")

        @app.function()
        def f():
            return sibling_mod.CONST

        @app.local_entrypoint()
        def main():
            print("GOT", f.remote())
        """,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = cli("run", proj / "other_app.py", cwd=elsewhere)
    assert r.returncode == 0, r
    assert "GOT sibling-const-77" in r.stdout, r


# ---------------------------------------------------------------- run: entrypoint args / selection


ARGS_APP = """
import skyloft

app = skyloft.App("cli-args")

@app.function()
def repeat(name, count):
    return name * count

@app.function()
def standalone_fn():
    print("STANDALONE-FN-RAN")

@app.local_entrypoint()
def main(name: str = "x", count: int = 1, dry_run: bool = False):
    print("MAIN-RESULT=" + repeat.remote(name, count) + " dry=" + str(dry_run))

@app.local_entrypoint()
def other_entry(word: str = "default-word"):
    print("OTHER-ENTRY=" + word)
"""


SINGLE_ENTRY_APP = """
import skyloft

app = skyloft.App("cli-args-single")

@app.function()
def repeat(name, count):
    return name * count

@app.local_entrypoint()
def main(name: str = "x", count: int = 1):
    print("SINGLE-RESULT=" + repeat.remote(name, count))
"""


def test_entrypoint_args(cli, tmp_path):
    f = _write(tmp_path / "single_app.py", SINGLE_ENTRY_APP)
    r = cli("run", f, "--name", "bob", "--count", "3", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "SINGLE-RESULT=bobbobbob" in r.stdout, r


def test_entrypoint_args_selected(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::main", "--name", "bob", "--count", "3", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "MAIN-RESULT=bobbobbob dry=False" in r.stdout, r


def test_entrypoint_default_args(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::main", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "MAIN-RESULT=x dry=False" in r.stdout, r


def test_entrypoint_underscore_to_dash(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::main", "--dry-run", "--name", "z", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "MAIN-RESULT=z dry=True" in r.stdout, r


def test_entrypoint_bad_int_arg(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::main", "--count", "not-a-number", cwd=tmp_path)
    assert r.returncode != 0, r
    assert "MAIN-RESULT" not in r.stdout, r


def test_run_selects_other_entrypoint(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::other_entry", "--word", "picked", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "OTHER-ENTRY=picked" in r.stdout, r
    assert "MAIN-RESULT" not in r.stdout, r


def test_run_selects_function(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::standalone_fn", cwd=tmp_path)
    assert r.returncode == 0, r
    assert "STANDALONE-FN-RAN" in r.stdout, r
    assert "MAIN-RESULT" not in r.stdout, r
    assert "OTHER-ENTRY" not in r.stdout, r


def test_run_ambiguous_entrypoint_fails(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f, cwd=tmp_path)
    # two local entrypoints, no selection: Modal refuses
    assert r.returncode != 0, r
    assert "MAIN-RESULT" not in r.stdout, r


def test_run_missing_file_fails(cli, tmp_path):
    r = cli("run", tmp_path / "nope.py", cwd=tmp_path)
    assert r.returncode != 0, r


def test_run_unknown_function_fails(cli, tmp_path):
    f = _write(tmp_path / "args_app.py", ARGS_APP)
    r = cli("run", f"{f}::no_such_thing", cwd=tmp_path)
    assert r.returncode != 0, r
    assert "no_such_thing" in r.output, r


# ---------------------------------------------------------------- app list/logs/stop


DETACH_APP = """
import time
import skyloft

app = skyloft.App("{name}")

@app.function()
def background(marker):
    print(marker, flush=True)
    time.sleep(120)
    return "done"

@app.local_entrypoint()
def main(marker: str):
    call = background.spawn(marker)
    print("APP-ID=" + app.app_id, flush=True)
    print("CALL-ID=" + call.object_id, flush=True)
"""


# wide terminal so that table columns are not elided
WIDE = {"COLUMNS": "400"}


def _line_with(output, needle):
    return [ln for ln in output.splitlines() if needle in ln]


@pytest.mark.timeout(120)
@pytest.mark.parametrize("flag_position", ["before_file", "after_file"])
def test_detach_app_list_logs_stop(cli, tmp_path, flag_position):
    name = f"cli-detach-{uuid.uuid4().hex[:8]}"
    marker = f"DETACHED-MARKER-{uuid.uuid4().hex}"
    f = _write(tmp_path / "detach_app.py", DETACH_APP.format(name=name))
    if flag_position == "before_file":  # Modal's spelling
        r = cli("run", "--detach", f, "--marker", marker, cwd=tmp_path)
    else:  # skyloft run FILE --detach [entrypoint args]
        r = cli("run", f, "--detach", "--marker", marker, cwd=tmp_path)
    assert r.returncode == 0, r
    m = re.search(r"APP-ID=(\S+)", r.stdout)
    assert m, r
    app_id = m.group(1)

    # the detached app is still listed as live
    r = cli("app", "list", extra_env=WIDE)
    assert r.returncode == 0, r
    lines = _line_with(r.stdout, app_id)
    assert lines, r
    assert not re.search(r"stopped", lines[0], re.I), r

    # its logs contain the container output (logs may follow: bounded wait)
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        try:
            lr = cli("app", "logs", app_id, timeout=10)
            seen = lr.output
        except AssertionError as e:  # logs kept following: output is in the message
            seen = str(e)
        if marker in seen:
            break
        time.sleep(0.5)
    assert marker in seen, seen

    # container list shows a container of this app
    cr = cli("container", "list", extra_env=WIDE)
    assert cr.returncode == 0, cr
    assert app_id in cr.stdout or name in cr.stdout, cr

    # stop it
    r = cli("app", "stop", app_id)
    assert r.returncode == 0, r
    r = cli("app", "list", extra_env=WIDE)
    assert r.returncode == 0, r
    lines = _line_with(r.stdout, app_id)
    assert not lines or re.search(r"stop", lines[0], re.I), r

    # its containers go away
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cr = cli("container", "list", extra_env=WIDE)
        if app_id not in cr.stdout:
            break
        time.sleep(0.5)
    assert app_id not in cr.stdout, cr


LIST_APP = """
import os
import subprocess
import sys
import skyloft

app = skyloft.App("cli-list-piped")

@app.function()
def f():
    return 1

@app.local_entrypoint()
def main():
    f.remote()
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    out = subprocess.run([sys.executable, "-m", "skyloft", "app", "list"], env=env,
                         capture_output=True, text=True).stdout
    print("APP-ID=" + app.app_id)
    print("LISTING-START")
    print(out)
    print("LISTING-END")
"""


def test_app_list_ids_not_elided_when_piped(cli, tmp_path):
    """`skyloft app list | grep ...` must show whole ids (no terminal => no width)."""
    f = _write(tmp_path / "list_app.py", LIST_APP)
    r = cli("run", f, cwd=tmp_path, extra_env={"COLUMNS": None})
    assert r.returncode == 0, r
    app_id = re.search(r"APP-ID=(\S+)", r.stdout).group(1)
    listing = r.stdout.split("LISTING-START", 1)[1].split("LISTING-END", 1)[0]
    assert app_id in listing, r
    assert "cli-list-piped" in listing, r


def test_app_stopped_after_non_detached_run(cli, tmp_path):
    f = _write(
        tmp_path / "plain_app.py",
        """
        import skyloft

        app = skyloft.App("cli-plain")

        @app.function()
        def f():
            return 5

        @app.local_entrypoint()
        def main():
            print("APP-ID=" + app.app_id, "V=" + str(f.remote()))
        """,
    )
    r = cli("run", f, cwd=tmp_path)
    assert r.returncode == 0 and "V=5" in r.stdout, r
    app_id = re.search(r"APP-ID=(\S+)", r.stdout).group(1)
    lst = cli("app", "list", extra_env=WIDE)
    lines = _line_with(lst.stdout, app_id)
    assert lines, lst
    assert re.search(r"stopped", lines[0], re.I), lst


INTERRUPT_APP = """
import time
import skyloft

app = skyloft.App("{name}")

@app.function()
def background(marker):
    print(marker, flush=True)
    time.sleep(120)
    return "done"

@app.local_entrypoint()
def main(marker: str):
    print("APP-ID=" + app.app_id, flush=True)
    background.remote(marker)
"""


@pytest.mark.timeout(120)
def test_ctrl_c_stops_app_and_containers(cli, server, procs, skyloft_cmd_fixture, tmp_path):
    import signal

    name = f"cli-sigint-{uuid.uuid4().hex[:8]}"
    marker = f"SIGINT-MARKER-{uuid.uuid4().hex}"
    f = _write(tmp_path / "sigint_app.py", INTERRUPT_APP.format(name=name))
    runner = procs(skyloft_cmd_fixture("run", f, "--marker", marker), env=server.env, cwd=tmp_path)
    app_id = runner.wait_for(r"APP-ID=(\S+)", timeout=60).group(1)
    runner.wait_for(re.escape(marker), timeout=60)
    runner.proc.send_signal(signal.SIGINT)
    rc = runner.wait(timeout=30)
    assert rc != 0, runner.output()
    # the ephemeral app is stopped and its containers go away
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        lst = cli("app", "list", extra_env=WIDE)
        cr = cli("container", "list", extra_env=WIDE)
        lines = _line_with(lst.stdout, app_id)
        if lines and re.search(r"stopped", lines[0], re.I) and app_id not in cr.stdout:
            break
        time.sleep(0.5)
    assert lines and re.search(r"stopped", lines[0], re.I), lst
    assert app_id not in cr.stdout, cr


def test_app_stop_unknown_id_fails(cli):
    r = cli("app", "stop", "ap-doesnotexist000")
    assert r.returncode != 0, r


def test_app_logs_unknown_id_fails(cli):
    r = cli("app", "logs", "ap-doesnotexist000", timeout=30)
    assert r.returncode != 0, r


def test_container_logs_unknown_id_fails(cli):
    r = cli("container", "logs", "ta-doesnotexist000", timeout=30)
    assert r.returncode != 0, r


def test_container_stop_unknown_id_fails(cli):
    r = cli("container", "stop", "ta-doesnotexist000")
    assert r.returncode != 0, r


CONTAINER_APP = """
import os
import time
import skyloft

app = skyloft.App("{name}")

@app.function()
def background(marker):
    print(marker, flush=True)
    time.sleep(120)
    return "done"

@app.local_entrypoint()
def main(marker: str):
    call = background.spawn(marker)
    print("APP-ID=" + app.app_id, flush=True)
    try:
        call.get(timeout=100)
        print("GET-RETURNED")
    except BaseException as e:
        print("GET-RAISED " + type(e).__name__ + ": " + str(e), flush=True)
"""


@pytest.mark.timeout(120)
def test_container_list_logs_stop(cli, server, procs, skyloft_cmd_fixture, tmp_path):
    name = f"cli-ctr-{uuid.uuid4().hex[:8]}"
    marker = f"CONTAINER-MARKER-{uuid.uuid4().hex}"
    f = _write(tmp_path / "ctr_app.py", CONTAINER_APP.format(name=name))
    runner = procs(skyloft_cmd_fixture("run", f, "--marker", marker), env=server.env, cwd=tmp_path)
    app_id = runner.wait_for(r"APP-ID=(\S+)", timeout=60).group(1)
    runner.wait_for(re.escape(marker), timeout=60)

    # find the container of our app
    cr = cli("container", "list", extra_env=WIDE)
    assert cr.returncode == 0, cr
    lines = [ln for ln in cr.stdout.splitlines() if app_id in ln or name in ln]
    assert len(lines) >= 1, cr
    # the container id is the first token on the line that is not the app id
    tokens = [t for t in re.split(r"[\s│|┃]+", lines[0]) if t and t != app_id]
    assert tokens, cr
    container_id = tokens[0]

    lr = None
    try:
        lr = cli("container", "logs", container_id, timeout=10)
        logs = lr.output
    except AssertionError as e:  # follow mode: partial output in message
        logs = str(e)
    assert marker in logs, logs

    sr = cli("container", "stop", container_id)
    assert sr.returncode == 0, sr
    # the stopped container disappears from the list (Modal reassigns its
    # in-progress inputs, so we do not assert on the call's outcome)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        cr = cli("container", "list", extra_env=WIDE)
        if container_id not in cr.stdout:
            break
        time.sleep(0.5)
    assert container_id not in cr.stdout, cr

    r = cli("app", "stop", app_id)
    assert r.returncode == 0, r
    # stopping the app ends the `skyloft run` caller
    runner.wait(timeout=60)
