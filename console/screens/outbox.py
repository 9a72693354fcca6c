"""The supervisor's outbox: per pharmacy, what waits to be delivered and what died; retry or
discard an action (each audited). A modal over the floor, refreshed by a worker while it is open.
No patient is shown: an action is its number, kind, pharmacy and state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import DataTable, Static

from console.screens.base import WorkerFailures
from console.widgets.floor_tables import Cell, InPlaceTable
from console.widgets.footer import Footer
from queues.views.outbox import OUTBOX_LIST_LIMIT, OutboxView

if TYPE_CHECKING:
    from console.services.outbox import Outbox

REFRESH_SECONDS = 5.0


class OutboxCountsTable(InPlaceTable):
    COLUMNS = ("Pharmacy", "Endpoint", "Pending", "Retrying", "Dead", "Delivered")


class OutboxActionsTable(InPlaceTable):
    COLUMNS = ("#", "Pharmacy", "Kind", "State", "Tries", "Next try", "Why")


def _when(at: datetime | None) -> str:
    return "" if at is None else f"{at:%m-%d %H:%M:%S} UTC"


class OutboxScreen(WorkerFailures, ModalScreen[None]):
    BINDINGS = [
        Binding("r", "retry", "Retry", id="outbox_retry", tooltip="Send the selected action again"),
        Binding(
            "d",
            "discard",
            "Discard",
            id="outbox_discard",
            tooltip="Never send the selected action",
        ),
        Binding("f5", "refresh", "Refresh", id="outbox_refresh", show=False),
        Binding("escape", "close", "Close", id="close_outbox"),
    ]

    def __init__(self, outbox: Outbox) -> None:
        super().__init__()
        self.outbox = outbox
        self.view: OutboxView | None = None
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="outbox-box"):
            yield Static("[b]Outbox[/] · loading…", id="outbox-title")
            yield OutboxCountsTable(id="outbox-counts")
            yield OutboxActionsTable(id="outbox-actions")
            # The selected action's Why in full: at 80 columns the table leaves its column a
            # few cells, and a failure's reason is what a supervisor retries or discards on.
            yield Static("", id="outbox-why", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh()
        self._timer = self.set_interval(REFRESH_SECONDS, self.action_refresh)
        self.query_one(OutboxActionsTable).focus()

    def on_unmount(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("retry", "discard"):
            return self.view is not None and bool(self.view.items)
        return True

    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="outbox")
    def _load(self) -> None:
        view = self.outbox.view()
        self.app.call_from_thread(self._show, view)

    def _show(self, view: OutboxView) -> None:
        self.view = view
        waiting = sum(c.undelivered for c in view.counts)
        dead = sum(c.dead for c in view.counts)
        more = (
            f" (the first {OUTBOX_LIST_LIMIT} shown)"
            if len(view.items) >= OUTBOX_LIST_LIMIT
            else ""
        )
        self.query_one("#outbox-title", Static).update(
            f"[b]Outbox[/] · {waiting} waiting to be delivered · {dead} dead{more}"
        )
        counts: dict[str, tuple[Cell, ...]] = {
            c.pharmacy: (
                c.pharmacy,
                "set" if c.endpoint else "none: actions wait",
                str(c.pending),
                str(c.retrying),
                str(c.dead),
                str(c.delivered),
            )
            for c in view.counts
        }
        self.query_one(OutboxCountsTable).sync(counts)
        items: dict[str, tuple[Cell, ...]] = {
            str(i.action_id): (
                str(i.action_id),
                i.pharmacy,
                i.kind.replace("_", " "),
                i.status,
                str(i.tries),
                _when(i.next_attempt_at) if i.status == "retrying" else "",
                i.last_error or "",
            )
            for i in view.items
        }
        self.query_one(OutboxActionsTable).sync(items)
        self._show_why()
        self.refresh_bindings()

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if isinstance(event.data_table, OutboxActionsTable):
            self._show_why()

    def _show_why(self) -> None:
        """The detail line: the selected action's number, state and why, unabridged."""
        selected = self._selected()
        item = next(
            (i for i in (self.view.items if self.view else ()) if i.action_id == selected), None
        )
        text = ""
        if item is not None:
            why = item.last_error or ("not tried yet" if item.status == "pending" else "no reason")
            text = f"#{item.action_id} {item.status}: {why}"
        self.query_one("#outbox-why", Static).update(text)

    def _selected(self) -> int | None:
        table = self.query_one(OutboxActionsTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key is not None else None

    @work(thread=True, exit_on_error=False, group="outbox-control")
    def _control(self, title: str, change: Callable[[], str]) -> None:
        done = change()
        self.app.call_from_thread(self.notify, done, title=title, timeout=5)
        self.app.call_from_thread(self.action_refresh)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "outbox-control":  # nothing changed: the transaction rolled back
            self.notify(message, title="Not done", severity="error")
        else:
            super().worker_failed(group, error, message)

    def action_retry(self) -> None:
        action_id = self._selected()
        if action_id is not None:
            outbox = self.outbox
            self._control("Outbox", lambda: outbox.retry(action_id))

    def action_discard(self) -> None:
        from console.screens.prompt import ConfirmScreen

        action_id = self._selected()
        if action_id is None:
            return
        outbox = self.outbox

        def answer(yes: bool | None) -> None:
            if yes:
                self._control("Outbox", lambda: outbox.discard(action_id))

        self.app.push_screen(
            ConfirmScreen(
                f"Discard action #{action_id}? It will never be sent to the pharmacy "
                "(tell them another way if they need it)."
            ),
            answer,
        )

    def action_close(self) -> None:
        self.dismiss(None)
