"""A claimed patient as the agent sees them: frozen data, loaded by `queues.context`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

RECENT_FILLS = 6


@dataclass(frozen=True)
class PhoneView:
    id: int
    number: str
    kind: str
    best_time: str | None
    wrong_number: bool
    do_not_call: bool

    @property
    def dialable(self) -> bool:
        return not (self.wrong_number or self.do_not_call)


@dataclass(frozen=True)
class FillView:
    fill_date: date
    days_supply: int
    quantity: float
    estimated: bool = False  # worked out by an import, not dispensed as such


@dataclass(frozen=True)
class MedicationView:
    prescription_id: int
    drug_name: str
    pqa_class: str | None
    chronic: bool
    refills_left: int
    last_fill: date | None
    days_supply: int | None
    run_out: date | None
    fill_count: int
    recent_fills: tuple[FillView, ...]
    # The last fill was estimated by an import (no dispense in the source): show "estimated"
    # next to `run_out`.
    estimated: bool = False


@dataclass(frozen=True)
class AttemptView:
    started_at: datetime
    agent: str
    phone_number: str | None
    disposition: str
    disposition_label: str
    notes: str


@dataclass(frozen=True)
class TaskView:
    id: int
    campaign_kind: str
    campaign_name: str
    script_id: str
    reason: str
    due_on: date | None
    priority_parts: dict[str, object]
    subject: str = ""  # e.g. "refill", "vaccine:influenza": what the script speaks about
    prescription_id: int | None = None


@dataclass(frozen=True)
class PharmacyView:
    id: int
    code: str
    name: str
    caller_id: str
    callback_number: str
    timezone: str


@dataclass(frozen=True)
class PatientContext:
    id: int
    mrn: str
    first_name: str
    last_name: str
    birth_date: date
    age: int
    language: str
    zip_code: str
    state: str
    caregiver_name: str | None
    caregiver_relation: str | None
    caregiver_phone: str | None
    caregiver_authorized: bool
    do_not_call: bool
    pharmacy: PharmacyView
    phones: tuple[PhoneView, ...]
    medications: tuple[MedicationView, ...]
    attempts: tuple[AttemptView, ...]
    tasks: tuple[TaskView, ...]
    # Condition names, for the script's conditions (shown only after identity is verified).
    conditions: tuple[str, ...] = ()
    # The patient's own time zone (from the address's ZIP, else the numbers' area codes; the
    # pharmacy's when neither is known): the clock the agent reads while holding them.
    timezone: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def best_phone(self) -> PhoneView | None:
        return next((p for p in self.phones if p.dialable), None)
