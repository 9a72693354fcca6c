"""The floor monitor's panels; each updates its rows in place (no table rebuild per refresh)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from queues.monitor import AgentRow, OutcomeSummary, QueueRow

BLOCKED_WORDS = {
    "calling_window": "window",
    "daily_cap": "day cap",
    "weekly_cap": "week cap",
    "subject_cap": "subject cap",
    "dnc_patient": "DNC",
    "dnc_number": "DNC no.",
    "no_number": "no number",
    "retry_wait": "retry",
}


class InPlaceTable(DataTable[str | Text]):
    """Rows keyed by id: cells change in place, rows come and go, the cursor stays put."""

    def sync(self, rows: dict[str, tuple[str | Text, ...]]) -> None:
        columns = [c.key for c in self.ordered_columns]
        for row_key in list(self.rows):
            if row_key.value not in rows:
                self.remove_row(row_key)
        for key, cells in rows.items():
            if key in self.rows:
                current = self.get_row(key)
                for column, old, new in zip(columns, current, cells, strict=True):
                    if str(old) != str(new):
                        self.update_cell(key, column, new)
            else:
                self.add_row(*cells, key=key)


class QueuesTable(InPlaceTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        for label in (
            "Pharmacy",
            "Campaign",
            "Open",
            "Now",
            "Later (next)",
            "Held",
            "Blocked",
            "Oldest",
            "Weight",
        ):
            self.add_column(label, key=label)

    def show(self, rows: tuple[QueueRow, ...], zone: str) -> None:
        tz = ZoneInfo(zone)
        self.sync(
            {
                str(r.campaign_id): (
                    r.pharmacy,
                    r.campaign if r.active else Text(f"{r.campaign} (PAUSED)", style="bold yellow"),
                    str(r.open_tasks),
                    Text(str(r.callable_now), style="bold green" if r.callable_now else "dim"),
                    f"{r.callable_later}"
                    + (f" ({r.next_at.astimezone(tz):%H:%M})" if r.next_at else ""),
                    str(r.claimed),
                    ", ".join(f"{BLOCKED_WORDS.get(k, k)} {n}" for k, n in r.blocked) or "—",
                    f"{r.oldest_task_at.astimezone(tz):%b %d}" if r.oldest_task_at else "—",
                    f"{r.weight:g}",
                )
                for r in rows
            }
        )


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = int(seconds)
    return f"{s // 60}:{s % 60:02d}"


class AgentsTable(InPlaceTable):
    def on_mount(self) -> None:
        self.cursor_type = "row"
        for label in ("Id", "Agent", "State", "For", "Calls", "Reached", "AHT", "Wrap"):
            self.add_column(label, key=label)

    def show(self, rows: tuple[AgentRow, ...], now: datetime) -> None:
        out: dict[str, tuple[str | Text, ...]] = {}
        for a in rows:
            state = a.state.replace("_", " ") + (f": {a.pause_code}" if a.pause_code else "")
            style = "bold red" if a.stuck(now) else ""
            since = (now - a.since).total_seconds() if a.since else None
            out[str(a.user_id)] = (
                str(a.user_id),
                a.name,
                Text(state, style=style),
                Text(_duration(since), style=style),
                str(a.calls_today),
                str(a.reached_today),
                _duration(a.avg_handle_s),
                _duration(a.avg_wrap_up_s),
            )
        self.sync(out)


class OutcomesPanel(Vertical):
    def compose(self) -> ComposeResult:
        yield Static("", id="outcome-figures")
        yield PlotextPlot(id="outcome-chart")

    def show(self, o: OutcomeSummary) -> None:
        top = ", ".join(f"{code.replace('_', ' ')} {n}" for code, n in o.by_disposition[:5])
        self.query_one("#outcome-figures", Static).update(
            f"[b]{o.attempts}[/] calls · [b]{o.reached}[/] reached ({o.reach_rate:.0%}) · "
            f"refills {o.refill_requests} · med-sync {o.med_sync_enrollments} · "
            f"escalations {o.escalations}\ncallbacks due {o.callbacks_due}"
            f" (overdue [b]{o.callbacks_overdue}[/])\n{top or 'no calls yet today'}"
        )
        chart = self.query_one(PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        hours = [h for h, _ in o.by_hour] or [8]
        plt.bar([f"{h:02d}" for h in hours], [n for _, n in o.by_hour] or [0])
        plt.title("Calls by hour")
        chart.refresh()
