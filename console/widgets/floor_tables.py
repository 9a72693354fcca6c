"""The floor monitor's panels; each updates its rows in place (no table rebuild per refresh)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from zoneinfo import ZoneInfo

from rich.cells import cell_len
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from console.widgets.history import OUTCOME_NARROW, short_outcome
from queues.views.floor import (
    AgentRow,
    CallbackRow,
    FloorAlerts,
    OutcomeSummary,
    PharmacyRow,
    QueueRow,
)
from queues.views.reasons import reason_words
from queues.views.user import SignInAlerts

Cell = str | Text


def _width(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


class InPlaceTable(DataTable[Cell]):
    """Rows keyed by id: changed cells update in place, rows come and go, the cursor stays on
    its row."""

    COLUMNS: tuple[str, ...] = ()
    # Fixed widths (cells): a column keeps its width whatever a row comes to say (a paused
    # campaign once widened the first column for good and pushed "Oldest due" off the screen).
    # None: sized to its content.
    WIDTHS: tuple[int | None, ...] = ()
    CURSOR: str = "row"

    def on_mount(self) -> None:
        # Textual calls every on_mount along the class hierarchy: subclasses set COLUMNS/CURSOR.
        self.cursor_type = self.CURSOR  # type: ignore[assignment]
        self.zebra_stripes = True
        widths = self.WIDTHS or (None,) * len(self.COLUMNS)
        for label, width in zip(self.COLUMNS, widths, strict=True):
            self.add_column(label, key=label, width=width)

    def sync(self, rows: dict[str, tuple[Cell, ...]]) -> None:
        wanted = list(rows)
        present = [str(k.value) for k in self.rows]
        kept = [k for k in present if k in rows]
        if kept + [k for k in wanted if k not in present] != wanted or self._grow_columns(rows):
            # A row appeared in the middle, or a column must widen (a campaign now reads "PAUSED,
            # 3 waiting"): redraw in order. DataTable widens columns only when idle and keeps rows
            # it already drew at the old width (its row cache is not keyed by width), so a cell
            # updated in place showed cut, out of line with the others, until the next change.
            self._rebuild(rows)
            return
        for key in present:
            if key not in rows:
                self.remove_row(key)
        columns = [c.key for c in self.ordered_columns]
        for key, cells in rows.items():
            if key in self.rows:
                for column, old, new in zip(columns, self.get_row(key), cells, strict=True):
                    if old != new:
                        self.update_cell(key, column, new, update_width=True)
            else:
                self.add_row(*cells, key=key)

    def _grow_columns(self, rows: dict[str, tuple[Cell, ...]]) -> bool:
        """Widen the columns the new cells need before anything is drawn; True when any grew."""
        grew = False
        for i, column in enumerate(self.ordered_columns):
            if not column.auto_width:
                continue  # a fixed width: its cells are cut to it (`fit`)
            need = max((_width(cells[i]) for cells in rows.values()), default=0)
            if need > column.content_width:
                column.content_width = need
                grew = True
        return grew

    def _rebuild(self, rows: dict[str, tuple[Cell, ...]]) -> None:
        selected = self.selected_key
        self.clear()
        for key, cells in rows.items():
            self.add_row(*cells, key=key)
        if selected is not None and selected in rows:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    @property
    def selected_key(self) -> str | None:
        if self.row_count == 0:
            return None
        return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value


def fit(cell: Cell, width: int) -> Cell:
    """A cell cut with "…" to a fixed column width."""
    if _width(cell) <= width:
        return cell
    if isinstance(cell, Text):
        cut = cell.copy()
        cut.truncate(width, overflow="ellipsis")
        return cut
    text = Text(cell)
    text.truncate(width, overflow="ellipsis")
    return text.plain


def _reasons(blocked: Sequence[tuple[str, int]]) -> str:
    return ", ".join(f"{reason} {n}" for reason, n in blocked) or "—"


def _clock(at: datetime | None, tz: ZoneInfo, now: datetime) -> str:
    if at is None:
        return ""
    local = at.astimezone(tz)
    return f"{local:%H:%M}" if local.date() == now.astimezone(tz).date() else f"{local:%a %H:%M}"


class QueuesTable(InPlaceTable):
    """Each pharmacy (patients, fresh) followed by its campaigns (tasks, as of the recount)."""

    COLUMNS = (
        "Queue",
        "Weight",  # its own column: an 80-column screen keeps room for "Why later"
        "Open",
        "Now",
        "Held",
        "Later (next)",
        "Why later",
        "Oldest due",
        "Callbacks",
    )
    WIDTHS = (22, 6, 10, 5, 4, 12, 16, 10, 15)

    def show(
        self,
        pharmacies: Sequence[PharmacyRow],
        queues: Sequence[QueueRow],
        zone: str,
        now: datetime,
    ) -> None:
        tz = ZoneInfo(zone)
        rows: dict[str, tuple[Cell, ...]] = {}
        for p in pharmacies:
            late = f" ({p.callbacks_overdue} late)" if p.callbacks_overdue else ""
            rows[f"p{p.pharmacy_id}"] = (
                Text(f"{p.code} patients", style="bold"),
                "",
                Text(str(p.patients), style="bold"),
                Text(str(p.callable_now), style="bold green" if p.callable_now else "dim"),
                str(p.held),
                f"{p.callable_later}" + (f" ({_clock(p.next_at, tz, now)})" if p.next_at else ""),
                _reasons(p.blocked),
                "",
                Text(
                    f"{p.callbacks_due} due{late}",
                    style="bold red" if p.callbacks_overdue else "",
                ),
            )
            for q in (q for q in queues if q.pharmacy_id == p.pharmacy_id):
                # A pause shows in the Weight and Open columns, so the name never widens.
                if q.active:
                    name: Cell = f"  {q.campaign}"
                    weight: Cell = f"{q.weight:g}"
                    open_: Cell = str(q.open_tasks)
                else:
                    name = Text(f"  {q.campaign}", style="bold yellow")
                    weight = Text("PAUSED", style="bold yellow")
                    waiting = f" +{q.paused_tasks}" if q.paused_tasks else ""
                    open_ = Text(f"{q.open_tasks}{waiting}", style="yellow")
                due = q.oldest_due.strftime("%b %d") if q.oldest_due else "—"
                rows[q.key] = (
                    name,
                    weight,
                    open_,
                    Text(str(q.callable_now), style="green" if q.callable_now else "dim"),
                    str(q.held),
                    f"{q.callable_later}"
                    + (f" ({_clock(q.next_at, tz, now)})" if q.next_at else ""),
                    _reasons(q.blocked),
                    due,
                    "",
                )
        self.sync({key: self._fitted(cells) for key, cells in rows.items()})

    def _fitted(self, cells: tuple[Cell, ...]) -> tuple[Cell, ...]:
        return tuple(
            fit(c, w) if w is not None else c for c, w in zip(cells, self.WIDTHS, strict=True)
        )


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    s = max(0, int(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


STATE_WORDS = {
    "ready": "ready",
    "previewing": "previewing",
    "dialing": "dialing",
    "on_call": "on call",
    "wrap_up": "wrap-up",
    "paused": "paused",
    "not_ready": "not ready",
    "offline": "offline",
}


class AgentsTable(InPlaceTable):
    COLUMNS = ("Agent", "State", "For", "Calls", "Reached", "Avg call", "Avg wrap", "Alert")

    def show(
        self, rows: Sequence[AgentRow], now: datetime, alerts: FloorAlerts | None = None
    ) -> None:
        out: dict[str, tuple[Cell, ...]] = {}
        alerts = alerts or FloorAlerts()
        long_wrap = {uid: m for uid, _, m in alerts.long_wrap_up}
        long_pause = {uid: m for uid, _, m in alerts.long_pause}
        for a in rows:
            state = STATE_WORDS.get(a.state, a.state) + (
                f": {a.pause_code}" if a.pause_code else ""
            )
            notes: list[str] = []
            if a.lease_stuck(now) and a.holding_since:
                notes.append(
                    f"holding a patient {duration((now - a.holding_since).total_seconds())}"
                )
            if a.user_id in long_wrap:
                notes.append(f"wrap-up {long_wrap[a.user_id]} min")
            if a.user_id in long_pause:
                notes.append(f"paused {long_pause[a.user_id]} min")
            if a.logout_requested:
                notes.append("log-out asked")
            marked = a.lease_stuck(now) or a.user_id in long_wrap or a.user_id in long_pause
            style = "bold red" if marked else ("dim" if a.state == "offline" else "")
            since = (now - a.since).total_seconds() if a.since and a.state != "offline" else None
            out[str(a.user_id)] = (
                Text(a.name, style=style),
                Text(state, style=style or ("green" if a.state == "ready" else "")),
                Text(duration(since), style=style),
                str(a.calls_today),
                str(a.reached_today),
                duration(a.avg_handle_s),
                duration(a.avg_wrap_up_s),
                Text("; ".join(notes), style="bold red" if marked else "yellow"),
            )
        if not out:
            out["none"] = (Text("no agents", style="dim"), "", "", "", "", "", "", "")
        self.sync(out)


class CallbacksTable(InPlaceTable):
    COLUMNS = ("Callback", "Pharmacy", "Patient", "Due", "Owner")

    def show(self, rows: Sequence[CallbackRow], zone: str, now: datetime) -> None:
        tz = ZoneInfo(zone)
        out: dict[str, tuple[Cell, ...]] = {}
        for c in rows:
            due_style = "bold red" if c.overdue else ("yellow" if c.due_at <= now else "")
            out[str(c.callback_id)] = (
                f"#{c.callback_id}",
                c.pharmacy,
                f"#{c.patient_id}",
                Text(
                    _clock(c.due_at, tz, now) + (" overdue" if c.overdue else ""), style=due_style
                ),
                c.owner or "anyone",
            )
        if not out:  # said, so an empty tab never looks like one still loading
            out["none"] = (Text("none open", style="dim"), "", "", "", "")
        self.sync(out)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else f"{word}s"


def plural(n: int, word: str) -> str:
    """'1 call', '3 calls'."""
    return f"{n} {_plural(n, word)}"


def wrap_parts(parts: Sequence[Text], width: int, sep: str = " · ") -> list[Text]:
    """The parts joined by `sep`, each kept whole on a line of at most `width` cells (a part
    wider than that gets a line of its own); one line when `width` is 0."""
    lines: list[Text] = []
    line = Text()
    for part in parts:
        if line.cell_len and width and line.cell_len + cell_len(sep) + part.cell_len > width:
            lines.append(line)
            line = Text()
        elif line.cell_len:
            line.append(sep)
        line.append_text(part)
    if line.cell_len or not lines:
        lines.append(line)
    return lines


def _left(until: datetime, now: datetime) -> str:
    """'(14 min)': how long a lockout has left, whatever clock the floor shows (a practice
    clock's time is not the lockout's)."""
    return f"({max(1, math.ceil((until - now).total_seconds() / 60))} min)"


def sign_in_sentences(alerts: SignInAlerts, zone: str, now: datetime) -> list[str]:
    """Each locked account and slowed place in words, for the alerts line (markup). `now`: the
    wall clock, as lockouts run on it."""
    tz = ZoneInfo(zone)
    out = []
    for a in alerts.locked:
        where = f" from {a.source}" if a.source else ""
        tries = f"{plural(a.failures, 'failed sign-in')} for " if a.failures else ""
        until = f"{_clock(a.until, tz, now)} {_left(a.until, now)}"
        out.append(f"[b red]{tries}'{a.username}'{where}, locked until {until}[/]")
    for p in alerts.slowed:
        out.append(f"[b]{plural(p.failures, 'failed sign-in')} from {p.source}: slowed[/]")
    return out


class SignInsTable(InPlaceTable):
    """Accounts locked after failed sign-ins, and places whose sign-ins are slowed (audited both
    as they happen: `login_failed`, `account_locked`, `sign_in_slowed`)."""

    COLUMNS = ("Sign-in alert", "Failed", "From", "Until / last")
    CURSOR: str = "row"

    def show(self, alerts: SignInAlerts, zone: str, now: datetime) -> None:
        """`now`: the wall clock, as lockouts run on it."""
        tz = ZoneInfo(zone)
        out: dict[str, tuple[Cell, ...]] = {}
        for a in alerts.locked:
            out[f"u{a.user_id}"] = (
                Text(f"'{a.username}' locked", style="bold red"),
                str(a.failures or "—"),
                a.source or "—",
                f"until {_clock(a.until, tz, now)} {_left(a.until, now)}",
            )
        for p in alerts.slowed:
            out[f"s{p.source}"] = (
                Text("sign-ins slowed", style="bold"),
                str(p.failures),
                p.source,
                f"last {_clock(p.last_failed_at, tz, now)}",
            )
        if not out:
            out["none"] = (
                Text("none: no account locked, no place slowed", style="dim"),
                "",
                "",
                "",
            )
        self.sync(out)


def figure_lines(o: OutcomeSummary, width: int) -> Text:
    """Today's figures, each kept whole: as many to a line as fit `width` (0: all on one line),
    ' · ' between them, the numbers bold."""
    figures: list[tuple[tuple[str, str], ...]] = [
        (
            (str(o.attempts), "b"),
            (f" {_plural(o.attempts, 'call')} to ", ""),
            (str(o.patients_called), "b"),
            (f" {_plural(o.patients_called, 'patient')}", ""),
        ),
        (
            (str(o.patients_reached), "b"),
            (" reached (", ""),
            (f"{o.reach_rate:.0%}", "b"),
            (")", ""),
        ),
        (("refill requests ", ""), (str(o.refill_requests), "b")),
        (("med-sync enrollments ", ""), (str(o.med_sync_enrollments), "b")),
        (("escalations ", ""), (str(o.escalations), "b")),
        (
            ("callbacks due ", ""),
            (str(o.callbacks_due), "b"),
            (" (overdue ", ""),
            (str(o.callbacks_overdue), "b"),
            (")", ""),
        ),
    ]
    text = Text()
    line = 0
    for figure in figures:
        size = sum(cell_len(part) for part, _ in figure)
        if line and width and line + 3 + size > width:
            text.append("\n")
            line = 0
        elif line:
            text.append(" · ")
            line += 3
        for part, style in figure:
            text.append(part, style)
        line += size
    return text


class OutcomesPanel(Vertical):
    """Today's figures, the day's dispositions and a chart of calls by hour."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._summary: OutcomeSummary | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="outcome-figures")
        with Horizontal(id="outcome-body"):
            yield DispositionsTable(id="dispositions")
            yield PlotextPlot(id="outcome-chart")

    def on_resize(self) -> None:
        if self._summary is not None:
            self._figures(self._summary)

    def _figures(self, o: OutcomeSummary) -> None:
        figures = self.query_one("#outcome-figures", Static)
        # The figures' own width: the panel's less their padding (one column each side).
        figures.update(figure_lines(o, max(0, self.content_region.width - 2)))

    def show(self, o: OutcomeSummary) -> None:
        self._summary = o
        self._figures(o)
        self.query_one(DispositionsTable).show(o)
        chart = self.query_one(PlotextPlot)
        plt = chart.plt
        plt.clear_data()
        plt.clear_figure()
        if o.by_hour:
            plt.bar([f"{h:02d}" for h, _ in o.by_hour], [n for _, n in o.by_hour])
            top = max(n for _, n in o.by_hour)
            step = max(1, -(-top // 5))  # whole calls on the axis, about five ticks
            plt.yticks(list(range(0, top + step, step)))
        plt.title("Calls by hour" if o.by_hour else "Calls by hour: none yet today")
        chart.refresh()


class DispositionsTable(InPlaceTable):
    COLUMNS = ("Outcome", "Calls")
    # Beside the chart in 34 columns (app.tcss), a scrollbar's room kept: a long outcome is told
    # in its short words ('Reached – to pharmacist'), so its count stays on screen.
    WIDTHS = (OUTCOME_NARROW, 5)
    CURSOR: str = "none"

    def show(self, o: OutcomeSummary) -> None:
        self.sync(
            {
                code: (short_outcome(code, label, OUTCOME_NARROW), str(n))
                for code, label, n in o.by_disposition
            }
        )


__all__ = [
    "AgentsTable",
    "CallbacksTable",
    "InPlaceTable",
    "OutcomesPanel",
    "QueuesTable",
    "SignInsTable",
    "reason_words",
]
