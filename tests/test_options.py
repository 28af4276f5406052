"""Decorator options: unsupported Modal options fail loudly; serialized functions."""

import sys

import pytest

import skyloft
import skyloft.exception as exc


def test_stub_is_app_alias():
    assert skyloft.Stub is skyloft.App


def test_app_name():
    a = skyloft.App("some-name")
    assert a.name == "some-name"


def _unsupported_cases():
    return [
        ("gpu", lambda: "A10G"),
        ("schedule", lambda: skyloft.Period(minutes=1)),
        ("volumes", lambda: {"/data": object()}),
    ]


@pytest.mark.parametrize("option,make_value", _unsupported_cases(), ids=[c[0] for c in _unsupported_cases()])
def test_unsupported_option_raises_naming_option(server, option, make_value):
    app2 = skyloft.App(f"unsupported-{option}")
    with pytest.raises(Exception) as ei:

        @app2.function(serialized=True, **{option: make_value()})
        def f():
            return 1

        with app2.run():
            f.remote()
    assert option in str(ei.value), repr(ei.value)
    # the failure must be a configuration error, not some incidental breakage
    assert isinstance(ei.value, (exc.InvalidError, NotImplementedError, TypeError, ValueError, exc.Error)), repr(
        ei.value
    )


@pytest.mark.parametrize(
    "option,value",
    [("volumes", {"/data": object()}), ("secrets", [object()])],
    ids=["volumes", "secrets"],
)
def test_unsupported_app_option_raises_naming_option(server, option, value):
    with pytest.raises(Exception) as ei:
        a = skyloft.App(f"unsupported-app-{option}", **{option: value})

        @a.function(serialized=True)
        def f():
            return 1

        with a.run():
            f.remote()
    assert option in str(ei.value), repr(ei.value)


def test_unknown_keyword_rejected():
    app2 = skyloft.App("unknown-kw")
    with pytest.raises(Exception) as ei:

        @app2.function(serialized=True, definitely_not_an_option=1)
        def f():
            return 1

    assert "definitely_not_an_option" in str(ei.value)


def test_serialized_closure(server):
    app3 = skyloft.App("serialized-closure")
    k = 7

    @app3.function(serialized=True)
    def add_k(x):
        return x + k

    with app3.run():
        assert add_k.remote(1) == 8
        assert list(add_k.map([1, 2])) == [8, 9]


def test_remote_outside_running_app_fails(server):
    app4 = skyloft.App("not-running")

    @app4.function(serialized=True)
    def g():
        return 1

    with pytest.raises(Exception):
        g.remote()


PROCESS_RUNTIME_APP = """
import sys
import skyloft

app = skyloft.App("process-runtime")

@app.function()
def host_python():
    return sys.executable

@app.function(image=skyloft.Image.debian_slim().pip_install("six"))
def on_an_image():
    return "unreachable on the process runtime"

@app.local_entrypoint()
def main():
    print("the default image ran on", host_python.remote())
    on_an_image.remote()
"""


def test_process_runtime_runs_on_the_host_and_refuses_images(server_factory, tmp_path, run_cmd_fixture,
                                                             skyloft_cmd_fixture):
    """The unisolated fallback says so, runs functions without image= on its own Python, and fails
    image= at once with the fix."""
    srv = server_factory(runtime="process")
    script = tmp_path / "process_app.py"
    script.write_text(PROCESS_RUNTIME_APP)
    result = run_cmd_fixture(skyloft_cmd_fixture("run", script), env=srv.env, timeout=60)
    assert result.returncode != 0, result
    assert f"the default image ran on {sys.executable}" in result.output, result
    assert "image build failed" in result.output and "apt-get install -y bubblewrap" in result.output, result
    assert "not isolated" in srv.proc.output()
