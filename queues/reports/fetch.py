"""The rows a program report reads, for all of its pharmacies at once: one query per kind of data,
rows as plain tuples ordered by pharmacy so each section walks its own run of them.

Call times are bounded by the union of the pharmacies' local periods (their zones differ); each
section keeps the rows inside its own bounds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Executable, select
from sqlalchemy.orm import Session

from queues.store.models import Attempt, Fill, FollowUpAction, Patient, Prescription, Task

_CHUNK = 500  # ids per IN list, for the rare task that is not one of the called patients'

# (attempt id, patient id, started at, disposition, dialed number, open task ids)
CallRow = tuple[int, int, datetime, str, str | None, Any]
# (kind, patient id, prescription id, call started at, detail, attempt id, action id)
ActionRow = tuple[str, int, int | None, datetime, Any, int, int]
# (PQA class, patient id, drug, fill date, days supply), ordered by class then patient
PdcRow = tuple[str, int, str, date, int]


@dataclass(frozen=True)
class Rows:
    """Everything the sections need, keyed by pharmacy id where it belongs to one."""

    calls: dict[int, list[CallRow]]
    task_campaign: dict[int, int]
    actions: dict[int, list[ActionRow]]
    rx_fills: dict[int, list[date]]  # prescription id -> fill dates from the period start, sorted
    pdc: dict[int, list[PdcRow]]
    homes: dict[int, tuple[str, str | None]]  # patient id -> (ZIP, state) of called patients


def fetch(
    session: Session,
    pharmacy_ids: Sequence[int],
    lo: datetime,
    hi: datetime,
    start: date,
    fills_from: date,
    fills_to: date,
) -> Rows:
    """Calls in [lo, hi), their actions, tasks and patients; class fills in fills_from..fills_to."""
    ids = list(pharmacy_ids)
    session.flush()  # the caller's pending rows count, as the ORM's autoflush would make them
    conn = session.connection()  # Core rows: no ORM loading step for plain columns
    in_window = (Attempt.started_at >= lo, Attempt.started_at < hi)
    called = (
        select(Attempt.patient_id)
        .join(Patient, Patient.id == Attempt.patient_id)
        .where(Patient.pharmacy_id.in_(ids), *in_window)
    )
    calls = _by_pharmacy(
        conn,
        select(
            Patient.pharmacy_id,
            Attempt.id,
            Attempt.patient_id,
            Attempt.started_at,
            Attempt.disposition,
            Attempt.phone_number,
            Attempt.task_ids,
        )
        .join(Patient, Patient.id == Attempt.patient_id)
        .where(Patient.pharmacy_id.in_(ids), *in_window)
        .order_by(Patient.pharmacy_id, Attempt.started_at, Attempt.id),
    )
    # A call works its own patient's tasks: take those tasks in one join, and look up any other
    # id the calls name (none, normally) by id.
    task_campaign: dict[int, int] = dict(
        conn.execute(select(Task.id, Task.campaign_id).where(Task.patient_id.in_(called))).all()
    )
    wanted = {t for rows in calls.values() for r in rows for t in open_tasks(r[5])}
    missing = sorted(wanted - task_campaign.keys())
    for chunk in _chunks(missing):
        task_campaign.update(
            conn.execute(select(Task.id, Task.campaign_id).where(Task.id.in_(chunk))).all()
        )
    action_filter = (FollowUpAction.pharmacy_id.in_(ids), *in_window)
    actions = _by_pharmacy(
        conn,
        select(
            FollowUpAction.pharmacy_id,
            FollowUpAction.kind,
            FollowUpAction.patient_id,
            FollowUpAction.prescription_id,
            Attempt.started_at,
            FollowUpAction.detail,
            FollowUpAction.attempt_id,
            FollowUpAction.id,
        )
        .join(Attempt, Attempt.id == FollowUpAction.attempt_id)
        .where(*action_filter)
        .order_by(FollowUpAction.pharmacy_id, FollowUpAction.id),
    )
    requested = (
        select(FollowUpAction.prescription_id)
        .join(Attempt, Attempt.id == FollowUpAction.attempt_id)
        .where(*action_filter, FollowUpAction.kind == "refill_request")
    )
    rx_fills: dict[int, list[date]] = defaultdict(list)
    # A call's local date is never before the period start, so earlier fills cannot follow it.
    for rx, day in conn.execute(
        select(Fill.prescription_id, Fill.fill_date)
        .where(Fill.prescription_id.in_(requested), Fill.fill_date >= start)
        .order_by(Fill.prescription_id, Fill.fill_date)
    ).all():
        rx_fills[rx].append(day)
    pdc = _by_pharmacy(
        conn,
        select(
            Patient.pharmacy_id,
            Prescription.pqa_class,
            Prescription.patient_id,
            Prescription.ingredient,
            Fill.fill_date,
            Fill.days_supply,
        )
        .join(Fill, Fill.prescription_id == Prescription.id)
        .join(Patient, Patient.id == Prescription.patient_id)
        .where(
            Patient.pharmacy_id.in_(ids),
            Prescription.pqa_class.is_not(None),
            Fill.fill_date >= fills_from,
            Fill.fill_date <= fills_to,
        )
        .order_by(Patient.pharmacy_id, Prescription.pqa_class, Prescription.patient_id),
    )
    homes: dict[int, tuple[str, str | None]] = {
        pid: (zip_code, state)
        for pid, zip_code, state in conn.execute(
            select(Patient.id, Patient.zip_code, Patient.state).where(
                Patient.pharmacy_id.in_(ids), Patient.id.in_(called)
            )
        ).all()
    }
    return Rows(calls, task_campaign, actions, dict(rx_fills), pdc, homes)


def _by_pharmacy(conn: Connection, query: Executable) -> dict[int, list[Any]]:
    """Rows of a query whose first column is the pharmacy id (and its first sort key)."""
    rows = conn.execute(query).all()  # one fetchall: iterating a result fetches row by row
    return {ph: [r[1:] for r in run] for ph, run in groupby(rows, key=itemgetter(0))}


def open_tasks(task_ids: Any) -> list[int]:
    if not isinstance(task_ids, dict):
        return []
    return [int(t) for t in task_ids.get("open", []) if isinstance(t, int | str)]


def _chunks(ids: Sequence[int]) -> Iterator[Sequence[int]]:
    for i in range(0, len(ids), _CHUNK):
        yield ids[i : i + _CHUNK]
