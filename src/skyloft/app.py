"""`App`: a named group of functions, run ephemerally with `app.run()`."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .context import is_local
from .exception import Error, InvalidError
from .functions import FunctionOptions, Function, is_generator_function
from .image import Image
from .retries import Retries

if TYPE_CHECKING:
    import inspect

_HEARTBEAT_S = 10.0

# Modal's @app.function options that skyloft does not implement yet, with the
# value that means "not used". Passing anything else is an error, never ignored.
_NOT_YET: dict[str, Any] = {
    "secrets": (), "gpu": None, "volumes": {}, "network_file_systems": {},
    "schedule": None, "ephemeral_disk": None, "proxy": None, "cloud": None, "region": None,
    "nonpreemptible": False, "enable_memory_snapshot": False, "block_network": False,
    "restrict_modal_access": False, "max_inputs": None, "single_use_containers": False,
    "i6pn": None, "startup_timeout": None, "include_source": None, "experimental_options": None,
    "rdma": None, "allow_concurrent_inputs": None, "mounts": (), "checkpointing_enabled": None,
}


def _check_image(image: Any) -> Image | None:
    if image is not None and not isinstance(image, Image):
        raise InvalidError(f"image= takes a skyloft.Image, not {type(image).__name__}")
    return image


def _reject_unbuilt(where: str, given: dict[str, Any]) -> None:
    for option, unused in _NOT_YET.items():
        value = given.get(option, unused)
        if value is None or value == unused or (isinstance(value, (list, tuple, dict)) and not value):
            continue
        raise InvalidError(f"{where}({option}=...) is not supported by skyloft yet; remove the option "
                           "(it would otherwise be silently ignored)")


class LocalEntrypoint:
    """A function run on the caller's machine by `skyloft run`, inside the app."""

    def __init__(self, raw_f: Callable[..., Any], app: App) -> None:
        self.raw_f = raw_f
        self.app = app
        self.__doc__ = raw_f.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.raw_f(*args, **kwargs)


class App:
    """Functions that are deployed and run together; `Stub` is the old name."""

    def __init__(self, name: str | None = None, *, image: Image | None = None, secrets: Any = (),
                 volumes: Any = None, include_source: bool | None = None) -> None:
        _reject_unbuilt("App", {"secrets": secrets, "volumes": volumes or {}, "include_source": include_source})
        self.image = _check_image(image)
        self.name = name
        self.app_id: str | None = None
        self.registered_functions: dict[str, Function] = {}
        self.registered_entrypoints: dict[str, LocalEntrypoint] = {}
        self._client: Any = None
        self._follower: Any = None
        self._local_files: dict[str, str] = {}
        self._running = False

    def __repr__(self) -> str:
        return f"App({self.name!r})"

    @property
    def description(self) -> str:
        return self.name or "ephemeral app"

    # ---- decorators ----

    def function(self, _warn_parentheses_missing: Any = None, *, timeout: float = 300.0,
                 retries: int | Retries | None = None, min_containers: int = 0,
                 max_containers: int | None = None, buffer_containers: int = 0,
                 scaledown_window: float = 60.0, serialized: bool = False, name: str | None = None,
                 env: dict[str, str] | None = None, is_generator: bool | None = None,
                 cpu: float | None = None, memory: int | None = None, image: Image | None = None,
                 keep_warm: int | None = None, concurrency_limit: int | None = None,
                 container_idle_timeout: float | None = None, **modal_options: Any) -> Callable[..., Function]:
        """Turn a function into a `Function` that runs in containers.

        `keep_warm`, `concurrency_limit` and `container_idle_timeout` are Modal's
        older names for `min_containers`, `max_containers` and `scaledown_window`.
        """
        if _warn_parentheses_missing is not None:
            raise InvalidError("use @app.function() with parentheses")
        unknown = set(modal_options) - set(_NOT_YET)
        if unknown:
            raise InvalidError(f"@app.function() got unknown option(s): {', '.join(sorted(unknown))}")
        _reject_unbuilt("@app.function", modal_options)
        options = FunctionOptions(
            timeout=float(timeout), retries=Retries.of(retries),
            min_containers=keep_warm if keep_warm is not None else min_containers,
            max_containers=concurrency_limit if concurrency_limit is not None else max_containers,
            buffer_containers=buffer_containers,
            scaledown_window=float(container_idle_timeout if container_idle_timeout is not None
                                   else scaledown_window),
            serialized=serialized, env=dict(env or {}), cpu=cpu, memory=memory,
            image=_check_image(image) or self.image)

        def wrap(raw_f: Callable[..., Any]) -> Function:
            if isinstance(raw_f, Function):
                raise InvalidError(f"{raw_f.tag!r} is decorated with @app.function() twice")
            if not callable(raw_f):
                raise InvalidError("@app.function() decorates a function")
            tag = name or raw_f.__qualname__
            options.validate(tag)
            generator = is_generator_function(raw_f) if is_generator is None else is_generator
            if tag in self.registered_functions:
                raise InvalidError(f"app {self.name!r} already has a function named {tag!r}")
            function = Function(raw_f, self, tag, options, generator)
            self.registered_functions[tag] = function
            return function

        return wrap

    def local_entrypoint(self, _warn_parentheses_missing: Any = None, *,
                         name: str | None = None) -> Callable[[Callable[..., Any]], LocalEntrypoint]:
        """Mark a function to run locally by `skyloft run`; its parameters become CLI options."""
        if _warn_parentheses_missing is not None:
            raise InvalidError("use @app.local_entrypoint() with parentheses")

        def wrap(raw_f: Callable[..., Any]) -> LocalEntrypoint:
            entrypoint = LocalEntrypoint(raw_f, self)
            self.registered_entrypoints[name or raw_f.__name__] = entrypoint
            return entrypoint

        return wrap

    # ---- running ----

    @contextmanager
    def run(self, *, detach: bool = False, show_progress: bool | None = None,
            interactive: bool = False, client: Any = None) -> Iterator[App]:
        """Run the app ephemerally: its functions can be called until the block ends."""
        if not is_local():
            raise InvalidError("app.run() cannot be used inside a container")
        if self._running:
            raise InvalidError(f"app {self.description!r} is running already")
        from ._client.code_sync import main_module_entry, sync_code
        from ._client.connection import get_client
        from ._output import LogFollower
        from ._proto import pb

        self._client = client or get_client()
        self.app_id = self._client.call("AppCreate", pb.AppCreateRequest(name=self.name or "ephemeral")).app_id
        self._running = True
        stop_heartbeat = threading.Event()
        try:
            extra = []
            main_file = getattr(sys.modules.get("__main__"), "__file__", None)
            if main_file and any(f.get_raw_f().__module__ == "__main__" for f in self.registered_functions.values()):
                extra.append(main_module_entry(main_file))
            manifest_id, self._local_files = sync_code(self._client, extra, also=self._image_files())
            for function in self.registered_functions.values():
                response = self._client.call("FunctionCreate", pb.FunctionCreateRequest(
                    spec=function.spec(self.app_id, manifest_id)))
                function.object_id = response.function_id
            self._follower = LogFollower(self._client, self.app_id)
            self._follower.start()
            threading.Thread(target=self._heartbeat, args=(stop_heartbeat,), daemon=True).start()
            yield self
        finally:
            stop_heartbeat.set()
            self._stop(detach)

    def _image_files(self) -> dict[str, str | bytes]:
        """The local files that the functions' images add, by blob id."""
        files: dict[str, str | bytes] = {}
        for function in self.registered_functions.values():
            if function.image is not None:
                files.update(function.image.local_files)
        return files

    def _heartbeat(self, stop: threading.Event) -> None:
        from ._proto import pb

        while not stop.wait(_HEARTBEAT_S):
            try:
                self._client.call("AppHeartbeat", pb.AppRef(app_id=self.app_id), timeout=5)
            except Error:
                continue

    def _stop(self, detach: bool) -> None:
        from ._proto import pb

        try:
            self._client.call("AppStop", pb.AppStopRequest(app_id=self.app_id, detach=detach), retry=True)
        except Error as exc:
            print(f"skyloft: could not stop app {self.app_id}: {exc}", file=sys.stderr)
        if self._follower is not None:
            self._follower.stop(drain_s=0.5 if not detach else 0.0)
        for function in self.registered_functions.values():
            function.object_id = None
        self._follower = None
        self._running = False


Stub = App


def find_entrypoint(app: App, name: str | None) -> LocalEntrypoint | Function:
    """What `skyloft run FILE[::NAME]` runs in `app`."""
    if name:
        if name in app.registered_entrypoints:
            return app.registered_entrypoints[name]
        if name in app.registered_functions:
            return app.registered_functions[name]
        choices = sorted(app.registered_entrypoints) + sorted(app.registered_functions)
        raise InvalidError(f"no local entrypoint or function named {name!r}; choose one of: {', '.join(choices)}")
    if len(app.registered_entrypoints) == 1:
        return next(iter(app.registered_entrypoints.values()))
    if not app.registered_entrypoints and len(app.registered_functions) == 1:
        return next(iter(app.registered_functions.values()))
    choices = sorted(app.registered_entrypoints) or sorted(app.registered_functions)
    raise InvalidError(f"say which to run with FILE::NAME; choose one of: {', '.join(choices)}")


def entrypoint_signature(target: LocalEntrypoint | Function) -> inspect.Signature:
    import inspect

    raw = target.raw_f if isinstance(target, LocalEntrypoint) else target.get_raw_f()
    return inspect.signature(raw)
