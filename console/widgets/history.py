"""Earlier attempts on this patient, newest first."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from textual.widgets import DataTable

from queues.phones import national
from queues.views.patient import AttemptView


class AttemptHistory(DataTable[str]):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.add_columns("When", "Agent", "Number", "Outcome", "Notes")

    def show(self, attempts: tuple[AttemptView, ...], zone: str) -> None:
        self.clear()
        tz = ZoneInfo(zone)
        for a in attempts:
            self.add_row(
                f"{a.started_at.astimezone(tz):%b %d %H:%M}",
                a.agent,
                national(a.phone_number) if a.phone_number else "—",
                a.disposition_label,
                a.notes.replace("\n", " ")[:80],
            )
        if not attempts:
            self.add_row("—", "", "", "first attempt", "")
