"""Retry policy of a function, as Modal's `modal.Retries`."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from .exception import InvalidError

if TYPE_CHECKING:
    from ._proto import pb


@dataclass(frozen=True)
class Retries:
    """Re-run a failed input up to `max_retries` times, waiting
    `initial_delay * backoff_coefficient ** (attempt - 1)` seconds (at most `max_delay`)."""

    max_retries: int
    backoff_coefficient: float = 2.0
    initial_delay: float = 1.0
    max_delay: float = 60.0

    def __post_init__(self) -> None:
        if not 0 <= self.max_retries <= 10:
            raise InvalidError(f"max_retries must be between 0 and 10, not {self.max_retries}")
        if not 1.0 <= self.backoff_coefficient <= 10.0:
            raise InvalidError(f"backoff_coefficient must be between 1.0 and 10.0, not {self.backoff_coefficient}")
        if not 0.0 <= self.initial_delay <= 60.0:
            raise InvalidError(f"initial_delay must be between 0 and 60 seconds, not {self.initial_delay}")
        if not 1.0 <= self.max_delay <= 60.0:
            raise InvalidError(f"max_delay must be between 1 and 60 seconds, not {self.max_delay}")

    def to_proto(self) -> pb.RetryPolicy:
        from ._proto import pb

        return pb.RetryPolicy(max_retries=self.max_retries, backoff_coefficient=self.backoff_coefficient,
                              initial_delay=self.initial_delay, max_delay=self.max_delay)

    @classmethod
    def of(cls, retries: int | Retries | None) -> Retries | None:
        """`retries=n` means n retries one second apart, as in Modal."""
        if retries is None or isinstance(retries, Retries):
            return retries
        if isinstance(retries, bool) or not isinstance(retries, int):
            raise InvalidError(f"retries must be an int or skyloft.Retries, not {type(retries).__name__}")
        return cls(max_retries=retries, backoff_coefficient=1.0, initial_delay=1.0)
