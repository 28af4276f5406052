"""Remote output in the caller's terminal: the app's log stream, followed live.

Each line is marked with the function it came from. Results wait (briefly)
until the lines their container printed before returning have been shown,
so output and results appear in the order they happened.
"""

from __future__ import annotations

import sys
import threading
import time

from ._proto import pb
from .exception import ConnectionError, Error

_RECONNECT_S = 0.5
_show = True


def show_remote_output(show: bool) -> None:
    """Turn the printing of remote output on or off (`skyloft run --quiet`)."""
    global _show
    _show = show


class LogFollower:
    def __init__(self, client, app_id: str) -> None:
        self._client = client
        self._app_id = app_id
        self._printed = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._at_line_start: dict[tuple[str, int], bool] = {}
        self._color = sys.stdout.isatty()
        self._thread = threading.Thread(target=self._run, name="skyloft-logs", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                request = pb.LogsRequest(id=self._app_id, follow=True, after_seq=self._printed)
                for batch in self._client.stream("AppLogs", request):
                    self._print(batch.lines)
                return
            except ConnectionError:
                self._stop.wait(_RECONNECT_S)
            except Error:
                return

    def _print(self, lines) -> None:
        for line in lines if _show else ():
            out = sys.stderr if line.stream == pb.LogLine.STDERR else sys.stdout
            out.write(self._mark(line))
            out.flush()
        with self._cond:
            self._printed = max(self._printed, lines[-1].seq)
            self._cond.notify_all()

    def _mark(self, line: pb.LogLine) -> str:
        """Prefix each new line with the function's name."""
        key = (line.container_id, line.stream)
        tag = f"[{line.function_name}] "
        if self._color:
            tag = f"\x1b[2m{tag}\x1b[0m"
        parts = []
        start = self._at_line_start.get(key, True)
        for piece in line.text.splitlines(keepends=True):
            parts.append(tag + piece if start else piece)
            start = piece.endswith("\n")
        self._at_line_start[key] = start
        return "".join(parts)

    def wait_for(self, seq: int, timeout: float = 0.5) -> None:
        """Block until lines up to `seq` are shown, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._printed < seq and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                self._cond.wait(remaining)

    def stop(self, drain_s: float = 1.0) -> None:
        """Let the stream finish (the server ends it when the app stops), then stop."""
        self._thread.join(drain_s)
        self._stop.set()
