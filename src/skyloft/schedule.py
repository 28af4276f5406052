"""Schedules for `@app.function(schedule=...)`, as Modal's `Period` and `Cron`.

The values are complete; running functions on a schedule (the cron ticker)
is not built yet, and `schedule=` says so when used.
"""

from __future__ import annotations

from dataclasses import dataclass

from .exception import InvalidError


@dataclass(frozen=True)
class Period:
    """Run every so often: `Period(hours=1)`."""

    days: float = 0
    hours: float = 0
    minutes: float = 0
    seconds: float = 0

    def __post_init__(self) -> None:
        if self.total_seconds() <= 0:
            raise InvalidError("a Period must be longer than zero")

    def total_seconds(self) -> float:
        return ((self.days * 24 + self.hours) * 60 + self.minutes) * 60 + self.seconds


@dataclass(frozen=True)
class Cron:
    """Run on a cron schedule: `Cron("0 9 * * 1-5", timezone="Europe/Berlin")`."""

    cron_string: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        if len(self.cron_string.split()) not in (5, 6):
            raise InvalidError(f"{self.cron_string!r} is not a cron expression like '0 9 * * 1-5'")
