"""`skyloft run`: import the user's file, find what to run, turn its
parameters into command-line options, and run it inside the app."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import os
import sys
from types import ModuleType
from typing import Any

import click

from ..app import App, LocalEntrypoint, entrypoint_signature
from ..exception import InvalidError
from ..functions import Function
from ..image import Image

_TYPES = {int: click.INT, float: click.FLOAT, str: click.STRING, bool: click.BOOL}


def import_file(path: str) -> ModuleType:
    """Import a script by its file name, as the container will import it."""
    if not os.path.isfile(path):
        raise InvalidError(f"no such file: {path}")
    directory, filename = os.path.split(os.path.abspath(path))
    name, ext = os.path.splitext(filename)
    if ext != ".py":
        raise InvalidError(f"{path} is not a Python file")
    sys.path.insert(0, directory)
    return importlib.import_module(name)


def find_app(module: ModuleType) -> App:
    apps = [value for value in vars(module).values() if isinstance(value, App)]
    if not apps:
        raise InvalidError(f"{module.__file__} defines no skyloft.App")
    unique = list({id(a): a for a in apps}.values())
    if len(unique) > 1:
        raise InvalidError(f"{module.__file__} defines several apps; keep one per file")
    return unique[0]


def find_image(module: ModuleType, name: str | None) -> Image:
    """The image `name` in a module, or its only image, or its app's image."""
    if name:
        found = getattr(module, name, None)
        if not isinstance(found, Image):
            raise InvalidError(f"{module.__file__} has no image named {name!r}")
        return found
    images = list({value.object_id: value for value in vars(module).values() if isinstance(value, Image)}.values())
    if len(images) == 1:
        return images[0]
    apps = [value for value in vars(module).values() if isinstance(value, App) and value.image is not None]
    if not images and len(apps) == 1:
        return apps[0].image
    raise InvalidError(f"say which image to build with FILE::NAME ({module.__file__} defines "
                       f"{len(images)} images)")


def _option(parameter: inspect.Parameter) -> click.Option:
    flag = "--" + parameter.name.replace("_", "-")
    annotation = parameter.annotation
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "str": str, "bool": bool}.get(annotation, str)
    required = parameter.default is inspect.Parameter.empty
    default = None if required else parameter.default
    if annotation is bool or isinstance(default, bool):
        no_flag = "--no-" + parameter.name.replace("_", "-")
        return click.Option([f"{flag}/{no_flag}", parameter.name], default=bool(default), show_default=True)
    kind = _TYPES.get(annotation) or (_TYPES.get(type(default)) if default is not None else click.STRING)
    return click.Option([flag, parameter.name], type=kind, required=required, default=default,
                        show_default=not required)


def parse_arguments(target: LocalEntrypoint | Function, name: str, args: list[str]) -> dict[str, Any]:
    """The entrypoint's keyword arguments from the command line."""
    signature = entrypoint_signature(target)
    unsupported = [p.name for p in signature.parameters.values()
                   if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY)]
    if unsupported:
        raise InvalidError(f"{name} takes *args, **kwargs or positional-only parameters "
                           f"({', '.join(unsupported)}), which cannot become command-line options")
    command = click.Command(name, params=[_option(p) for p in signature.parameters.values()],
                            help=inspect.getdoc(target) or None)
    with command.make_context(f"skyloft run ...::{name}", list(args)) as ctx:
        return dict(ctx.params)


def entry_name(target: LocalEntrypoint | Function) -> str:
    return target.raw_f.__name__ if isinstance(target, LocalEntrypoint) else target.tag


def run_target(target: LocalEntrypoint | Function, kwargs: dict[str, Any]) -> Any:
    if isinstance(target, LocalEntrypoint):
        result = target.raw_f(**kwargs)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result
    if target.is_generator:
        return list(target.remote_gen(**kwargs))
    return target.remote(**kwargs)
