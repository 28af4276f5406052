"""Client configuration: environment variables first, then `$SKYLOFT_HOME/config.toml`.

| setting     | environment           | config.toml  | default                   |
|-------------|-----------------------|--------------|---------------------------|
| state dir   | SKYLOFT_HOME          |              | ~/.skyloft                |
| server      | SKYLOFT_SERVER_URL    | server_url   | the local daemon          |
| token       | SKYLOFT_TOKEN         | token        | $SKYLOFT_HOME/token       |
| image cache | SKYLOFT_IMAGE_CACHE   |              | ~/.cache/skyloft/images   |
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..exception import InvalidError


def default_home() -> str:
    return os.environ.get("SKYLOFT_HOME") or os.path.join(os.path.expanduser("~"), ".skyloft")


def image_cache_dir() -> str:
    """Where workers on this machine keep built images, shared by every SKYLOFT_HOME (like uv's cache)."""
    if os.environ.get("SKYLOFT_IMAGE_CACHE"):
        return os.environ["SKYLOFT_IMAGE_CACHE"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "skyloft", "images")


@dataclass
class Config:
    home: str
    server_url: str | None
    token: str | None

    @property
    def token_path(self) -> str:
        return os.path.join(self.home, "token")


def load_config() -> Config:
    home = default_home()
    file_settings = _read_file(os.path.join(home, "config.toml"))
    server_url = os.environ.get("SKYLOFT_SERVER_URL") or file_settings.get("server_url") or None
    token = os.environ.get("SKYLOFT_TOKEN") or file_settings.get("token") or None
    return Config(home=home, server_url=server_url, token=token)


def _read_file(path: str) -> dict:
    if not os.path.exists(path):
        return {}
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidError(f"{path} is not valid TOML: {exc}") from None


def normalize_url(url: str) -> str:
    """Accept `host:port`, `grpc://host:port` or `unix:/path` and return a gRPC target."""
    for scheme in ("grpc://", "http://"):
        if url.startswith(scheme):
            return url[len(scheme):]
    return url
