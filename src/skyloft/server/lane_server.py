"""Serving the local lane (see `skyloft.local_lane`): one thread per connection,
calling the same `Api` methods the gRPC server calls."""

from __future__ import annotations

import hmac
import logging
import os
import socket
import threading

from google.protobuf.message import DecodeError

from .. import frames
from ..local_lane import CALL, LANE_METHODS, OK, REPLY, TOKEN, message_class
from .api import Api, status_of

log = logging.getLogger("skyloft.lane")

_UNAUTHENTICATED = 16
_INVALID_ARGUMENT = 3
_UNIMPLEMENTED = 12


class LaneServer:
    def __init__(self, api: Api, token: str, path: str) -> None:
        self._api = api
        self._token = token.encode()
        self.path = path
        if os.path.exists(path):
            os.unlink(path)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(path)
        os.chmod(path, 0o600)
        self._listener.listen(128)
        self._stopped = False

    def start(self) -> None:
        threading.Thread(target=self._accept, name="lane-accept", daemon=True).start()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="lane-conn", daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        reader = conn.makefile("rb")
        try:
            hello = frames.read_frame(reader)
            if hello is None or hello[0] != TOKEN or not hmac.compare_digest(hello[1][0], self._token):
                conn.sendall(_reply(_UNAUTHENTICATED, b"invalid token; set SKYLOFT_TOKEN to the server's token"))
                return
            while True:
                frame = frames.read_frame(reader)
                if frame is None:
                    return
                conn.sendall(self._answer(frame))
        except (OSError, ValueError):
            return
        finally:
            conn.close()

    def _answer(self, frame: tuple[bytes, list[bytes]]) -> bytes:
        kind, fields = frame
        if kind != CALL or len(fields) != 2:
            return _reply(_INVALID_ARGUMENT, b"malformed frame")
        method = fields[0].decode("utf-8", "replace")
        if method not in LANE_METHODS:
            return _reply(_UNIMPLEMENTED, f"{method} is not served on the local lane; use gRPC".encode())
        try:
            request = message_class(method, response=False).FromString(fields[1])
        except DecodeError as exc:
            return _reply(_INVALID_ARGUMENT, f"malformed request: {exc}".encode())
        try:
            response = getattr(self._api, method)(request, None)
        except Exception as exc:  # noqa: BLE001 - answered with a status, the lane keeps serving
            code = status_of(exc)
            if code.name == "INTERNAL":
                log.exception("internal error in %s", method)
            return _reply(code.value[0], (str(exc) or type(exc).__name__).encode())
        return frames.encode(REPLY, [OK, response.SerializeToString()])


def _reply(code: int, details: bytes) -> bytes:
    return frames.encode(REPLY, [str(code).encode(), details])
