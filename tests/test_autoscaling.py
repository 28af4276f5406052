"""Autoscaling knobs: max_containers caps concurrency, min_containers keeps warm containers."""

import re
import socket
import time

import pytest

import skyloft

# Containers import this module, and so pytest.
app = skyloft.App("skyloft-test-autoscaling", image=skyloft.Image.debian_slim().uv_pip_install("pytest"))


@app.function(max_containers=2)
def capped(x):
    time.sleep(0.5)
    return socket.gethostname()  # the container's id (its own UTS namespace)


@app.function()
def uncapped(x):
    time.sleep(1.0)
    return socket.gethostname()  # the container's id (its own UTS namespace)


@app.function(min_containers=1, scaledown_window=2)
def warm_fn():
    return socket.gethostname()  # the container's id (its own UTS namespace)


@app.function(scaledown_window=2)
def cold_fn():
    return socket.gethostname()  # the container's id (its own UTS namespace)


@app.function(buffer_containers=1, max_containers=3)
def buffered(x):
    return x + 1


@pytest.fixture(scope="module", autouse=True)
def running_app(server):
    with app.run():
        yield


def test_max_containers_caps_distinct_containers():
    ids = list(capped.map(range(8)))
    assert len(ids) == 8
    assert 1 <= len(set(ids)) <= 2, ids
    assert socket.gethostname() not in ids


def test_uncapped_scales_out():
    # 4 one-second inputs with no cap: more than one container serves them.
    ids = list(uncapped.map(range(4)))
    assert len(set(ids)) >= 2, ids


def test_running_inputs_hold_their_containers():
    """Inputs that run for a while keep their containers busy: the queue behind them gets new ones."""
    from skyloft.server.autoscaler import Limits, Load, desired_containers

    limits = Limits(min_containers=0, max_containers=100, buffer_containers=0)
    assert desired_containers(Load(queued=4, busy=96, est_duration_s=0.5), limits, current=96) == 100
    # Inputs that finish at once: the busy containers drain the queue themselves.
    assert desired_containers(Load(queued=4, busy=96, est_duration_s=0.0001), limits, current=96) == 96
    assert desired_containers(Load(queued=1000, busy=1, est_duration_s=0.001), limits, current=1) == 2


def test_buffer_containers_accepted():
    assert list(buffered.map(range(5))) == [1, 2, 3, 4, 5]


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

    container_id = warm_fn.remote()
    assert container_id in "".join(lines), lines
    # idle for longer than scaledown_window: still kept (min_containers=1)
    time.sleep(5)
    lines, r = _container_lines(cli, "warm_fn")
    assert container_id in "".join(lines), r
    assert warm_fn.remote() == container_id


@pytest.mark.timeout(90)
def test_idle_container_scales_down(cli):
    container_id = cold_fn.remote()
    assert container_id in "".join(_container_lines(cli, "cold_fn")[0])
    # without min_containers, the container goes away after scaledown_window
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline and container_id in "".join(_container_lines(cli, "cold_fn")[0]):
        time.sleep(0.5)
    assert container_id not in "".join(_container_lines(cli, "cold_fn")[0]), "idle container was not scaled down"
    lines, r = _container_lines(cli, "cold_fn")
    assert not lines, r
