"""How many containers a function should have, from its queue and its history.

The policy is Modal's: keep `min_containers` warm, add `buffer_containers`
under load, never exceed `max_containers`, and stop containers idle for
`scaledown_window`. Within those bounds we size for finishing the queued and
running inputs in about `DRAIN_TARGET_S` (a running input holds its container,
so it counts as work, not as capacity), estimating an input's duration from
the running average of finished inputs or, before any has finished, from how
long the oldest running one has been going.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DRAIN_TARGET_S = 0.25
DEFAULT_MAX_CONTAINERS = 256


@dataclass
class Load:
    queued: int
    busy: int
    est_duration_s: float


@dataclass
class Limits:
    min_containers: int
    max_containers: int
    buffer_containers: int


def desired_containers(load: Load, limits: Limits, current: int) -> int:
    """Target container count for one function.

    Growth is capped at doubling per tick (plus the warm pool), so one noisy
    duration estimate cannot start a crowd of containers at once.
    """
    needed = 0
    if load.queued:
        work = load.queued + load.busy
        needed = min(work, max(1, math.ceil(work * load.est_duration_s / DRAIN_TARGET_S)))
    demand = max(load.busy, needed)
    if demand:
        demand += limits.buffer_containers
    cap = limits.max_containers or DEFAULT_MAX_CONTAINERS
    demand = min(demand, max(1, 2 * current) + limits.buffer_containers)
    return min(max(limits.min_containers, demand), cap)
