"""Reading a Dockerfile into image steps, for `Image.from_dockerfile`.

One stage, and the instructions that shape a root filesystem: FROM, RUN,
ENV, WORKDIR, COPY and ARG. CMD, ENTRYPOINT, EXPOSE, LABEL and the like
mean nothing to a function and are skipped; anything else is refused by
name, so a build never silently differs from what docker would make.
"""

from __future__ import annotations

import json
import os
import re
import shlex
from typing import TYPE_CHECKING

from .exception import InvalidError

if TYPE_CHECKING:
    from .image import Image

_IGNORED = {"CMD", "ENTRYPOINT", "EXPOSE", "LABEL", "MAINTAINER", "STOPSIGNAL", "HEALTHCHECK", "VOLUME", "SHELL"}


def image_from_dockerfile(path: str, context_dir: str | None, build_args: dict[str, str],
                          force_build: bool) -> Image:
    """The image the Dockerfile at `path` describes; COPY sources are relative to `context_dir`."""
    from .image import Image

    with open(path) as f:
        instructions = list(_instructions(f.read()))
    context = os.path.abspath(context_dir or os.path.dirname(os.path.abspath(path)))
    args = dict(build_args)
    image: Image | None = None
    workdir = "/"
    for number, keyword, rest in instructions:
        where = f"{path}:{number}"
        if keyword == "ARG":
            name, _, default = rest.partition("=")
            args.setdefault(name.strip(), _substitute(default.strip().strip('"'), args))
            continue
        rest = _substitute(rest, args)
        if keyword == "FROM":
            if image is not None:
                raise InvalidError(f"{where}: multi-stage Dockerfiles are not supported by skyloft yet")
            image = Image.from_registry(rest.split()[0], force_build=force_build)
            continue
        if image is None:
            raise InvalidError(f"{where}: {keyword} before FROM")
        if keyword == "RUN":
            image = image.run_commands(_shell(rest))
        elif keyword == "ENV":
            image = image.env(_env_pairs(rest, where))
        elif keyword == "WORKDIR":
            workdir = os.path.join(workdir, rest.strip())
            image = image.workdir(workdir)
        elif keyword == "COPY":
            image = _copy(image, rest, context, workdir, where)
        elif keyword not in _IGNORED:
            raise InvalidError(f"{where}: the {keyword} instruction is not supported by skyloft yet")
    if image is None:
        raise InvalidError(f"{path} has no FROM instruction")
    return image


def _instructions(text: str):
    """(line number, KEYWORD, arguments) with continuation lines joined and comments dropped."""
    pending, start = "", 0
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("#") or not (pending or stripped):
            continue
        start = start or number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, rest = (pending + stripped).partition(" ")
        yield start, keyword.upper(), rest.strip()
        pending, start = "", 0


def _substitute(value: str, args: dict[str, str]) -> str:
    """`$NAME` and `${NAME}` replaced by build arguments (others are left for the shell)."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m.group(1) or m.group(2), m.group(0)), value)


def _shell(rest: str) -> str:
    """RUN's shell form as is; its exec form (a JSON list) as a quoted command line."""
    if rest.startswith("["):
        try:
            return shlex.join(json.loads(rest))
        except ValueError:
            pass
    return rest


def _env_pairs(rest: str, where: str) -> dict[str, str]:
    words = shlex.split(rest)
    if words and "=" not in words[0]:  # the legacy `ENV NAME value with spaces`
        return {words[0]: rest.split(None, 1)[1] if len(words) > 1 else ""}
    pairs = {}
    for word in words:
        name, sep, value = word.partition("=")
        if not sep:
            raise InvalidError(f"{where}: ENV expects NAME=value, not {word!r}")
        pairs[name] = value
    return pairs


def _copy(image: Image, rest: str, context: str, workdir: str, where: str) -> Image:
    words = shlex.split(rest)
    if any(word.startswith("--") for word in words):
        raise InvalidError(f"{where}: COPY options ({rest}) are not supported by skyloft yet")
    if len(words) < 2:
        raise InvalidError(f"{where}: COPY needs a source and a destination")
    *sources, dest = words
    into_directory = dest.endswith("/") or len(sources) > 1
    dest = os.path.normpath(os.path.join(workdir, dest))
    for source in sources:
        local = os.path.normpath(os.path.join(context, source))
        if not (local + "/").startswith(context + "/"):
            raise InvalidError(f"{where}: COPY source {source!r} is outside the build context {context}")
        if os.path.isdir(local):
            image = image.add_local_dir(local, dest, copy=True)
        elif os.path.isfile(local):
            target = os.path.join(dest, os.path.basename(local)) if into_directory else dest
            image = image.add_local_file(local, target, copy=True)
        else:
            raise InvalidError(f"{where}: COPY source {source!r} does not exist in {context}")
    return image
