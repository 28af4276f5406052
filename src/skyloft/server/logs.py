"""Log fan-out: container output kept per app, followed live by clients.

Lines are numbered globally (`seq`) so a client can tell when it has printed
everything a container wrote before returning a result.
"""

from __future__ import annotations

import json
import os
import threading
from collections import deque
from collections.abc import Iterator

from .._proto import pb

_KEEP_PER_APP = 20_000


class LogHub:
    def __init__(self, log_dir: str) -> None:
        self._dir = log_dir
        os.makedirs(log_dir, exist_ok=True)
        self._cond = threading.Condition()
        self._seq = 0
        self._last_by_app: dict[str, int] = {}
        self._recent: dict[str, deque[pb.LogLine]] = {}
        self._files: dict[str, object] = {}

    def last_seq(self, app_id: str) -> int:
        """Seq of the app's latest line: a result waits until the caller has shown it."""
        return self._last_by_app.get(app_id, 0)

    def append(self, app_id: str, container_id: str, function_name: str, stream: int, text: str) -> int:
        """Record one chunk of output and wake followers; returns its seq."""
        with self._cond:
            self._seq += 1
            self._last_by_app[app_id] = self._seq
            line = pb.LogLine(seq=self._seq, container_id=container_id, function_name=function_name,
                              stream=stream, text=text)
            self._recent.setdefault(app_id, deque(maxlen=_KEEP_PER_APP)).append(line)
            self._file(app_id).write(json.dumps(
                {"seq": line.seq, "container_id": container_id, "function_name": function_name,
                 "stream": stream, "text": text}) + "\n")
            self._cond.notify_all()
            return self._seq

    def _file(self, app_id: str):
        f = self._files.get(app_id)
        if f is None:
            f = self._files[app_id] = open(os.path.join(self._dir, f"{app_id}.jsonl"), "a", buffering=1)
        return f

    def close_app(self, app_id: str) -> None:
        with self._cond:
            f = self._files.pop(app_id, None)
            if f is not None:
                f.close()
            self._cond.notify_all()

    def history(self, app_id: str) -> list[pb.LogLine]:
        """Everything the app's containers wrote, from its log file."""
        path = os.path.join(self._dir, f"{app_id}.jsonl")
        if not os.path.exists(path):
            return []
        lines = []
        with open(path) as f:
            for raw in f:
                try:
                    lines.append(pb.LogLine(**json.loads(raw)))
                except ValueError:
                    continue
        return lines

    def follow(self, app_id: str, after_seq: int, is_open, poll_s: float = 1.0) -> Iterator[list[pb.LogLine]]:
        """Yield batches of new lines of an app while `is_open()` holds."""
        while True:
            with self._cond:
                batch = _lines_after(self._recent.get(app_id, ()), after_seq)
                if not batch:
                    if not is_open():
                        return
                    self._cond.wait(poll_s)
                    continue
            after_seq = batch[-1].seq
            yield batch


def _lines_after(recent: deque[pb.LogLine] | tuple, after_seq: int) -> list[pb.LogLine]:
    """The tail of `recent` past `after_seq`, scanning from the newest line."""
    batch = []
    for line in reversed(recent):
        if line.seq <= after_seq:
            break
        batch.append(line)
    batch.reverse()
    return batch
