"""`Function`: what `@app.function()` makes of a Python function."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._aio import twin, twin_gen
from .exception import InvalidError
from .function_call import FunctionCall
from .image import Image
from .retries import Retries
from .serialization import serialize

if TYPE_CHECKING:
    from . import _invocation
    from ._proto import pb
    from .app import App

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_SCALEDOWN_WINDOW_S = 60.0


@dataclass
class FunctionOptions:
    """The `@app.function(...)` options skyloft implements."""

    timeout: float = DEFAULT_TIMEOUT_S
    retries: Retries | None = None
    min_containers: int = 0
    max_containers: int | None = None
    buffer_containers: int = 0
    scaledown_window: float = DEFAULT_SCALEDOWN_WINDOW_S
    serialized: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cpu: float | None = None
    memory: int | None = None
    image: Image | None = None

    def validate(self, name: str) -> None:
        if self.timeout <= 0 or self.timeout > 24 * 3600:
            raise InvalidError(f"{name}: timeout must be between 0 and 86400 seconds, not {self.timeout}")
        if self.min_containers < 0 or self.buffer_containers < 0:
            raise InvalidError(f"{name}: min_containers and buffer_containers cannot be negative")
        if self.max_containers is not None and self.max_containers < 1:
            raise InvalidError(f"{name}: max_containers must be at least 1")
        if self.max_containers is not None and self.min_containers > self.max_containers:
            raise InvalidError(f"{name}: min_containers ({self.min_containers}) is above "
                               f"max_containers ({self.max_containers})")
        if self.scaledown_window < 0:
            raise InvalidError(f"{name}: scaledown_window cannot be negative")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in self.env.items()):
            raise InvalidError(f"{name}: env must map strings to strings")


class Function:
    """A function that runs in a container: call it with `.remote()`, `.map()`, `.spawn()`."""

    def __init__(self, raw_f: Callable[..., Any], app: App, tag: str, options: FunctionOptions,
                 is_generator: bool) -> None:
        self._raw_f = raw_f
        self._app = app
        self.tag = tag
        self._options = options
        self.is_generator = is_generator
        self.object_id: str | None = None
        self.__doc__ = raw_f.__doc__
        self.__wrapped__ = raw_f

    def __repr__(self) -> str:
        return f"Function({self.tag!r})"

    @property
    def image(self) -> Image | None:
        return self._options.image

    def get_raw_f(self) -> Callable[..., Any]:
        return self._raw_f

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Calling a Function directly runs it here, like `.local()`."""
        return self._raw_f(*args, **kwargs)

    def local(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in this process."""
        return self._raw_f(*args, **kwargs)

    # ---- definition sent to the server ----

    def spec(self, app_id: str, code_manifest_id: str) -> pb.FunctionSpec:
        from ._proto import pb

        options = self._options
        module, qualname = _import_path(self._raw_f)
        spec = pb.FunctionSpec(
            app_id=app_id, name=self.tag, module=module, qualname=qualname,
            code_manifest_id=code_manifest_id, is_generator=self.is_generator, timeout=options.timeout,
            min_containers=options.min_containers, max_containers=options.max_containers or 0,
            buffer_containers=options.buffer_containers, scaledown_window=options.scaledown_window,
            env=options.env, cpu=options.cpu or 0.0, memory_mb=options.memory or 0,
        )
        if options.retries is not None:
            spec.retries.CopyFrom(options.retries.to_proto())
        if options.image is not None:
            spec.image.CopyFrom(options.image.to_proto())
        else:
            spec.image.CopyFrom(Image.debian_slim().to_proto())
            spec.image.implicit = True
        if options.serialized:
            spec.serialized_function.data = serialize(self._raw_f)
        elif "<locals>" in qualname:
            raise InvalidError(f"function {self.tag!r} is defined inside another function; move it to the "
                               "module's top level, or pass serialized=True to @app.function()")
        return spec

    def _target(self) -> _invocation.Target:
        from . import _invocation

        if self.object_id is None:
            raise InvalidError(f"function {self.tag!r} is not running yet: call it inside `with app.run():` "
                               "or from a @app.local_entrypoint() started by `skyloft run`")
        return _invocation.Target(self._app._client, self.object_id, self._app._follower, self.tag,
                                  self._app._local_files)

    def _no_generator(self, method: str) -> None:
        if self.is_generator:
            raise InvalidError(f"{self.tag!r} is a generator function: use .remote_gen() instead of .{method}()")

    # ---- calling ----

    @twin
    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Run the function in a container and return its result."""
        self._no_generator("remote")
        return _calls().call_one(self._target(), args, kwargs)

    call = remote

    @twin_gen
    def remote_gen(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Run a generator function in a container; iterate over what it yields."""
        if not self.is_generator:
            raise InvalidError(f"{self.tag!r} is not a generator function: use .remote()")
        yield from _calls().stream_generator(self._target(), args, kwargs)

    @twin_gen
    def map(self, *input_iterators: Iterable[Any], kwargs: dict[str, Any] | None = None,
            order_outputs: bool = True, return_exceptions: bool = False) -> Iterator[Any]:
        """Run the function over the zipped iterables in parallel containers."""
        self._no_generator("map")
        if not input_iterators:
            raise InvalidError("map() needs at least one iterable of inputs")
        yield from _calls().map_outputs(self._target(), zip(*input_iterators), kwargs or {},
                                           order_outputs, return_exceptions)

    @twin_gen
    def starmap(self, input_iterator: Iterable[Iterable[Any]], kwargs: dict[str, Any] | None = None,
                order_outputs: bool = True, return_exceptions: bool = False) -> Iterator[Any]:
        """Like `map`, with each item unpacked as the positional arguments."""
        self._no_generator("starmap")
        yield from _calls().map_outputs(self._target(), (tuple(a) for a in input_iterator), kwargs or {},
                                           order_outputs, return_exceptions)

    @twin
    def for_each(self, *input_iterators: Iterable[Any], kwargs: dict[str, Any] | None = None,
                 ignore_exceptions: bool = False) -> None:
        """Run the function over the inputs for its effects; results are discarded."""
        for _ in self.map(*input_iterators, kwargs=kwargs, order_outputs=False,
                          return_exceptions=ignore_exceptions):
            pass

    @twin
    def spawn(self, *args: Any, **kwargs: Any) -> FunctionCall:
        """Start the function and return at once; the result comes from `FunctionCall.get()`."""
        self._no_generator("spawn")
        target = self._target()
        return FunctionCall(_calls().spawn_one(target, args, kwargs), target.client, target.follower,
                            target.local_files)

    @twin
    def spawn_map(self, *input_iterators: Iterable[Any], kwargs: dict[str, Any] | None = None) -> FunctionCall:
        """Queue the function over the inputs and return once they are all accepted."""
        self._no_generator("spawn_map")
        target = self._target()
        started = _calls().start_map(target, zip(*input_iterators), kwargs or {})
        if started is None:
            raise InvalidError("spawn_map() needs at least one input")
        call_id, feeder = started
        feeder.join()
        if feeder.error is not None:
            raise feeder.error
        return FunctionCall(call_id, target.client, target.follower, target.local_files)


def _calls() -> Any:
    """The wire-level calling code, imported on first call: containers never need it."""
    from . import _invocation

    return _invocation


def _import_path(raw_f: Callable[..., Any]) -> tuple[str, str]:
    """(module, qualname) by which the container imports the function."""
    module = raw_f.__module__
    if module == "__main__":
        main_file = getattr(sys.modules["__main__"], "__file__", None)
        if not main_file:
            return "__main__", raw_f.__qualname__
        module = os.path.splitext(os.path.basename(main_file))[0]
    return module, raw_f.__qualname__


_CO_GENERATOR = 0x20


def is_generator_function(raw_f: Callable[..., Any]) -> bool:
    """Like `inspect.isgeneratorfunction`, without importing `inspect` (slow) in containers."""
    code = getattr(raw_f, "__code__", None)
    return bool(code is not None and code.co_flags & _CO_GENERATOR)
