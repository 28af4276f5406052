"""Decorator options: unsupported Modal options fail loudly; serialized functions."""

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


images_app = skyloft.App("image-on-process-runtime")


@images_app.function(image=skyloft.Image.debian_slim())
def on_an_image():
    return "unreachable on the process runtime"


def test_image_needs_the_bubblewrap_runtime(server):
    """The session server runs the `process` runtime: image= fails fast and names the fix."""
    with images_app.run():
        with pytest.raises(exc.ImageBuildError, match="--runtime bubblewrap"):
            on_an_image.remote()
