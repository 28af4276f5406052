"""`Image`: a container image defined in code, as Modal's `modal.Image`.

An image is a chain of build steps; its id is a hash of the chain, so an
unchanged definition is never built again. Workers build images step by
step and store every file once in the content-addressed store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .context import is_local
from .exception import InvalidError

if TYPE_CHECKING:
    from ._proto import pb

# The Debian release that ships each Python minor version as `python3`.
DEBIAN_FOR_PYTHON = {"3.11": "bookworm", "3.13": "trixie"}


class Image:
    """Build with `Image.debian_slim()` and chain `.apt_install()`, `.pip_install()`, ... ."""

    def __init__(self, steps: tuple[tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]], ...],
                 local_files: dict[str, str] | None = None) -> None:
        self._steps = steps
        # blob id -> local path of every file the image adds, uploaded by `app.run()`
        self.local_files: dict[str, str] = dict(local_files or {})

    def __repr__(self) -> str:
        return f"Image({self.object_id})"

    @property
    def object_id(self) -> str:
        """`im-` and a hash of the step chain."""
        digest = hashlib.sha256(json.dumps(self._steps).encode()).hexdigest()
        return f"im-{digest[:24]}"

    def _then(self, kind: str, args: tuple[str, ...] = (), env: dict[str, str] | None = None,
              force_build: bool = False) -> Image:
        """The image with one more step; `force_build` makes the step (and all after it) new."""
        if force_build:
            import secrets

            env = {**(env or {}), "SKYLOFT_FORCE_BUILD": secrets.token_hex(8)}
        if self._steps and self._steps[-1][0] == "mount" and kind not in ("mount", "env", "workdir"):
            raise InvalidError("files added with copy=False are mounted when a container starts, so no build "
                               "step can follow them; add them last, or pass copy=True")
        return Image((*self._steps, (kind, tuple(args), tuple(sorted((env or {}).items())))), self.local_files)

    # ---- bases ----

    @staticmethod
    def debian_slim(python_version: str | None = None, force_build: bool = False) -> Image:
        """Debian with Python, from the Debian archive; the caller's Python minor version by default."""
        version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
        if version not in DEBIAN_FOR_PYTHON:
            choices = ", ".join(f"{v} (Debian {d})" for v, d in DEBIAN_FOR_PYTHON.items())
            raise InvalidError(f"no Debian release ships Python {version} as its python3; "
                               f"choose python_version= from: {choices}")
        return Image(())._then("debian", (DEBIAN_FOR_PYTHON[version],), force_build=force_build)

    @staticmethod
    def from_registry(tag: str, secret: Any = None, *, setup_dockerfile_commands: list[str] | None = None,
                      force_build: bool = False, add_python: str | None = None, **kwargs: Any) -> Image:
        """An image pulled from an OCI registry (Docker Hub unless the tag names another).

        Its Python must be the caller's minor version; the worker's `~/.docker/config.json`
        holds any login the registry needs.
        """
        _refuse_unsupported("from_registry", {"secret": secret, "setup_dockerfile_commands": setup_dockerfile_commands,
                                              "add_python": add_python, **kwargs})
        if not isinstance(tag, str) or not tag.strip():
            raise InvalidError(f"from_registry takes an image tag such as 'python:3.11-slim', not {tag!r}")
        return Image(())._then("registry", (tag.strip(),), force_build=force_build)

    @staticmethod
    def from_dockerfile(path: str, *, context_dir: str | None = None, force_build: bool = False,
                        build_args: dict[str, str] | None = None, **kwargs: Any) -> Image:
        """The image a single-stage Dockerfile describes (FROM, RUN, ENV, WORKDIR, COPY, ARG).

        COPY sources are relative to `context_dir`, by default the Dockerfile's directory.
        """
        _refuse_unsupported("from_dockerfile", kwargs)
        if not is_local():  # containers import the definition but never build it
            return Image(())
        from .dockerfile import image_from_dockerfile

        try:
            return image_from_dockerfile(path, context_dir, dict(build_args or {}), force_build)
        except OSError as exc:
            raise InvalidError(f"cannot read {path}: {exc.strerror}") from None

    # ---- steps ----

    def run_commands(self, *commands: str | list[str], force_build: bool = False) -> Image:
        """Run shell commands, each a step of its own."""
        image = self
        for command in _flatten(commands):
            image = image._then("run", (command,), force_build=force_build)
        return image

    def apt_install(self, *packages: str | list[str], force_build: bool = False) -> Image:
        """Install Debian packages."""
        names = _flatten(packages)
        if not names:
            return self
        quoted = " ".join(shlex.quote(name) for name in names)
        return self._then("run", (
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            f"--no-install-recommends {quoted} && rm -rf /var/lib/apt/lists/*",), force_build=force_build)

    def pip_install(self, *packages: str | list[str], force_build: bool = False) -> Image:
        """Install Python packages with uv (one shared download cache per worker)."""
        names = _flatten(packages)
        return self._then("pip", tuple(names), force_build=force_build) if names else self

    uv_pip_install = pip_install

    def pip_install_from_requirements(self, requirements_txt: str, force_build: bool = False) -> Image:
        """Install what a local requirements file lists; its content is part of the image's id."""
        return self._then("pip-requirements", (_read_local(requirements_txt),), force_build=force_build)

    def pip_install_from_pyproject(self, pyproject_toml: str, optional_dependencies: list[str] | None = None,
                                   force_build: bool = False) -> Image:
        """Install the dependencies (and chosen extras) a local pyproject.toml declares."""
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover
            import tomli as tomllib
        project = tomllib.loads(_read_local(pyproject_toml)).get("project", {})
        packages = list(project.get("dependencies", []))
        extras = project.get("optional-dependencies", {})
        for extra in optional_dependencies or []:
            if extra not in extras:
                raise InvalidError(f"{pyproject_toml} has no optional dependencies named {extra!r}")
            packages += extras[extra]
        return self.pip_install(*packages, force_build=force_build)

    def run_function(self, raw_f: Callable[..., Any], *, secrets: Any = (), volumes: Any = None, gpu: Any = None,
                     cpu: float | None = None, memory: int | None = None, timeout: float = 3600,
                     force_build: bool = False, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None,
                     **options: Any) -> Image:
        """Call `raw_f(*args, **kwargs)` inside the image, with its Python; the files it writes become a layer.

        The function travels by value, with the globals it uses; its code and arguments are part of the
        image's id, so changing either builds the step again.
        """
        _refuse_unsupported("run_function", {"secrets": secrets, "volumes": volumes, "gpu": gpu, "cpu": cpu,
                                             "memory": memory, **options})
        if not callable(raw_f) or not hasattr(raw_f, "__code__"):
            raise InvalidError(f"run_function takes a plain Python function, not {raw_f!r} "
                               "(pass the function itself, not one decorated with @app.function)")
        if not is_local():  # containers import the definition but never build it
            return self
        from .serialization import pickle_by_value

        source_file = raw_f.__code__.co_filename  # for tracebacks: by value, the code loses its file name
        payload = pickle_by_value(raw_f, (tuple(args), dict(kwargs or {}), source_file), "run_function")
        return self._then("function", (base64.b64encode(payload).decode(), f"{timeout:g}", raw_f.__qualname__),
                          force_build=force_build)

    def add_local_file(self, local_path: str, remote_path: str, *, copy: bool = False) -> Image:
        """Put a local file into the image: a layer (`copy=True`) or mounted at container start."""
        remote = remote_path.rstrip("/") + "/" + os.path.basename(local_path) if remote_path.endswith("/") \
            else remote_path
        if not remote.startswith("/"):
            raise InvalidError(f"remote_path must be absolute, not {remote_path!r}")
        files = {os.path.basename(remote): local_path} if is_local() else {}
        return self._add_files(os.path.dirname(remote) or "/", files, copy)

    def add_local_dir(self, local_path: str, remote_path: str, *, copy: bool = False,
                      ignore: list[str] | None = None) -> Image:
        """Put a local directory's files into the image (skipping `ignore` glob patterns)."""
        if not remote_path.startswith("/"):
            raise InvalidError(f"remote_path must be absolute, not {remote_path!r}")
        import fnmatch

        files: dict[str, str] = {}
        if is_local():
            if not os.path.isdir(local_path):
                raise InvalidError(f"{local_path} is not a directory")
            for dirpath, dirnames, filenames in os.walk(local_path):
                dirnames[:] = [d for d in dirnames if d != "__pycache__"]
                for name in filenames:
                    full = os.path.join(dirpath, name)
                    rel = os.path.relpath(full, local_path)
                    if not any(fnmatch.fnmatch(rel, pattern) for pattern in ignore or ()):
                        files[rel] = full
        return self._add_files(remote_path, files, copy)

    def add_local_python_source(self, *modules: str, copy: bool = False) -> Image:
        """Put local Python modules or packages, found by import name, on the image's path."""
        import importlib.util

        image = self
        for module in modules:
            spec = importlib.util.find_spec(module) if is_local() else None
            if is_local() and (spec is None or spec.origin is None):
                raise InvalidError(f"no local Python module named {module!r}")
            if spec is not None and spec.submodule_search_locations:
                image = image.add_local_dir(list(spec.submodule_search_locations)[0], f"/root/{module}", copy=copy)
            elif spec is not None:
                image = image.add_local_file(spec.origin, f"/root/{module}.py", copy=copy)
        return image

    def _add_files(self, remote_dir: str, files: dict[str, str], copy: bool) -> Image:
        """A step holding the files' manifest {path under remote_dir: blob id}: content is part of the id."""
        from .cas import file_blob_id

        manifest = {rel: file_blob_id(path) for rel, path in sorted(files.items())}
        image = self._then("copy" if copy else "mount", (remote_dir, json.dumps(manifest, sort_keys=True)))
        image.local_files.update({blob: files[rel] for rel, blob in manifest.items()})
        return image

    @contextmanager
    def imports(self) -> Iterator[None]:
        """Imports of packages that only the image has: on the caller's machine a missing one is fine."""
        try:
            yield
        except ImportError:
            if not is_local():
                raise

    def env(self, vars: dict[str, str]) -> Image:
        """Set environment variables for later steps and for the functions."""
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in vars.items()):
            raise InvalidError("Image.env() takes a dict of strings to strings")
        return self._then("env", (), vars)

    def workdir(self, path: str) -> Image:
        """The working directory of later steps and of the functions."""
        if not path.startswith("/"):
            raise InvalidError(f"Image.workdir() needs an absolute path, not {path!r}")
        return self._then("workdir", (path,))

    def to_proto(self) -> pb.ImageSpec:
        from ._proto import pb

        spec = pb.ImageSpec(image_id=self.object_id)
        for kind, args, env in self._steps:
            spec.steps.add(kind=kind, args=list(args), env=dict(env))
        return spec



# Modal's other builders, not built yet: they say so instead of failing later.
_NOT_YET = {
    "from_aws_ecr", "from_gcp_artifact_registry", "micromamba",
    "poetry_install_from_file", "copy_local_dir", "copy_local_file", "dockerfile_commands",
}


def _not_yet(name: str) -> Any:
    def method(*args: Any, **kwargs: Any) -> Image:
        raise InvalidError(f"Image.{name}() is not supported by skyloft yet")

    method.__name__ = name
    return staticmethod(method)


for _name in _NOT_YET:
    setattr(Image, _name, _not_yet(_name))


# What to do instead, for the options of Modal's builders that skyloft does not take yet.
_INSTEAD = {"secret": "log in on the worker with `docker login` instead", "add_python": "pick an image that has python3"}


def _refuse_unsupported(method: str, options: dict[str, Any]) -> None:
    """Raise for the first option given a value that skyloft does not support yet, naming it."""
    for name, value in options.items():
        if value:
            instead = f"; {_INSTEAD[name]}" if name in _INSTEAD else ""
            raise InvalidError(f"Image.{method}({name}=...) is not supported by skyloft yet{instead}")


def _read_local(path: str) -> str:
    """A local file's text. Containers import the module that defines the image without the
    file, and never build images, so there it reads as empty."""
    if not is_local():
        return ""
    try:
        with open(path) as f:
            return f.read()
    except OSError as exc:
        raise InvalidError(f"cannot read {path}: {exc.strerror}") from None


def _flatten(items: tuple[str | list[str], ...]) -> list[str]:
    flat: list[str] = []
    for item in items:
        flat.extend([item] if isinstance(item, str) else list(item))
    return flat
