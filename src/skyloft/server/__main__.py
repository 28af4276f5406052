"""`python -m skyloft.server`: run the control plane in the foreground."""

from __future__ import annotations

import argparse
import logging
import signal
import sys

from .._client.config import default_home
from .control_plane import ControlPlane


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m skyloft.server")
    parser.add_argument("--home", default=None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-worker", action="store_true")
    parser.add_argument("--runtime", default=None)
    args = parser.parse_args()
    serve(args.home or default_home(), args.host, args.port, not args.no_worker, args.runtime)


def serve(home: str, host: str, port: int, with_worker: bool, runtime: str | None) -> None:
    """Run until SIGTERM or SIGINT."""
    # Many threads each do a little work and block again; a short GIL switch
    # interval keeps one busy thread from delaying the others by 5 ms a turn.
    sys.setswitchinterval(0.0005)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    plane = ControlPlane(home, host, port, with_worker, runtime)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: plane.stop())
    plane.start()
    plane.wait()


if __name__ == "__main__":
    main()
