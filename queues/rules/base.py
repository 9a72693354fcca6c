"""What a campaign rule produces (a due task with its priority parts) and what it is given."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import Any

from queues.priority import score_of
from queues.rules.snapshot import PatientRow, RxRow, Snapshot
from queues.settings import QueueSettings


@dataclass(frozen=True)
class DueTask:
    patient_id: int
    campaign_id: int
    kind: str
    subject: str
    reason: str
    due_on: date | None = None
    prescription_id: int | None = None
    priority_parts: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> tuple[int, int, str]:
        return (self.campaign_id, self.patient_id, self.subject)

    @property
    def score(self) -> float:
        return float(self.priority_parts.get("score", 0.0))


@dataclass
class RuleContext:
    snapshot: Snapshot
    now: datetime
    today: date
    settings: QueueSettings

    @cached_property
    def rx_by_patient(self) -> dict[int, list[RxRow]]:
        return self.snapshot.rx_by_patient()

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
        found = self.snapshot.campaign(patient.pharmacy_id, kind)
        if found is None:
            return None
        campaign_id, weight = found
        callback = self.snapshot.callbacks_due.get(patient.id)
        parts: dict[str, Any] = {
            **urgency,
            "program": kind,
            "program_weight": weight,
            "attempts": self.snapshot.attempts_since.get(patient.id, 0),
            "callback_due": bool(callback and callback <= self.now),
            "pharmacy_priority": self.snapshot.pharmacy_priority.get(patient.pharmacy_id, 0),
        }
        parts["score"] = round(score_of(parts), 2)
        return DueTask(
            patient.id, campaign_id, kind, subject, reason, due_on, prescription_id, parts
        )


Rule = Callable[[RuleContext], Iterable[DueTask | None]]


def run_rule(rule: Rule, ctx: RuleContext) -> Iterator[DueTask]:
    return (task for task in rule(ctx) if task is not None)
