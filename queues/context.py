"""Everything the agent sees about a claimed patient, as frozen data (no live ORM objects).

Loading a context is a view of patient data: it is written to the audit trail in the same
transaction, and refused for a pharmacy the user is not assigned to.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.adherence.supply import run_out_date
from queues.audit import record
from queues.compliance.check import whereabouts
from queues.errors import NotAllowed
from queues.store.models import (
    Attempt,
    Campaign,
    Condition,
    DispositionCode,
    Fill,
    Patient,
    Pharmacy,
    Phone,
    Prescription,
    Task,
    User,
)
from queues.views.patient import (
    RECENT_FILLS,
    AttemptView,
    FillView,
    MedicationView,
    PatientContext,
    PharmacyView,
    PhoneView,
    TaskView,
)

__all__ = [
    "RECENT_FILLS",
    "AttemptView",
    "FillView",
    "MedicationView",
    "PatientContext",
    "PharmacyView",
    "PhoneView",
    "TaskView",
    "age_on",
    "load_patient_context",
]


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def load_patient_context(
    session: Session,
    patient_id: int,
    *,
    user_id: int,
    pharmacy_ids: tuple[int, ...],
    today: date,
) -> PatientContext:
    patient = session.get(Patient, patient_id)
    if patient is None or patient.pharmacy_id not in pharmacy_ids:
        # Same answer for "missing" and "not yours": no probing for patient ids.
        raise NotAllowed(f"patient {patient_id} is not in your pharmacies")
    pharmacy = session.get_one(Pharmacy, patient.pharmacy_id)
    phones = session.scalars(
        select(Phone).where(Phone.patient_id == patient_id).order_by(Phone.rank, Phone.id)
    ).all()
    prescriptions = session.scalars(
        select(Prescription)
        .where(Prescription.patient_id == patient_id, Prescription.active.is_(True))
        .order_by(Prescription.drug_name)
    ).all()
    fills: dict[int, list[FillView]] = defaultdict(list)
    for rx_id, fill_date, days_supply, quantity, estimated in session.execute(
        select(
            Fill.prescription_id, Fill.fill_date, Fill.days_supply, Fill.quantity, Fill.estimated
        )
        .join(Prescription, Prescription.id == Fill.prescription_id)
        .where(Prescription.patient_id == patient_id)
        .order_by(Fill.fill_date)
    ):
        fills[rx_id].append(FillView(fill_date, days_supply, quantity, estimated))
    medications = []
    for rx in prescriptions:
        history = fills.get(rx.id, [])
        last = history[-1] if history else None
        medications.append(
            MedicationView(
                prescription_id=rx.id,
                drug_name=rx.drug_name,
                pqa_class=rx.pqa_class,
                chronic=rx.chronic,
                refills_left=rx.refills_left,
                last_fill=last.fill_date if last else None,
                days_supply=last.days_supply if last else None,
                run_out=run_out_date((f.fill_date, f.days_supply) for f in history),
                fill_count=len(history),
                recent_fills=tuple(history[-RECENT_FILLS:]),
                estimated=bool(last and last.estimated),
            )
        )
    medications.sort(key=lambda m: (m.run_out or date.max, m.drug_name))
    attempts = [
        AttemptView(a.started_at, agent, a.phone_number, a.disposition, label, a.notes)
        for a, agent, label in session.execute(
            select(Attempt, User.display_name, DispositionCode.label)
            .join(User, User.id == Attempt.user_id)
            .join(DispositionCode, DispositionCode.code == Attempt.disposition)
            .where(Attempt.patient_id == patient_id)
            .order_by(Attempt.started_at.desc())
        )
    ]
    tasks = [
        TaskView(
            t.id,
            c.kind,
            c.name,
            c.script_id,
            t.reason,
            t.due_on,
            dict(t.priority_parts),
            subject=t.subject,
            prescription_id=t.prescription_id,
        )
        for t, c in session.execute(
            select(Task, Campaign)
            .join(Campaign, Campaign.id == Task.campaign_id)
            .where(Task.patient_id == patient_id, Task.status == "open")
            .order_by(Task.due_on, Task.id)
        )
    ]
    conditions = tuple(
        session.scalars(select(Condition.display).where(Condition.patient_id == patient_id))
    )
    record(session, "view_patient", user_id=user_id, patient_id=patient_id)
    return PatientContext(
        id=patient.id,
        mrn=patient.mrn,
        first_name=patient.first_name,
        last_name=patient.last_name,
        birth_date=patient.birth_date,
        age=age_on(patient.birth_date, today),
        language=patient.language,
        zip_code=patient.zip_code,
        state=patient.state,
        caregiver_name=patient.caregiver_name,
        caregiver_relation=patient.caregiver_relation,
        caregiver_phone=patient.caregiver_phone,
        caregiver_authorized=patient.caregiver_authorized,
        do_not_call=patient.do_not_call,
        pharmacy=PharmacyView(
            pharmacy.id,
            pharmacy.code,
            pharmacy.name,
            pharmacy.caller_id,
            pharmacy.callback_number,
            pharmacy.timezone,
        ),
        phones=tuple(
            PhoneView(p.id, p.number, p.kind, p.best_time, p.wrong_number, p.do_not_call)
            for p in phones
        ),
        medications=tuple(medications),
        attempts=tuple(attempts),
        tasks=tuple(tasks),
        conditions=conditions,
        timezone=_local_zone(patient.zip_code, patient.state, phones, pharmacy.timezone),
    )


def _local_zone(zip_code: str, state: str | None, phones: Sequence[Phone], fallback: str) -> str:
    """The patient's time zone as the calling rules see it: the address's, then the numbers'."""
    zones, _, _ = whereabouts(zip_code, state, (p.number for p in phones if not p.wrong_number))
    return zones[0] if zones else fallback
