"""Container runtimes the worker can start containers with."""

from .base import ContainerConfig, ContainerRuntime, Mount
from .process import ProcessRuntime

__all__ = ["ContainerConfig", "ContainerRuntime", "Mount", "ProcessRuntime", "detect_runtime"]


def detect_runtime(preferred: str | None = None) -> ContainerRuntime:
    """The best runtime this machine supports, or the one asked for by name."""
    runtimes = {"process": ProcessRuntime}
    if preferred:
        if preferred not in runtimes:
            raise ValueError(f"unknown container runtime {preferred!r}; choose one of: {', '.join(runtimes)}")
        return runtimes[preferred]()
    return ProcessRuntime()
