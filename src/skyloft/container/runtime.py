"""The in-container runtime.

Connects to the worker over the socket it was given, imports the user's
module by name (or unpickles a `serialized=True` function), then runs the
inputs it is handed, one at a time, sending outputs back in small batches.
Python-level prints travel on the same socket as outputs, so the caller sees
a function's output before its result.
"""

from __future__ import annotations

import importlib
import inspect
import io
import json
import os
import socket
import sys
import threading
import time
from typing import Any, Callable

from .. import frames
from ..context import set_current_input
from ..serialization import deserialize, serialize, serialize_exception

_OUTPUT_FLUSH_S = 0.005
_LOG_FLUSH_S = 0.05


class _WorkerStream(io.TextIOBase):
    """sys.stdout/sys.stderr replacement that forwards text to the worker."""

    def __init__(self, channel: frames.FrameSocket, stream: bytes, lock: threading.Lock) -> None:
        self._channel = channel
        self._stream = stream
        self._parts: list[str] = []
        self._lock = lock

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            if not self._parts:
                return
            text, self._parts = "".join(self._parts), []
        self._channel.send(frames.LOG, [self._stream, text.encode("utf-8", "replace")])

    @property
    def encoding(self) -> str:
        return "utf-8"

    def isatty(self) -> bool:
        return False


class ContainerRuntime:
    def __init__(self, channel: frames.FrameSocket, definition: dict[str, Any], pickled_function: bytes) -> None:
        self.channel = channel
        self.definition = definition
        self.pickled_function = pickled_function
        lock = threading.Lock()
        self.stdout = _WorkerStream(channel, frames.STDOUT, lock)
        self.stderr = _WorkerStream(channel, frames.STDERR, lock)
        self.function: Callable[..., Any] | None = None
        self.load_error: BaseException | None = None
        marker = os.path.join(os.path.dirname(os.environ["SKYLOFT_CONTAINER_SOCKET"]), frames.CURRENT_INPUT_FILE)
        self._current = os.open(marker, os.O_RDWR | os.O_CREAT, 0o600)

    def load(self) -> None:
        """Find the user's function; a failure is reported on every input."""
        try:
            self.function = _load_function(self.definition, self.pickled_function)
        except BaseException as exc:  # noqa: BLE001 - reported to the caller
            self.load_error = exc

    def run(self) -> None:
        """Run batches of inputs as they arrive, until the worker closes the channel."""
        threading.Thread(target=self._flush_logs_forever, name="skyloft-logs", daemon=True).start()
        while True:
            frame = self.channel.recv()
            if frame is None:
                return
            if frame[0] == frames.INPUTS:
                self._run_batch(frame[1])

    def _flush_logs_forever(self) -> None:
        while True:
            time.sleep(_LOG_FLUSH_S)
            try:
                self.flush_logs()
            except (ConnectionError, OSError):
                return

    def flush_logs(self) -> None:
        self.stdout.flush()
        self.stderr.flush()

    def _run_batch(self, fields: list[bytes]) -> None:
        outputs: list[bytes] = []
        last_flush = time.monotonic()
        for i in range(0, len(fields), frames.INPUT_FIELDS):
            input_id, call_id, args = fields[i:i + frames.INPUT_FIELDS]
            outputs += self._run_one(input_id, call_id, args)
            now = time.monotonic()
            if now - last_flush > _OUTPUT_FLUSH_S:
                self._send(outputs)
                outputs, last_flush = [], now
        self._send(outputs)

    def _send(self, outputs: list[bytes]) -> None:
        if outputs:
            self.flush_logs()
            self.channel.send(frames.OUTPUTS, outputs)

    def _run_one(self, input_id: bytes, call_id: bytes, args: bytes) -> list[bytes]:
        os.pwrite(self._current, input_id.ljust(frames.CURRENT_INPUT_WIDTH), 0)
        set_current_input(input_id.decode(), call_id.decode())
        start = time.perf_counter()
        try:
            if self.load_error is not None:
                raise self.load_error
            call_args, call_kwargs = deserialize(args)
            if self.definition["is_generator"]:
                return self._run_generator(input_id, call_args, call_kwargs, start)
            result = self.function(*call_args, **call_kwargs)
            if inspect.iscoroutine(result):
                import asyncio

                result = asyncio.run(result)
            return _output(input_id, frames.SUCCESS, serialize(result), start=start)
        except BaseException as exc:  # noqa: BLE001 - every failure goes back to the caller
            data, message, text = serialize_exception(exc, os.environ.get("SKYLOFT_CODE_DIR", ""))
            return _output(input_id, frames.FAILURE, data, message, text, start)
        finally:
            set_current_input(None, None)

    def _run_generator(self, input_id: bytes, args: tuple, kwargs: dict, start: float) -> list[bytes]:
        """Stream each yielded value as it comes; the final output ends the stream."""
        for value in self.function(*args, **kwargs):
            self._send(_output(input_id, frames.GEN_ITEM, serialize(value)))
        return _output(input_id, frames.SUCCESS, b"", start=start)


def _output(input_id: bytes, status: bytes, data: bytes, message: str = "", traceback: str = "",
            start: float | None = None) -> list[bytes]:
    duration = b"%.9f" % (time.perf_counter() - start) if start is not None else b"0"
    return [input_id, status, data, message.encode("utf-8", "replace"),
            traceback.encode("utf-8", "replace"), duration]


def _load_function(definition: dict[str, Any], pickled: bytes) -> Callable[..., Any]:
    if pickled:
        obj = deserialize(pickled)
    else:
        obj = importlib.import_module(definition["module"])
        for part in definition["qualname"].split("."):
            obj = getattr(obj, part)
    raw = getattr(obj, "get_raw_f", None)
    return raw() if raw is not None else obj


def main() -> None:
    container_id = os.environ["SKYLOFT_CONTAINER_ID"]
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["SKYLOFT_CONTAINER_SOCKET"])
    channel = frames.FrameSocket(sock)
    channel.send(frames.HELLO, [container_id.encode()])
    init = channel.recv()
    if init is None or init[0] != frames.INIT:
        sys.exit("skyloft: the worker closed the channel before sending the function")
    definition_json, pickled_function = init[1]
    runtime = ContainerRuntime(channel, json.loads(definition_json), pickled_function)
    sys.stdout, sys.stderr = runtime.stdout, runtime.stderr
    runtime.load()
    channel.send(frames.READY, [])
    try:
        runtime.run()
    finally:
        runtime.flush_logs()
