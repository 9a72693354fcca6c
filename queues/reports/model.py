"""The pharmacy program report as data: frozen figures that the CSV, HTML and PDF renderers draw.

Identifiers and counts only: no names, no drugs. A report is what a pharmacy pays for, so every
figure here is one that a test recomputes from a known history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from statistics import mean, median

ADHERENT = 0.80  # PQA adherence threshold


@dataclass(frozen=True)
class CampaignLine:
    """Patients called and reached for one campaign. A call works all of a patient's open tasks,
    so one call counts for every campaign it covered."""

    campaign: str
    kind: str
    patients_called: int
    patients_reached: int
    attempts: int

    @property
    def reach_rate(self) -> float | None:
        return self.patients_reached / self.patients_called if self.patients_called else None


@dataclass(frozen=True)
class RefillFigures:
    """Refill requests sent to the pharmacy from calls in the period, and the fills that followed.

    A request is filled when its prescription has a fill dated on or after the call's local date
    (the first such fill counts; fills dated after the period count too, as of the report)."""

    requested: int
    filled: int
    days_to_fill: tuple[int, ...]  # one per filled request, ascending

    @property
    def fill_rate(self) -> float | None:
        return self.filled / self.requested if self.requested else None

    @property
    def median_days(self) -> float | None:
        return float(median(self.days_to_fill)) if self.days_to_fill else None

    @property
    def mean_days(self) -> float | None:
        return float(mean(self.days_to_fill)) if self.days_to_fill else None


@dataclass(frozen=True)
class PdcLine:
    """PDC (PQA method) in one class, over the window ending the day before the period starts
    and over the window ending on its last day."""

    pqa_class: str
    patients_start: int  # patients with a PDC in the start window
    patients_end: int
    mean_start: float | None
    mean_end: float | None
    adherent_start: int  # PDC >= 0.80
    adherent_end: int
    crossed_up: int  # below 0.80 at the start, at or above at the end
    crossed_down: int  # at or above at the start, below at the end


@dataclass(frozen=True)
class PdcFigures:
    available: bool
    note: str  # how it was measured, or why it is missing
    window_days: int
    start_window: tuple[date, date]
    end_window: tuple[date, date]
    lines: tuple[PdcLine, ...]


@dataclass(frozen=True)
class OfficeOutcome:
    disposition: str
    label: str
    calls: int


@dataclass(frozen=True)
class PolicyCheck:
    """Calls whose start fell outside the patient's calling window: the figure must be 0."""

    method: str  # which rule was applied, in words
    outside: int
    attempt_ids: tuple[int, ...]  # identifiers only, for the supervisor to look up


@dataclass(frozen=True)
class PharmacyReport:
    code: str
    name: str
    timezone: str
    patients_called: int
    patients_reached: int
    attempts: int  # patient calls (prescriber-office calls are counted apart)
    campaigns: tuple[CampaignLine, ...]
    refills: RefillFigures
    med_sync_enrollments: int  # distinct patients enrolled from a call in the period
    vaccine_interests: int
    vaccine_by_kind: tuple[tuple[str, int], ...]
    pharmacist_escalations: int
    pdc: PdcFigures
    prescriber_calls: int
    prescriber_outcomes: tuple[OfficeOutcome, ...]
    prescriber_followups: int  # follow-ups for a prescriber that patient calls produced
    policy: PolicyCheck

    @property
    def reach_rate(self) -> float | None:
        return self.patients_reached / self.patients_called if self.patients_called else None

    @property
    def attempts_per_reached(self) -> float | None:
        """All patient calls in the period divided by the patients reached: the dials one
        reached patient costs."""
        return self.attempts / self.patients_reached if self.patients_reached else None


@dataclass(frozen=True)
class ProgramReport:
    start: date
    end: date  # inclusive, as asked
    generated_at: datetime
    generated_by: str
    sections: tuple[PharmacyReport, ...]
    measured_to: date | None = None  # the period runs past today: measured to this day
    previous: tuple[PharmacyReport, ...] = ()  # the period of the same length just before
    previous_period: tuple[date, date] | None = None

    @property
    def last_day(self) -> date:
        """The last day measured."""
        return self.measured_to or self.end

    def previous_of(self, code: str) -> PharmacyReport | None:
        return next((p for p in self.previous if p.code == code), None)
