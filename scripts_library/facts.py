"""What a flow may know about the call: the patient's facts and the subjects due, as plain data.

Built from `queues.context.PatientContext` in the console, or from a synthetic sample for
`outreach scripts try`; the engine never sees an ORM object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from queues.views.patient import PatientContext


@dataclass(frozen=True)
class Medication:
    prescription_id: int
    drug_name: str
    chronic: bool = True
    run_out: date | None = None
    last_fill: date | None = None
    days_supply: int | None = None
    refills_left: int = 0


@dataclass(frozen=True)
class PatientFacts:
    first_name: str
    last_name: str
    birth_date: date
    age: int
    language: str
    pharmacy_name: str
    pharmacy_callback: str
    agent_name: str = ""
    patient_id: int | None = None
    caregiver_name: str | None = None
    caregiver_relation: str | None = None
    caregiver_authorized: bool = False
    medications: tuple[Medication, ...] = ()
    conditions: tuple[str, ...] = ()

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def medication(self, prescription_id: int | None) -> Medication | None:
        return next((m for m in self.medications if m.prescription_id == prescription_id), None)


@dataclass(frozen=True)
class DueItem:
    """One subject the patient is due for (one open task)."""

    kind: str
    subject: str
    task_id: int | None = None
    prescription_id: int | None = None
    reason: str = ""
    script_id: str | None = None
    parts: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "subject": self.subject,
            "task_id": self.task_id,
            "prescription_id": self.prescription_id,
            "reason": self.reason,
            "script_id": self.script_id,
            "parts": dict(self.parts),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DueItem:
        return cls(
            kind=str(data["kind"]),
            subject=str(data["subject"]),
            task_id=data.get("task_id"),
            prescription_id=data.get("prescription_id"),
            reason=str(data.get("reason", "")),
            script_id=data.get("script_id"),
            parts=dict(data.get("parts") or {}),
        )


def facts_from_context(ctx: PatientContext, agent_name: str) -> PatientFacts:
    return PatientFacts(
        patient_id=ctx.id,
        first_name=ctx.first_name,
        last_name=ctx.last_name,
        birth_date=ctx.birth_date,
        age=ctx.age,
        language=ctx.language,
        pharmacy_name=ctx.pharmacy.name,
        pharmacy_callback=ctx.pharmacy.callback_number,
        agent_name=agent_name,
        caregiver_name=ctx.caregiver_name,
        caregiver_relation=ctx.caregiver_relation,
        caregiver_authorized=ctx.caregiver_authorized,
        medications=tuple(
            Medication(
                prescription_id=m.prescription_id,
                drug_name=m.drug_name,
                chronic=m.chronic,
                run_out=m.run_out,
                last_fill=m.last_fill,
                days_supply=m.days_supply,
                refills_left=m.refills_left,
            )
            for m in ctx.medications
        ),
        conditions=ctx.conditions,
    )


def items_from_context(ctx: PatientContext) -> tuple[DueItem, ...]:
    """The patient's open tasks as due items (a task made by hand without a subject gets one
    rebuilt from its priority parts)."""
    items = []
    for task in ctx.tasks:
        rx = task.prescription_id
        subject = task.subject or _subject_from_parts(task.campaign_kind, task.priority_parts)
        items.append(
            DueItem(
                kind=task.campaign_kind,
                subject=subject,
                task_id=task.id,
                prescription_id=rx,
                reason=task.reason,
                script_id=task.script_id,
                parts=dict(task.priority_parts),
            )
        )
    return tuple(items)


def _subject_from_parts(kind: str, parts: Mapping[str, Any]) -> str:
    vaccine = parts.get("vaccine")
    if kind == "vaccine" and isinstance(vaccine, str):
        return f"vaccine:{vaccine}"
    return kind


SAMPLE_PATIENT = PatientFacts(
    first_name="Rosa",
    last_name="Example",
    birth_date=date(1950, 3, 14),
    age=76,
    language="es",
    pharmacy_name="Sample Pharmacy",
    pharmacy_callback="+15550100199",
    agent_name="Sam",
    caregiver_name="Luis Example",
    caregiver_relation="son",
    caregiver_authorized=True,
    medications=(
        Medication(1, "Lisinopril 10 mg tablet", True, date(2026, 12, 5), date(2026, 11, 5), 30, 2),
        Medication(
            2, "Atorvastatin 20 mg tablet", True, date(2026, 12, 20), date(2026, 11, 20), 30, 0
        ),
    ),
    conditions=("Essential hypertension", "Type 2 diabetes mellitus"),
)
