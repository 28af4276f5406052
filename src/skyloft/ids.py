"""Object ids in Modal's style: a short type prefix and random hex."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """`ap-…` app, `fu-…` function, `fc-…` function call, `ta-…` container, `wk-…` worker."""
    return f"{prefix}-{secrets.token_hex(10)}"


def input_id(call_id: str, idx: int) -> str:
    """Inputs are addressed by their call and position, so they need no lookup table."""
    return f"in-{call_id[3:]}-{idx}"


def parse_input_id(value: str) -> tuple[str, int]:
    """Inverse of `input_id`."""
    _, call_hex, idx = value.split("-")
    return f"fc-{call_hex}", int(idx)
