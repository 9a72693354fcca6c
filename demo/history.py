"""The demo's past calls: three months of a floor's work, so the report and the floor have
something true to show from the first run.

Every disposition the database knows appears (the first calls go through them in turn), each call
with its script answers and the follow-up actions it produced, a closed task per call (so a call
belongs to its campaign) and a done callback where one was asked for. A call's outcome stays true
afterwards: a wrong number is marked wrong, a patient who asked not to be called or died is
suppressed. Calls are placed on weekdays between 12:00 and 16:30 at the pharmacy, so every one of
them is inside every patient's calling window (the report's "calls outside policy" is 0), and end
a week before the practice clock so that no cap of the current week is spent.

Deterministic: the same seed and practice time give the same calls.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from queues.store.models import (
    Attempt,
    Callback,
    Campaign,
    DispositionCode,
    Fill,
    FollowUpAction,
    Patient,
    Pharmacy,
    Phone,
    Prescription,
    Task,
    User,
)

HISTORY_DAYS = 90  # what `outreach demo` writes
QUIET_DAYS = 7  # the last week before the practice clock has no past calls (caps are weekly)
CALLS_PER_PATIENT_PER_DAY = 0.03  # 500 patients: about 15 calls a weekday

# How often each outcome happens on a pharmacy outreach floor (weights; any code the database
# has and this list lacks gets weight 1).
OUTCOME_WEIGHTS = {
    "completed": 32,
    "voicemail": 16,
    "no_answer": 20,
    "busy": 5,
    "callback_requested": 6,
    "transferred_pharmacist": 5,
    "refused": 4,
    "wrong_number": 3,
    "do_not_call": 1,
    "deceased": 0.3,
    "line_failed": 2,
}
CAMPAIGN_WEIGHTS = {
    "refill_reminder": 40,
    "adherence": 15,
    "med_sync_enrollment": 10,
    "pre_sync_check": 8,
    "post_dispense": 10,
    "vaccine": 10,
    "diabetes_education": 4,
    "smoking_cessation": 3,
}
VACCINES = ("influenza", "zoster", "pneumococcal", "rsv", "covid-19")


@dataclass(frozen=True)
class History:
    calls: int
    actions: int
    by_disposition: dict[str, int]


@dataclass(frozen=True)
class _Patient:
    id: int
    pharmacy_id: int
    zone: str
    number: str | None
    phone_id: int | None
    chronic_rx: tuple[int, ...]
    fills: dict[int, tuple[date, ...]]  # chronic prescription -> its fill dates, ascending


def write_history(
    session: Session, seed: int, start: datetime, days: int = HISTORY_DAYS
) -> History:
    """Past calls from `days` before `start` to a week before it, in the caller's transaction."""
    rng = random.Random(seed * 7919 + 90)
    codes = [
        (code, reached)
        for code, reached in session.execute(
            select(DispositionCode.code, DispositionCode.reached).order_by(
                DispositionCode.sort_order, DispositionCode.code
            )
        )
    ]
    reached_of = dict(codes)
    weights = [OUTCOME_WEIGHTS.get(code, 1.0) for code, _ in codes]
    agents = list(session.scalars(select(User.id).where(User.role == "agent").order_by(User.id)))
    campaigns: dict[int, list[tuple[int, str]]] = {}
    for cid, pharmacy_id, kind in session.execute(
        select(Campaign.id, Campaign.pharmacy_id, Campaign.kind).order_by(Campaign.id)
    ):
        if pharmacy_id is not None:
            campaigns.setdefault(pharmacy_id, []).append((cid, kind))
    patients = _patients(session)
    if not patients or not agents or not codes:
        return History(0, 0, {})
    first_day = start.date() - timedelta(days=days)
    last_day = start.date() - timedelta(days=QUIET_DAYS + 1)
    per_day = max(1, round(len(patients) * CALLS_PER_PATIENT_PER_DAY))

    attempts: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    actions: list[tuple[int, dict[str, Any]]] = []  # (index of the attempt, action row)
    callbacks: list[tuple[int, dict[str, Any]]] = []
    suppress_patients: set[int] = set()
    deceased: set[int] = set()
    wrong_phones: set[int] = set()
    gone: set[int] = set()  # no more calls after do-not-call or deceased
    by_disposition: dict[str, int] = {}
    n = 0
    day = first_day
    while day <= last_day:
        if day.weekday() < 5:
            for _ in range(per_day):
                p = rng.choice(patients)
                if p.id in gone or p.number is None:
                    continue
                # The first calls go through every code in turn: each one is in the history.
                code = codes[n][0] if n < len(codes) else rng.choices(codes, weights)[0][0]
                cid, kind = rng.choices(
                    campaigns[p.pharmacy_id],
                    [CAMPAIGN_WEIGHTS.get(k, 1) for _, k in campaigns[p.pharmacy_id]],
                )[0]
                started = _call_time(rng, day, p.zone)
                talk = (
                    rng.randint(150, 540)
                    if reached_of[code]
                    else rng.randint(20, 60)
                    if code != "line_failed"
                    else 2
                )
                ended = started + timedelta(seconds=talk)
                uid = f"demo-{seed}-{n:06d}"
                attempts.append(
                    {
                        "uid": uid,
                        "patient_id": p.id,
                        "user_id": rng.choice(agents),
                        "phone_number": p.number,
                        "dial_mode": "manual",
                        "call_result": _call_result(code, reached_of[code]),
                        "sip_status": 503 if code == "line_failed" else None,
                        "started_at": started,
                        "connected_at": started + timedelta(seconds=12)
                        if reached_of[code]
                        else None,
                        "ended_at": ended,
                        "disposition": code,
                        "notes": "",
                        "script_id": kind,
                        "answers": _answers(rng, kind, code, reached_of[code]),
                        "task_ids": {},
                        "recorded_at": ended + timedelta(seconds=rng.randint(20, 150)),
                    }
                )
                tasks.append(
                    {
                        "patient_id": p.id,
                        "campaign_id": cid,
                        "subject": f"history:{uid}",
                        "reason": "past call (demo history)",
                        "status": "done",
                        "priority_parts": {},
                        "created_at": started - timedelta(days=rng.randint(1, 5)),
                        "closed_at": ended,
                        "closed_reason": code,
                        "score": 0.0,
                    }
                )
                for kind_done, rx, detail in _follow_ups(rng, kind, code, p, day):
                    actions.append(
                        (
                            n,
                            {
                                "idempotency_key": f"{uid}:{len(actions)}",
                                "patient_id": p.id,
                                "pharmacy_id": p.pharmacy_id,
                                "kind": kind_done,
                                "prescription_id": rx,
                                "detail": detail,
                                "created_at": ended,
                                "status": "pending",
                                "tries": 0,
                            },
                        )
                    )
                if code == "callback_requested":
                    callbacks.append(
                        (
                            n,
                            {
                                "patient_id": p.id,
                                "due_at": started + timedelta(days=1),
                                "owner_id": None,
                                "status": "done",
                            },
                        )
                    )
                if code == "wrong_number" and p.phone_id is not None:
                    wrong_phones.add(p.phone_id)
                if code == "do_not_call":
                    suppress_patients.add(p.id)
                    gone.add(p.id)
                if code == "deceased":
                    deceased.add(p.id)
                    gone.add(p.id)
                by_disposition[code] = by_disposition.get(code, 0) + 1
                n += 1
        day += timedelta(days=1)

    attempt_ids = _insert_returning_ids(session, Attempt, attempts)
    task_ids = _insert_returning_ids(session, Task, tasks)
    for i, (aid, tid) in enumerate(zip(attempt_ids, task_ids, strict=True)):
        attempts[i]["id"] = aid
        tasks[i]["id"] = tid
    session.execute(
        update(Attempt),
        [
            {"id": a["id"], "task_ids": {"open": [t["id"]]}}
            for a, t in zip(attempts, tasks, strict=True)
        ],
    )
    session.execute(
        update(Task),
        [
            {"id": t["id"], "success_attempt_id": a["id"]}
            for a, t in zip(attempts, tasks, strict=True)
            if reached_of[a["disposition"]]
        ],
    )
    if actions:
        session.execute(
            insert(FollowUpAction), [dict(row, attempt_id=attempt_ids[i]) for i, row in actions]
        )
    if callbacks:
        session.execute(
            insert(Callback), [dict(row, attempt_id=attempt_ids[i]) for i, row in callbacks]
        )
    if wrong_phones:
        session.execute(
            update(Phone).where(Phone.id.in_(sorted(wrong_phones))).values(wrong_number=True)
        )
    if suppress_patients:
        session.execute(
            update(Patient)
            .where(Patient.id.in_(sorted(suppress_patients)))
            .values(do_not_call=True)
        )
    if deceased:
        session.execute(
            update(Patient).where(Patient.id.in_(sorted(deceased))).values(deceased=True)
        )
    return History(len(attempts), len(actions), by_disposition)


def _insert_returning_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Ids in the order of the rows (one INSERT per row keeps the order on both databases)."""
    ids = []
    for row in rows:
        ids.append(
            int(session.execute(insert(model).values(**row).returning(model.id)).scalar_one())
        )
    return ids


def _patients(session: Session) -> list[_Patient]:
    zones = dict(session.execute(select(Pharmacy.id, Pharmacy.timezone)).all())
    phones: dict[int, tuple[int, str]] = {}
    for pid, phone_id, number in session.execute(
        select(Phone.patient_id, Phone.id, Phone.number)
        .where(Phone.wrong_number.is_(False), Phone.do_not_call.is_(False))
        .order_by(Phone.patient_id, Phone.rank, Phone.id)
    ):
        phones.setdefault(pid, (phone_id, number))
    rx: dict[int, dict[int, list[date]]] = {}
    for pid, rx_id, filled in session.execute(
        select(Prescription.patient_id, Prescription.id, Fill.fill_date)
        .join(Fill, Fill.prescription_id == Prescription.id)
        .where(Prescription.chronic.is_(True))
        .order_by(Prescription.patient_id, Prescription.id, Fill.fill_date)
    ):
        rx.setdefault(pid, {}).setdefault(rx_id, []).append(filled)
    out = []
    for pid, pharmacy_id in session.execute(
        select(Patient.id, Patient.pharmacy_id)
        .where(Patient.do_not_call.is_(False), Patient.deceased.is_(False))
        .order_by(Patient.id)
    ):
        phone = phones.get(pid)
        out.append(
            _Patient(
                pid,
                pharmacy_id,
                zones[pharmacy_id],
                phone[1] if phone else None,
                phone[0] if phone else None,
                tuple(rx.get(pid, {})),
                {k: tuple(v) for k, v in rx.get(pid, {}).items()},
            )
        )
    return out


def _call_time(rng: random.Random, day: date, zone: str) -> datetime:
    minutes = rng.randint(0, 270)  # 12:00 to 16:30 at the pharmacy
    local = datetime.combine(day, time(12), ZoneInfo(zone)) + timedelta(minutes=minutes)
    return local.astimezone(ZoneInfo("UTC"))


def _call_result(code: str, reached: bool) -> str:
    if code == "line_failed":
        return "failed"
    if code == "busy":
        return "busy"
    if reached or code in ("voicemail", "wrong_number", "deceased"):
        return "connected"
    return "no_answer"


def _answers(rng: random.Random, kind: str, code: str, reached: bool) -> dict[str, Any]:
    if not reached:
        return {"opening": {"reached": "voicemail" if code == "voicemail" else "no"}}
    out: dict[str, Any] = {"opening": {"reached": "yes", "identity": "verified"}}
    if code != "completed":
        return out
    if kind in ("refill_reminder", "pre_sync_check", "adherence"):
        out[kind] = {"wants_refill": "yes" if rng.random() < 0.8 else "no"}
    elif kind == "med_sync_enrollment":
        out[kind] = {"enroll": "yes" if rng.random() < 0.6 else "no"}
    elif kind == "vaccine":
        out[kind] = {"interested": "yes" if rng.random() < 0.55 else "no"}
    else:
        out[kind] = {"understood": "yes"}
    return out


def _due_first(p: _Patient, day: date) -> tuple[int, int]:
    """The prescription whose next fill comes soonest after the call (the one a refill reminder
    is about), and the days to that fill."""

    def wait(rx: int) -> int:
        later = [d for d in p.fills.get(rx, ()) if d >= day]
        return (later[0] - day).days if later else 10**6

    rx = min(p.chronic_rx, key=lambda r: (wait(r), r))
    return rx, wait(rx)


def _follow_ups(
    rng: random.Random, kind: str, code: str, p: _Patient, day: date
) -> list[tuple[str, int | None, dict[str, Any]]]:
    out: list[tuple[str, int | None, dict[str, Any]]] = []
    if code == "transferred_pharmacist":
        out.append(("pharmacist_escalation", None, {"why": "question for the pharmacist"}))
    if code != "completed":
        return out
    if kind in ("refill_reminder", "pre_sync_check", "adherence") and p.chronic_rx:
        rx, days = _due_first(p, day)
        # A patient whose supply lasts another fortnight says "not yet"; the rest ask for it.
        if days <= 12 and rng.random() < 0.85:
            out.append(("refill_request", rx, {"source": "script"}))
    elif kind == "med_sync_enrollment" and rng.random() < 0.6:
        out.append(("med_sync_enrollment", None, {"source": "script"}))
    elif kind == "vaccine" and rng.random() < 0.55:
        out.append(("vaccine_interest", None, {"vaccine": rng.choice(VACCINES)}))
    if p.chronic_rx and rng.random() < 0.04:
        out.append(("prescriber_followup", rng.choice(p.chronic_rx), {"why": "no refills left"}))
    return out
