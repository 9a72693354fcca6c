"""The five figures a pharmacy signs off on, for one pharmacy or several together, with the same
figures for the period before: patients reached, refills captured, time to fill, adherence change
and calls outside policy (which must be 0)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from queues.reports.model import PharmacyReport


@dataclass(frozen=True)
class Figure:
    label: str
    value: str
    detail: str
    previous: str  # the same figure for the period before, or "–"
    alarm: bool = False  # a figure that must be zero is not


@dataclass(frozen=True)
class Totals:
    called: int
    reached: int
    requested: int
    filled: int
    days: tuple[int, ...]
    adherent_start: float | None
    adherent_end: float | None
    outside: int

    @property
    def median_days(self) -> float | None:
        return float(median(self.days)) if self.days else None

    @property
    def adherence_change(self) -> float | None:
        if self.adherent_start is None or self.adherent_end is None:
            return None
        return self.adherent_end - self.adherent_start


def totals(sections: Sequence[PharmacyReport]) -> Totals:
    lines = [line for s in sections for line in s.pdc.lines]
    n_start = sum(line.patients_start for line in lines)
    n_end = sum(line.patients_end for line in lines)
    return Totals(
        called=sum(s.patients_called for s in sections),
        reached=sum(s.patients_reached for s in sections),
        requested=sum(s.refills.requested for s in sections),
        filled=sum(s.refills.filled for s in sections),
        days=tuple(sorted(d for s in sections for d in s.refills.days_to_fill)),
        adherent_start=sum(line.adherent_start for line in lines) / n_start if n_start else None,
        adherent_end=sum(line.adherent_end for line in lines) / n_end if n_end else None,
        outside=sum(s.policy.outside for s in sections),
    )


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.0%}"


def _days(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f} day" + ("" if round(value) == 1 else "s")


def _points(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:+.1f} pts"


def figures(
    sections: Sequence[PharmacyReport], previous: Sequence[PharmacyReport] | None
) -> tuple[Figure, ...]:
    now = totals(sections)
    before = totals(previous) if previous else None

    def prev(text: str) -> str:
        return text if before is not None else "–"

    reach = now.reached / now.called if now.called else None
    fill = now.filled / now.requested if now.requested else None
    return (
        Figure(
            "Patients reached",
            f"{now.reached:,}",
            f"{_pct(reach)} of {now.called:,} patients called",
            prev(f"{before.reached:,}" if before else ""),
        ),
        Figure(
            "Refills captured",
            f"{now.filled:,}",
            f"filled, of {now.requested:,} refill requests ({_pct(fill)})",
            prev(f"{before.filled:,}" if before else ""),
        ),
        Figure(
            "Time to fill",
            _days(now.median_days),
            "median, from the call to the fill",
            prev(_days(before.median_days) if before else ""),
        ),
        Figure(
            "Adherence change",
            _points(now.adherence_change),
            f"patients adherent (PDC 80% or more): {_pct(now.adherent_start)} to "
            f"{_pct(now.adherent_end)}",
            prev(_points(before.adherence_change) if before else ""),
        ),
        Figure(
            "Calls outside policy",
            f"{now.outside:,}",
            "calls outside the patient's calling window (must be 0)",
            prev(f"{before.outside:,}" if before else ""),
            alarm=now.outside > 0,
        ),
    )
