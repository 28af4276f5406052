"""The local lane: the API's hot-path calls over a plain Unix socket.

Python's gRPC costs about half a millisecond per unary call on a small
machine, which is more than a warm `.remote()` may take in all. Clients on
the server's own machine (the embedded default) therefore send `Ping`,
`FunctionCall`, `FunctionGetOutputs` and `FunctionPutInputs` as the same
protobuf messages, framed over a Unix socket; every other call, and every
client elsewhere, uses gRPC. The methods, messages and errors are those of
proto/skyloft/v1/api.proto either way.

A connection opens with a TOKEN frame; then each CALL frame (method, request)
is answered by one REPLY frame (status code, response or error details),
the status codes being gRPC's.
"""

from __future__ import annotations

import functools
import socket

from google.protobuf import message_factory

from . import frames
from ._proto import pb

LANE_METHODS = frozenset({"Ping", "FunctionCall", "FunctionGetOutputs", "FunctionPutInputs"})
TOKEN, CALL, REPLY = b"T", b"C", b"P"
OK = b"0"


@functools.lru_cache(maxsize=None)
def message_class(method: str, response: bool) -> type:
    """The request or response message class of an API method."""
    descriptor = pb.DESCRIPTOR.services_by_name["Skyloft"].methods_by_name[method]
    return message_factory.GetMessageClass(descriptor.output_type if response else descriptor.input_type)


class LaneError(Exception):
    """A call on the lane failed; `code` is a gRPC status code number (14 = unavailable)."""

    def __init__(self, code: int, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


UNAVAILABLE = 14


class LaneConnection:
    """One client connection; not shared between threads."""

    def __init__(self, path: str, token: str) -> None:
        try:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self._sock.connect(path)
            self._reader = self._sock.makefile("rb")
            self._sock.sendall(frames.encode(TOKEN, [token.encode()]))
        except OSError as exc:
            raise LaneError(UNAVAILABLE, f"cannot connect to {path}: {exc}") from None

    def call(self, method: str, request, timeout: float | None):
        self._sock.settimeout(None if timeout is None else timeout + 5.0)
        try:
            self._sock.sendall(frames.encode(CALL, [method.encode(), request.SerializeToString()]))
            reply = frames.read_frame(self._reader)
        except OSError as exc:
            raise LaneError(UNAVAILABLE, f"connection lost: {exc}") from None
        if reply is None:
            raise LaneError(UNAVAILABLE, "the server closed the connection")
        status, body = reply[1]
        if status != OK:
            raise LaneError(int(status), body.decode("utf-8", "replace"))
        return message_class(method, response=True).FromString(body)

    def close(self) -> None:
        self._sock.close()
