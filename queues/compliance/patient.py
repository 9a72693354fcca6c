"""Compliance for patients in the database: their verdict, the claim-time admission and the
dial-time check. Three small queries: patient with pharmacy, phones, last week's dials; the claim
fetches the first two with its head row and counts the dials, so a patient with no dial in the last
week costs no query here at all (`admit_prefetched`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from queues.compliance.check import PatientFacts, PharmacyHours, PhoneFacts, evaluate
from queues.compliance.limits import Limits, pharmacy_limits, site_limits
from queues.compliance.verdict import Reason, Verdict
from queues.errors import ConfigError, NotCallable, OutreachError
from queues.settings import QueueSettings
from queues.store.models import Attempt, Patient, Pharmacy, Phone, Task
from queues.timeutil import as_utc
from queues.views.outcome import LINE_FAILED

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


# Attempts that never rang the patient's phone do not count against the caps: a line failure (the
# trunk's fault, recorded as `line_failed`) least of all.
NOT_A_CALL = ("not_dialed", "busy", "failed")
NOT_A_CALL_DISPOSITIONS = ("busy", LINE_FAILED)

# Core statements on the tables (no ORM entities): this runs inside every claim, so it stays lean.
_patients, _pharmacies = Patient.__table__, Pharmacy.__table__
_phones, _attempts, _tasks = Phone.__table__, Attempt.__table__, Task.__table__
# What the verdict reads of the patient and their pharmacy; the claim's head query selects these
# too (`admit_prefetched`), so both take them from here.
PATIENT_COLUMNS = (
    _patients.c.zip_code,
    _patients.c.state,
    _patients.c.do_not_call,
    _patients.c.deceased,
    _patients.c.consent_to_call,
    _pharmacies.c.code,
    _pharmacies.c.timezone,
    _pharmacies.c.opens_at,
    _pharmacies.c.closes_at,
    _pharmacies.c.calling_limits,
)
_PATIENT = (
    select(*PATIENT_COLUMNS)
    .join(_pharmacies, _pharmacies.c.id == _patients.c.pharmacy_id)
    .where(_patients.c.id == bindparam("patient_id"))
)
_PHONES = (
    select(_phones.c.number, _phones.c.best_time, _phones.c.wrong_number, _phones.c.do_not_call)
    .where(_phones.c.patient_id == bindparam("patient_id"))
    .order_by(_phones.c.rank, _phones.c.id)
)
_DIALS = select(
    _attempts.c.started_at, _attempts.c.task_ids, _attempts.c.call_result, _attempts.c.disposition
).where(
    _attempts.c.patient_id == bindparam("patient_id"), _attempts.c.started_at > bindparam("since")
)
_OPEN_TASKS = select(_tasks.c.id).where(
    _tasks.c.patient_id == bindparam("patient_id"), _tasks.c.status == "open"
)


def _facts(
    session: Session,
    patient_id: int,
    head: Any,
    now: datetime,
    phones: Sequence[Any] | None = None,
    dialed: bool = True,
) -> PatientFacts:
    """`phones` (number, best_time, wrong_number, do_not_call rows in rank order) when the caller
    has them already; `dialed=False` when the caller knows there was no dial in the last 7 days."""
    conn = session.connection()
    if phones is None:
        phones = conn.execute(_PHONES, {"patient_id": patient_id}).all()
    dials: list[tuple[datetime, Any]] = []
    if dialed:
        dials = [
            (as_utc(at), ids)
            for at, ids, result, disposition in conn.execute(
                _DIALS, {"patient_id": patient_id, "since": now - timedelta(days=7)}
            )
            if result not in NOT_A_CALL and disposition not in NOT_A_CALL_DISPOSITIONS
        ]
    same_subject: list[datetime] = []
    if any(at > now - timedelta(hours=24) for at, _ in dials):
        open_ids = set(conn.execute(_OPEN_TASKS, {"patient_id": patient_id}).scalars())
        for at, ids in dials:
            asked = set((ids or {}).get("open", [])) if isinstance(ids, dict) else set()
            if asked & open_ids:
                same_subject.append(at)
    return replace(
        undialed_facts(head, phones),
        attempts=tuple(at for at, _ in dials),
        same_subject_attempts=tuple(same_subject),
    )


def _phone_facts(phones: Sequence[Any]) -> tuple[PhoneFacts, ...]:
    return tuple(
        PhoneFacts(p.number, p.best_time, bool(p.wrong_number), bool(p.do_not_call)) for p in phones
    )


def _head(session: Session, patient_id: int) -> Any:
    head = session.connection().execute(_PATIENT, {"patient_id": patient_id}).first()
    if head is None:
        raise UnknownPatient(str(patient_id))
    return head


def patient_facts(session: Session, patient: Patient, now: datetime) -> PatientFacts:
    return _facts(session, patient.id, _head(session, patient.id), as_utc(now))


def patient_verdict(
    session: Session,
    patient_id: int,
    now: datetime,
    settings: QueueSettings | None = None,
    *,
    number: str | None = None,
) -> Verdict:
    now = as_utc(now)
    head = _head(session, patient_id)
    return _verdict(session, patient_id, head, now, settings, number=number)


@lru_cache(maxsize=256)
def _limits_of(settings: QueueSettings, code: str, overrides: str | None) -> Limits | ConfigError:
    """One pharmacy's limits, parsed once per process for each (settings, JSON text) pair."""
    try:
        return pharmacy_limits(
            site_limits(settings),
            json.loads(overrides) if overrides is not None else None,
            f"pharmacy {code} calling_limits",
        )
    except ConfigError as bad:
        return bad


def _verdict(
    session: Session,
    patient_id: int,
    head: Any,
    now: datetime,
    settings: QueueSettings | None,
    *,
    number: str | None = None,
    phones: Sequence[Any] | None = None,
    dialed: bool = True,
) -> Verdict:
    settings = settings or QueueSettings()
    limits = limits_of(head, settings)
    if isinstance(limits, ConfigError):  # fail closed: no call under limits nobody can read
        return Verdict(
            False, (Reason("pharmacy_limits_invalid", f"Calls are held: {limits}"),), None, (), ()
        )
    facts = _facts(session, patient_id, head, now, phones, dialed)
    return evaluate(facts, limits, now, pharmacy=hours_of(head), number=number)


def hours_of(head: Any) -> PharmacyHours:
    return PharmacyHours(head.code, head.timezone, head.opens_at, head.closes_at)


def limits_of(head: Any, settings: QueueSettings) -> Limits | ConfigError:
    """The limits for the head row's pharmacy (a ConfigError when its own are unreadable)."""
    overrides = head.calling_limits
    return _limits_of(
        settings, head.code, None if overrides is None else json.dumps(overrides, sort_keys=True)
    )


def undialed_facts(head: Any, phones: Sequence[Any]) -> PatientFacts:
    """The facts of a patient nobody dialed in the last week, from the rows already read."""
    return PatientFacts(
        zip_code=head.zip_code,
        state=head.state,
        phones=_phone_facts(phones),
        do_not_call=head.do_not_call,
        deceased=head.deceased,
        consent_to_call=head.consent_to_call,
    )


def _refuse(verdict: Verdict, now: datetime) -> None:
    if verdict.callable:
        return
    first = verdict.reasons[0]
    later = verdict.next_open_at or as_utc(now) + RECHECK_BLOCKED
    raise NotCallable(first.sentence, later, code=first.code)


def admit_prefetched(
    session: Session,
    patient_id: int,
    head: Any,
    phones: Sequence[Any],
    dialed: bool,
    now: datetime,
    settings: QueueSettings | None = None,
) -> Verdict:
    """The admission of `admission()` on what the claim's head query already fetched: `head` has
    the columns of the patient-with-pharmacy query, `phones` the patient's phone rows in rank
    order, `dialed` whether any attempt started in the last 7 days (only then are they read).
    Returns the (callable) verdict: its `open_until` is how long the admission holds."""
    now = as_utc(now)
    verdict = _verdict(session, patient_id, head, now, settings, phones=phones, dialed=dialed)
    _refuse(verdict, now)
    return verdict


def admission(settings: QueueSettings | None = None) -> Callable[[Session, int, datetime], None]:
    """The `admit` hook for `claim_next`: raise NotCallable to pass a patient over for now."""

    def admit(session: Session, patient_id: int, now: datetime) -> None:
        _refuse(patient_verdict(session, patient_id, now, settings), now)

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
