"""The `process` runtime: each container is a plain subprocess.

It has its own environment, working directory and process group, but no
isolation: it sees the host's files and processes. It is the fallback for
machines without namespaces, and it says so when chosen.
"""

from __future__ import annotations

import os
import subprocess
import sys

from .base import ContainerConfig, ContainerRuntime, Mount


class ProcessRuntime(ContainerRuntime):
    name = "process"
    isolated = False

    def visible_path(self, mount: Mount) -> str:
        return mount.source

    def start(self, config: ContainerConfig) -> subprocess.Popen[bytes]:
        os.makedirs(config.workdir, exist_ok=True)
        return subprocess.Popen(
            [sys.executable, *config.args],
            cwd=config.workdir,
            env=config.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
