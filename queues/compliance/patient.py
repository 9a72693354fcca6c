"""Compliance for patients in the database: their verdict, the claim-time admission and the
dial-time check. Three small queries: patient with pharmacy, phones, last week's dials."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.compliance.check import PatientFacts, PharmacyHours, PhoneFacts, evaluate
from queues.compliance.limits import Limits, pharmacy_limits, site_limits
from queues.compliance.verdict import Reason, Verdict
from queues.errors import ConfigError, NotCallable, OutreachError
from queues.models import Attempt, Patient, Pharmacy, Phone, Task
from queues.settings import QueueSettings
from queues.timeutil import as_utc

# When a block lifts only by a person's action (do-not-call, deceased), look again after this.
RECHECK_BLOCKED = timedelta(hours=24)


class UnknownPatient(OutreachError):
    def __init__(self, patient: str) -> None:
        super().__init__(f"no patient {patient!r} (give the patient id or the MRN)")


def limits_for(pharmacy: Pharmacy, settings: QueueSettings) -> Limits:
    """Raises ConfigError naming the pharmacy when its own limits are malformed."""
    return pharmacy_limits(
        site_limits(settings), pharmacy.calling_limits, f"pharmacy {pharmacy.code} calling_limits"
    )


# Attempts that never rang the patient's phone do not count against the caps.
NOT_A_CALL = ("not_dialed", "busy", "failed")


def _dials(session: Session, patient_id: int, now: datetime) -> list[tuple[datetime, Any]]:
    rows = session.execute(
        select(
            Attempt.started_at, Attempt.task_ids, Attempt.call_result, Attempt.disposition
        ).where(Attempt.patient_id == patient_id, Attempt.started_at > now - timedelta(days=7))
    ).all()
    return [
        (as_utc(at), ids)
        for at, ids, result, disposition in rows
        if result not in NOT_A_CALL and disposition != "busy"
    ]


def patient_facts(session: Session, patient: Patient, now: datetime) -> PatientFacts:
    phones = session.scalars(
        select(Phone).where(Phone.patient_id == patient.id).order_by(Phone.rank, Phone.id)
    ).all()
    dials = _dials(session, patient.id, now)
    same_subject: list[datetime] = []
    if any(at > now - timedelta(hours=24) for at, _ in dials):
        open_ids = set(
            session.scalars(
                select(Task.id).where(Task.patient_id == patient.id, Task.status == "open")
            )
        )
        for at, ids in dials:
            asked = set((ids or {}).get("open", [])) if isinstance(ids, dict) else set()
            if asked & open_ids:
                same_subject.append(at)
    return PatientFacts(
        zip_code=patient.zip_code,
        state=patient.state,
        phones=tuple(
            PhoneFacts(p.number, p.best_time, p.wrong_number, p.do_not_call) for p in phones
        ),
        do_not_call=patient.do_not_call,
        deceased=patient.deceased,
        consent_to_call=patient.consent_to_call,
        attempts=tuple(at for at, _ in dials),
        same_subject_attempts=tuple(same_subject),
    )


def hours_of(pharmacy: Pharmacy) -> PharmacyHours:
    return PharmacyHours(pharmacy.code, pharmacy.timezone, pharmacy.opens_at, pharmacy.closes_at)


def patient_verdict(
    session: Session,
    patient_id: int,
    now: datetime,
    settings: QueueSettings | None = None,
    *,
    number: str | None = None,
) -> Verdict:
    settings = settings or QueueSettings()
    row = session.execute(
        select(Patient, Pharmacy)
        .join(Pharmacy, Pharmacy.id == Patient.pharmacy_id)
        .where(Patient.id == patient_id)
    ).first()
    if row is None:
        raise UnknownPatient(str(patient_id))
    patient, pharmacy = row
    now = as_utc(now)
    facts = patient_facts(session, patient, now)
    try:
        limits = limits_for(pharmacy, settings)
    except ConfigError as bad:  # fail closed: no call under limits nobody can read
        return Verdict(
            False,
            (Reason("pharmacy_limits_invalid", f"Calls are held: {bad}"),),
            None,
            (),
            (),
        )
    return evaluate(facts, limits, now, pharmacy=hours_of(pharmacy), number=number)


def admission(settings: QueueSettings | None = None) -> Any:
    """The `admit` hook for `claim_next`: raise NotCallable to pass a patient over for now."""

    def admit(session: Session, patient_id: int, now: datetime) -> None:
        verdict = patient_verdict(session, patient_id, now, settings)
        if verdict.callable:
            return
        first = verdict.reasons[0]
        later = verdict.next_open_at or as_utc(now) + RECHECK_BLOCKED
        raise NotCallable(first.sentence, later, code=first.code)

    return admit


def check_at_dial(
    session: Session,
    patient_id: int,
    number: str,
    now: datetime,
    settings: QueueSettings | None = None,
) -> Verdict:
    """Run again the moment before dialing `number`: raises NotCallable when the call may not go."""
    verdict = patient_verdict(session, patient_id, now, settings, number=number)
    verdict.raise_if_blocked()
    return verdict
