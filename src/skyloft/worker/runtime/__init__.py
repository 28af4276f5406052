"""Container runtimes the worker can start containers with."""

from .base import ContainerConfig, ContainerRuntime, Mount
from .bubblewrap import BubblewrapRuntime
from .process import ProcessRuntime

__all__ = ["NOT_ISOLATED", "BubblewrapRuntime", "ContainerConfig", "ContainerRuntime", "Mount", "ProcessRuntime",
           "detect_runtime"]

_RUNTIMES: dict[str, type[ContainerRuntime]] = {"process": ProcessRuntime, "bubblewrap": BubblewrapRuntime}


NOT_ISOLATED = ("containers run with the 'process' runtime: they are not isolated from this machine and "
                "run on its Python, not their image; install bubblewrap for isolation: apt-get install -y bubblewrap")


def detect_runtime(preferred: str | None = None) -> ContainerRuntime:
    """The runtime asked for by name, else the best one this machine can run.

    `bubblewrap` isolates; `process` is the last fallback, for machines that
    cannot create namespaces, and the worker says so when it starts.
    """
    if preferred is None:  # probing bubblewrap starts a sandbox: once is enough
        return BubblewrapRuntime() if BubblewrapRuntime.available() else ProcessRuntime()
    name = preferred
    if name not in _RUNTIMES:
        raise ValueError(f"unknown container runtime {name!r}; choose one of: {', '.join(_RUNTIMES)}")
    if name == "bubblewrap" and not BubblewrapRuntime.available():
        raise ValueError("the bubblewrap runtime cannot create namespaces on this machine "
                         "(is bubblewrap installed? apt-get install -y bubblewrap)")
    return _RUNTIMES[name]()
