"""Container runtimes the worker can start containers with."""

from .base import ContainerConfig, ContainerRuntime, Mount
from .bubblewrap import BubblewrapRuntime
from .process import ProcessRuntime

__all__ = ["BubblewrapRuntime", "ContainerConfig", "ContainerRuntime", "Mount", "ProcessRuntime",
           "detect_runtime"]

_RUNTIMES: dict[str, type[ContainerRuntime]] = {"process": ProcessRuntime, "bubblewrap": BubblewrapRuntime}


def detect_runtime(preferred: str | None = None) -> ContainerRuntime:
    """The runtime asked for by name, else the default.

    The default stays `process` until functions run on images: the
    `bubblewrap` runtime still shows containers the host's files (read-only),
    and code written for the process runtime expects to write them.
    """
    name = preferred or "process"
    if name not in _RUNTIMES:
        raise ValueError(f"unknown container runtime {name!r}; choose one of: {', '.join(_RUNTIMES)}")
    if name == "bubblewrap" and not BubblewrapRuntime.available():
        raise ValueError("the bubblewrap runtime cannot create namespaces on this machine "
                         "(is bubblewrap installed? apt-get install -y bubblewrap)")
    return _RUNTIMES[name]()
