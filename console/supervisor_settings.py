"""The supervisor's settings in config.toml: [floor] alert limits and [report] paper size."""

from __future__ import annotations

from dataclasses import dataclass

from queues.errors import ConfigError

PAPER_SIZES = ("letter", "a4")


@dataclass(frozen=True)
class FloorSettings:
    """When the floor marks something for the supervisor to act on."""

    wrap_up_alert_minutes: int = 3  # an agent in wrap-up longer than this
    pause_alert_minutes: int = 20  # an agent on pause longer than this
    oldest_due_alert_days: int = 3  # a campaign whose oldest due patient is older than this
    line_failure_alert: int = 3  # line failures today from this many on
    undelivered_alert_minutes: int = 30  # a follow-up not delivered this long after the call

    def __post_init__(self) -> None:
        for name in (
            "wrap_up_alert_minutes",
            "pause_alert_minutes",
            "oldest_due_alert_days",
            "line_failure_alert",
            "undelivered_alert_minutes",
        ):
            if getattr(self, name) < 0:
                raise ConfigError("[floor]", f"floor.{name}", "expected 0 or more")


@dataclass(frozen=True)
class ReportSettings:
    paper: str = "letter"  # US Letter; "a4" elsewhere

    def __post_init__(self) -> None:
        if self.paper not in PAPER_SIZES:
            raise ConfigError(
                "[report]", "report.paper", f'expected "letter" or "a4", got {self.paper!r}'
            )
