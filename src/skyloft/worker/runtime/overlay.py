"""Overlay roots: an image's layers, read-only, under a writable directory of one container or step."""

from __future__ import annotations

import os
import subprocess


class OverlayMountError(OSError):
    """The layers of an image could not be mounted."""


def prepare_overlay(base: str, lower_dirs: list[str]) -> tuple[str, str]:
    """Make the directories of an overlay below `base`: returns its mount point and mount options."""
    root, upper, work = (os.path.join(base, name) for name in ("root", "upper", "work"))
    for path in (root, upper, work):
        os.makedirs(path, exist_ok=True)
    return root, f"lowerdir={':'.join(reversed(lower_dirs))},upperdir={upper},workdir={work}"


def mount_overlay(base: str, lower_dirs: list[str]) -> str:
    """Mount `lower_dirs` (lowest first) under a writable upper directory, all below `base`;
    returns the merged root."""
    root, options = prepare_overlay(base, lower_dirs)
    result = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, root],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise OverlayMountError(f"cannot mount the image's layers: {result.stderr.strip()}")
    return root


def unmount_overlay(base: str, lazy: bool = False) -> None:
    """Unmount the overlay below `base`; `lazy` detaches it here while the namespaces using it keep it."""
    subprocess.run(["umount", *(["--lazy"] if lazy else []), os.path.join(base, "root")], check=False,
                   capture_output=True)
