"""The call script for the patient's campaigns (linear reading until the flow engine drives it)."""

from __future__ import annotations

from typing import Any

from textual.containers import VerticalScroll
from textual.widgets import Static

from queues.context import PatientContext


class ScriptPanel(VerticalScroll):
    can_focus = True

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.flow_id: str | None = None
        self.suggested_disposition: str | None = None

    def compose(self):  # type: ignore[no-untyped-def]
        yield Static("The script appears here when you have a patient.", id="script-text")

    def on_mount(self) -> None:
        self.border_title = "Script"

    def start(self, patient: PatientContext, agent_name: str) -> None:
        self.flow_id = patient.tasks[0].script_id if patient.tasks else None
        self.query_one("#script-text", Static).update(
            f"Hello, may I speak with {patient.first_name}? This is {agent_name} "
            f"calling from {patient.pharmacy.name}."
        )

    def answers_state(self) -> dict[str, Any]:
        return {}

    def reset(self) -> None:
        self.flow_id = None
        self.suggested_disposition = None
        self.query_one("#script-text", Static).update("")
