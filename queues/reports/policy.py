"""Which calls in a report fell outside the patient's calling window.

With the compliance module (`queues.compliance`) each call is judged by the windows that applied
to the patient: federal 08:00-21:00 (47 CFR 64.1200(c)(1)) in every zone the patient's ZIP and
the dialed number give, stricter state rules, the pharmacy's own window and hours. When a
patient's zone is unknown the federal hours are applied in the pharmacy's time zone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from queues.compliance.check import PharmacyHours, legal_windows, whereabouts
from queues.compliance.patient import limits_for
from queues.settings import QueueSettings
from queues.store.models import Patient, Pharmacy

FEDERAL_OPEN = time(8, 0)
FEDERAL_CLOSE = time(21, 0)

# (call started at, patient id, dialed number) -> True when the call was inside the window
WindowCheck = Callable[[datetime, int, str | None], bool]


def federal_window(zone: str) -> tuple[str, WindowCheck]:
    tz = ZoneInfo(zone)

    def inside(started_at: datetime, _patient_id: int, _number: str | None) -> bool:
        local = started_at.astimezone(tz).time()
        return FEDERAL_OPEN <= local < FEDERAL_CLOSE

    return f"federal 08:00-21:00 in the pharmacy's time zone ({zone})", inside


def window_check(
    session: Session,
    pharmacy: Pharmacy,
    patient_ids: Iterable[int],
    settings: QueueSettings | None = None,
    *,
    homes: Mapping[int, tuple[str, str | None]] | None = None,
) -> tuple[str, WindowCheck]:
    """The compliance module's windows (the federal hours where a patient's zone is unknown).

    `homes` (patient id -> ZIP, state), when the caller has them, saves reading the patients."""
    return _compliance_check(session, pharmacy, sorted(set(patient_ids)), settings, homes)


def _compliance_check(
    session: Session,
    pharmacy: Pharmacy,
    patient_ids: Sequence[int],
    settings: QueueSettings | None,
    known: Mapping[int, tuple[str, str | None]] | None,
) -> tuple[str, WindowCheck]:
    limits = limits_for(pharmacy, settings or QueueSettings())
    hours = PharmacyHours(pharmacy.code, pharmacy.timezone, pharmacy.opens_at, pharmacy.closes_at)
    homes: dict[int, tuple[str, str | None]] = {}
    if known is not None:
        homes.update((pid, known[pid]) for pid in patient_ids if pid in known)
        patient_ids = [pid for pid in patient_ids if pid not in known]
    for i in range(0, len(patient_ids), 500):
        chunk = patient_ids[i : i + 500]
        homes.update(
            (pid, (zip_code, state))
            for pid, zip_code, state in session.execute(
                select(Patient.id, Patient.zip_code, Patient.state).where(Patient.id.in_(chunk))
            )
        )
    _, federal = federal_window(pharmacy.timezone)
    cache: dict[tuple[int, str | None], list[Any] | None] = {}

    def windows_for(patient_id: int, number: str | None) -> list[Any] | None:
        key = (patient_id, number)
        if key not in cache:
            zip_code, state = homes.get(patient_id, ("", None))
            zones, states, home_state = whereabouts(
                zip_code or "", state, [number] if number else []
            )
            cache[key] = legal_windows(zones, states, limits, hours, home_state) if zones else None
        return cache[key]

    def inside(started_at: datetime, patient_id: int, number: str | None) -> bool:
        windows = windows_for(patient_id, number)
        if windows is None:  # no zone known for the patient: the pharmacy's clock
            return federal(started_at, patient_id, number)
        return all(w.is_open(started_at) for w in windows)

    return (
        "the patient's calling window when called (federal and state hours in the patient's "
        "zones, the pharmacy's window and hours)",
        inside,
    )
