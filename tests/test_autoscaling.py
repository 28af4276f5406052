"""Autoscaling knobs: max_containers caps concurrency, min_containers keeps warm containers."""

import os
import re
import time

import pytest

import skyloft

app = skyloft.App("skyloft-test-autoscaling")


@app.function(max_containers=2)
def capped(x):
    time.sleep(0.5)
    return os.getpid()


@app.function()
def uncapped(x):
    time.sleep(1.0)
    return os.getpid()


@app.function(min_containers=1, scaledown_window=2)
def warm_fn():
    return os.getpid()


@app.function(scaledown_window=2)
def cold_fn():
    return os.getpid()


@app.function(buffer_containers=1, max_containers=3)
def buffered(x):
    return x + 1


@pytest.fixture(scope="module", autouse=True)
def running_app(server):
    with app.run():
        yield


def test_max_containers_caps_distinct_containers():
    pids = list(capped.map(range(8)))
    assert len(pids) == 8
    assert 1 <= len(set(pids)) <= 2, pids
    assert os.getpid() not in pids


def test_uncapped_scales_out():
    # 4 one-second inputs with no cap: more than one container serves them.
    pids = list(uncapped.map(range(4)))
    assert len(set(pids)) >= 2, pids


def test_buffer_containers_accepted():
    assert list(buffered.map(range(5))) == [1, 2, 3, 4, 5]


def _pid_alive(pid):
    """True if pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def _container_lines(cli, function_name):
    r = cli("container", "list", extra_env={"COLUMNS": "400"})
    assert r.returncode == 0, r
    return [ln for ln in r.stdout.splitlines() if re.search(rf"\b{function_name}\b", ln)], r


@pytest.mark.timeout(90)
def test_min_containers_keeps_container_alive(cli):
    # a warm container exists as soon as the app runs, before any call
    deadline = time.monotonic() + 30
    lines, r = _container_lines(cli, "warm_fn")
    while not lines and time.monotonic() < deadline:
        time.sleep(0.5)
        lines, r = _container_lines(cli, "warm_fn")
    assert lines, r

    pid = warm_fn.remote()
    assert _pid_alive(pid)
    # idle for longer than scaledown_window: still kept (min_containers=1)
    time.sleep(5)
    lines, r = _container_lines(cli, "warm_fn")
    assert lines, r
    assert warm_fn.remote() == pid


@pytest.mark.timeout(90)
def test_idle_container_scales_down(cli):
    pid = cold_fn.remote()
    assert _pid_alive(pid)
    # without min_containers, the container goes away after scaledown_window
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and _pid_alive(pid):
        time.sleep(0.5)
    assert not _pid_alive(pid), "idle container was not scaled down"
    lines, r = _container_lines(cli, "cold_fn")
    assert not lines, r
