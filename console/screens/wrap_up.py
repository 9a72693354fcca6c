"""Wrap-up: the disposition (required), notes, and a callback time when the disposition asks for one.

Every change goes to the draft journal on local disk as it is made (console/drafts.py: debounced,
fsynced, written on the draft writer's thread, never on the event loop), and the whole form once
more before it is sent: a kill -9, a crash or a lost database link loses nothing, and the attempt's
uid makes a re-send store it once. A console restarted on a held patient reopens the form as it was
typed. Saved means stored and the lease released; a save whose claim is gone is stored late (the
call it was, marked late) and the agent is told so. A disposition list that could not be read (the
database away) is read again every few seconds until it comes.
"""

from __future__ import annotations

import dataclasses
import threading
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

from console.drafts import WRAP_UP_CLOSING, DraftStore, DraftWriter, FormState
from console.screens.base import WorkerFailures
from console.widgets.footer import Footer
from queues.errors import InvalidOutcome
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
# A list the database could not give is asked for again this often, until it comes.
RELOAD_SECONDS = 3.0
STORED_LATE = (
    "Stored late: this patient's claim had run out (or a supervisor released them), so the call "
    "is stored as it was, marked late. Nothing was lost."
)

# The last form typed for each claim (lease token) in this process: a wrap-up closed with Escape
# and opened again carries on with what was typed, under the same attempt uid (one draft file).
_TYPED: dict[str, tuple[Outcome, FormState]] = {}


class WrapUpScreen(WorkerFailures, ModalScreen[Recorded | None]):
    BINDINGS = [
        # Not a priority binding: a ctrl+s typed right after w reaches the app through the
        # workspace (the form was not on top yet when the key came in) and is looked up again
        # as it bubbles up, by then on this form — a priority binding is never looked up there,
        # so the key was dropped. No widget of the form takes ctrl+s itself.
        Binding("ctrl+s", "save", "Save", id="save_wrap_up"),
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
        self.form = FormState(suggested=self.draft.disposition)
        self.suggested = draft.disposition or None
        self.options: dict[str, DispositionOption] = {}
        self.chosen: str | None = draft.disposition or None
        self._writer: DraftWriter | None = None
        self._sent = False  # stored: a change after that is not journaled
        self._save_asked = False  # ctrl+s came before the form was ready: saved once it is
        self._unread: set[str] = set()  # lists not read (the database away): "options", …
        # Callback times are the patient's: what they say on the phone is their own clock.
        self.zone = ZoneInfo(patient.timezone or patient.pharmacy.timezone)
        self.slots: tuple[datetime, ...] = ()

    @property
    def outreach(self) -> OutreachApp:
        from console.app import OutreachApp

        assert isinstance(self.app, OutreachApp)
        return self.app

    def _drafts(self) -> DraftStore:
        root = Path(self.outreach.services.settings.ui.drafts_path)
        return DraftStore.of(root, self.shift.user)

    def _carry_on(self) -> None:
        """Take up what was typed before for this claim: in this process (the wrap-up closed with
        Escape and opened again), or in the journal (a console restarted on a held patient)."""
        fresh = self.draft
        if fresh.disposition == LINE_FAILED:
            return  # recorded by the console itself, not typed
        typed = _TYPED.get(fresh.lease_token)
        if typed is None:
            saved = self._drafts().load(fresh.uid)  # a small file, there only when resuming
            if saved is None or saved.form is None:
                return
            typed = (saved.outcome, saved.form)
        outcome, form = typed
        if outcome.uid == fresh.uid:  # the very draft: as it was
            suggested, disposition = form.suggested, outcome.disposition
        else:  # the call went on: its new suggestion, unless the agent had chosen another
            agent_chose = outcome.disposition != form.suggested
            suggested = fresh.disposition
            disposition = outcome.disposition if agent_chose else fresh.disposition
        self.draft = dataclasses.replace(
            fresh,
            uid=outcome.uid,
            disposition=disposition,
            notes=outcome.notes,
            callback_at=outcome.callback_at,
            callback_mine=outcome.callback_mine,
        )
        self.form = dataclasses.replace(form, suggested=suggested)
        self.suggested = suggested or None
        self.chosen = disposition or None

    def _callback_text(self) -> str:
        if self.form.callback_text or self.draft.callback_at is None:
            return self.form.callback_text
        return f"{self.draft.callback_at.astimezone(self.zone):{CALLBACK_FORMAT}}"

    def compose(self) -> ComposeResult:
        self._carry_on()
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
                        yield Input(
                            self._callback_text(), id="callback-at", placeholder=self._placeholder()
                        )
                        yield Checkbox(
                            "Only I call back (mine)",
                            value=self.draft.callback_mine,
                            id="callback-mine",
                        )
            # Docked at the box's foot: a long message never pushes Save off a small screen
            # (the form above scrolls instead).
            with Vertical(id="wrap-up-foot"):
                yield Static("", id="wrap-up-error")
                with Horizontal(id="wrap-up-buttons"):
                    yield Button("Save (ctrl+s)", id="save", variant="primary")
                    yield Button("Back to call (esc)", id="cancel")
        yield Footer()

    def on_mount(self) -> None:
        self._writer = DraftWriter(self._drafts(), self._not_kept)
        self._journal()  # the call's facts and the suggestion, from the moment the form opens
        self._load_options()
        self._load_callback_times()
        if self._save_asked:  # typed ahead (w, ctrl+s): the key is taken now, not dropped
            self.action_save()

    def on_unmount(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:  # writes what is queued: joins a thread, never on the event loop
            threading.Thread(target=writer.close, name=WRAP_UP_CLOSING, daemon=True).start()

    # -- the journal: every change, as it is made -----------------------------------------------
    def _typed(self) -> tuple[Outcome, FormState]:
        """The form as it stands, valid or not: what the journal keeps."""
        raw = self.query_one("#callback-at", Input).value
        try:
            callback_at: datetime | None = datetime.strptime(raw.strip(), CALLBACK_FORMAT).replace(
                tzinfo=self.zone
            )
        except ValueError:
            callback_at = None
        outcome = dataclasses.replace(
            self.draft,
            disposition=self.chosen or "",
            notes=self.query_one("#notes", TextArea).text,
            callback_at=callback_at,
            callback_mine=self.query_one("#callback-mine", Checkbox).value,
        )
        self.form = dataclasses.replace(self.form, callback_text=raw, seq=self.form.seq + 1)
        return outcome, self.form

    def _journal(self) -> None:
        if self._writer is None or self._sent:
            return
        outcome, form = self._typed()
        _TYPED[outcome.lease_token] = (outcome, form)
        self._writer.save_soon(outcome, form)

    @on(TextArea.Changed, "#notes")
    @on(Input.Changed, "#callback-at")
    @on(Checkbox.Changed, "#callback-mine")
    def _changed(self) -> None:
        self._journal()

    def _not_kept(self, error: OSError) -> None:  # on the draft writer's thread
        self.app.call_from_thread(
            self.notify,
            f"The wrap-up is not kept on this computer ({error.strerror or error}): save it soon.",
            severity="error",
            timeout=15,
        )

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

    def _retry_lists(self) -> None:
        """The database was away when the form opened: ask again, every few seconds until it
        answers (a timer; the form works meanwhile)."""
        if not self._unread or not self.is_attached or self._sent:
            return
        # One read of each list at a time: a server that does not answer at all takes its
        # connect timeout, longer than this timer.
        asking = {w.group for w in self.app.workers if w.node is self and w.is_running}
        if "options" in self._unread and "options" not in asking:
            self._load_options()
        if "callback-times" in self._unread and "callback-times" not in asking:
            self._load_callback_times()
        self.set_timer(RELOAD_SECONDS, self._retry_lists)

    @work(thread=True, exit_on_error=False, group="callback-times")
    def _load_callback_times(self) -> None:
        times = self.shift.callback_times(self.patient.id)
        self.app.call_from_thread(self._show_callback_times, times)

    def _show_callback_times(self, times: CallbackTimes) -> None:
        self._unread.discard("callback-times")
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
        if "options" in self._unread:  # back: the message about the list goes
            self._unread.discard("options")
            self.query_one("#wrap-up-error", Static).update("")
        # A line failure is recorded by the console, never chosen by the agent (unless this very
        # draft is one, kept because the database was away).
        dispositions = tuple(
            d for d in dispositions if d.code != LINE_FAILED or self.chosen == LINE_FAILED
        )
        self.options = {d.code: d for d in dispositions}
        option_list = self.query_one("#disposition", OptionList)
        option_list.clear_options()
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
        self._journal()
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
        if self._writer is None:
            # Before on_mount (an agent who types w and ctrl+s at once, on a busy machine, is
            # ahead of the form): taken as soon as the form is up. After unmount: nothing to do.
            self._save_asked = not self._sent
            return
        try:
            outcome = self._collect()
        except InvalidOutcome as exc:
            self._invalid(exc)
            return
        self.query_one("#save", Button).disabled = True
        self.query_one("#wrap-up-error", Static).update("Saving…")
        _TYPED[outcome.lease_token] = (outcome, self.form)
        self._save(outcome, self.form, self._writer)

    @work(thread=True, exclusive=True, exit_on_error=False, group="wrap-up")
    def _save(self, outcome: Outcome, form: FormState, writer: DraftWriter) -> None:
        # On disk before it is sent (after every version typed before it); a draft the database
        # refuses as invalid stays there: it is what the agent typed, and the form says why.
        writer.save(outcome, form)
        writer.flush()
        recorded = self.shift.record(outcome)
        self._sent = True
        writer.finish(outcome.uid)
        _TYPED.pop(outcome.lease_token, None)
        for other in writer.store.drafts():  # earlier forms of this claim: this save answers them
            if other.outcome.lease_token == outcome.lease_token:
                writer.finish(other.outcome.uid)
        writer.flush()  # gone from disk before the screen goes: nothing offers it again
        if recorded.late:
            self.app.call_from_thread(
                self.app.notify, STORED_LATE, title="Stored late", severity="warning", timeout=20
            )
        self.app.call_from_thread(self.dismiss, recorded)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        # The database away reads "the database is unreachable — your work is kept", never its
        # address (console.screens.base.failure_message); the log has the rest.
        message = message if message.endswith(".") else f"{message}."
        if group in ("options", "callback-times"):
            if not self._unread:
                self.set_timer(RELOAD_SECONDS, self._retry_lists)
            self._unread.add(group)
        if group == "options":
            self._error(
                f"The disposition list could not be read: {message} It loads by itself when "
                "the database answers."
            )
        elif group == "callback-times":  # free entry still works; the save checks the time
            self.query_one("#callback-label", Label).update(
                "Callback (patient's time, YYYY-MM-DD HH:MM) — no open times shown yet"
            )
        elif isinstance(error, InvalidOutcome):
            self._invalid(error)
        else:  # the database away, a dropped connection: the draft is kept on this computer
            self._error(f"Not saved yet: {message} Press ctrl+s to retry.")

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
