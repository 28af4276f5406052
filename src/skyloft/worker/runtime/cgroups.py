"""Resource limits for containers: one cgroup per container.

Works on cgroup v2 (unified) hosts and on v1 or hybrid hosts, where the
memory and cpu controllers live in v1 hierarchies. Groups are made below the
worker's own cgroup, so limits delegated to the worker still hold.
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod

_ROOT = "/sys/fs/cgroup"
_PERIOD_US = 100_000


class Cgroups(ABC):
    """Creates, inspects and removes the cgroups of containers."""

    version: int

    @abstractmethod
    def create(self, name: str, cpu: float, memory_mb: int) -> list[str]:
        """Make the group with its limits; returns the files a process writes its pid to, to join it."""

    @abstractmethod
    def oom_killed(self, name: str) -> bool:
        """Whether the kernel killed a process of the group for going over its memory limit."""

    @abstractmethod
    def remove(self, name: str) -> None:
        """Remove the group once its processes are gone."""


def _own_path(controller: str) -> str:
    """This process's cgroup path in the hierarchy of `controller` ("" for v2)."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                return path
    return "/"


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


class CgroupsV2(Cgroups):
    version = 2

    def __init__(self, mount: str) -> None:
        self._base = os.path.join(mount, _own_path("").lstrip("/"), "skyloft")

    def _group(self, name: str) -> str:
        return os.path.join(self._base, name)

    def create(self, name: str, cpu: float, memory_mb: int) -> list[str]:
        os.makedirs(self._base, exist_ok=True)
        _write(os.path.join(self._base, "cgroup.subtree_control"), "+memory +cpu")
        group = self._group(name)
        os.makedirs(group, exist_ok=True)
        if memory_mb:
            _write(os.path.join(group, "memory.max"), str(memory_mb << 20))
            _write(os.path.join(group, "memory.swap.max"), "0")
        if cpu:
            _write(os.path.join(group, "cpu.max"), f"{int(cpu * _PERIOD_US)} {_PERIOD_US}")
        return [os.path.join(group, "cgroup.procs")]

    def oom_killed(self, name: str) -> bool:
        return _counter(os.path.join(self._group(name), "memory.events"), "oom_kill") > 0

    def remove(self, name: str) -> None:
        _rmdir(self._group(name))


class CgroupsV1(Cgroups):
    version = 1

    def __init__(self) -> None:
        self._memory = os.path.join(_ROOT, "memory", _own_path("memory").lstrip("/"), "skyloft")
        self._cpu = os.path.join(_ROOT, "cpu", _own_path("cpu").lstrip("/"), "skyloft")

    def create(self, name: str, cpu: float, memory_mb: int) -> list[str]:
        memory = os.path.join(self._memory, name)
        cpu_group = os.path.join(self._cpu, name)
        os.makedirs(memory, exist_ok=True)
        os.makedirs(cpu_group, exist_ok=True)
        if memory_mb:
            _write(os.path.join(memory, "memory.limit_in_bytes"), str(memory_mb << 20))
            swap_limit = os.path.join(memory, "memory.memsw.limit_in_bytes")
            if os.path.exists(swap_limit):
                _write(swap_limit, str(memory_mb << 20))
        if cpu:
            _write(os.path.join(cpu_group, "cpu.cfs_period_us"), str(_PERIOD_US))
            _write(os.path.join(cpu_group, "cpu.cfs_quota_us"), str(int(cpu * _PERIOD_US)))
        return [os.path.join(memory, "cgroup.procs"), os.path.join(cpu_group, "cgroup.procs")]

    def oom_killed(self, name: str) -> bool:
        return _counter(os.path.join(self._memory, name, "memory.oom_control"), "oom_kill") > 0

    def remove(self, name: str) -> None:
        _rmdir(os.path.join(self._memory, name))
        _rmdir(os.path.join(self._cpu, name))


def _counter(path: str, key: str) -> int:
    try:
        with open(path) as f:
            for line in f:
                name, _, value = line.partition(" ")
                if name == key:
                    return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def detect() -> Cgroups | None:
    """The cgroup version that has the memory and cpu controllers here, if we may use it."""
    unified = _ROOT if os.path.exists(os.path.join(_ROOT, "cgroup.controllers")) else os.path.join(_ROOT, "unified")
    try:
        with open(os.path.join(unified, "cgroup.controllers")) as f:
            controllers = f.read().split()
    except OSError:
        controllers = []
    if {"memory", "cpu"} <= set(controllers) and os.access(unified, os.W_OK):
        return CgroupsV2(unified)
    v1 = [os.path.join(_ROOT, c) for c in ("memory", "cpu")]
    if all(os.path.isdir(p) and os.access(p, os.W_OK) for p in v1):
        return CgroupsV1()
    return None
