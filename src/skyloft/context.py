"""Where code is running: the caller's machine or a container, and which input."""

from __future__ import annotations

import contextvars
import os

_input_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("skyloft_input_id", default=None)
_call_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("skyloft_call_id", default=None)


def is_local() -> bool:
    """True on the caller's machine, False inside a skyloft container."""
    return "SKYLOFT_CONTAINER_ID" not in os.environ


def current_input_id() -> str | None:
    """The id of the input being processed, inside a container; None elsewhere."""
    return _input_id.get()


def current_function_call_id() -> str | None:
    """The id of the function call being processed, inside a container; None elsewhere."""
    return _call_id.get()


def set_current_input(input_id: str | None, call_id: str | None) -> None:
    """Set by the in-container runtime around each input."""
    _input_id.set(input_id)
    _call_id.set(call_id)
