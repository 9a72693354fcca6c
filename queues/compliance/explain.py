"""`queue explain`: a patient's verdict with their open work, its scores and their caps."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from queues.audit import record
from queues.compliance.patient import UnknownPatient, limits_for, patient_facts, patient_verdict
from queues.compliance.verdict import Verdict
from queues.errors import ConfigError, NotAllowed, OutreachError
from queues.settings import QueueSettings
from queues.store.models import Campaign, Patient, Pharmacy, QueueEntry, Task
from queues.timeutil import as_utc
from queues.views.user import SignedInUser


@dataclass(frozen=True)
class TaskLine:
    id: int
    program: str
    subject: str
    reason: str  # no drug names (written for before identity is verified)
    status: str
    score: float
    parts: dict[str, Any]


@dataclass(frozen=True)
class CapLine:
    name: str
    used: int
    limit: int


@dataclass(frozen=True)
class QueueLine:
    status: str
    available_at: datetime
    blocked_reason: str | None
    held: bool


@dataclass(frozen=True)
class Explanation:
    patient_id: int
    mrn: str
    pharmacy: str
    verdict: Verdict
    tasks: tuple[TaskLine, ...]
    caps: tuple[CapLine, ...]
    queue: QueueLine | None

    def as_json(self) -> dict[str, Any]:
        return {
            "patient_id": self.patient_id,
            "mrn": self.mrn,
            "pharmacy": self.pharmacy,
            **self.verdict.as_json(),
            "tasks": [
                {
                    "id": t.id,
                    "program": t.program,
                    "subject": t.subject,
                    "reason": t.reason,
                    "status": t.status,
                    "score": round(t.score, 3),
                    "parts": t.parts,
                }
                for t in self.tasks
            ],
            "caps": {c.name: {"used": c.used, "limit": c.limit} for c in self.caps},
            "queue": None
            if self.queue is None
            else {
                "status": self.queue.status,
                "available_at": self.queue.available_at.isoformat(),
                "blocked_reason": self.queue.blocked_reason,
                "held": self.queue.held,
            },
        }


def find_patient(
    session: Session, key: str, pharmacy_ids: Collection[int] | None = None
) -> Patient:
    """By id, or by MRN (which must then name one patient); with `pharmacy_ids`, only theirs."""
    conditions = [Patient.mrn == key]
    if key.isdigit():
        conditions.append(Patient.id == int(key))
    query = select(Patient).where(or_(*conditions)).order_by(Patient.id)
    if pharmacy_ids is not None:
        query = query.where(Patient.pharmacy_id.in_(pharmacy_ids))
    found = session.scalars(query).all()
    by_id = [p for p in found if key.isdigit() and p.id == int(key)]
    if by_id:
        return by_id[0]
    if len(found) == 1:
        return found[0]
    if found:  # one MRN in two pharmacies: each keeps its own numbering
        raise OutreachError(
            f"MRN {key!r} names {len(found)} patients (ids "
            f"{', '.join(str(p.id) for p in found)}); give the patient id"
        )
    raise UnknownPatient(key)


def explain_patient(
    session: Session,
    key: str,
    now: datetime,
    settings: QueueSettings | None = None,
    *,
    viewer: SignedInUser,
) -> Explanation:
    """Explain one patient of `viewer`'s pharmacies (an audited view of their record; pass the
    user as queues.access.acting_scope widens them). A patient of another pharmacy is refused
    with the same words as one that does not exist: no probing for ids."""
    settings = settings or QueueSettings()
    now = as_utc(now)
    try:
        patient = find_patient(session, key, viewer.pharmacy_ids)
    except UnknownPatient:
        mine = ", ".join(viewer.pharmacy_codes) or "none"
        raise NotAllowed(
            f"no patient {key!r} in your pharmacies ({mine}); give the patient id or the MRN"
        ) from None
    pharmacy = session.get_one(Pharmacy, patient.pharmacy_id)
    verdict = patient_verdict(session, patient.id, now, settings)
    tasks = tuple(
        TaskLine(t.id, name, t.subject, t.reason, t.status, t.score, dict(t.priority_parts or {}))
        for t, name in session.execute(
            select(Task, Campaign.name)
            .join(Campaign, Campaign.id == Task.campaign_id)
            .where(Task.patient_id == patient.id, Task.status == "open")
            .order_by(Task.score.desc(), Task.id)
        )
    )
    facts = patient_facts(session, patient, now)
    caps: tuple[CapLine, ...] = ()
    try:
        limits = limits_for(pharmacy, settings)
        day = sum(1 for t in facts.attempts if t > now - timedelta(hours=24))
        caps = (
            CapLine("daily", day, limits.daily_cap),
            CapLine("weekly", len(facts.attempts), limits.weekly_cap),
            CapLine(
                "same_subject_24h",
                sum(1 for t in facts.same_subject_attempts if t > now - timedelta(hours=24)),
                limits.same_subject_cap_24h,
            ),
        )
    except ConfigError:
        pass  # the verdict already says the pharmacy's limits are unreadable
    entry = session.get(QueueEntry, patient.id)
    queue = None
    if entry is not None:
        held = entry.holder_id is not None and (
            entry.lease_expires_at is not None and as_utc(entry.lease_expires_at) > now
        )
        queue = QueueLine(entry.status, as_utc(entry.available_at), entry.blocked_reason, held)
    record(session, "explain", user_id=viewer.id, patient_id=patient.id)
    return Explanation(patient.id, patient.mrn, pharmacy.code, verdict, tasks, caps, queue)
