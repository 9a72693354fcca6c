"""The supervisor's floor monitor: queues, agents, callbacks and today's outcomes, refreshed in
place by a worker every couple of seconds, with the controls a supervisor needs (each audited).

Two workers: the refresh (every `REFRESH_SECONDS`, cheap: only what moves) and the recount of
every campaign's depth (every `RECOUNT_SECONDS` and after a control), so a slow count over a
million tasks never holds up the live figures or the keyboard. Both call the `Floor` service.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import DataTable, Header, Static, TabbedContent, TabPane

from console.screens.base import OutreachScreen
from console.widgets.floor_tables import (
    AgentsTable,
    CallbacksTable,
    OutcomesPanel,
    QueuesTable,
    SignInsTable,
    plural,
    sign_in_sentences,
    wrap_parts,
)
from console.widgets.footer import Footer
from queues.errors import NotAllowed, OutreachError
from queues.views.floor import AgentRow, CallbackRow, FloorAlerts, FloorSnapshot, QueueRow
from queues.views.user import LockedAccount, SignedInUser, SignInAlerts

if TYPE_CHECKING:
    from console.services.floor import Floor

REFRESH_SECONDS = 2.0
STATUS_LINES = 2  # the status line's height at most (app.tcss)
RECOUNT_SECONDS = 60.0
# A tenth: every weight of one decimal (the demo's 1.1, 0.6…) is reachable from any other, so
# `+` then `-` always gets back to where it started (0.5 from 1.1 never could).
WEIGHT_STEP = 0.1
WEIGHT_MAX = 10.0
WEIGHT_KEYS = Binding.Group("Weight", compact=True)
REPORTS_DIR = Path("var/reports")  # where the terminal console saves reports (relative to cwd)

# Which tab each control belongs to: the footer shows only the controls of the open tab.
CONTROL_TAB = {
    "pause_campaign": "tab-queues",
    "resume_campaign": "tab-queues",
    "weight": "tab-queues",
    "type_weight": "tab-queues",
    "release": "tab-agents",
    "log_out_agent": "tab-agents",
    "reassign": "tab-callbacks",
    "unlock_account": "tab-sign-ins",
}


def alert_words(a: FloorAlerts, sign_ins: Sequence[str] = ()) -> str:
    """The floor's alerts in one line, worst first; empty when nothing needs acting on.
    `sign_ins`: the sign-in alerts in words (floor_tables.sign_in_sentences)."""
    parts = list(sign_ins)
    if a.line_failures >= a.line_failure_limit > 0:
        last = f", last SIP {a.last_sip_status}" if a.last_sip_status else ""
        parts.append(f"[b red]{plural(a.line_failures, 'line failure')} today{last}[/]")
    if a.undelivered:
        dead = f" ({a.dead} dead)" if a.dead else ""
        parts.append(f"[b red]{plural(a.undelivered, 'follow-up')} not delivered{dead}[/]")
    for _, name, minutes in a.long_wrap_up:
        parts.append(f"[b]{name}[/] in wrap-up {minutes} min")
    for _, name, minutes in a.long_pause:
        parts.append(f"[b]{name}[/] paused {minutes} min")
    if a.overdue_campaigns:
        worst = max(a.overdue_campaigns, key=lambda c: c[2])
        more = f" (+{len(a.overdue_campaigns) - 1} more)" if len(a.overdue_campaigns) > 1 else ""
        parts.append(f"[b]{worst[1]}[/] at {worst[0]}: oldest due {worst[2]} days ago{more}")
    return ("[b red]⚠[/] " + " · ".join(parts)) if parts else ""


class FloorScreen(OutreachScreen[None]):
    # The compact footer (every key readable at 80 columns): a space after a group's word too.
    DEFAULT_CSS = """
    FloorScreen Footer.-compact FooterLabel {
        margin: 0 1 0 0;
    }
    """
    BINDINGS = [
        Binding("1", "tab('tab-queues')", "Queues", id="tab_queues", show=False),
        Binding("2", "tab('tab-agents')", "Agents", id="tab_agents", show=False),
        Binding("3", "tab('tab-callbacks')", "Callbacks", id="tab_callbacks", show=False),
        Binding("4", "tab('tab-today')", "Today", id="tab_today", show=False),
        Binding("5", "tab('tab-sign-ins')", "Sign-ins", id="tab_sign_ins", show=False),
        # One key, the word for what it does to the selected campaign: Pause or Resume.
        Binding(
            "space",
            "pause_campaign",
            "Pause",
            id="pause_campaign",
            tooltip="Pause the selected campaign: its tasks leave the queue until resumed",
        ),
        Binding(
            "space",
            "resume_campaign",
            "Resume",
            id="resume_campaign",
            tooltip="Resume the selected campaign: its tasks come back into the queue",
        ),
        # The weight's three keys under one word in the footer ("+-w Weight"), each its own
        # command in the palette.
        Binding(
            "plus,equals_sign",
            f"weight({WEIGHT_STEP})",
            "Weight+",
            id="weight_up",
            tooltip="Raise the selected campaign's priority weight by 0.1",
            group=WEIGHT_KEYS,
        ),
        Binding(
            "minus",
            f"weight({-WEIGHT_STEP})",
            "Weight−",
            id="weight_down",
            tooltip="Lower the selected campaign's priority weight by 0.1",
            group=WEIGHT_KEYS,
        ),
        Binding(
            "w",
            "type_weight",
            "Set weight",
            id="set_weight",
            tooltip="Type the selected campaign's priority weight (0 to 10)",
            group=WEIGHT_KEYS,
        ),
        Binding(
            "x",
            "release",
            "Release",
            id="release_lease",
            tooltip="Put the patient the selected agent holds back in the queue",
        ),
        Binding(
            "o",
            "log_out_agent",
            "Log out agent",
            id="log_out_agent",
            tooltip="Ask the selected agent's console to sign out",
        ),
        Binding(
            "a",
            "reassign",
            "Reassign",
            id="reassign_callback",
            tooltip="Give the selected callback to another agent, or to anyone",
        ),
        Binding(
            "u",
            "unlock_account",
            "Unlock",
            id="unlock_account",
            tooltip="Unlock the selected account, locked after failed sign-ins",
        ),
        Binding(
            "n",
            "do_not_call",
            "Do-not-call",
            id="do_not_call",
            tooltip="Add a phone number or a patient (MRN) to do-not-call",
        ),
        Binding(
            "R",
            "report",
            "Report",
            id="program_report",
            tooltip="The pharmacy program report for a period (CSV, HTML or PDF)",
        ),
        Binding("O", "outbox", "Outbox", id="outbox", tooltip="Actions waiting for delivery"),
        Binding("f5", "refresh(True)", "Recount", id="refresh_floor", show=False),
        Binding("L", "sign_out", "Sign out", id="sign_out"),
    ]

    def __init__(self, user: SignedInUser) -> None:
        super().__init__()
        self.user = user
        self.snapshot: FloorSnapshot | None = None
        self.sign_ins = SignInAlerts()  # as of the last refresh
        self._keys: tuple[object, ...] = ()  # what the footer's keys were drawn for
        self.floor: Floor | None = None
        self._floor_timers: list[Timer] = []
        self._loading = False
        self._failing = False  # the refreshes fail (the database is away)
        self._again = False  # a refresh was asked for while one ran
        self._status: tuple[list[Text], list[Text]] = ([], [])  # the status line, full / short

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("Loading the floor…", id="status-line")
        yield Static("", id="alerts-line", markup=True).set_styles("display: none;")
        with TabbedContent(id="floor-tabs"):
            with TabPane("1 Queues", id="tab-queues"):
                yield QueuesTable(id="queues")
            with TabPane("2 Agents", id="tab-agents"):
                yield AgentsTable(id="agents")
            with TabPane("3 Callbacks", id="tab-callbacks"):
                yield CallbacksTable(id="callbacks")
            with TabPane("4 Today", id="tab-today"):
                yield OutcomesPanel(id="outcomes")
            with TabPane("5 Sign-ins", id="tab-sign-ins"):
                yield SignInsTable(id="sign-ins")
        yield Footer(compact=True)  # every key readable at 80 columns

    def on_mount(self) -> None:
        try:
            self.floor = self.outreach.services.floor(self.user)
        except NotAllowed:  # invariant 6: only supervisors see the monitor
            self.app.notify("Only supervisors can open the floor monitor.", severity="error")
            self.outreach.signed_out()
            return
        self.action_refresh()
        self._floor_timers = [
            self.set_interval(REFRESH_SECONDS, self.action_refresh),
            self.set_interval(RECOUNT_SECONDS, self._recount),
        ]
        self.query_one(QueuesTable).focus()

    def on_unmount(self) -> None:
        for timer in self._floor_timers:
            timer.stop()

    def on_screen_suspend(self) -> None:
        for timer in self._floor_timers:
            timer.pause()

    def on_screen_resume(self) -> None:
        for timer in self._floor_timers:
            timer.resume()

    @on(TabbedContent.TabActivated)
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        self._keys_may_have_changed()
        pane = event.pane
        tables = pane.query("DataTable")
        if tables:
            tables.first().focus()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        tab = CONTROL_TAB.get(action)
        if tab is not None and self.is_mounted:
            if self.query_one(TabbedContent).active != tab:
                return False
            return self._acts_on_selection(action)
        return True

    def _acts_on_selection(self, action: str) -> bool:
        """Whether a tab's control acts on the row selected now (the footer shows only those)."""
        if action in ("pause_campaign", "resume_campaign", "weight", "type_weight"):
            row = self._queue_row()
            if row is None:  # a pharmacy's row: its campaigns are the rows under it
                return False
            return action != ("resume_campaign" if row.active else "pause_campaign")
        if action in ("release", "log_out_agent"):
            agent = self._agent_row()
            if agent is None:
                return False
            if action == "release":
                return agent.holding_patient_id is not None
            return agent.state != "offline" and not agent.logout_requested
        if action == "reassign":
            return self._callback_row() is not None
        if action == "unlock_account":  # only on a locked account's row
            return self._selected_lock() is not None
        return True

    @on(DataTable.RowHighlighted)
    def _row_changed(self) -> None:
        self._keys_may_have_changed()

    def _keys_may_have_changed(self) -> None:
        """The footer shows what acts on the selected row: draw its keys again only when that
        changed (a refresh every 2 s, or a cursor moving down a tab's rows, mostly changes
        nothing; the weight keys' group makes each redraw a full one)."""
        if not self.is_mounted:
            return
        tab = self.query_one(TabbedContent).active
        keys = (tab, *(self._acts_on_selection(action) for action in CONTROL_TAB))
        if keys != self._keys:
            self._keys = keys
            self.refresh_bindings()

    # -- refresh -----------------------------------------------------------------------------
    def action_refresh(self, recount: bool = False) -> None:
        if recount:
            self._recount()
        if self._loading:
            self._again = True  # never two refreshes at once: they share the monitor's tally
            return
        self._loading = True  # set and cleared on this thread only: no race with the worker
        self._load()

    def _recount(self) -> None:
        if not any(w.group == "recount" and w.is_running for w in self.workers):
            self._count()

    @work(thread=True, exit_on_error=False, group="recount")
    def _count(self) -> None:
        assert self.floor is not None
        self.floor.recount()
        self.app.call_from_thread(self.action_refresh)

    @work(thread=True, exit_on_error=False, group="floor")
    def _load(self) -> None:
        assert self.floor is not None
        started = time.perf_counter()
        snap = self.floor.snapshot()
        accounts = self.outreach.services.accounts
        sign_ins = accounts.sign_in_alerts(self.user)
        wall = accounts.wall_clock()  # lockouts run on it, whatever the floor's clock
        elapsed = (time.perf_counter() - started) * 1000
        self.app.call_from_thread(self._show, snap, sign_ins, wall, elapsed)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "floor":  # the database went away: say so, the next refresh retries
            self._not_refreshed(message)
            self._done_loading()
        elif group == "recount":  # the next recount tries again
            self.notify(f"Queue depths not recounted: {message}", severity="warning")
        elif group == "control":  # nothing was changed: the transaction rolled back
            self.notify(message, title="Not done", severity="error")
        elif group == "report":
            self.notify(message, title="Report", severity="error")
        else:
            super().worker_failed(group, error, message)

    def _not_refreshed(self, message: str) -> None:
        # Once per outage: the floor refreshes every 2 s, and a toast each time hid the screen.
        if not self._failing:
            self.notify(
                f"Floor not refreshed: {message}. It keeps trying; the figures shown are from "
                "the last refresh.",
                severity="warning",
                timeout=15,
            )
        self._failing = True

    def _done_loading(self) -> None:
        self._loading = False
        if self._again:
            self._again = False
            self.call_later(self.action_refresh)

    def _show(
        self, snap: FloorSnapshot, sign_ins: SignInAlerts, wall: datetime, elapsed_ms: float
    ) -> None:
        if self._failing:
            self._failing = False
            self.notify("The floor is refreshing again.", timeout=5)
        first = self.snapshot is None
        self.snapshot = snap
        self.sign_ins = sign_ins
        queues = self.query_one(QueuesTable)
        queues.show(snap.pharmacies, snap.queues, snap.zone, snap.at)
        if first and queues.row_count > 1 and snap.queues:
            # Start on the first campaign: the row its keys (Pause, Weight) act on.
            queues.move_cursor(row=1, animate=False)
        self.query_one(AgentsTable).show(snap.agents, snap.at, snap.alerts)
        self.query_one(CallbacksTable).show(snap.callbacks, snap.zone, snap.at)
        self.query_one(OutcomesPanel).show(snap.outcomes)
        self.query_one(SignInsTable).show(sign_ins, snap.zone, wall)
        self._keys_may_have_changed()  # a lock came or went under the cursor
        tz = ZoneInfo(snap.zone)
        local = snap.at.astimezone(tz)
        practice = "practice clock " if self.outreach.services.clock.is_practice else ""
        ready = sum(1 for a in snap.agents if a.state == "ready")
        working = sum(1 for a in snap.agents if a.state not in ("offline", "paused", "ready"))
        alerts = (
            snap.alerts.count
            + sum(1 for a in snap.agents if a.lease_stuck(snap.at))
            + len(sign_ins.locked)
            + len(sign_ins.slowed)
        )
        words = alert_words(snap.alerts, sign_in_sentences(sign_ins, snap.zone, wall))
        line = self.query_one("#alerts-line", Static)
        line.update(words)
        line.display = bool(words)  # no empty line taking a row from the tables
        counted = snap.counted_at.astimezone(tz)
        due = snap.outcomes.callbacks_due
        late = snap.outcomes.callbacks_overdue
        callbacks = f"callbacks {due} due" + (f" ([b red]{late} late[/])" if late else "")
        # The floor's pharmacies (queues.access: an admin's are every pharmacy); many are counted.
        scope = (self.floor.user if self.floor else self.user).pharmacy_codes
        codes = ", ".join(scope) if len(scope) <= 4 else f"{len(scope)} pharmacies"
        clock = f"{local:%a %H:%M} {local.tzname()}"
        need = [f"[b red]{alerts} need a look[/]"] if alerts else []
        calls = plural(snap.outcomes.attempts, "call") + " today"
        full = [
            f"[b]FLOOR[/] {codes}",
            f"{practice}{clock}",
            f"agents: {ready} ready, {working} working",
            *need,
            callbacks,
            calls,
            f"campaigns counted {counted:%H:%M:%S}",
            f"{elapsed_ms:.0f} ms",
        ]
        # Narrow (80 columns): shorter words, no refresh time; never a figure cut in two.
        short = [
            f"[b]FLOOR[/] {codes}",
            f"{'practice ' if practice else ''}{clock}",
            f"agents {ready} ready, {working} working",
            *need,
            callbacks,
            calls,
            f"counted {counted:%H:%M}",
        ]
        self._status = ([Text.from_markup(p) for p in full], [Text.from_markup(p) for p in short])
        self._show_status()
        self._done_loading()

    def _show_status(self) -> None:
        """The status line in at most two lines of its width: the full words if they fit, else
        the short ones (each figure kept whole)."""
        full, short = self._status
        if not full:
            return
        status = self.query_one("#status-line", Static)
        width = status.content_region.width or self.size.width - 2
        lines = wrap_parts(full, width)
        if len(lines) > STATUS_LINES:
            lines = wrap_parts(short, width)
        status.update(Text("\n").join(lines))

    def on_resize(self, event: events.Resize) -> None:
        self._show_status()

    # -- controls ----------------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="control")
    def _control(self, what: str, change: Callable[[], str]) -> None:
        """Run one control on the Floor service; a refusal comes back through worker_failed."""
        done = change()
        self.app.call_from_thread(self.notify, done, title=what, timeout=4)
        self.app.call_from_thread(self.action_refresh, True)

    def _queue_row(self) -> QueueRow | None:
        key = self.query_one(QueuesTable).selected_key
        if self.snapshot is None or key is None:
            return None
        return next((q for q in self.snapshot.queues if q.key == key), None)

    def _agent_row(self) -> AgentRow | None:
        key = self.query_one(AgentsTable).selected_key
        if self.snapshot is None or key is None:
            return None
        return next((a for a in self.snapshot.agents if str(a.user_id) == key), None)

    def _callback_row(self) -> CallbackRow | None:
        key = self.query_one(CallbacksTable).selected_key
        if self.snapshot is None or key is None:
            return None
        return next((c for c in self.snapshot.callbacks if str(c.callback_id) == key), None)

    def _selected_queue(self) -> QueueRow | None:
        row = self._queue_row()
        if self.snapshot is None or self.query_one(QueuesTable).selected_key is None:
            return None
        if row is None:
            self.notify("Select a campaign (the rows under a pharmacy)", severity="warning")
        return row

    def _changeable(self, row: QueueRow) -> bool:
        """A campaign every pharmacy shares is an admin's to change: say so before asking."""
        if row.shared and self.user.role != "admin":
            self.notify(
                f"{row.campaign} runs for every pharmacy, not {row.pharmacy} alone: "
                "only an admin can pause it or change its weight.",
                severity="warning",
                timeout=10,
            )
            return False
        return True

    def action_pause_campaign(self) -> None:
        self._toggle_campaign()

    def action_resume_campaign(self) -> None:
        self._toggle_campaign()

    def _toggle_campaign(self) -> None:
        row = self._selected_queue()
        if row is None or not self._changeable(row):
            return
        floor = self.floor
        verb = "Pause" if row.active else "Resume"
        where = "at every pharmacy" if row.shared else f"at {row.pharmacy}"
        if not row.active:
            effect = "Its work comes back into the queue."
        elif row.shared:  # the row counts one pharmacy's tasks; the pause is everyone's
            effect = "Its open tasks at every pharmacy leave the queue until you resume it."
        else:
            effect = f"Its {row.open_tasks} open task(s) leave the queue until you resume it."

        def answer(yes: bool | None) -> None:
            if not yes or floor is None:
                return
            self._control(
                f"{verb} {row.campaign} ({row.pharmacy})",
                lambda: floor.set_campaign_active(row, not row.active),
            )

        from console.screens.prompt import ConfirmScreen

        self.app.push_screen(
            ConfirmScreen(f"{verb} [b]{row.campaign}[/] {where}?\n{effect}"), answer
        )

    def _confirm(self, question: str, what: str, change: Callable[[], str]) -> None:
        """Every control asks once; yes runs it on the Floor service (which audits it)."""
        from console.screens.prompt import ConfirmScreen

        def answer(yes: bool | None) -> None:
            if yes:
                self._control(what, change)

        self.app.push_screen(ConfirmScreen(question), answer)

    def action_weight(self, step: float) -> None:
        row = self._selected_queue()
        if row is None or not self._changeable(row):
            return
        # Step onto the tenths grid (a typed 1.25 goes to 1.3 or 1.2), within 0..10.
        tenths = row.weight * 10
        target = math.floor(tenths + 1e-6) + 1 if step > 0 else math.ceil(tenths - 1e-6) - 1
        self._ask_weight(row, min(WEIGHT_MAX, max(0.0, round(target / 10, 2))))

    def action_type_weight(self) -> None:
        from console.screens.prompt import PromptScreen

        row = self._selected_queue()
        if row is None or not self._changeable(row):
            return

        def answer(text: str | None) -> None:
            if not text:
                return
            try:
                weight = float(text.replace(",", "."))
            except ValueError:
                self.notify(
                    f"{text!r} is not a number: give a weight from 0 to 10", severity="error"
                )
                return
            if not 0 <= weight <= WEIGHT_MAX:
                self.notify(f"weight {text}: give a number from 0 to 10", severity="error")
                return
            self._ask_weight(row, round(weight, 2))

        self.app.push_screen(
            PromptScreen(
                f"Weight of [b]{row.campaign}[/] at {row.pharmacy} (now {row.weight:g}): a number "
                "from 0 to 10; a higher weight gets its patients called sooner.",
                placeholder=f"{row.weight:g}",
                value=f"{row.weight:g}",
            ),
            answer,
        )

    def _ask_weight(self, row: QueueRow, weight: float) -> None:
        floor = self.floor
        if floor is None or weight == row.weight:
            return
        self._confirm(
            f"Set the weight of [b]{row.campaign}[/] at {row.pharmacy} from {row.weight:g} to "
            f"[b]{weight:g}[/]?\nIts patients are scored again at once.",
            f"{row.campaign} ({row.pharmacy}) weight {row.weight:g} → {weight:g}",
            lambda: floor.set_campaign_weight(row, weight),
        )

    def _selected_agent(self) -> tuple[int, str] | None:
        agent = self._agent_row()
        return (agent.user_id, agent.name) if agent else None

    def action_release(self) -> None:
        agent = self._selected_agent()
        if agent is None:
            return
        agent_id, name = agent
        floor = self.floor
        assert floor is not None
        self._confirm(
            f"Put the patient [b]{name}[/] holds back in the queue?\nTheir console can no "
            "longer save an outcome for that patient.",
            "Release patient",
            lambda: floor.release_patient_of(agent_id, name),
        )

    def action_log_out_agent(self) -> None:
        agent = self._selected_agent()
        if agent is None:
            return
        agent_id, name = agent
        floor = self.floor
        assert floor is not None
        self._confirm(
            f"Sign [b]{name}[/] out?\nTheir console signs out after the current wrap-up; a "
            "locked console at once, its patient back in the queue.",
            "Log out agent",
            lambda: floor.log_out_agent(agent_id, name),
        )

    def _selected_lock(self) -> LockedAccount | None:
        key = self.query_one(SignInsTable).selected_key
        if key is None or not key.startswith("u"):
            return None
        return next((a for a in self.sign_ins.locked if f"u{a.user_id}" == key), None)

    def action_unlock_account(self) -> None:
        locked = self._selected_lock()
        floor = self.floor
        if locked is None or floor is None:
            return
        until = locked.until.astimezone(ZoneInfo(floor.zone))
        self._confirm(
            f"Unlock [b]{locked.username}[/]'s account now?\nLocked until {until:%H:%M} after "
            "failed sign-ins; they can sign in at once. Do it only when you know it was them.",
            "Unlock account",
            lambda: floor.unlock_account(locked.username),
        )

    def action_do_not_call(self) -> None:
        from console.screens.prompt import PromptScreen

        floor = self.floor

        def answer(what: str | None) -> None:
            if not what or floor is None:
                return
            whom = "the number" if what.startswith("+") else "the patient"
            self._confirm(
                f"Add {whom} [b]{what}[/] to do-not-call?\nNo one calls "
                + (
                    "that number again."
                    if what.startswith("+")
                    else "them again; their open work closes."
                ),
                "Do-not-call",
                lambda: floor.do_not_call(what),
            )

        self.app.push_screen(
            PromptScreen(
                "Do-not-call: a phone number (+1…) stops calls to that number; a patient's MRN "
                "(or CODE:MRN) stops all calls to the patient and closes their open work.",
                placeholder="+12145551000 or MRN",
            ),
            answer,
        )

    def action_reassign(self) -> None:
        from console.screens.prompt import PromptScreen

        callback = self._callback_row()
        floor = self.floor
        if callback is None or floor is None:
            return

        def answer(who: str | None) -> None:
            if not who:
                return
            self._confirm(
                f"Give callback #{callback.callback_id} to [b]{who}[/]?",
                "Reassign callback",
                lambda: floor.reassign_callback(callback.callback_id, who),
            )

        self.app.push_screen(
            PromptScreen(
                f"Give callback #{callback.callback_id} ({callback.pharmacy}, due "
                f"{callback.due_at.astimezone(ZoneInfo(floor.zone)):%a %H:%M}, now "
                f"{callback.owner or 'anyone'}) to which agent? Their user name, or 'anyone'.",
                placeholder="user name or anyone",
            ),
            answer,
        )

    def action_report(self) -> None:
        from console.screens.prompt import PromptScreen

        assert self.floor is not None
        today = self.floor.today()
        quarter = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
        default = f"all {quarter} {today} html"

        def answer(text: str | None) -> None:
            if text is None:  # Escape: no report
                return
            words = (text or default).split()  # Enter alone: the default report
            if len(words) != 4:
                self.notify(
                    "Give four words: pharmacy code (or all), from, to, format — e.g. " + default,
                    severity="error",
                )
                return
            self._make_report(*words)

        self.app.push_screen(
            PromptScreen(
                "Program report: pharmacy code or 'all', first and last day (YYYY-MM-DD), and "
                f"csv, html or pdf. Enter alone: {default}",
                placeholder=default,
            ),
            answer,
        )

    @work(thread=True, exit_on_error=False, group="report")
    def _make_report(self, pharmacy: str, start: str, end: str, fmt: str) -> None:
        assert self.floor is not None
        try:
            first, last = date.fromisoformat(start), date.fromisoformat(end)
        except ValueError:
            raise OutreachError(f"{start} or {end} is not a date (YYYY-MM-DD)") from None
        made = self.floor.report(pharmacy, first, last, fmt)
        if self.app.is_web:  # the browser downloads it
            self.app.call_from_thread(self._download, made.content, made.filename, made.media_type)
            return
        saved = REPORTS_DIR / made.filename
        try:
            REPORTS_DIR.mkdir(parents=True, exist_ok=True)
            saved.write_bytes(made.content)
        except OSError as exc:
            self.app.call_from_thread(
                self.notify, f"Report not saved: {exc}", title="Report", severity="error"
            )
            return
        self.app.call_from_thread(
            self.notify,
            f"Report {made.filename} saved to {saved.resolve()}.",
            title="Report",
            timeout=30,  # long enough to read (or copy) the path
        )

    def _download(self, content: bytes, filename: str, media_type: str) -> None:
        self.app.deliver_binary(io.BytesIO(content), save_filename=filename, mime_type=media_type)
        self.notify(f"Report {filename} sent to your browser.", title="Report")

    def action_outbox(self) -> None:
        from console.screens.outbox import OutboxScreen

        # The floor's pharmacies (queues.access: an admin's are every pharmacy), as the CLI's.
        scope = self.floor.user if self.floor else self.user
        self.app.push_screen(OutboxScreen(self.outreach.services.outbox(scope)))

    def action_sign_out(self) -> None:
        self.outreach.signed_out()
