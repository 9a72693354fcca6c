"""What the campaign rules read, loaded once per build with a few set-based queries."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from queues.adherence.supply import MAX_DAYS_SUPPLY
from queues.building.scope import IN_SCOPE, in_scope
from queues.store.models import (
    Attempt,
    Callback,
    Campaign,
    Condition,
    Immunization,
    Pharmacy,
)

log = logging.getLogger(__name__)


class PatientRow(NamedTuple):
    """Tuples, not frozen dataclasses: a build makes one per patient and prescription, and a
    frozen dataclass's __init__ costs a microsecond more each (a third of a second a build)."""

    id: int
    pharmacy_id: int
    birth_date: date
    do_not_call: bool
    deceased: bool
    med_sync_enrolled: bool
    med_sync_day: int | None
    tobacco_use: bool
    hospice: bool
    esrd: bool

    def age(self, today: date) -> int:
        b = self.birth_date
        return today.year - b.year - ((today.month, today.day) < (b.month, b.day))

    @property
    def reachable(self) -> bool:
        return not (self.do_not_call or self.deceased)


class RxRow(NamedTuple):
    id: int
    patient_id: int
    ingredient: str
    pqa_class: str | None
    chronic: bool
    refills_left: int


@dataclass
class Snapshot:
    patients: dict[int, PatientRow]
    prescriptions: list[RxRow]
    fills: dict[int, list[tuple[date, int]]]  # prescription -> (fill date, days supply), sorted
    conditions: dict[int, set[str]]
    immunizations: dict[int, list[tuple[str, date]]]
    campaigns: dict[tuple[int | None, str], tuple[int, float]]  # (pharmacy, kind) -> (id, weight)
    pharmacy_priority: dict[int, int]
    attempts_since: dict[int, int] = field(default_factory=dict)  # patient -> recent attempts
    callbacks_due: dict[int, datetime] = field(default_factory=dict)
    pharmacy_zone: dict[int, str] = field(default_factory=dict)

    def by_zone(self) -> dict[str, Snapshot]:
        """One view per pharmacy time zone, so each rule's "today" is the pharmacy's own date."""
        zones: dict[str, set[int]] = defaultdict(set)
        for pharmacy_id, zone in self.pharmacy_zone.items():
            zones[zone].add(pharmacy_id)
        out = {}
        for zone, pharmacy_ids in sorted(zones.items()):
            patients = {k: p for k, p in self.patients.items() if p.pharmacy_id in pharmacy_ids}
            out[zone] = replace(
                self,
                patients=patients,
                prescriptions=[rx for rx in self.prescriptions if rx.patient_id in patients],
            )
        return out

    def parts(self, size: int) -> Iterator[tuple[str, Snapshot]]:
        """The zone views (`by_zone`) cut into views of at most `size` patients each, in patient
        order: every rule reads one patient's own rows only, so the parts' tasks together are the
        whole's, and a build can write one part's while the rules work out the next."""
        for zone, whole in self.by_zone().items():
            ids = list(whole.patients)
            if len(ids) <= size:
                yield zone, whole
                continue
            part_of = {pid: i // size for i, pid in enumerate(ids)}
            prescriptions: list[list[RxRow]] = [[] for _ in range(0, len(ids), size)]
            for rx in whole.prescriptions:
                prescriptions[part_of[rx.patient_id]].append(rx)
            for n, start in enumerate(range(0, len(ids), size)):
                patients = {pid: whole.patients[pid] for pid in ids[start : start + size]}
                yield zone, replace(whole, patients=patients, prescriptions=prescriptions[n])

    def campaign(self, pharmacy_id: int, kind: str) -> tuple[int, float] | None:
        return self.campaigns.get((pharmacy_id, kind)) or self.campaigns.get((None, kind))

    def rx_by_patient(self) -> dict[int, list[RxRow]]:
        out: dict[int, list[RxRow]] = defaultdict(list)
        for rx in self.prescriptions:
            out[rx.patient_id].append(rx)
        return out


def load_snapshot(
    session: Session, now: datetime, attempts_window_days: int = 30, *, scoped: bool = False
) -> Snapshot:
    """Everything the rules read; with `scoped`, of the patients in build_scope only."""
    session.flush()  # the driver-level reads below do not autoflush the caller's pending rows
    conn = session.connection()
    only = f" AND patient_id {IN_SCOPE}" if scoped else ""

    def mine(query: Any, patient_id: Any) -> Any:
        return query.where(in_scope(patient_id)) if scoped else query

    # The three big reads go through the driver as plain tuples: no ORM, no per-value type
    # processing. SQLite hands dates back as ISO text, PostgreSQL as dates.
    day = date.fromisoformat if conn.dialect.name == "sqlite" else _same
    patients = {
        pid: PatientRow(
            pid,
            pharmacy_id,
            day(birth_date),
            bool(dnc),
            bool(deceased),
            bool(enrolled),
            sync_day,
            bool(tobacco),
            bool(hospice),
            bool(esrd),
        )
        for (
            pid,
            pharmacy_id,
            birth_date,
            dnc,
            deceased,
            enrolled,
            sync_day,
            tobacco,
            hospice,
            esrd,
        ) in driver_rows(
            conn,
            "SELECT id, pharmacy_id, birth_date, do_not_call, deceased, med_sync_enrolled, "
            "med_sync_day, tobacco_use, hospice, esrd FROM patients"
            + (f" WHERE id {IN_SCOPE}" if scoped else ""),
        )
    }
    prescriptions = [
        RxRow(rx_id, patient_id, ingredient, pqa_class, bool(chronic), refills_left)
        for rx_id, patient_id, ingredient, pqa_class, chronic, refills_left in driver_rows(
            conn,
            "SELECT id, patient_id, ingredient, pqa_class, chronic, refills_left "
            f"FROM prescriptions WHERE active{only} ORDER BY id",
        )
    ]
    fills: dict[int, list[tuple[date, int]]] = defaultdict(list)
    # In the table's order, each prescription's fills sorted here: ordered by prescription and
    # date, the read walks an index and the table at random (1.06 s against 0.66 s on SQLite, a
    # million fills; 0.74 s against 0.59 s on PostgreSQL), where sorting a few fills is cheap.
    too_long = 0
    for rx_id, fill_date, days in driver_rows(
        conn,
        "SELECT prescription_id, fill_date, days_supply FROM fills"
        + (
            f" WHERE prescription_id IN (SELECT id FROM prescriptions WHERE patient_id {IN_SCOPE})"
            if scoped
            else ""
        ),
    ):
        if days > MAX_DAYS_SUPPLY:
            too_long += 1
            continue
        fills[rx_id].append((day(fill_date), days))
    for of_one in fills.values():
        of_one.sort()
    if too_long:
        # Skipped, not fatal: one bad row must not stop every agent's queue. Identifiers only.
        named = [
            f"fill {fill_id} (prescription {rx_id}): {days} days"
            for fill_id, rx_id, days in driver_rows(
                conn,
                "SELECT id, prescription_id, days_supply FROM fills "
                f"WHERE days_supply > {int(MAX_DAYS_SUPPLY)}"
                + (
                    " AND prescription_id IN "
                    f"(SELECT id FROM prescriptions WHERE patient_id {IN_SCOPE})"
                    if scoped
                    else ""
                )
                + " ORDER BY id LIMIT 20",
            )
        ]
        log.warning(
            "queue build: %d fill(s) left out, days supply over %d per fill: %s",
            too_long,
            MAX_DAYS_SUPPLY,
            "; ".join(named) + (" ..." if too_long > 20 else ""),
        )
    conditions: dict[int, set[str]] = defaultdict(set)
    for patient_id, code in session.execute(
        mine(select(Condition.patient_id, Condition.code), Condition.patient_id)
    ):
        conditions[patient_id].add(code)
    immunizations: dict[int, list[tuple[str, date]]] = defaultdict(list)
    for patient_id, vaccine, given in session.execute(
        mine(
            select(Immunization.patient_id, Immunization.vaccine, Immunization.given_on),
            Immunization.patient_id,
        )
    ):
        immunizations[patient_id].append((vaccine, given))
    campaigns = {
        (c.pharmacy_id, c.kind): (c.id, c.weight)
        for c in session.scalars(select(Campaign).where(Campaign.active.is_(True)))
    }
    priority: dict[int, int] = {}
    zones: dict[int, str] = {}
    for pharmacy_id, pharmacy_priority, zone in session.execute(
        select(Pharmacy.id, Pharmacy.priority, Pharmacy.timezone)
    ):
        priority[pharmacy_id] = pharmacy_priority
        zones[pharmacy_id] = zone
    since = now - timedelta(days=attempts_window_days)
    attempts: dict[int, int] = dict(
        session.execute(
            mine(select(Attempt.patient_id, func.count()), Attempt.patient_id)
            .where(Attempt.started_at >= since)
            .group_by(Attempt.patient_id)
        ).all()
    )
    callbacks: dict[int, datetime] = dict(
        session.execute(
            mine(select(Callback.patient_id, func.min(Callback.due_at)), Callback.patient_id)
            .where(Callback.status == "pending")
            .group_by(Callback.patient_id)
        ).all()
    )
    return Snapshot(
        patients,
        prescriptions,
        fills,
        conditions,
        immunizations,
        campaigns,
        priority,
        attempts,
        callbacks,
        zones,
    )


def driver_rows(conn: Connection, sql: str) -> list[Any]:
    """All rows of `sql` as the driver's own tuples, in the session's transaction: a million
    fills through SQLAlchemy's Row objects cost seconds more than the read itself."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _same(value: date) -> date:
    return value
