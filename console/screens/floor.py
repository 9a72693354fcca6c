"""The supervisor's floor monitor: queues, agents and today's outcomes, refreshed in place by a
worker every couple of seconds, with the controls a supervisor needs (each one audited)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from console.widgets.floor_tables import AgentsTable, OutcomesPanel, QueuesTable
from queues import controls
from queues.auth import SignedInUser
from queues.db import transaction
from queues.errors import OutreachError
from queues.monitor import FloorSnapshot, floor_snapshot

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from console.app import OutreachApp

REFRESH_SECONDS = 2.0


class FloorScreen(Screen[None]):
    BINDINGS = [
        Binding(
            "space",
            "toggle_campaign",
            "Pause/resume",
            id="toggle_campaign",
            tooltip="Pause or resume the selected campaign",
        ),
        Binding("plus,equals_sign", "weight(0.5)", "Weight +", id="weight_up"),
        Binding("minus", "weight(-0.5)", "Weight −", id="weight_down"),
        Binding(
            "x",
            "release",
            "Release lease",
            id="release_lease",
            tooltip="Put the selected agent's patient back in the queue",
        ),
        Binding("o", "log_out_agent", "Log agent out", id="log_out_agent"),
        Binding(
            "n",
            "do_not_call",
            "Do-not-call",
            id="do_not_call",
            tooltip="Add a number or a patient to do-not-call",
        ),
        Binding("k", "reassign", "Reassign callback", id="reassign_callback"),
        Binding("f5", "refresh", "Refresh", id="refresh_floor", show=False),
        Binding("L", "sign_out", "Log out", id="sign_out"),
    ]

    def __init__(self, user: SignedInUser) -> None:
        super().__init__()
        self.user = user
        self.snapshot: FloorSnapshot | None = None

    @property
    def outreach(self) -> OutreachApp:
        from console.app import OutreachApp

        assert isinstance(self.app, OutreachApp)
        return self.app

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="status-line")
        with Vertical(id="floor"):
            yield QueuesTable(id="queues")
            with Horizontal(id="floor-bottom"):
                yield AgentsTable(id="agents")
                yield OutcomesPanel(id="outcomes")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#queues").border_title = "Queues (space pause · +/− weight)"
        self.query_one("#agents").border_title = "Agents (x release · o log out)"
        self.query_one("#outcomes").border_title = "Today"
        self.action_refresh()
        self._timer = self.set_interval(REFRESH_SECONDS, self.action_refresh)

    def on_screen_suspend(self) -> None:
        self._timer.pause()

    def on_screen_resume(self) -> None:
        self._timer.resume()

    # -- refresh -----------------------------------------------------------------------------
    def action_refresh(self) -> None:
        self._load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="floor")
    def _load(self) -> None:
        services = self.outreach.services
        started = time.perf_counter()
        try:
            with services.sessions() as session:
                zone = _first_zone(session, self.user) or "UTC"
                snap = floor_snapshot(
                    session,
                    self.user.pharmacy_ids,
                    services.clock.now(),
                    zone,
                    services.settings.queue.callback_grace_minutes,
                )
        except OutreachError as exc:
            self.app.call_from_thread(self.notify, str(exc), severity="error")
            return
        except Exception as exc:  # the database went away: say so, the next refresh retries
            self.app.call_from_thread(
                self.notify, f"Floor view not refreshed: {type(exc).__name__}", severity="warning"
            )
            return
        elapsed = (time.perf_counter() - started) * 1000
        self.app.call_from_thread(self._show, snap, zone, elapsed)

    def _show(self, snap: FloorSnapshot, zone: str, elapsed_ms: float) -> None:
        self.snapshot = snap
        self.query_one(QueuesTable).show(snap.queues, zone)
        self.query_one(AgentsTable).show(snap.agents, snap.at)
        self.query_one(OutcomesPanel).show(snap.outcomes)
        clock = self.outreach.services.clock
        local = snap.at.astimezone(ZoneInfo(zone))
        label = "PRACTICE CLOCK " if clock.is_practice else ""
        self.query_one("#status-line", Static).update(
            f"[b]FLOOR[/] · {self.user.display_name} ({', '.join(self.user.pharmacy_codes)}) · "
            f"{label}{local:%a %H:%M %Z} · refreshed in {elapsed_ms:.0f} ms"
        )

    # -- controls ----------------------------------------------------------------------------
    def _control(self, what: str, change: Callable[[Session], object]) -> None:
        self._run_control(what, change)

    @work(thread=True, exit_on_error=False, group="control")
    def _run_control(self, what: str, change: Callable[[Session], object]) -> None:
        try:
            with transaction(self.outreach.services.sessions) as session:
                change(session)
        except OutreachError as exc:
            self.app.call_from_thread(self.notify, str(exc), title=what, severity="error")
            return
        self.app.call_from_thread(self.notify, f"{what}: done", timeout=3)
        self.app.call_from_thread(self.action_refresh)

    def _selected_campaign(self) -> int | None:
        table = self.query_one(QueuesTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key else None

    def _selected_agent(self) -> int | None:
        table = self.query_one(AgentsTable)
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return int(key) if key else None

    def action_toggle_campaign(self) -> None:
        campaign_id = self._selected_campaign()
        row = (
            next((q for q in self.snapshot.queues if q.campaign_id == campaign_id), None)
            if (self.snapshot)
            else None
        )
        if row is None:
            return
        now = self.outreach.services.clock.now()
        settings = self.outreach.services.settings.queue
        self._control(
            f"{'Pause' if row.active else 'Resume'} {row.campaign}",
            lambda s: controls.set_campaign_active(
                s, self.user, row.campaign_id, not row.active, now, settings
            ),
        )

    def action_weight(self, step: float) -> None:
        campaign_id = self._selected_campaign()
        row = (
            next((q for q in self.snapshot.queues if q.campaign_id == campaign_id), None)
            if (self.snapshot)
            else None
        )
        if row is None:
            return
        now = self.outreach.services.clock.now()
        settings = self.outreach.services.settings.queue
        weight = max(0.0, round(row.weight + step, 2))
        self._control(
            f"Weight of {row.campaign} → {weight:g}",
            lambda s: controls.set_campaign_weight(
                s, self.user, row.campaign_id, weight, now, settings
            ),
        )

    def action_release(self) -> None:
        agent = self._selected_agent()
        if agent is None:
            return
        now = self.outreach.services.clock.now()

        def release(session: Session) -> None:
            from sqlalchemy import select

            from queues.models import QueueEntry

            patient_id = session.scalar(
                select(QueueEntry.patient_id).where(QueueEntry.holder_id == agent)
            )
            if patient_id is None:
                raise OutreachError("that agent holds no patient")
            controls.release_lease(session, self.user, patient_id, now)

        self._control("Release lease", release)

    def action_log_out_agent(self) -> None:
        agent = self._selected_agent()
        if agent is None:
            return
        now = self.outreach.services.clock.now()
        self._control("Log agent out", lambda s: controls.request_logout(s, self.user, agent, now))

    def action_do_not_call(self) -> None:
        from console.screens.prompt import PromptScreen

        def done(answer: str | None) -> None:
            if not answer:
                return
            patient, _, number = answer.partition(" ")
            if not patient.isdigit():
                self.notify(
                    "Give the patient id, then optionally the number (+1…)", severity="error"
                )
                return
            now = self.outreach.services.clock.now()
            self._control(
                "Do-not-call",
                lambda s: controls.add_do_not_call(
                    s, self.user, patient_id=int(patient), number=number.strip() or None, now=now
                ),
            )

        self.app.push_screen(
            PromptScreen("Do-not-call: PATIENT_ID [NUMBER] (no number: the whole patient)"),
            callback=done,
        )

    def action_reassign(self) -> None:
        from console.screens.prompt import PromptScreen

        def done(answer: str | None) -> None:
            if not answer:
                return
            callback, _, who = answer.partition(" ")
            if not callback.isdigit():
                self.notify("Give the callback id, then an agent id or 'anyone'", severity="error")
                return
            to = None if who.strip() in ("", "anyone") else who.strip()
            if to is not None and not to.isdigit():
                self.notify("The agent is given by id (see the Agents table)", severity="error")
                return
            self._control(
                "Reassign callback",
                lambda s: controls.reassign_callback(
                    s, self.user, int(callback), int(to) if to else None
                ),
            )

        self.app.push_screen(
            PromptScreen("Reassign callback: CALLBACK_ID AGENT_ID|anyone"), callback=done
        )

    def action_sign_out(self) -> None:
        self.outreach.signed_out()


def _first_zone(session: Session, user: SignedInUser) -> str | None:
    from sqlalchemy import select

    from queues.models import Pharmacy

    if not user.pharmacy_ids:
        return None
    return session.scalar(
        select(Pharmacy.timezone).where(Pharmacy.id.in_(user.pharmacy_ids)).order_by(Pharmacy.code)
    )
