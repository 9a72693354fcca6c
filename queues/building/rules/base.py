"""What a campaign rule produces (a due task with its priority parts) and what it is given."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from queues.adherence.supply import run_out_of_sorted
from queues.building.priority import score_from
from queues.building.priority import urgency as urgency_of
from queues.building.rules.snapshot import PatientRow, RxRow, Snapshot
from queues.settings import QueueSettings


@dataclass(slots=True)
class DueTask:
    """Treat as read-only. Not `frozen`: a build makes one per due subject (468,000 at 100,000
    patients), and a frozen dataclass's __init__ costs 2 µs more each, a second per build."""

    patient_id: int
    campaign_id: int
    kind: str
    subject: str
    reason: str
    due_on: date | None = None
    prescription_id: int | None = None
    priority_parts: dict[str, Any] = field(default_factory=dict)
    score: float = 0.0  # priority_parts["score"], kept beside them: a build reads it twice a task

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.campaign_id, self.patient_id, self.subject)


@dataclass
class RuleContext:
    snapshot: Snapshot
    now: datetime
    today: date
    settings: QueueSettings

    @cached_property
    def rx_by_patient(self) -> dict[int, list[RxRow]]:
        return self.snapshot.rx_by_patient()

    @cached_property
    def _campaigns(self) -> dict[tuple[int, str], tuple[int, float] | None]:
        return {}

    def _campaign(self, pharmacy_id: int, kind: str) -> tuple[int, float] | None:
        key = (pharmacy_id, kind)
        try:
            return self._campaigns[key]
        except KeyError:
            found = self._campaigns[key] = self.snapshot.campaign(pharmacy_id, kind)
            return found

    @cached_property
    def _per_patient(self) -> dict[int, tuple[int, bool, int]]:
        return {}

    def _patient_parts(self, patient: PatientRow) -> tuple[int, bool, int]:
        """The parts of a score that are the patient's, not the subject's (asked once each)."""
        try:
            return self._per_patient[patient.id]
        except KeyError:
            pass
        callback = self.snapshot.callbacks_due.get(patient.id)
        parts = self._per_patient[patient.id] = (
            self.snapshot.attempts_since.get(patient.id, 0),
            bool(callback and callback <= self.now),
            self.snapshot.pharmacy_priority.get(patient.pharmacy_id, 0),
        )
        return parts

    @cached_property
    def _rounded(self) -> dict[float, float]:
        return {}

    @cached_property
    def _run_outs(self) -> dict[int, date | None]:
        return {}

    def run_out(self, rx_id: int) -> date | None:
        """The prescription's run-out date (queues.adherence.supply), worked out once per build."""
        try:
            return self._run_outs[rx_id]
        except KeyError:
            # The snapshot's fills are in date order (queues.building.rules.snapshot).
            end = self._run_outs[rx_id] = run_out_of_sorted(self.snapshot.fills.get(rx_id, ()))
            return end

    def task(
        self,
        patient: PatientRow,
        kind: str,
        subject: str,
        reason: str,
        *,
        due_on: date | None = None,
        prescription_id: int | None = None,
        **urgency: Any,
    ) -> DueTask | None:
        """A due task for the patient's campaign of `kind`, scored; None when the pharmacy runs no
        active campaign of that kind (a paused campaign makes no new work)."""
        found = self._campaign(patient.pharmacy_id, kind)
        if found is None:
            return None
        campaign_id, weight = found
        attempts, callback_due, pharmacy_priority = self._patient_parts(patient)
        parts: dict[str, Any] = {
            **urgency,
            "program": kind,
            "program_weight": weight,
            "attempts": attempts,
            "callback_due": callback_due,
            "pharmacy_priority": pharmacy_priority,
        }
        # `score_of(parts)`: only the rule's own parts say how urgent the subject is.
        raw = score_from(urgency_of(urgency), weight, pharmacy_priority, attempts, callback_due)
        score = self._rounded.get(raw)
        if score is None:  # round(x, 2) takes ~0.4 µs, and a build's scores repeat
            score = self._rounded[raw] = round(raw, 2)
        parts["score"] = score
        return DueTask(
            patient.id, campaign_id, kind, subject, reason, due_on, prescription_id, parts, score
        )


Rule = Callable[[RuleContext], Iterable[DueTask | None]]
