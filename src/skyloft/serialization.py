"""Pickling of arguments, results and exceptions.

User values travel as opaque cloudpickle bytes: only the caller and the
container ever unpickle them, never the control plane or the worker.
"""

from __future__ import annotations

import os
import pickle
from types import TracebackType
from typing import Any, Callable

from .exception import DeserializationError, RemoteError, SerializationError

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


_PLAIN_SCALARS = (int, float, str, bytes, bool, type(None))
_PLAIN_LIMIT = 64


def _is_plain(obj: Any, budget: list[int]) -> bool:
    """True for small values made only of builtin scalars and containers.

    Those pickle the same by reference as by value, so the much faster
    standard pickler gives bytes that unpickle anywhere.
    """
    budget[0] -= 1
    if budget[0] < 0:
        return False
    kind = type(obj)
    if kind in _PLAIN_SCALARS:
        return True
    if kind is tuple or kind is list:
        return all(_is_plain(item, budget) for item in obj)
    if kind is dict:
        return all(type(k) is str and _is_plain(v, budget) for k, v in obj.items())
    return False


def serialize(obj: Any) -> bytes:
    """Pickle `obj`, raising a SerializationError that names the value's type."""
    if _is_plain(obj, [_PLAIN_LIMIT]):
        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    import cloudpickle

    try:
        return cloudpickle.dumps(obj)
    except Exception as exc:
        raise SerializationError(
            f"cannot pickle a value of type {type(obj).__name__!r} to send it: {exc}. "
            "Pass plain data (numbers, strings, lists, dicts, dataclasses, arrays) instead."
        ) from exc


def pickle_by_value(function: Callable[..., Any], extra: tuple[Any, ...], what: str) -> bytes:
    """Pickle (function, *extra) with the function's own module by value, for a Python that has
    only skyloft's runtime and not the caller's files. The bytes are the same for the same code
    and values, so they can be part of an id."""
    import sys

    import cloudpickle

    module = sys.modules.get(function.__module__)
    by_value = module is not None and function.__module__ not in ("__main__", "builtins") \
        and not function.__module__.startswith("skyloft") \
        and function.__module__ not in cloudpickle.list_registry_pickle_by_value()
    if by_value:
        cloudpickle.register_pickle_by_value(module)
    try:
        return cloudpickle.dumps((function, *extra))
    except Exception as exc:
        raise SerializationError(f"cannot pickle {function.__qualname__} and its arguments for {what}: {exc}; "
                                 "it may use only values that pickle (no open files, locks or clients)") from exc
    finally:
        if by_value:
            cloudpickle.unregister_pickle_by_value(module)


def deserialize(data: bytes) -> Any:
    """Unpickle bytes produced by `serialize` on the other side."""
    try:
        return pickle.loads(data)
    except Exception as exc:
        raise DeserializationError(
            f"cannot unpickle a value sent by the function: {type(exc).__name__}: {exc}. "
            "Is the package that defines it installed here too?"
        ) from exc


def user_traceback(tb: TracebackType | None) -> TracebackType | None:
    """Drop skyloft's own leading frames so a traceback starts at the user's code."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        tb = tb.tb_next
    return tb


def map_traceback_files(tb: TracebackType | None, rename: Callable[[str], str]) -> TracebackType | None:
    """A copy of `tb` whose frames' file names went through `rename`.

    Used to show the caller its own files rather than the container's copies.
    """
    if tb is None:
        return None
    from tblib import Traceback

    data = Traceback(tb).to_dict()
    node = data
    while node is not None:
        code = node["tb_frame"]["f_code"]
        code["co_filename"] = rename(code["co_filename"])
        node = node["tb_next"]
    return Traceback.from_dict(data).as_traceback()


def serialize_exception(exc: BaseException, code_root: str = "") -> tuple[bytes, str, str]:
    """Return (pickled exception with its traceback, one-line message, traceback text).

    Frames in files under `code_root` (the shipped code) are named relative
    to it, so the caller can point them at its own copies.
    """
    import traceback

    import cloudpickle
    from tblib import pickling_support

    tb = user_traceback(exc.__traceback__)
    if code_root:
        prefix = code_root.rstrip("/") + "/"
        tb = map_traceback_files(tb, lambda name: name[len(prefix):] if name.startswith(prefix) else name)
    exc = exc.with_traceback(tb)
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    message = f"{type(exc).__name__}: {exc}"
    pickling_support.install(exc)
    try:
        data = cloudpickle.dumps(exc)
        cloudpickle.loads(data)
    except Exception:
        stand_in = RemoteError(f"{message}\n\nRemote traceback:\n{text}")
        data = cloudpickle.dumps(stand_in)
    return data, message, text


def deserialize_exception(data: bytes, message: str, traceback_text: str,
                          local_files: dict[str, str] | None = None) -> BaseException:
    """Re-create the remote exception, with its traceback, for raising in the caller.

    `local_files` maps shipped relative paths to the caller's files, so the
    traceback shows (and quotes) the caller's source.
    """
    from tblib import pickling_support

    pickling_support.install()
    try:
        exc = pickle.loads(data)
    except Exception:
        return RemoteError(f"{message}\n\nRemote traceback:\n{traceback_text}")
    if not isinstance(exc, BaseException):
        return RemoteError(message)
    if local_files:
        exc.__traceback__ = map_traceback_files(exc.__traceback__, lambda name: local_files.get(name, name))
    return exc


def format_user_traceback(exc: BaseException) -> str:
    """The traceback of `exc` without skyloft's own frames, for the CLI to print."""
    import traceback

    report = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    seen = set()
    node: traceback.TracebackException | None = report
    while node is not None and id(node) not in seen:
        seen.add(id(node))
        frames = [f for f in node.stack if not f.filename.startswith(_PACKAGE_DIR)]
        node.stack = traceback.StackSummary.from_list(frames)
        node = node.__cause__ or node.__context__
    return "".join(report.format())
