"""Where Unix sockets live: beside the state they belong to, unless that path
is too long for a socket address (108 bytes on Linux), then in a private
directory under the system's temp dir named after the state dir."""

from __future__ import annotations

import hashlib
import os
import tempfile

_MAX_SOCKET_PATH = 100


def socket_dir(state_dir: str, longest_name: int) -> str:
    """A directory in which a socket named up to `longest_name` bytes fits."""
    if len(os.path.abspath(state_dir)) + 1 + longest_name <= _MAX_SOCKET_PATH:
        os.makedirs(state_dir, exist_ok=True)
        return state_dir
    digest = hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:16]
    short = os.path.join(tempfile.gettempdir(), f"skyloft-{os.getuid()}-{digest}")
    os.makedirs(short, mode=0o700, exist_ok=True)
    return short
