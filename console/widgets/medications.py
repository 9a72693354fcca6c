"""The patient's medications: one summary row each (last fill, supply, run-out), never every fill.

The run-out date comes first and the refills next to the name: they are what a refill call is
about, and on a narrow terminal the columns to the right are off screen until scrolled to."""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual.widgets import DataTable

from queues.views.patient import MedicationView

PQA_LABELS = {"RASA": "RAS antag.", "STATIN": "statin", "DIABETES": "diabetes"}


class MedicationsTable(DataTable[str | Text]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        self.add_columns("Runs out", "Medication", "Refills", "Last fill", "Days", "Class")

    def show(self, meds: tuple[MedicationView, ...], today: date) -> None:
        self.clear()
        for med in meds:
            run_out: str | Text = "—"
            if med.run_out:
                days = (med.run_out - today).days
                style = "bold red" if days < 0 else "yellow" if days <= 7 else ""
                run_out = Text(f"{med.run_out:%b %d} ({days:+d}d)", style=style)
            self.add_row(
                run_out,
                med.drug_name,
                Text("renewal", style="bold") if med.refills_left <= 0 else str(med.refills_left),
                f"{med.last_fill:%b %d, %Y}" if med.last_fill else "never filled",
                str(med.days_supply or "—"),
                PQA_LABELS.get(med.pqa_class or "", ""),
                key=str(med.prescription_id),
            )
