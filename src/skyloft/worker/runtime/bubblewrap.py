"""The `bubblewrap` runtime: each container in its own PID, mount, IPC and UTS
namespaces (bubblewrap, from the distribution's packages), with limits from a
cgroup of its own.

Its root is its image's layers under a private writable overlay or, for a
function without an image, the host's root mounted read-only; either way
with a fresh /proc, a minimal /dev and private tmpfs /tmp and /run. Its
scratch directory, the shipped code (read-only), the skyloft runtime
(read-only) and its agent socket are mounted under /run/skyloft.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

from .base import ContainerConfig, ContainerRuntime, Mount
from .cgroups import Cgroups, detect

# Namespaces and fresh system directories of every sandbox: containers and image build steps.
SANDBOX_ARGS = ["--die-with-parent", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp", "--tmpfs", "/run"]
_MOUNT_BASE = "/run"
_WORKDIR = "/run/skyloft/work"
_JOIN_CGROUPS = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; exec "$@"'


class BubblewrapRuntime(ContainerRuntime):
    name = "bubblewrap"
    isolated = True

    def __init__(self, cgroups: Cgroups | None = None) -> None:
        binary = shutil.which("bwrap")
        if binary is None:
            raise RuntimeError("bubblewrap is not installed: apt-get install -y bubblewrap")
        self._bwrap = binary
        self._cgroups = cgroups if cgroups is not None else detect()
        self._limits: dict[str, tuple[int, bool]] = {}
        self._roots: dict[str, str] = {}

    @staticmethod
    def available() -> bool:
        """Whether bubblewrap can make namespaces here (it cannot in some unprivileged sandboxes)."""
        binary = shutil.which("bwrap")
        if binary is None:
            return False
        probe = subprocess.run([binary, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                                "--proc", "/proc", "--dev", "/dev", "true"], capture_output=True, timeout=30)
        return probe.returncode == 0

    def visible_path(self, mount: Mount) -> str:
        return mount.target if mount.absolute else _MOUNT_BASE + mount.target

    def start(self, config: ContainerConfig) -> subprocess.Popen[bytes]:
        root = ["--ro-bind", "/", "/"]
        python = sys.executable
        if config.layers:
            root = ["--bind", self._mount_image(config), "/"]
            python = "python3"  # found on the image's PATH
        argv = [self._bwrap, *root, *SANDBOX_ARGS, "--new-session", "--hostname", config.container_id,
                "--bind", config.workdir, _WORKDIR]
        if config.cwd:  # an image's WORKDIR exists once set, as with docker
            argv += ["--dir", config.cwd]
        argv += ["--chdir", config.cwd or _WORKDIR]
        if not config.layers:
            argv += _python_installation_mounts()
        for mount in config.mounts:
            argv += ["--ro-bind" if mount.read_only else "--bind", mount.source, self.visible_path(mount)]
        argv += ["--", python, *config.args]
        join: list[str] = []
        if self._cgroups is not None and (config.cpu or config.memory_mb):
            join = self._cgroups.create(config.container_id, config.cpu, config.memory_mb)
            self._limits[config.container_id] = (config.memory_mb, True)
        argv = ["/bin/sh", "-c", _JOIN_CGROUPS, "sh", str(len(join)), *join, *argv]
        return subprocess.Popen(argv, env={**config.env, "HOME": _WORKDIR}, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def describe_exit(self, container_id: str, exit_code: int) -> str | None:
        memory_mb, limited = self._limits.get(container_id, (0, False))
        if limited and self._cgroups is not None and self._cgroups.oom_killed(container_id):
            return (f"out of memory: the container went over its memory limit of {memory_mb} MiB; "
                    "raise `memory=` on the function")
        if exit_code > 128 and exit_code - 128 in signal.Signals._value2member_map_:
            return f"killed by signal {signal.Signals(exit_code - 128).name}"
        return None

    def _mount_image(self, config: ContainerConfig) -> str:
        """The container's root: its image's layers under a writable layer of its own."""
        base = config.workdir + ".image"
        root = mount_overlay(base, config.layers)
        self._roots[config.container_id] = base
        return root

    def cleanup(self, container_id: str) -> None:
        if self._limits.pop(container_id, None) is not None and self._cgroups is not None:
            self._cgroups.remove(container_id)
        base = self._roots.pop(container_id, None)
        if base is not None:
            unmount_overlay(base)
            shutil.rmtree(base, ignore_errors=True)


def _python_installation_mounts() -> list[str]:
    """Without an image the container runs the worker's Python: keep it visible even where it
    lives under /tmp or /run, which the container gets fresh and empty."""
    argv: list[str] = []
    for path in sorted({sys.prefix, sys.base_prefix, os.path.dirname(os.path.realpath(sys.executable))}):
        if path.startswith(("/tmp/", "/run/")) and os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return argv


class OverlayMountError(OSError):
    """The layers of an image could not be mounted."""


def mount_overlay(base: str, lower_dirs: list[str]) -> str:
    """Mount `lower_dirs` (lowest first) under a writable upper directory, all below `base`;
    returns the merged root."""
    root, upper, work = (os.path.join(base, name) for name in ("root", "upper", "work"))
    for path in (root, upper, work):
        os.makedirs(path, exist_ok=True)
    options = f"lowerdir={':'.join(reversed(lower_dirs))},upperdir={upper},workdir={work}"
    result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, root],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise OverlayMountError(f"cannot mount the image's layers: {result.stderr.strip()}")
    return root


def unmount_overlay(base: str) -> None:
    subprocess.run(["umount", os.path.join(base, "root")], check=False, capture_output=True)
