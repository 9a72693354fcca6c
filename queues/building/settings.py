"""`[build]` of config.toml: how a full queue build makes way for the agents claiming meanwhile."""

from __future__ import annotations

import math
from dataclasses import dataclass

from queues.errors import ConfigError

MAX_WRITE_PAUSE_RATIO = 20.0
MAX_WRITE_PAUSE_MS = 5_000


@dataclass(frozen=True)
class BuildSettings:
    """A cost-based delay, as PostgreSQL's autovacuum has (`autovacuum_vacuum_cost_delay`): after
    each of its write steps a full build pauses in proportion to the work it just did, so the
    consoles' claims get the CPU, the log's flushes and, on SQLite, the one write lock between
    two steps. The build takes longer; an agent's claim does not."""

    # The pause after a write step, as a multiple of the time the step took (0: no pause, the
    # fastest build; 2: the build writes at most a third of the time).
    write_pause_ratio: float = 2.0
    # No single pause longer than this: a step slowed by something else is not paid for twice.
    max_write_pause_ms: int = 200

    def __post_init__(self) -> None:
        ratio = self.write_pause_ratio
        if not math.isfinite(ratio) or not 0 <= ratio <= MAX_WRITE_PAUSE_RATIO:
            raise ConfigError(
                "[build]",
                "build.write_pause_ratio",
                f"expected a number from 0 to {MAX_WRITE_PAUSE_RATIO:g}, got {ratio!r}",
            )
        if not 0 <= self.max_write_pause_ms <= MAX_WRITE_PAUSE_MS:
            raise ConfigError(
                "[build]",
                "build.max_write_pause_ms",
                f"expected 0 to {MAX_WRITE_PAUSE_MS} (milliseconds), "
                f"got {self.max_write_pause_ms!r}",
            )

    def pause_after(self, step_seconds: float) -> float:
        """Seconds to pause after a write step that took `step_seconds`."""
        return min(self.write_pause_ratio * step_seconds, self.max_write_pause_ms / 1000)
