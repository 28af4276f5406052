"""The interface between the worker agent and a container runtime.

A runtime turns a `ContainerConfig` into a running process whose stdout and
stderr are pipes. Isolating runtimes (namespaces, overlay root, cgroups) and
the unisolated `process` runtime share this interface; the agent does not
know which one it drives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import IO, Protocol


@dataclass(frozen=True)
class Mount:
    """A host directory made visible inside the container."""

    source: str
    target: str
    read_only: bool = True
    absolute: bool = False   # seen at `target` exactly (files an image adds), not where the runtime puts its own


@dataclass
class ContainerConfig:
    container_id: str
    args: list[str]                     # arguments to the container's Python interpreter
    env: dict[str, str]
    workdir: str                        # host directory that is the container's scratch space
    mounts: list[Mount] = field(default_factory=list)
    cpu: float = 0.0                    # cores; 0 = no limit
    memory_mb: int = 0                  # 0 = no limit
    layers: list[str] = field(default_factory=list)  # image layer dirs, lowest first; empty: no image
    cwd: str = ""                       # working directory inside an image (default: the scratch dir)


class ContainerProcess(Protocol):
    """What the worker needs of a container's process (a `subprocess.Popen` has it)."""

    pid: int
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...


class ContainerRuntime(ABC):
    name: str
    isolated: bool

    @abstractmethod
    def visible_path(self, mount: Mount) -> str:
        """Where the container sees `mount`."""

    @abstractmethod
    def start(self, config: ContainerConfig) -> ContainerProcess:
        """Start the container; its stdout and stderr must be pipes."""

    def describe_exit(self, container_id: str, exit_code: int) -> str | None:
        """Why the container ended, when the runtime knows better than the exit code (e.g. out of memory)."""
        return None

    def cleanup(self, container_id: str) -> None:
        """Release what the runtime held for a container that has exited."""

    def release_cached(self) -> None:
        """Let go of what the runtime keeps between containers and can make again (e.g. before a prune)."""

    def close(self) -> None:
        """Stop whatever the runtime runs besides containers."""
