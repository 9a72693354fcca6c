"""A known quarter of outreach for two pharmacies, written straight into the database, with every
figure the program report must show for it worked out by hand (see EXPECTED)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from queues.auth import hash_password
from queues.store.models import (
    Attempt,
    Campaign,
    Fill,
    FollowUpAction,
    Patient,
    Pharmacy,
    Phone,
    Prescription,
    Task,
    User,
)
from tests.conftest import add_pharmacy

PASSWORD = "correct-horse-1"
START, END = date(2026, 7, 1), date(2026, 9, 28)  # 90 days: the PDC windows are 90 days too
CHICAGO = ZoneInfo("America/Chicago")


@dataclass(frozen=True)
class History:
    attempts: dict[str, int]  # label -> attempt id
    users: dict[str, int]


@lru_cache(maxsize=1)
def password_hash() -> str:
    return hash_password(PASSWORD)  # argon2 is slow on purpose: hash once per test run


def _pharmacy(session: Session, code: str) -> Pharmacy:
    return session.get_one(Pharmacy, add_pharmacy(session, code))


def _patient(session: Session, ph: Pharmacy, mrn: str) -> Patient:
    p = Patient(
        pharmacy_id=ph.id,
        mrn=mrn,
        first_name="Test",
        last_name=mrn,
        birth_date=date(1950, 1, 1),
        zip_code="75201",
        state="TX",
    )
    session.add(p)
    session.flush()
    session.add(Phone(patient_id=p.id, number="+12145550123", kind="mobile", rank=0))
    return p


def _rx(
    session: Session, patient: Patient, drug: str, pqa: str, fills: list[tuple[date, int]]
) -> int:
    rx = Prescription(patient_id=patient.id, drug_name=drug, ingredient=drug, pqa_class=pqa)
    session.add(rx)
    session.flush()
    for day, supply in fills:
        session.add(Fill(prescription_id=rx.id, fill_date=day, days_supply=supply, quantity=supply))
    return rx.id


def local(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), CHICAGO).astimezone(UTC)


def build_history(session: Session) -> History:
    tx1, tx2 = _pharmacy(session, "TX1"), _pharmacy(session, "TX2")
    users: dict[str, int] = {}
    for name, role, pharmacies in (
        ("ana", "agent", [tx1]),
        ("sue", "supervisor", [tx1]),
        ("tom", "supervisor", [tx2]),
        ("ada", "admin", [tx1, tx2]),
    ):
        u = User(
            username=name,
            display_name=name.title(),
            role=role,
            password_hash=password_hash(),
            pharmacies=pharmacies,
        )
        session.add(u)
        session.flush()
        users[name] = u.id
    refill = Campaign(
        pharmacy_id=None,
        kind="refill_reminder",
        name="Refill reminder",
        script_id="refill_reminder",
    )
    vaccine = Campaign(pharmacy_id=tx1.id, kind="vaccine", name="Vaccines", script_id="vaccine")
    office = Campaign(
        pharmacy_id=tx1.id,
        kind="prescriber_office",
        name="Prescriber offices",
        script_id="prescriber_office",
    )
    session.add_all([refill, vaccine, office])
    session.flush()

    a, b, c, d = (_patient(session, tx1, m) for m in ("A", "B", "C", "D"))
    e = _patient(session, tx2, "E")
    # A: statin, 30 of 90 days before the period (PDC 0.333), fully covered in it (1.0): crosses up.
    rx_a = _rx(
        session,
        a,
        "atorvastatin",
        "STATIN",
        [
            (date(2026, 4, 2), 30),
            (date(2026, 7, 1), 30),
            (date(2026, 7, 10), 30),
            (date(2026, 8, 9), 30),
        ],
    )
    # B: statin, 90 of 90 before (1.0); in the period first fill Jul 5, 30 of 86 days: falls below.
    rx_b = _rx(
        session, b, "simvastatin", "STATIN", [(date(2026, 4, 2), 90), (date(2026, 7, 5), 30)]
    )
    # C: RASA only in the period (1.0): measured at the end only.
    _rx(session, c, "lisinopril", "RASA", [(date(2026, 7, 1), 90)])

    def task(patient: Patient, camp: Campaign, subject: str, rx: int | None = None) -> int:
        t = Task(
            patient_id=patient.id,
            campaign_id=camp.id,
            prescription_id=rx,
            subject=subject,
            reason="due",
            status="done",
            created_at=datetime(2026, 6, 1, tzinfo=UTC),
        )
        session.add(t)
        session.flush()
        return t.id

    t_a = task(a, refill, f"rx:{rx_a}", rx_a)
    t_a_office = task(a, office, f"office:{rx_a}", rx_a)
    t_b = task(b, refill, f"rx:{rx_b}", rx_b)
    t_c = task(c, vaccine, "vaccine:zoster")
    t_d = task(d, refill, "rx:d")
    t_e = task(e, refill, "rx:e")

    attempts: dict[str, int] = {}
    n = 0

    def call(label: str, patient: Patient, at: datetime, disposition: str, tasks: list[int]) -> int:
        nonlocal n
        n += 1
        row = Attempt(
            uid=f"uid-{label}",
            patient_id=patient.id,
            user_id=users["ana"],
            phone_number="+12145550123",
            started_at=at,
            ended_at=at,
            disposition=disposition,
            task_ids={"open": tasks},
            answers={},
        )
        session.add(row)
        session.flush()
        attempts[label] = row.id
        return row.id

    def action(
        attempt: int, patient: Patient, kind: str, rx: int | None = None, **detail: str
    ) -> None:
        session.add(
            FollowUpAction(
                idempotency_key=f"{attempt}:{kind}:{detail}",
                attempt_id=attempt,
                patient_id=patient.id,
                pharmacy_id=patient.pharmacy_id,
                kind=kind,
                prescription_id=rx,
                detail=dict(detail),
                created_at=datetime(2026, 7, 1, tzinfo=UTC),
            )
        )

    # June 30, 23:30 in Chicago is July 1 in UTC: outside the period (and outside the window).
    before = call("A0", a, local(date(2026, 6, 30), 23, 30), "completed", [t_a])
    action(before, a, "refill_request", rx_a)
    call("A1", a, local(date(2026, 7, 6), 10), "no_answer", [t_a])
    a2 = call("A2", a, local(date(2026, 7, 7), 11), "completed", [t_a])
    action(a2, a, "refill_request", rx_a)  # filled Jul 10: 3 days
    action(a2, a, "prescriber_followup", rx_a)
    call("B1", b, local(date(2026, 7, 8), 14), "voicemail", [t_b])
    b2 = call("B2", b, local(date(2026, 7, 9), 15), "completed", [t_b])
    action(b2, b, "refill_request", rx_b)  # only fill is Jul 5, before the call: not filled
    action(b2, b, "med_sync_enrollment")
    c1 = call("C1", c, local(date(2026, 8, 3), 10, 30), "completed", [t_c])
    action(c1, c, "vaccine_interest", vaccine="zoster")
    action(c1, c, "vaccine_interest", vaccine="influenza")
    action(c1, c, "pharmacist_escalation")
    call("D1", d, local(date(2026, 8, 4), 21, 30), "no_answer", [t_d])  # after 21:00: outside
    call("O1", a, local(date(2026, 7, 10), 10), "completed", [t_a_office])
    call("O2", a, local(date(2026, 7, 13), 10), "no_answer", [t_a_office])
    call("E1", e, local(date(2026, 7, 14), 10), "completed", [t_e])
    return History(attempts, users)


EXPECTED_TX1: dict[str, Any] = {
    "patients_called": 4,
    "patients_reached": 3,
    "attempts": 6,
    "attempts_per_reached": 2.0,
    "campaigns": {
        # campaign: (patients called, reached, calls)
        "Refill reminder": (3, 2, 5),
        "Vaccines": (1, 1, 1),
    },
    "refills_requested": 2,
    "refills_filled": 1,
    "days_to_fill": (3,),
    "med_sync_enrollments": 1,
    "vaccine_interests": 2,
    "vaccine_by_kind": (("influenza", 1), ("zoster", 1)),
    "pharmacist_escalations": 1,
    "prescriber_calls": 2,
    "prescriber_outcomes": {"completed": 1, "no_answer": 1},
    "prescriber_followups": 1,
    "outside_policy": ("D1",),
    # class: (patients start, end, mean start, mean end, adherent start, end, crossed up, down)
    "pdc": {
        "STATIN": (2, 2, (30 / 90 + 1.0) / 2, (1.0 + 30 / 86) / 2, 1, 1, 1, 1),
        "RASA": (0, 1, None, 1.0, 0, 1, 0, 0),
    },
}
