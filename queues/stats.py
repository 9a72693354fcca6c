"""Queue counts for `outreach queue stats` and the console."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from queues.models import Attempt, Patient, Pharmacy, QueueEntry, Task


@dataclass(frozen=True)
class QueueStats:
    pharmacies: int
    patients: int
    tasks_open: int
    tasks_claimed: int
    tasks_done: int
    attempts: int
    patients_queued: int
    patients_claimable_now: int

    def as_json(self) -> dict[str, int]:
        return asdict(self)

    def rows(self) -> list[tuple[str, int]]:
        return [
            ("Pharmacies", self.pharmacies),
            ("Patients", self.patients),
            ("Tasks open (unclaimed)", self.tasks_open),
            ("Tasks claimed", self.tasks_claimed),
            ("Tasks done or closed", self.tasks_done),
            ("Attempts", self.attempts),
            ("Patients queued", self.patients_queued),
            ("Patients claimable now", self.patients_claimable_now),
        ]


def queue_stats(session: Session, now: datetime) -> QueueStats:
    def count(q: object) -> int:
        return int(session.scalar(q) or 0)  # type: ignore[call-overload]

    held = and_(QueueEntry.holder_id.is_not(None), QueueEntry.lease_expires_at > now)
    open_tasks = count(select(func.count()).select_from(Task).where(Task.status == "open"))
    claimed = count(
        select(func.count())
        .select_from(Task)
        .join(QueueEntry, QueueEntry.patient_id == Task.patient_id)
        .where(Task.status == "open", held)
    )
    return QueueStats(
        pharmacies=count(select(func.count()).select_from(Pharmacy)),
        patients=count(select(func.count()).select_from(Patient)),
        tasks_open=open_tasks - claimed,
        tasks_claimed=claimed,
        tasks_done=count(select(func.count()).select_from(Task).where(Task.status != "open")),
        attempts=count(select(func.count()).select_from(Attempt)),
        patients_queued=count(
            select(func.count()).select_from(QueueEntry).where(QueueEntry.status == "open")
        ),
        patients_claimable_now=count(
            select(func.count())
            .select_from(QueueEntry)
            .where(QueueEntry.status == "open", QueueEntry.available_at <= now)
        ),
    )
