"""Choose a pause code for a break; the agent comes back with Ready."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from console.screens.base import WorkerFailures
from console.widgets.footer import Footer
from queues.views.user import PauseOption

if TYPE_CHECKING:
    from console.services.agent_shift import AgentShift


class PauseScreen(WorkerFailures, ModalScreen[tuple[str, str] | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel_pause")]

    def __init__(self, shift: AgentShift) -> None:
        super().__init__()
        self.shift = shift

    def compose(self) -> ComposeResult:
        with Vertical(id="pause-box"):
            yield Static("Take a break — choose the reason, Enter to confirm", id="pause-title")
            yield OptionList(id="pause-codes")
        yield Footer()

    def on_mount(self) -> None:
        self._load()

    @work(thread=True, exit_on_error=False, group="pause")
    def _load(self) -> None:
        pauses = self.shift.reference_data().pauses
        self.app.call_from_thread(self._show, pauses)

    def _show(self, pauses: tuple[PauseOption, ...]) -> None:
        codes = self.query_one("#pause-codes", OptionList)
        codes.add_options(Option(p.label, id=p.code) for p in pauses)
        codes.highlighted = 0
        codes.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        assert event.option.id is not None
        self.dismiss((event.option.id, str(event.option.prompt)))

    def action_cancel(self) -> None:
        self.dismiss(None)
