"""Frames between a worker and its container, over the container's Unix socket.

A frame is a kind byte and a list of byte-string fields, lengths first.
The format is deliberately tiny: the in-container runtime imports neither
protobuf nor grpc (both cost more than a container's whole start budget),
and the worker only slices bytes, never unpickling what a container sends.

| kind    | fields                                                                    |
|---------|---------------------------------------------------------------------------|
| HELLO   | container id                                                              |
| INIT    | function definition as JSON, pickled function (`serialized=True`) or b"" |
| READY   | (none): the function is loaded, inputs may come                           |
| INPUTS  | (input id, call id, args) per input                                       |
| OUTPUTS | (input id, status, data, message, traceback, duration) per output         |
| LOG     | stream, text                                                              |
"""

from __future__ import annotations

import socket
import struct
import threading
from collections import deque
from itertools import accumulate

HELLO, INIT, READY, INPUTS, OUTPUTS, LOG = b"H", b"I", b"R", b"N", b"O", b"L"
INPUT_FIELDS = 3
OUTPUT_FIELDS = 6
# Output statuses, as decimal digits of the OutputStatus numbers in proto/.
SUCCESS, FAILURE, GEN_ITEM = b"0", b"1", b"6"
STDOUT, STDERR = b"0", b"1"

# The container writes the id of the input it starts into this file beside
# its socket, so that after a crash the worker knows which input to blame.
CURRENT_INPUT_FILE = "current-input"
CURRENT_INPUT_WIDTH = 64

_HEADER = struct.Struct(">I")
_LEN = struct.Struct(">I")
MAX_FRAME = 1 << 30


def encode(kind: bytes, fields: list[bytes]) -> bytes:
    """kind, field count, every field's length, then the fields: one struct call each way."""
    count = len(fields)
    header = struct.pack(f">cI{count}I", kind, count, *map(len, fields))
    body_length = len(header) + sum(map(len, fields))
    return b"".join([_HEADER.pack(body_length), header, *fields])


def decode(body: bytes) -> tuple[bytes, list[bytes]]:
    kind = body[:1]
    (count,) = _LEN.unpack_from(body, 1)
    start = 1 + _LEN.size * (count + 1)
    lengths = struct.unpack_from(f">{count}I", body, 1 + _LEN.size)
    if start + sum(lengths) != len(body):
        raise ValueError("malformed frame")
    ends = list(accumulate(lengths, initial=start))
    return kind, [body[a:b] for a, b in zip(ends, ends[1:])]


def read_frame(reader) -> tuple[bytes, list[bytes]] | None:
    """The next frame from a binary file object, or None at end of stream."""
    header = reader.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (length,) = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ValueError(f"frame of {length} bytes is over the {MAX_FRAME} limit")
    body = reader.read(length)
    if len(body) < length:
        return None
    return decode(body)


class FrameSocket:
    """Send and receive frames; `send` never blocks its caller on a full socket."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._reader = sock.makefile("rb", buffering=1 << 16)
        self._lock = threading.Lock()
        self._backlog: deque[bytes] = deque()
        self._backlog_ready = threading.Condition(self._lock)
        self._writer: threading.Thread | None = None
        self.closed = False

    def send(self, kind: bytes, fields: list[bytes]) -> None:
        data = encode(kind, fields)
        with self._lock:
            if self.closed:
                raise ConnectionError("container channel is closed")
            if not self._backlog:
                try:
                    sent = self._sock.send(data, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    sent = 0
                except OSError as exc:
                    raise ConnectionError(f"container channel failed: {exc}") from None
                if sent == len(data):
                    return
                data = data[sent:]
            self._backlog.append(data)
            if self._writer is None:
                self._writer = threading.Thread(target=self._drain, name="frame-writer", daemon=True)
                self._writer.start()
            self._backlog_ready.notify()

    def _drain(self) -> None:
        """Write what did not fit at once, in order, off the caller's thread."""
        while True:
            with self._lock:
                while not self._backlog and not self.closed:
                    self._backlog_ready.wait()
                if self.closed:
                    return
                data = self._backlog[0]
            try:
                self._sock.sendall(data)
            except OSError:
                self.close()
                return
            with self._lock:
                self._backlog.popleft()

    def recv(self) -> tuple[bytes, list[bytes]] | None:
        """The next frame, or None when the other side closed the socket."""
        return read_frame(self._reader)

    def close(self) -> None:
        with self._lock:
            self.closed = True
            self._backlog_ready.notify_all()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
