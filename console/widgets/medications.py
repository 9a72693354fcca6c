"""The patient's medications: one summary row each (last fill, supply, run-out), never every fill.

The name, the run-out date and the refills come first: they are what a refill call is about. A
narrow table (80 columns) shows just those; the workspace's Details key (`i`) shows every column.
"""

from __future__ import annotations

from datetime import date

from rich.text import Text
from textual.widgets import DataTable

from queues.views.patient import MedicationView

PQA_LABELS = {"RASA": "RAS antag.", "STATIN": "statin", "DIABETES": "diabetes"}
# (label, width): the first three always; the rest when the table is wide enough or asked for.
MAIN = (("Medication", 25), ("Runs out", 11), ("Refills", 7))
# A run-out worked out from an imported prescription (no dispense in the source) says so.
ESTIMATED = " estimated"
MORE = (("Last fill", 6), ("Days", 4), ("Class", 10))
# The table's own width from which every column fits (each cell has a column of padding on each
# side); 120 columns leave the table 75.
WIDE = sum(width + 2 for _, width in MAIN + MORE)
SHORTER = {" tablet": " tab", " capsule": " cap", " extended release": " ER"}


def short_name(name: str) -> str:
    for long, short in SHORTER.items():
        name = name.replace(long, short)
    return name


class MedicationsTable(DataTable[str | Text]):
    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.detailed = False  # every column, whatever the width
        self._shown: tuple[tuple[MedicationView, ...], date] | None = None
        self.every_column: bool | None = None

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True

    def on_resize(self) -> None:
        if self._shown is not None and self._wants_all() != self.every_column:
            self.show(*self._shown)

    def _wants_all(self) -> bool:
        return self.detailed or self.size.width >= WIDE

    def toggle_detail(self) -> None:
        self.detailed = not self.detailed
        if self._shown is not None:
            self.show(*self._shown)

    def show(self, meds: tuple[MedicationView, ...], today: date) -> None:
        self._shown = (meds, today)
        self.every_column = self._wants_all()
        self.clear(columns=True)
        main: tuple[tuple[str, int], ...] = MAIN
        if any(med.estimated and med.run_out for med in meds):
            main = tuple((n, w + len(ESTIMATED) if n == "Runs out" else w) for n, w in MAIN)
        columns = main + MORE if self.every_column else main
        for label, width in columns:
            if label == "Medication" and not self.every_column:  # the name takes what is left
                rest = sum(w + 2 for name, w in main if name != label) + 2
                width = max(12, min(width, self.size.width - rest))
            self.add_column(label, width=width)
        for med in meds:
            run_out: str | Text = "—"
            if med.run_out:
                days = (med.run_out - today).days
                style = "bold red" if days < 0 else "yellow" if days <= 7 else ""
                run_out = Text(f"{med.run_out:%b %d} {days:+d}d", style=style)
                if med.estimated:
                    run_out.append(ESTIMATED, style="italic")
            cells: list[str | Text] = [
                short_name(med.drug_name),
                run_out,
                Text("renewal", style="bold") if med.refills_left <= 0 else str(med.refills_left),
            ]
            if self.every_column:
                cells += [
                    f"{med.last_fill:%b %d}" if med.last_fill else "never",
                    str(med.days_supply or "—"),
                    PQA_LABELS.get(med.pqa_class or "", ""),
                ]
            self.add_row(*cells, key=str(med.prescription_id))

    def clear_patient(self) -> None:
        self._shown = None
        self.clear()
