"""The call figures every view shows — the floor's Today tab and the CSV, HTML and PDF report —
counted by one tally, so that they agree figure by figure.

Definitions (one place):
- calls: patient calls (a call to a prescriber's office is counted apart by the report);
- patients called / reached: distinct patients, reached when a call's disposition is a reached one;
- refill requests: refill-request actions from those calls;
- med-sync enrollments: distinct patients enrolled from those calls;
- pharmacist escalations: distinct calls escalated to the pharmacist, by a transfer (the
  `transferred_pharmacist` disposition) or by an escalation action;
- vaccine interests: vaccine-interest actions.
An action counts with its call: one produced by a call outside the period (or a prescriber-office
call) is not counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

TRANSFERRED = "transferred_pharmacist"
REFILL_REQUEST = "refill_request"
MED_SYNC_ENROLLMENT = "med_sync_enrollment"
PHARMACIST_ESCALATION = "pharmacist_escalation"
VACCINE_INTEREST = "vaccine_interest"


@dataclass(frozen=True)
class CallFigures:
    calls: int
    patients_called: int
    patients_reached: int
    refill_requests: int
    med_sync_enrollments: int
    pharmacist_escalations: int
    vaccine_interests: int

    @property
    def reach_rate(self) -> float | None:
        return self.patients_reached / self.patients_called if self.patients_called else None


@dataclass
class FigureTally:
    """Fed call by call and action by action (in any order, each once); read at any time."""

    _calls: dict[int, tuple[int, str, bool]] = field(default_factory=dict)
    _actions: dict[int, tuple[int, str, int]] = field(default_factory=dict)

    def call(self, attempt_id: int, patient_id: int, disposition: str, reached: bool) -> None:
        self._calls[attempt_id] = (patient_id, disposition, reached)

    def action(self, action_id: int, attempt_id: int, kind: str, patient_id: int) -> None:
        self._actions[action_id] = (attempt_id, kind, patient_id)

    def figures(self) -> CallFigures:
        calls = self._calls
        called = {p for p, _, _ in calls.values()}
        reached = {p for p, _, r in calls.values() if r}
        escalated = {a for a, (_, d, _) in calls.items() if d == TRANSFERRED}
        refills = vaccines = 0
        enrolled: set[int] = set()
        for attempt_id, kind, patient_id in self._actions.values():
            if attempt_id not in calls:
                continue
            if kind == REFILL_REQUEST:
                refills += 1
            elif kind == MED_SYNC_ENROLLMENT:
                enrolled.add(patient_id)
            elif kind == PHARMACIST_ESCALATION:
                escalated.add(attempt_id)
            elif kind == VACCINE_INTEREST:
                vaccines += 1
        return CallFigures(
            calls=len(calls),
            patients_called=len(called),
            patients_reached=len(reached),
            refill_requests=refills,
            med_sync_enrollments=len(enrolled),
            pharmacist_escalations=len(escalated),
            vaccine_interests=vaccines,
        )
