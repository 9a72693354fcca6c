"""Wrap-up: the disposition (required), notes, and a callback time when the disposition asks for one.

The draft goes to local disk before it is sent, so a crash or a lost database link loses nothing;
the attempt's uid makes a re-send store it once. Saved means stored and the lease released.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from console.drafts import DraftStore
from console.screens.base import WorkerFailures
from console.widgets.footer import Footer
from queues.errors import InvalidOutcome, LeaseLost
from queues.views.outcome import (
    LINE_FAILED,
    ActionRequest,
    CallbackTimes,
    DispositionOption,
    Outcome,
    Recorded,
)
from queues.views.patient import PatientContext

if TYPE_CHECKING:
    from console.app import OutreachApp
    from console.services.agent_shift import AgentShift

CALLBACK_FORMAT = "%Y-%m-%d %H:%M"


class WrapUpScreen(WorkerFailures, ModalScreen[Recorded | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="save_wrap_up", priority=True),
        Binding("escape", "cancel", "Back to call", id="cancel_wrap_up"),
    ]

    def __init__(
        self, shift: AgentShift, patient: PatientContext, draft: Outcome, *, ended: str = ""
    ) -> None:
        super().__init__()
        self.ended = ended  # how the softphone's call ended, in words
        self.shift = shift
        self.patient = patient
        # A draft read back from disk carries its actions as plain dicts.
        self.draft = dataclasses.replace(
            draft,
            actions=tuple(
                a if isinstance(a, ActionRequest) else ActionRequest(**a) for a in draft.actions
            ),
        )
        self.suggested = draft.disposition or None
        self.options: dict[str, DispositionOption] = {}
        self.chosen: str | None = draft.disposition or None
        # Callback times are the patient's: what they say on the phone is their own clock.
        self.zone = ZoneInfo(patient.timezone or patient.pharmacy.timezone)
        self.slots: tuple[datetime, ...] = ()

    @property
    def outreach(self) -> OutreachApp:
        from console.app import OutreachApp

        assert isinstance(self.app, OutreachApp)
        return self.app

    def compose(self) -> ComposeResult:
        with Vertical(id="wrap-up-box"):
            yield Static(f"Wrap-up — {self.patient.full_name}", id="wrap-up-title")
            if self.ended:
                yield Static(f"The call: {escape(self.ended)}", id="wrap-up-ended")
            with Horizontal(id="wrap-up-body"):
                with Vertical(id="wrap-up-left"):
                    yield Label("Disposition (required, Enter)")  # fits 80 columns
                    yield OptionList(id="disposition")
                    yield Static("", id="disposition-chosen")
                    yield Static(self._actions_text(), id="wrap-up-actions")
                with Vertical(id="wrap-up-right"):
                    yield Label("Notes (no more than the call needs)")
                    yield TextArea(self.draft.notes, id="notes")
                    with Vertical(id="callback-fields"):
                        yield Label(self._callback_label(), id="callback-label")
                        yield OptionList(id="callback-slots")
                        yield Input(id="callback-at", placeholder=self._placeholder())
                        yield Checkbox("Only I call back (mine)", value=True, id="callback-mine")
            # Docked at the box's foot: a long message never pushes Save off a small screen
            # (the form above scrolls instead).
            with Vertical(id="wrap-up-foot"):
                yield Static("", id="wrap-up-error")
                with Horizontal(id="wrap-up-buttons"):
                    yield Button("Save (ctrl+s)", id="save", variant="primary")
                    yield Button("Back to call (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self._load_options()
        self._load_callback_times()

    def _callback_label(self) -> str:
        abbr = f"{self.slots[0] if self.slots else self.shift.now.astimezone(self.zone):%Z}"
        # Fits 80 columns; the placeholder shows the form to type.
        return f"Callback (patient's time, {abbr})"

    def _placeholder(self) -> str:
        """An example that is never in the past: the first open time offered, else tomorrow
        10:00 by the shift's clock (the practice clock in training)."""
        if self.slots:
            return f"{self.slots[0]:{CALLBACK_FORMAT}}"
        tomorrow = self.shift.now.astimezone(self.zone).date() + timedelta(days=1)
        return f"{datetime.combine(tomorrow, time(10)):{CALLBACK_FORMAT}}"

    @work(thread=True, exit_on_error=False, group="callback-times")
    def _load_callback_times(self) -> None:
        times = self.shift.callback_times(self.patient.id)
        self.app.call_from_thread(self._show_callback_times, times)

    def _show_callback_times(self, times: CallbackTimes) -> None:
        self.zone = ZoneInfo(times.zone)
        self.slots = tuple(at.astimezone(self.zone) for at in times.slots)
        today = self.shift.now.astimezone(self.zone).date()
        picker = self.query_one("#callback-slots", OptionList)
        picker.clear_options()
        for n, at in enumerate(self.slots):
            day = {today: "Today", today + timedelta(days=1): "Tomorrow"}.get(at.date(), "")
            words = f"{day} {at:%a %b %d %H:%M %Z}" if day else f"{at:%a %b %d %H:%M %Z}"
            picker.add_option(Option(words, id=str(n)))
        if self.slots:
            picker.highlighted = 0  # Enter takes the soonest
        self.query_one("#callback-label", Label).update(self._callback_label())
        self.query_one("#callback-at", Input).placeholder = self._placeholder()

    @on(OptionList.OptionSelected, "#callback-slots")
    def _slot_chosen(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        at = self.slots[int(event.option.id or 0)]
        field = self.query_one("#callback-at", Input)
        field.value = f"{at:{CALLBACK_FORMAT}}"
        self.query_one("#notes").focus()

    @work(thread=True, exit_on_error=False, group="options")
    def _load_options(self) -> None:
        dispositions = self.shift.reference_data().dispositions
        self.app.call_from_thread(self._show_options, dispositions)

    def _show_options(self, dispositions: tuple[DispositionOption, ...]) -> None:
        # A line failure is recorded by the console, never chosen by the agent (unless this very
        # draft is one, kept because the database was away).
        dispositions = tuple(
            d for d in dispositions if d.code != LINE_FAILED or self.chosen == LINE_FAILED
        )
        self.options = {d.code: d for d in dispositions}
        option_list = self.query_one("#disposition", OptionList)
        option_list.add_options(
            Option(f"{'●' if d.reached else '○'} {d.label}", id=d.code) for d in dispositions
        )
        if self.chosen in self.options:
            option_list.highlighted = list(self.options).index(self.chosen)
        option_list.focus()
        self._show_chosen()

    @on(OptionList.OptionSelected, "#disposition")
    def _choose(self, event: OptionList.OptionSelected) -> None:
        self.chosen = event.option.id
        self._show_chosen()
        next_field = "#callback-slots" if self._needs_callback() else "#notes"
        self.query_one(next_field).focus()

    def _needs_callback(self) -> bool:
        option = self.options.get(self.chosen or "")
        return bool(option and option.requires_callback)

    def _show_chosen(self) -> None:
        option = self.options.get(self.chosen or "")
        text = f"Chosen: [b]{option.label}[/]" if option else "Chosen: [b red]none yet[/]"
        if option and option.code == self.suggested:
            text += " [dim](suggested)[/]"
        self.query_one("#disposition-chosen", Static).update(text)
        self.query_one("#callback-fields").display = self._needs_callback()

    def _actions_text(self) -> str:
        """The follow-up actions the script produced; saved with the attempt."""
        from console.widgets.script_panel import action_line

        if not self.draft.actions:
            return ""
        lines = [f"[green]✓[/] {escape(action_line(a))}" for a in self.draft.actions]
        return "Follow-up actions (sent with this call):\n" + "\n".join(lines)

    def _collect(self) -> Outcome:
        """The form as an Outcome; raises InvalidOutcome naming the field at fault."""
        callback_at = None
        if self._needs_callback():
            raw = self.query_one("#callback-at", Input).value.strip()
            if not raw:
                raise InvalidOutcome("callback_at", "enter the callback date and time")
            try:
                local = datetime.strptime(raw, CALLBACK_FORMAT)
            except ValueError:
                raise InvalidOutcome(
                    "callback_at", f"{raw!r} is not a date and time like 2026-12-03 14:30"
                ) from None
            callback_at = local.replace(tzinfo=self.zone)
        if not self.chosen:
            raise InvalidOutcome("disposition", "choose how the call ended")
        return dataclasses.replace(
            self.draft,
            disposition=self.chosen,
            notes=self.query_one("#notes", TextArea).text,
            callback_at=callback_at,
            callback_mine=self.query_one("#callback-mine", Checkbox).value,
        )

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        try:
            outcome = self._collect()
        except InvalidOutcome as exc:
            self._invalid(exc)
            return
        self.query_one("#save", Button).disabled = True
        self.query_one("#wrap-up-error", Static).update("Saving…")
        self._save(outcome)

    @work(thread=True, exclusive=True, exit_on_error=False, group="wrap-up")
    def _save(self, outcome: Outcome) -> None:
        drafts = DraftStore(
            Path(self.outreach.services.settings.ui.drafts_path), self.shift.user.username
        )
        drafts.save(outcome)
        try:
            recorded = self.shift.record(outcome)
        except InvalidOutcome:
            drafts.discard(outcome.uid)  # the form is at fault: the agent corrects it on screen
            raise
        drafts.discard(outcome.uid)
        self.app.call_from_thread(self.dismiss, recorded)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "options":
            self._error(f"Cannot load dispositions: {message}")
        elif group == "callback-times":  # free entry still works; the save checks the time
            self.query_one("#callback-label", Label).update(
                f"Callback (patient's time, YYYY-MM-DD HH:MM) — no open times shown: {message}"
            )
        elif isinstance(error, InvalidOutcome):
            self._invalid(error)
        elif isinstance(error, LeaseLost):
            self._error(f"{message} Nothing was saved. Press Escape to let this patient go.")
        else:  # the database away, a dropped connection: the draft is kept on this computer
            self._error(f"Not saved yet — {message} Press ctrl+s to retry.")

    def _invalid(self, exc: InvalidOutcome) -> None:
        targets = {"disposition": "#disposition", "callback_at": "#callback-at", "notes": "#notes"}
        labels = {"disposition": "Disposition", "callback_at": "Callback time", "notes": "Notes"}
        self._error(f"{labels.get(exc.field, exc.field)}: {exc.why}")
        if exc.field in targets:
            self.query_one(targets[exc.field]).focus()

    def _error(self, message: str) -> None:
        self.query_one("#wrap-up-error", Static).update(f"[b red]{message}[/]")
        self.query_one("#save", Button).disabled = False

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
