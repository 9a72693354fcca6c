"""Who the patient is and why they are in the queue: the first thing an agent reads."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from textual.widgets import Static

from queues.building.priority import explain
from queues.phones import national
from queues.views.patient import PatientContext, PhoneView, TaskView
from scripts_library.placeholders import shown_date

LANGUAGES = {"en": "English", "es": "Spanish · Español"}


def phone_line(phone: PhoneView) -> Text:
    line = Text()
    line.append(f"{phone.kind:<6} ", style="dim")
    line.append(national(phone.number), style="bold" if phone.dialable else "strike dim")
    if phone.best_time:
        line.append(f"  best: {phone.best_time}", style="dim")
    if phone.wrong_number:
        line.append("  WRONG NUMBER", style="bold red")
    if phone.do_not_call:
        line.append("  DO NOT CALL", style="bold red")
    return line


def short_drug(name: str) -> str:
    """ "Simvastatin 20 mg tablet" → "Simvastatin": what an agent says on the phone."""
    words = []
    for word in name.split():
        if word[:1].isdigit():
            break
        words.append(word)
    return " ".join(words) or name


def run_out_words(
    task: TaskView, drugs: dict[int, str], renewal: bool, estimated: bool = False
) -> str | None:
    """A refill reason as an agent says it ("Simvastatin ran out 16 days ago — refill"), from the
    task's prescription and its days to run-out; None for any other kind of reason. `estimated`:
    the run-out was worked out from an imported prescription, not a dispense (said so)."""
    days = task.priority_parts.get("days_to_run_out")
    drug = drugs.get(task.prescription_id or -1)
    if task.campaign_kind != "refill_reminder" or drug is None or not isinstance(days, int):
        return None
    n = abs(days)
    unit = "day" if n == 1 else "days"
    when = (
        "runs out today"
        if days == 0
        else (f"ran out {n} {unit} ago" if days < 0 else f"runs out in {n} {unit}")
    )
    ask = "renewal from the prescriber" if renewal else "refill"
    guess = " (estimated)" if estimated else ""
    return f"{short_drug(drug)} {when}{guess} — {ask}"


def by_weight(tasks: tuple[TaskView, ...]) -> list[TaskView]:
    """The reasons to call, the one that weighs most first (the build's score)."""

    def score(task: TaskView) -> float:
        value = task.priority_parts.get("score", 0)
        return float(value) if isinstance(value, int | float) else 0.0

    return sorted(tasks, key=score, reverse=True)


class PatientCard(Static):
    """A summary that draws at once; long histories live in their own widgets.

    What an agent needs before dialing comes first — who, whether the caregiver may hear health
    information, why the patient is in the queue — so a short terminal clips the phones (also in
    the dial bar) and the pharmacy line, not the reason for the call. The reasons come by weight,
    in words; the score parts only in the detail view (the workspace's Details key).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._patient: PatientContext | None = None
        self.message = ""  # what the card says when it shows no patient
        self.detailed = False

    def show(self, patient: PatientContext) -> None:
        self._patient = patient
        self.update(Group(*self._parts(patient, detailed=self.detailed)))

    def toggle_detail(self) -> None:
        """The score parts under each reason (the Details key): for a question, not for reading."""
        self.detailed = not self.detailed
        if self._patient is not None:
            self.show(self._patient)

    @staticmethod
    def _parts(patient: PatientContext, *, detailed: bool) -> list[Text]:
        head = Text()
        head.append(patient.full_name, style="bold")
        head.append(f"  {patient.age} y · born {shown_date(patient.birth_date, patient.language)}")
        head.append(
            f"  · {LANGUAGES.get(patient.language, patient.language)}",
            style="bold yellow" if patient.language != "en" else "",
        )
        parts = [head]
        if patient.caregiver_name:
            care = Text("Caregiver: ", style="dim")
            care.append(f"{patient.caregiver_name} ({patient.caregiver_relation or 'caregiver'})")
            if patient.caregiver_phone:
                care.append(f" {national(patient.caregiver_phone)}")
            care.append(
                "  may discuss health information"
                if patient.caregiver_authorized
                else "  NOT authorized for health information",
                style="green" if patient.caregiver_authorized else "bold red",
            )
            parts.append(care)
        why = Text("Why this patient:", style="bold")
        no_refills = {m.prescription_id for m in patient.medications if m.refills_left <= 0}
        drugs = {m.prescription_id: m.drug_name for m in patient.medications}
        estimated = {m.prescription_id for m in patient.medications if m.estimated}
        for task in by_weight(patient.tasks):
            # No refills left: the prescriber must renew it; never call that a refill.
            renewal = task.campaign_kind == "refill_reminder" and task.prescription_id in no_refills
            title = "Renewal needed (no refills left)" if renewal else task.campaign_name
            why.append(f"\n • {title}: ", style="bold cyan")
            guessed = task.prescription_id in estimated
            why.append(run_out_words(task, drugs, renewal, guessed) or task.reason)
            if task.priority_parts and detailed:
                why.append(f"\n   {explain(task.priority_parts)}", style="dim")
        if not patient.tasks:
            why.append(" no open tasks (already resolved)", style="dim")
        parts.append(why)
        parts.extend(phone_line(p) for p in patient.phones)
        parts.append(
            Text(
                f"{patient.pharmacy.name} · MRN {patient.mrn} · ZIP {patient.zip_code}", style="dim"
            )
        )
        return parts

    def clear(self, message: str) -> None:
        self._patient = None
        self.message = message
        self.update(Text(message, style="dim"))
