"""The client's connection to the control plane: one gRPC channel per process,
the token on every call, and gRPC failures turned into skyloft exceptions."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import grpc

from .._proto import pb
from .._proto.skyloft.v1.api_pb2_grpc import SkyloftStub
from ..local_lane import LANE_METHODS, UNAVAILABLE, LaneConnection, LaneError
from ..exception import (
    AlreadyExistsError,
    AuthError,
    ConnectionError,
    Error,
    InternalError,
    InvalidError,
    NotFoundError,
    RequestSizeError,
)
from .config import load_config, normalize_url
from .local_server import read_server_file, start_daemon

_MAX_MESSAGE_BYTES = 64 << 20
_RECONNECT_S = 60.0

_ERRORS = {
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.UNAUTHENTICATED: AuthError,
    grpc.StatusCode.PERMISSION_DENIED: AuthError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RequestSizeError,
}


class Client:
    """Calls the API over gRPC, and over the local lane where one is given."""

    def __init__(self, target: str, token: str, display_url: str, lane_path: str = "") -> None:
        self.url = display_url
        self._token = token
        self._lane_path = lane_path
        self._lanes = threading.local()
        self._channel = grpc.insecure_channel(target, options=[
            ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
            ("grpc.enable_retries", 0),
        ])
        self.stub = SkyloftStub(self._channel)
        self._metadata = (("authorization", f"Bearer {token}"),)

    def call(self, method: str, request: Any, timeout: float | None = None, retry: bool = False) -> Any:
        """Call a unary RPC; with `retry`, ride out a server restart for up to a minute."""
        deadline = time.monotonic() + _RECONNECT_S
        delay = 0.05
        while True:
            try:
                return self._invoke(method, request, timeout)
            except (grpc.RpcError, LaneError) as exc:
                code, details = _status(exc)
                if retry and code == grpc.StatusCode.UNAVAILABLE and time.monotonic() < deadline:
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                raise self.error(code, details) from None

    def _invoke(self, method: str, request: Any, timeout: float | None) -> Any:
        if self._lane_path and method in LANE_METHODS:
            lane = getattr(self._lanes, "connection", None)
            if lane is None:
                lane = self._lanes.connection = LaneConnection(self._lane_path, self._token)
            try:
                return lane.call(method, request, timeout)
            except LaneError as exc:
                if exc.code == UNAVAILABLE:
                    lane.close()
                    self._lanes.connection = None
                raise
        return getattr(self.stub, method)(request, timeout=timeout, metadata=self._metadata)

    def stream(self, method: str, request: Any, timeout: float | None = None):
        """Call a server-streaming RPC; errors surface while iterating."""
        try:
            yield from getattr(self.stub, method)(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self.translate(exc) from None

    def stream_in(self, method: str, requests, timeout: float | None = None) -> Any:
        """Call a client-streaming RPC."""
        try:
            return getattr(self.stub, method)(requests, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self.translate(exc) from None

    def translate(self, exc: grpc.RpcError) -> Error:
        return self.error(*_status(exc))

    def error(self, code: grpc.StatusCode, details: str) -> Error:
        """The skyloft exception for a failed call."""
        if code == grpc.StatusCode.UNAVAILABLE:
            return ConnectionError(
                f"cannot reach the skyloft server at {self.url} ({details}). "
                "Start one with `skyloft server start`, or point SKYLOFT_SERVER_URL at a running server.")
        if code == grpc.StatusCode.UNAUTHENTICATED:
            return AuthError(f"the server at {self.url} refused the token: {details}")
        return _ERRORS.get(code, InternalError)(details or code.name)

    def close(self) -> None:
        self._channel.close()


_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _status(exc: grpc.RpcError | LaneError) -> tuple[grpc.StatusCode, str]:
    if isinstance(exc, LaneError):
        return _CODES.get(exc.code, grpc.StatusCode.UNKNOWN), exc.details
    return exc.code(), exc.details() or ""


_client: Client | None = None
_client_lock = threading.Lock()


def get_client(autostart: bool = True) -> Client:
    """The process's client, connected and checked with a ping on first use."""
    global _client
    with _client_lock:
        if _client is None:
            client = _connect(autostart)
            client.call("Ping", pb.Empty(), timeout=10)
            _client = client
        return _client


def _connect(autostart: bool) -> Client:
    config = load_config()
    if config.server_url:
        token = config.token or _read_token(config.token_path)
        if not token:
            raise AuthError(f"no token for {config.server_url}; set SKYLOFT_TOKEN to the server's token "
                            f"(the server keeps it in its $SKYLOFT_HOME/token)")
        url = normalize_url(config.server_url)
        return Client(url, token, url)
    info = read_server_file(config.home)
    if info is None:
        if not autostart:
            raise ConnectionError(f"no local skyloft server runs for {config.home}; "
                                  "start one with `skyloft server start`")
        info = start_daemon(config.home)
    token = config.token or _read_token(config.token_path)
    target = f"unix:{info.unix}" if info.unix and os.path.exists(info.unix) else info.url
    return Client(target, token or "", info.url, lane_path=info.lane)


def _read_token(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None
