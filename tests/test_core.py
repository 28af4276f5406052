"""Core SDK behaviour against a real server + worker + containers.

All remote functions live at module level: containers import this module by
name.  Keep module-level code free of side effects.
"""

import asyncio
import os
import re
import signal
import threading
import time
import traceback

import pytest

import skyloft
import skyloft.exception as exc

# Containers import this module, and so pytest.
app = skyloft.App("skyloft-test-core", image=skyloft.Image.debian_slim().uv_pip_install("pytest"))

THIS_FILE = os.path.basename(__file__)


class MyValueError(ValueError):
    """Custom exception type, must round-trip by reference."""


# ---------------------------------------------------------------- functions


@app.function()
def square(x):
    return x * x


@app.function()
def add(a, b=0, offset=0):
    return a + b + offset


@app.function()
def inverse(x):
    return 1 / x


@app.function()
def slow_identity(x, delay):
    time.sleep(delay)
    return x


@app.function()
def context_info():
    return (
        skyloft.is_local(),
        skyloft.current_input_id(),
        skyloft.current_function_call_id(),
        os.getpid(),
    )


@app.function()
def count_up(n):
    for i in range(n):
        yield i * 10


@app.function()
def raise_custom(msg):
    raise MyValueError(msg)  # RAISE-CUSTOM-LINE


@app.function()
def raise_chained():
    try:
        {}["missing-key"]
    except KeyError as e:
        raise RuntimeError("outer-error") from e


@app.function()
def divide_by_zero(x):
    return x / 0  # DIVIDE-LINE


def note(ledger, name, line="x", op="add"):
    """Append to (or count) a list kept by the test's `ledger` fixture; the new length."""
    import json
    import socket

    host, port = ledger.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(json.dumps([op, name, line]).encode() + b"\n")
        return json.loads(conn.makefile().readline())


@app.function()
def touch(ledger, name):
    note(ledger, "touched", str(name))


@app.function(timeout=1)
def sleeps_too_long():
    time.sleep(10)
    return "should not get here"


@app.function(timeout=1)
def maybe_slow(delay):
    time.sleep(delay)
    return f"slept {delay}"


@app.function(timeout=1, retries=skyloft.Retries(max_retries=1, initial_delay=0.1))
def always_times_out(ledger):
    note(ledger, "attempts")
    time.sleep(10)


@app.function(retries=2)
def flaky_int_retries(ledger, fail_times):
    n = note(ledger, "attempts")
    if n <= fail_times:
        raise MyValueError(f"attempt {n} failed")
    return n


@app.function(retries=skyloft.Retries(max_retries=1, initial_delay=0.1))
def flaky_retries_obj(ledger, fail_times):
    n = note(ledger, "attempts")
    if n <= fail_times:
        raise MyValueError(f"attempt {n} failed")
    return n


@app.function()
def long_sleep(ledger, seconds):
    note(ledger, "started")
    end = time.time() + seconds
    while time.time() < end:
        note(ledger, "ticks")
        time.sleep(0.1)
    note(ledger, "finished")
    return "finished"


@app.function(max_containers=1)
def single_lane(ledger, name, delay):
    note(ledger, "started-" + name)
    time.sleep(delay)
    return name


@app.function(retries=0)
def die_exit():
    os._exit(3)


@app.function(retries=0)
def die_sigkill():
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)


@app.function(retries=0)
def die_segfault():
    import ctypes

    ctypes.string_at(0)


@app.function(env={"PYTHONHOME": "/nonexistent-python-home"})
def never_starts():
    return "unreachable: the interpreter cannot start with this PYTHONHOME"


@app.function(retries=skyloft.Retries(max_retries=1, initial_delay=0.1))
def crash_once(ledger):
    if note(ledger, "crashed-once") == 1:
        os._exit(3)
    return "recovered"


@app.function()
def gen_then_fail(n):
    for i in range(n):
        yield i
    raise MyValueError("generator-broke")


@app.function()
def size_and_echo(data):
    return len(data), data[-16:] * 1, bytes(reversed(data))


class UnpicklableError(Exception):
    def __init__(self, msg):
        super().__init__(msg)
        self.lock = threading.Lock()


@app.function()
def raise_unpicklable():
    raise UnpicklableError("cannot-pickle-this-error")


@app.function()
def returns_lock():
    return threading.Lock()


@app.function(retries=0)
def crash_on_three(x):
    if x == 3:
        os._exit(5)
    return x


@app.function()
async def async_double(x):
    await asyncio.sleep(0.01)
    return 2 * x


@app.function(env={"SKYLOFT_TEST_CUSTOM_ENV": "hello-env"})
def read_env():
    return os.environ.get("SKYLOFT_TEST_CUSTOM_ENV")


@app.function(name="custom-named-fn")
def renamed(x):
    return ("renamed", x)


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="module", autouse=True)
def running_app(server):
    with app.run():
        yield


# ---------------------------------------------------------------- basics


def test_remote_square():
    assert square.remote(42) == 1764


def test_call_alias():
    assert square.call(7) == 49


def test_map_sum_1000():
    assert sum(square.map(range(1000))) == 332833500


def test_map_preserves_order():
    # later inputs finish first
    delays = [0.6, 0.4, 0.2, 0.0]
    out = list(slow_identity.map(range(4), delays))
    assert out == [0, 1, 2, 3]


def test_map_unordered_returns_all():
    out = list(square.map(range(20), order_outputs=False))
    assert len(out) == 20
    assert sorted(out) == [i * i for i in range(20)]


def test_map_multiple_iterables():
    assert list(add.map([1, 2, 3], [10, 20, 30])) == [11, 22, 33]


def test_map_kwargs():
    assert list(add.map([1, 2, 3], kwargs={"offset": 100})) == [101, 102, 103]


def test_starmap():
    assert list(add.starmap([(1, 2), (3, 4), (5, 6)])) == [3, 7, 11]


def test_map_return_exceptions():
    out = list(inverse.map([1, 0, 2], return_exceptions=True))
    assert len(out) == 3
    assert out[0] == 1.0
    assert out[2] == 0.5
    assert isinstance(out[1], BaseException), out[1]
    assert isinstance(out[1], ZeroDivisionError) or "ZeroDivisionError" in repr(out[1]) or "division" in str(out[1])


def test_map_without_return_exceptions_raises():
    with pytest.raises(ZeroDivisionError):
        list(inverse.map([1, 0, 2]))


def test_for_each(ledger):
    assert touch.for_each([ledger.address] * 5, range(5)) is None
    assert sorted(ledger.lines["touched"]) == ["0", "1", "2", "3", "4"]


def test_spawn_and_get():
    call = square.spawn(12)
    assert isinstance(call, skyloft.FunctionCall)
    assert isinstance(call.object_id, str) and call.object_id
    assert call.get(timeout=30) == 144


def test_function_call_from_id():
    call = square.spawn(13)
    again = skyloft.FunctionCall.from_id(call.object_id)
    assert again.object_id == call.object_id
    assert again.get(timeout=30) == 169


def test_gather():
    calls = [square.spawn(i) for i in range(5)]
    assert skyloft.FunctionCall.gather(*calls) == [0, 1, 4, 9, 16]


def test_spawn_map(ledger):
    touch.spawn_map([ledger.address] * 4, ["a", "b", "c", "d"])
    # spawn_map returns without waiting; wait (bounded) for the side effects.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ledger.count("touched") < 4:
        time.sleep(0.1)
    assert sorted(ledger.lines["touched"]) == ["a", "b", "c", "d"]


def test_remote_gen_in_order():
    assert list(count_up.remote_gen(6)) == [0, 10, 20, 30, 40, 50]


def test_remote_gen_many_items():
    assert list(count_up.remote_gen(1000)) == [i * 10 for i in range(1000)]


def test_remote_gen_empty():
    assert list(count_up.remote_gen(0)) == []


def test_remote_kwargs_only():
    assert add.remote(a=1, b=2, offset=3) == 6


def test_get_timeout_does_not_cancel():
    call = slow_identity.spawn("still-here", 2)
    with pytest.raises(BaseException) as ei:
        call.get(timeout=0.2)
    assert isinstance(ei.value, (exc.TimeoutError, TimeoutError)), repr(ei.value)
    assert not isinstance(ei.value, exc.FunctionTimeoutError), repr(ei.value)
    assert call.get(timeout=30) == "still-here"


def test_map_with_crashing_input_return_exceptions():
    out = list(crash_on_three.map(range(6), return_exceptions=True))
    assert [out[i] for i in (0, 1, 2, 4, 5)] == [0, 1, 2, 4, 5], out
    assert isinstance(out[3], BaseException), out
    assert re.search(r"\b5\b", str(out[3])), str(out[3])


def test_async_function_remote():
    assert async_double.remote(21) == 42
    assert list(async_double.map([1, 2])) == [2, 4]


def test_map_empty():
    assert list(square.map([])) == []


def test_remote_gen_exception_after_items():
    got = []
    with pytest.raises(MyValueError, match="generator-broke"):
        for v in gen_then_fail.remote_gen(3):
            got.append(v)
    assert got == [0, 1, 2]


def test_large_argument_and_result():
    data = os.urandom(6 * 1024 * 1024)
    n, tail, rev = size_and_echo.remote(data)
    assert n == len(data)
    assert tail == data[-16:]
    assert rev == bytes(reversed(data))


def test_unknown_function_call_id():
    with pytest.raises(exc.Error) as ei:
        skyloft.FunctionCall.from_id("fc-doesnotexist0000").get(timeout=5)
    assert isinstance(ei.value, exc.NotFoundError), repr(ei.value)


def test_unpicklable_remote_exception():
    with pytest.raises(Exception) as ei:
        raise_unpicklable.remote()
    e = ei.value
    # either re-created faithfully or replaced by a RemoteError carrying the details
    if not isinstance(e, UnpicklableError):
        assert isinstance(e, exc.RemoteError), repr(e)
        assert "UnpicklableError" in str(e) and "cannot-pickle-this-error" in str(e), str(e)


def test_map_input_iterator_raises():
    def inputs():
        yield 1
        yield 2
        raise KeyError("local-iterator-broke")

    with pytest.raises(KeyError, match="local-iterator-broke"):
        list(square.map(inputs()))


def test_unpicklable_return_value():
    with pytest.raises(exc.Error) as ei:
        returns_lock.remote()
    assert re.search(r"pickl|serializ", str(ei.value), re.I), repr(ei.value)


def test_local_runs_in_process():
    assert square.local(5) == 25
    is_local, input_id, call_id, pid = context_info.local()
    assert is_local is True
    assert input_id is None
    assert call_id is None
    assert pid == os.getpid()


def test_context_locally():
    assert skyloft.is_local() is True
    assert skyloft.current_input_id() is None
    assert skyloft.current_function_call_id() is None


def test_context_in_container():
    is_local, input_id, call_id, pid = context_info.remote()
    assert is_local is False
    assert isinstance(input_id, str) and input_id
    assert isinstance(call_id, str) and call_id
    assert pid != os.getpid()


def test_context_spawn_call_id_matches():
    call = context_info.spawn()
    is_local, input_id, call_id, _ = call.get(timeout=30)
    assert is_local is False
    assert call_id == call.object_id


def test_context_map_ids():
    results = list(context_info.starmap([()] * 3))
    input_ids = [r[1] for r in results]
    call_ids = {r[2] for r in results}
    assert len(set(input_ids)) == 3, input_ids
    assert len(call_ids) == 1, call_ids


def test_function_env():
    assert read_env.remote() == "hello-env"


def test_function_custom_name():
    assert renamed.remote(3) == ("renamed", 3)


# ---------------------------------------------------------------- exceptions


def test_custom_exception_type_and_traceback():
    with pytest.raises(MyValueError) as ei:
        raise_custom.remote("boom-1234")
    assert "boom-1234" in str(ei.value)
    tb = "".join(traceback.format_exception(ei.type, ei.value, ei.tb))
    assert "raise MyValueError(msg)  # RAISE-CUSTOM-LINE" in tb, tb
    assert THIS_FILE in tb, tb


def test_zero_division_type_and_traceback():
    with pytest.raises(ZeroDivisionError) as ei:
        divide_by_zero.remote(5)
    tb = "".join(traceback.format_exception(ei.type, ei.value, ei.tb))
    assert "return x / 0  # DIVIDE-LINE" in tb, tb
    assert THIS_FILE in tb, tb


def test_chained_exception_cause_preserved():
    with pytest.raises(RuntimeError, match="outer-error") as ei:
        raise_chained.remote()
    assert isinstance(ei.value.__cause__, KeyError), repr(ei.value.__cause__)


def test_spawned_exception_on_get():
    call = raise_custom.spawn("spawned-boom")
    with pytest.raises(MyValueError, match="spawned-boom"):
        call.get(timeout=30)


def test_exception_hierarchy():
    names = [
        "InvalidError",
        "NotFoundError",
        "FunctionTimeoutError",
        "SerializationError",
        "DeserializationError",
        "RemoteError",
        "ConnectionError",
        "ExecutionError",
        "AuthError",
    ]
    for n in names:
        cls = getattr(exc, n)
        assert issubclass(cls, exc.Error), n
    assert hasattr(exc, "InputCancellation")


# ---------------------------------------------------------------- timeouts & retries


def test_function_timeout():
    with pytest.raises(exc.FunctionTimeoutError):
        sleeps_too_long.remote()


def test_timeout_then_same_function_works():
    with pytest.raises(exc.FunctionTimeoutError):
        maybe_slow.remote(10)
    assert maybe_slow.remote(0) == "slept 0"


def test_timeout_is_retried(ledger):
    with pytest.raises(exc.FunctionTimeoutError):
        always_times_out.remote(ledger.address)
    assert ledger.count("attempts") == 2


def test_retries_int_eventually_succeeds(ledger):
    # fails on attempts 1 and 2, succeeds on attempt 3
    assert flaky_int_retries.remote(ledger.address, 2) == 3
    assert ledger.count("attempts") == 3


def test_retries_exhausted(ledger):
    with pytest.raises(MyValueError, match="attempt 3 failed"):
        flaky_int_retries.remote(ledger.address, 100)
    # 1 initial attempt + 2 retries, no more
    assert ledger.count("attempts") == 3


def test_retries_object(ledger):
    assert flaky_retries_obj.remote(ledger.address, 1) == 2


def test_retries_object_exhausted(ledger):
    with pytest.raises(MyValueError, match="attempt 2 failed"):
        flaky_retries_obj.remote(ledger.address, 5)
    assert ledger.count("attempts") == 2


def test_retries_validation():
    r = skyloft.Retries(max_retries=3, backoff_coefficient=2.0, initial_delay=0.5, max_delay=10.0)
    assert r.max_retries == 3
    with pytest.raises(Exception):
        skyloft.Retries(max_retries=-1)


# ---------------------------------------------------------------- cancellation


def _wait_for(ledger, name, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ledger.count(name):
            return
        time.sleep(0.05)
    raise AssertionError(f"no {name!r} from the function within {timeout}s")


@pytest.mark.timeout(90)
def test_cancel_spawned_call(ledger):
    call = long_sleep.spawn(ledger.address, 40)
    _wait_for(ledger, "started")
    call.cancel()
    with pytest.raises(BaseException) as ei:
        call.get(timeout=30)
    e = ei.value
    assert isinstance(e, (exc.Error, exc.InputCancellation)), repr(e)
    assert not isinstance(e, (exc.FunctionTimeoutError, exc.TimeoutError)), repr(e)
    assert ledger.count("finished") == 0

    # the cancelled input stops running (its ticks stop)
    deadline = time.monotonic() + 20
    stopped = False
    while time.monotonic() < deadline:
        before = ledger.count("ticks")
        time.sleep(1.0)
        if ledger.count("ticks") == before:
            stopped = True
            break
    assert stopped, "cancelled input is still running"


@pytest.mark.timeout(90)
def test_cancel_pending_call_never_runs(ledger):
    first = single_lane.spawn(ledger.address, "a", 2)
    _wait_for(ledger, "started-a")
    pending = single_lane.spawn(ledger.address, "b", 0)
    pending.cancel()
    with pytest.raises(BaseException) as ei:
        pending.get(timeout=30)
    assert isinstance(ei.value, (exc.Error, exc.InputCancellation)), repr(ei.value)
    assert first.get(timeout=30) == "a"
    # a later call goes through the same (single) lane; "b" must not have run
    assert single_lane.remote(ledger.address, "c", 0) == "c"
    assert ledger.count("started-b") == 0


# ---------------------------------------------------------------- serialization


def test_unpicklable_lock_argument():
    with pytest.raises(exc.SerializationError):
        square.remote(threading.Lock())


def test_unpicklable_generator_argument():
    with pytest.raises(exc.SerializationError):
        square.remote(i for i in range(3))


# ---------------------------------------------------------------- container death


def _assert_died_message(e, code_patterns):
    import re

    msg = str(e)
    assert not isinstance(e, exc.FunctionTimeoutError), repr(e)
    assert re.search(r"die|died|exit|crash|terminat|kill|signal", msg, re.I), msg
    assert any(re.search(p, msg) for p in code_patterns), msg


def test_container_exit_code():
    with pytest.raises(Exception) as ei:
        die_exit.remote()
    _assert_died_message(ei.value, [r"\b3\b"])


def test_container_sigkill():
    with pytest.raises(Exception) as ei:
        die_sigkill.remote()
    _assert_died_message(ei.value, [r"SIGKILL", r"signal 9\b", r"-9\b", r"\b9\b"])


def test_container_segfault():
    with pytest.raises(Exception) as ei:
        die_segfault.remote()
    _assert_died_message(ei.value, [r"SIGSEGV", r"signal 11\b", r"-11\b", r"\b11\b", r"[Ss]egmentation"])


def test_container_crash_then_retry(ledger):
    assert crash_once.remote(ledger.address) == "recovered"
    assert ledger.count("crashed-once") == 2


def test_container_that_cannot_start_fails_the_call():
    """Python cannot even start in these containers: the call fails instead of waiting forever."""
    with pytest.raises(exc.ContainerCrashError, match=r"failed to start \d+ times"):
        never_starts.remote()


def test_server_still_fine_after_crashes():
    assert square.remote(9) == 81


# ---------------------------------------------------------------- async twins


def test_aio_twins():
    async def main():
        r = await square.remote.aio(6)
        m = [x async for x in square.map.aio([1, 2, 3])]
        call = await square.spawn.aio(8)
        g = await call.get.aio()
        gen = [v async for v in count_up.remote_gen.aio(3)]
        return r, m, g, gen

    r, m, g, gen = asyncio.run(main())
    assert r == 36
    assert m == [1, 4, 9]
    assert g == 64
    assert gen == [0, 10, 20]


def test_aio_exception():
    async def main():
        return await raise_custom.remote.aio("async-boom")

    with pytest.raises(MyValueError, match="async-boom"):
        asyncio.run(main())
