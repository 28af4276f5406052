"""Exceptions raised by skyloft, named as in Modal's `modal.exception`."""

from __future__ import annotations


class Error(Exception):
    """Base class of every skyloft error."""


class InvalidError(Error):
    """An argument or definition is wrong; the message names the fix."""


class NotFoundError(Error):
    """An object (app, function call, container, blob) does not exist."""


class AlreadyExistsError(Error):
    """An object with that name exists already."""


class AuthError(Error):
    """The server refused the token."""


class ConnectionError(Error):
    """The server could not be reached."""


class ExecutionError(Error):
    """The function could not run to completion for a reason outside its code."""


class RemoteError(Error):
    """The remote code raised an exception that cannot be re-created locally."""


class FunctionTimeoutError(Error):
    """An input ran past the function's `timeout`."""


class InputCancellation(Error):
    """The function call was cancelled."""


class InternalError(Error):
    """A fault inside skyloft itself; please report it."""


class SerializationError(Error):
    """A value could not be pickled to send it to the function."""


class DeserializationError(Error):
    """A value sent back by the function could not be unpickled here."""


class RequestSizeError(Error):
    """A request was larger than the server accepts."""


class OutputExpiredError(Error):
    """The output of the function call is no longer stored."""


class TimeoutError(Error):
    """A wait (for example `FunctionCall.get(timeout=...)`) ran out of time."""


class ContainerCrashError(ExecutionError):
    """The container died while running the input (exit, signal, out of memory)."""


class ImageBuildError(Error):
    """An image could not be built; the message has the failing step and its output."""
