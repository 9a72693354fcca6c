"""The supervisor's first view: queue counts for their pharmacies, refreshed every few seconds.
(The full floor monitor grows from here.)"""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from queues.auth import SignedInUser
from queues.errors import OutreachError
from queues.stats import QueueStats, queue_stats

REFRESH_SECONDS = 2.0


class FloorScreen(Screen[None]):
    BINDINGS = [
        Binding("f5", "refresh", "Refresh", id="refresh_floor"),
        Binding("L", "sign_out", "Log out", id="sign_out"),
    ]

    def __init__(self, user: SignedInUser) -> None:
        super().__init__()
        self.user = user

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(
            f"Supervisor view — {self.user.display_name} "
            f"({', '.join(self.user.pharmacy_codes) or 'no pharmacies'})",
            id="status-line",
        )
        yield DataTable(id="floor-stats", cursor_type="none")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#floor-stats", DataTable)
        table.add_column("Measure", key="label")
        table.add_column("Count", key="value")
        self.action_refresh()
        self.set_interval(REFRESH_SECONDS, self.action_refresh)

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="floor")
    def _load(self) -> None:
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        try:
            with app.services.sessions() as session:
                stats = queue_stats(session, app.services.clock.now())
        except OutreachError as exc:
            app.call_from_thread(self.notify, str(exc), severity="error")
            return
        app.call_from_thread(self._show, stats)

    def _show(self, stats: QueueStats) -> None:
        table = self.query_one("#floor-stats", DataTable)
        for label, value in stats.rows():
            if label in table.rows:
                table.update_cell(label, "value", f"{value:,}")
            else:
                table.add_row(label, f"{value:,}", key=label)

    def action_sign_out(self) -> None:
        from console.app import OutreachApp

        assert isinstance(self.app, OutreachApp)
        self.app.signed_out()
