"""Who the patient is and why they are in the queue: the first thing an agent reads."""

from __future__ import annotations

import phonenumbers
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.widgets import Static

from queues.context import PatientContext, PhoneView
from queues.priority import explain

LANGUAGES = {"en": "English", "es": "Spanish · Español"}


def pretty_number(e164: str) -> str:
    try:
        return phonenumbers.format_number(
            phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL
        )
    except phonenumbers.NumberParseException:
        return e164


def phone_line(phone: PhoneView) -> Text:
    line = Text()
    line.append(f"{phone.kind:<6} ", style="dim")
    line.append(pretty_number(phone.number), style="bold" if phone.dialable else "strike dim")
    if phone.best_time:
        line.append(f"  best: {phone.best_time}", style="dim")
    if phone.wrong_number:
        line.append("  WRONG NUMBER", style="bold red")
    if phone.do_not_call:
        line.append("  DO NOT CALL", style="bold red")
    return line


class PatientCard(Static):
    """A summary that draws at once; long histories live in their own widgets."""

    def show(self, patient: PatientContext) -> None:
        head = Text()
        head.append(patient.full_name, style="bold")
        head.append(f"  {patient.age} y · born {patient.birth_date:%b %d, %Y}", style="")
        head.append(
            f"  · {LANGUAGES.get(patient.language, patient.language)}",
            style="bold yellow" if patient.language != "en" else "",
        )
        head.append(
            f"\n{patient.pharmacy.name} · MRN {patient.mrn} · ZIP {patient.zip_code}", style="dim"
        )
        parts: list[Text | Table] = [head]
        if patient.caregiver_name:
            care = Text("Caregiver: ", style="dim")
            care.append(f"{patient.caregiver_name} ({patient.caregiver_relation or 'caregiver'})")
            if patient.caregiver_phone:
                care.append(f" {pretty_number(patient.caregiver_phone)}")
            care.append(
                "  may discuss health information"
                if patient.caregiver_authorized
                else "  NOT authorized for health information",
                style="green" if patient.caregiver_authorized else "bold red",
            )
            parts.append(care)
        parts.extend(phone_line(p) for p in patient.phones)
        why = Text("Why this patient:", style="bold")
        for task in patient.tasks:
            why.append(f"\n • {task.campaign_name}: ", style="bold cyan")
            why.append(task.reason)
            if task.priority_parts:
                why.append(f"\n   {explain(task.priority_parts)}", style="dim")
        if not patient.tasks:
            why.append(" no open tasks (already resolved)", style="dim")
        parts.append(why)
        self.update(Group(*parts))

    def clear(self, message: str) -> None:
        self.update(Text(message, style="dim"))
