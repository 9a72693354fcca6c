"""The agent's workspace: go Ready, get the next patient, dial, follow the script, wrap up.

The screen composes widgets and decides; database work runs in thread workers through `Shift`.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import Header, Static
from textual.worker import Worker, WorkerState

from console.drafts import (
    WORKSPACE_CLOSING,
    DraftStore,
    database_address,
    former_id_drafts,
    legacy_drafts,
    legacy_folder,
    note_address,
)
from console.screens.base import let_go_of_closed_watchers, let_go_of_render_caches
from console.screens.calling import LIVE, SUGGESTED, CallFacts, CallingScreen, Phase
from console.widgets.dial_bar import DialBar
from console.widgets.footer import Footer
from console.widgets.history import AttemptHistory
from console.widgets.medications import MedicationsTable
from console.widgets.patient_card import PatientCard
from console.widgets.script_panel import ScriptDrafts, ScriptPanel
from console.widgets.softphone_bar import SoftphoneBar
from queues.errors import LeaseLost, WrapUpPending
from queues.views.outcome import LINE_FAILED, Outcome, Recorded
from queues.views.patient import PatientContext
from queues.views.shift import Offer
from queues.views.user import SignedInUser

if TYPE_CHECKING:
    from console.services.phone_line import PhoneLine
    from console.softphone import DialPermit
    from queues.views.shift import Offer

_log = logging.getLogger("console.drafts")

WAIT_RETRY_SECONDS = 10
SUPERVISOR_POLL_SECONDS = 2  # a supervisor's "log out" shows within one monitor refresh


def _drafts_words(count: int) -> str:
    return "1 wrap-up draft" if count == 1 else f"{count} wrap-up drafts"


def _were(count: int) -> str:
    return "was" if count == 1 else "were"


class WorkspaceScreen(CallingScreen):
    BINDINGS = [
        Binding(
            "r",
            "ready",
            "Ready/next",
            id="next_patient",
            tooltip="Go Ready and take the next patient",
        ),
        Binding(
            "d", "dial", "Dial", id="dial", tooltip="Dial the number shown (checked again first)"
        ),
        Binding(
            "h", "hangup", "Hang up", id="hangup", tooltip="End the call (CANCEL while ringing)"
        ),
        Binding("m", "mute", "Mute", id="mute", tooltip="Mute or unmute your microphone"),
        Binding(
            "o",
            "hold",
            "Hold/resume",
            id="hold",
            tooltip="Put the patient on hold, or take them off hold",
        ),
        Binding(
            "k", "keypad", "Keypad", id="keypad", tooltip="Focus the keypad: digits send DTMF tones"
        ),
        Binding("c", "mark('connected')", "Connected", id="mark_connected"),
        Binding("a", "mark('no_answer')", "No answer", id="mark_no_answer"),
        Binding("b", "mark('busy')", "Busy", id="mark_busy"),
        Binding(
            "t",
            "next_number",
            "Next number",
            id="next_number",
            tooltip="Dial another of the patient's numbers",
        ),
        Binding("w", "wrap_up", "Wrap-up", id="wrap_up", tooltip="Record the outcome of this call"),
        Binding(
            "i",
            "details",
            "Details",
            id="details",
            tooltip=(
                "Show or hide the details: every medication and earlier-attempt column, "
                "the priority scores"
            ),
        ),
        Binding("p", "pause", "Pause", id="pause", tooltip="Take a break with a pause code"),
        Binding("L", "sign_out", "Log out", id="sign_out", tooltip="End the shift and sign out"),
        Binding("ctrl+l", "app.lock", "Lock", id="lock", show=False),
        Binding(
            "left_square_bracket",
            "script_back",
            "Back",
            id="script_back",
            tooltip="Script: the step before (answers are kept)",
        ),
        Binding(
            "right_square_bracket",
            "script_forward",
            "Fwd",
            id="script_forward",
            tooltip="Script: go on with the answer already given",
        ),
        Binding(
            "l",
            "script_language",
            "Lang",
            id="script_language",
            show=False,
            tooltip="Script: switch between English and Spanish",
        ),
        *(
            Binding(
                str(n), f"script_choose({n})", f"Answer {n}", id=f"script_answer_{n}", show=False
            )
            for n in range(1, 10)
        ),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    def __init__(self, user: SignedInUser) -> None:
        super().__init__()
        self.user = user
        self.pause_label = ""
        self._phase_since = time.monotonic()
        self._heartbeat: Timer | None = None
        self._retry: Timer | None = None
        self._saved = False  # after a first wrap-up the agent is between calls, not "not ready"
        self._script_store: ScriptDrafts | None = None
        self._logout_seen = False
        self._lease_gone = False  # the claim was lost (released or expired) while held here
        self._call_uid: str | None = None  # the attempt's uid from its first dial: one draft
        self._line: PhoneLine | None = None  # the softphone, once mounted; `softphone` once running
        self._line_draft: Outcome | None = None  # a line failure being recorded
        self._script_moves = (False, False)  # the script's Back and Forward: possible now?

    # -- layout ------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static("", id="status-line")
        yield DialBar(id="dial-bar")
        if self.outreach.services.settings.sip.server:
            yield SoftphoneBar(id="softphone")
        with Horizontal(id="main"):
            with Vertical(id="left"):
                yield PatientCard("", id="patient-card")
                yield MedicationsTable(id="meds")
                yield AttemptHistory(id="history")
            yield ScriptPanel(id="script")
        yield Footer()

    def on_mount(self) -> None:
        self.shift = self.outreach.services.agent_shift(self.user)
        self.query_one(PatientCard).clear("Press r to go Ready and take your first patient.")
        self.query_one("#meds").border_title = "Medications"
        self.query_one("#history").border_title = "Earlier attempts"
        self.set_interval(1, self._tick)
        lease = self.outreach.services.settings.queue.lease_seconds
        self._heartbeat = self.set_interval(max(lease / 3, 1), self._beat, pause=True)
        self._render_status()
        self._render_dial()
        self._set_agent_state("not_ready")
        self.set_interval(SUPERVISOR_POLL_SECONDS, self._poll_supervisor)
        bars = self.query(SoftphoneBar)
        if bars:
            # Until it runs, `self.softphone` stays None: the agent dials by hand.
            self._line = self.outreach.services.phone_line(bars.first().post_phone_event)
            if self._line is not None:
                self._start_phone(self._line)
        self._reopen_wrap_ups(at_sign_in=True)

    # -- wrap-ups a stopped console left on this computer --------------------------------------
    @work(thread=True, exclusive=True, exit_on_error=False, group="drafts")
    def _reopen_wrap_ups(self, at_sign_in: bool = False) -> None:
        """At sign-in (and after each save): a wrap-up kept on this computer for this database
        (the console killed with the form open) comes back as it was typed. Its claim still held:
        Ready resumes the patient and `_show_offer` reopens the form. Its claim gone: the form
        opens to be saved late, the call it was. A draft of another user id is never opened (the
        agent is told at sign-in); drafts from before drafts were kept per database are taken up
        first when this database shows they were typed here (console/drafts.py)."""
        assert self.shift is not None
        drafts = self._drafts()
        if at_sign_in:
            self._take_up_legacy_drafts(drafts)
            self._tell_former_id_drafts()
        pending = drafts.pending()
        mine = [d for d in pending if d.user_id == self.user.id]
        if at_sign_in and len(mine) < len(pending):
            others = len(pending) - len(mine)
            self._tell_drafts(
                f"{_drafts_words(others)} kept on this computer {_were(others)} typed under "
                f"another account, not yours: not saved; kept in {drafts.dir.resolve()}.",
            )
        for draft in mine:
            if self.shift.already_stored(draft):  # stopped between the save and the clean-up
                drafts.discard(draft.uid)
                continue
            if self.shift.still_holds(draft):
                self.app.call_from_thread(self._resume_wrap_up)
                return
            patient = self.shift.late_wrap_up(draft)
            self.app.call_from_thread(self._open_late_wrap_up, patient, draft)
            return

    def _take_up_legacy_drafts(self, drafts: DraftStore) -> None:
        """On the drafts worker, at sign-in: legacy-layout wrap-up drafts this database shows were
        typed here move into its folder; the others stay where they are, and the agent is told
        how many and where (no patient named: the drafts are not this database's to show)."""
        assert self.shift is not None
        root = self._drafts_root()
        left = 0
        for legacy in legacy_drafts(root, self.user.username):
            written = datetime.fromtimestamp(legacy.draft.written, UTC)
            try:
                if self.shift.typed_here(legacy.draft.outcome, written) and drafts.adopt(
                    legacy.path
                ):
                    continue
            except OSError as exc:  # could not be moved: it stays where it is, and is counted
                _log.warning("a legacy draft could not be moved: %s", type(exc).__name__)
            left += 1
        if left:
            folder = legacy_folder(root, self.user.username).resolve()
            self._tell_drafts(
                f"{_drafts_words(left)} kept on this computer by an earlier version of the console "
                f"could not be matched to this database: not opened here; kept in {folder}."
            )

    def _tell_former_id_drafts(self) -> None:
        """On the drafts worker, at sign-in: note the address this database is reached at, and
        tell the agent how many of their wrap-up drafts are kept under an id the database at this
        address had before (console/drafts.py). They are never opened here (a copy given its own
        id is another database): they stay where they are."""
        root = self._drafts_root()
        try:
            address = database_address(self.outreach.services.settings.database.url)
            note_address(root, self.user.database_id, address)
            found = former_id_drafts(root, self.user.database_id, address, self.user.username)
        except Exception as exc:  # a notice only: it must never keep the agent's drafts shut
            _log.warning("drafts under a former database id not looked for: %s", type(exc).__name__)
            return
        if found:
            count = sum(f.count for f in found)
            where = ", ".join(str(f.folder.resolve()) for f in found)
            self._tell_drafts(
                f"{_drafts_words(count)} kept on this computer {_were(count)} typed against the "
                "database at this address under an id it no longer has (given a new one, or made "
                f"again): not opened here; kept in {where}."
            )

    def _tell_drafts(self, message: str) -> None:
        """(from the drafts worker) One line to the agent, and to the log (counts and folders
        only: no patient is named)."""
        _log.warning("%s", message)
        self.app.call_from_thread(
            self.notify, message, title="Wrap-ups kept", severity="warning", timeout=20
        )

    def _resume_wrap_up(self) -> None:
        if self.offer is None and self.phase != "claiming" and self.app.screen is self:
            self.action_ready()

    def _open_late_wrap_up(self, patient: PatientContext, draft: Outcome) -> None:
        from console.screens.wrap_up import WrapUpScreen

        if self.offer is not None or self.app.screen is not self or self.shift is None:
            return  # after this patient's wrap-up (`_wrapped_up` looks again)
        self.notify(
            f"A wrap-up for {patient.full_name} was not saved before the console stopped: "
            "save it now (it is stored late).",
            title="Unsaved wrap-up",
            severity="warning",
            timeout=20,
        )
        self._set_agent_state("wrap_up")
        self.app.push_screen(
            WrapUpScreen(self.shift, patient, draft), callback=self._late_wrapped_up
        )

    def _late_wrapped_up(self, recorded: Recorded | None) -> None:
        if recorded is None:  # closed: offered again at the next sign-in
            self._set_agent_state("not_ready")
        else:
            self._reopen_wrap_ups()  # another one kept?

    @work(thread=True, exit_on_error=False, group="softphone")
    def _start_phone(self, line: PhoneLine) -> None:
        """Binds sockets and may resolve the server's name: off the event loop."""
        if why := line.start():
            self.notify(why, title="Manual dialling", severity="warning", timeout=10)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # Failures: WorkerFailures.on_worker_state_changed. Textual calls every class's handler
        # along the MRO, so calling it here too told the agent every failure twice.
        started = event.worker.group == "softphone" and event.state == WorkerState.SUCCESS
        if started and self._line is not None and self._line.enabled:
            self.softphone = self._line
            self.refresh_bindings()

    def on_unmount(self) -> None:
        line, self._line, self.softphone = self._line, None, None
        drafts, self._script_store = self._script_store, None

        def stop() -> None:  # joins threads (and lets a BYE finish): never on the event loop
            # The script's progress first: a BYE may take the whole of quitting's wait for drafts.
            if drafts is not None:
                drafts.close()
            if line is not None:
                line.stop()

        threading.Thread(target=stop, name=WORKSPACE_CLOSING, daemon=True).start()

    # -- what each key may do now ------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """True: allowed; None: shown dimmed (blocked for now); False: hidden from the footer."""
        phase = self.phase
        holding = self.offer is not None
        if action == "ready":  # hidden while it cannot work: the footer offers what works now
            return not holding and phase != "claiming"
        if action == "details":
            return holding
        if action == "dial":
            return phase == "preview" and self._number() is not None
        if action == "mark":  # manual marks only when the agent dials by hand
            return phase == "dialing" and self.softphone is None
        if action in ("hangup", "mute", "keypad"):
            return self.softphone is not None and self.softphone.on_call
        if action == "hold":  # only a connected (or held) softphone call can be held
            return self.softphone is not None and phase in ("connected", "on_hold")
        if action == "next_number":
            return phase == "preview" and len(self._dialable()) > 1
        if action == "wrap_up":
            # Not while a call is being placed or held, nor for a line failure (recorded here).
            return holding and phase not in (
                "dialing",
                "ringing",
                "on_hold",
                "checking",
                "line_failed",
            )
        if action in ("pause", "sign_out"):
            return not holding and phase != "claiming"
        if action.startswith("script_"):
            if phase in ("no_answer", "busy", "line_failed"):
                return None  # nobody on the line: the script waits for the next call
            panel = self.query_one(ScriptPanel)
            if not holding or panel.call is None:
                return False
            if action == "script_back":
                return self._script_moves[0]
            if action == "script_forward":
                return self._script_moves[1]
            return True
        return True

    def watch_phase(self, old: Phase, new: Phase) -> None:
        self._phase_since = time.monotonic()
        self.refresh_bindings()
        self._render_status()
        self._render_dial()
        if new in ("no_answer", "busy", "line_failed") or (
            new == "ended" and self.call.connected_at is None
        ):
            self.query_one(ScriptPanel).unanswered()

    # -- actions -----------------------------------------------------------------------------
    def action_ready(self) -> None:
        if self._retry is not None:
            self._retry.stop()
        if self.offer is not None:
            self.notify(str(WrapUpPending()), severity="warning")
            return
        self.phase = "claiming"
        self._claim()

    @work(thread=True, exclusive=True, exit_on_error=False, group="claim")
    def _claim(self) -> None:
        """One claim and one read (the context with everything the script needs)."""
        assert self.shift is not None
        offer = self.shift.next_patient()
        why = self.shift.why_empty() if offer is None else ""
        self.app.call_from_thread(self._show_offer, offer, why)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "claim":  # never leave the agent on "claiming" with every key dimmed
            self.phase = "not_ready"
            self.notify(message, title="Could not take a patient", severity="error", timeout=10)
        elif group == "heartbeat":
            if isinstance(error, LeaseLost):
                if self.offer is not None and error.patient_id == self.offer.claim.patient_id:
                    self._lease_lost(str(error), self.offer.claim.lease_token)
            else:  # the database away for a moment: the next beat tries again
                self.notify(f"Lost touch with the database: {message}", severity="warning")
        elif group == "supervisor":
            pass  # the database is away for a moment; the next poll asks again
        elif group == "line_failure":  # the database away: the wrap-up keeps it and retries
            self.notify(f"The line failure is not saved yet: {message}", severity="warning")
            if self.offer is not None and self._line_draft is not None:
                self._open_wrap_up(self._line_draft, self.call.line_failure)
        elif group == "softphone":
            self.notify(
                f"softphone off: {message}", title="Manual dialling", severity="warning", timeout=10
            )
        else:
            super().worker_failed(group, error, message)

    def _show_offer(self, offer: Offer | None, why: str = "") -> None:
        if offer is None:
            self.offer = None
            self.phase = "waiting"
            self.query_one(PatientCard).clear(
                "No patient is callable right now. "
                + (f"{why}\n\n" if why else "")
                + f"You stay Ready: the console looks again every {WAIT_RETRY_SECONDS} s."
            )
            self._retry = self.set_timer(WAIT_RETRY_SECONDS, self._retry_claim)
            return
        self.offer = offer
        self.call = CallFacts()
        self._call_uid = None
        self.phone_index = 0
        patient = offer.patient
        self.query_one(PatientCard).show(patient)
        today = (
            self.outreach.services.clock.now()
            .astimezone(ZoneInfo(patient.pharmacy.timezone))
            .date()
        )
        self.query_one(MedicationsTable).show(patient.medications, today)
        self.query_one(AttemptHistory).show(patient.attempts, patient.pharmacy.timezone)
        saved = self._script_drafts().find(offer.claim.lease_token) if offer.claim.resumed else None
        self.query_one(ScriptPanel).start(patient, self.user.display_name, saved)
        if self._heartbeat is not None:
            self._heartbeat.resume()
        self.phase = "preview"
        if offer.claim.resumed:
            self.notify("You already held this patient: carry on where you left off.")
            draft = next(
                (d for d in self._drafts().pending() if d.lease_token == offer.claim.lease_token),
                None,
            )
            if draft is not None:  # the console stopped mid-call or mid-save: reopen it
                self._call_uid = draft.uid
                self._open_wrap_up(draft)

    def _retry_claim(self) -> None:
        if self.phase == "waiting" and self.offer is None:
            self.phase = "claiming"
            self._claim()

    # -- the end of a softphone call ----------------------------------------------------------
    def after_call_ended(self) -> None:
        """Either side hung up: the wrap-up opens at once, how the call ended pre-selected."""
        if self.app.screen is self:
            self.action_wrap_up()

    def after_line_failure(self) -> None:
        """Nothing reached the patient: recorded as a line failure by the console itself (no
        disposition from the agent), and the patient goes back to the queue for a short while."""
        assert self.offer is not None
        self.notify(
            self.call.line_failure[0].upper() + self.call.line_failure[1:],
            title="Line failed",
            severity="error",
            timeout=15,
        )
        self._line_draft = self._draft(LINE_FAILED)
        self._record_line_failure(self._line_draft)

    @work(thread=True, exclusive=True, exit_on_error=False, group="line_failure")
    def _record_line_failure(self, draft: Outcome) -> None:
        assert self.shift is not None
        drafts = self._drafts()
        drafts.save(draft)  # kept on this computer until stored, as every wrap-up is
        self.shift.record(draft)
        drafts.discard(draft.uid)
        self.app.call_from_thread(self._line_failure_recorded)

    def _line_failure_recorded(self) -> None:
        why = self.call.line_failure
        self._saved = True
        self._let_go(
            f"The call did not go through: {why}.\n\nThis patient goes back to the queue and is "
            "offered again in a few minutes; no attempt is counted against them. "
            "If this repeats, tell your supervisor. Press r for your next patient."
        )

    def action_wrap_up(self) -> None:
        if self.offer is None:
            return
        self._open_wrap_up(self._draft(), self.call.ended_how)

    def _wrapping_up(self) -> bool:
        """A wrap-up form is open (or its save is landing): this call has its form already."""
        from console.screens.wrap_up import WrapUpScreen

        if any(isinstance(s, WrapUpScreen) for s in self.app.screen_stack):
            return True
        # Saved and popped, `_wrapped_up` not run yet: the shift let go of the claim first.
        return (
            self.offer is not None
            and self.shift is not None
            and not self.shift.holding(self.offer.claim.lease_token)
        )

    def _draft(self, disposition: str | None = None) -> Outcome:
        """The outcome as the call left it: what the wrap-up opens with."""
        assert self.offer is not None
        now = self.outreach.services.clock.now()
        script = self.query_one(ScriptPanel)
        suggested = self.call.suggested or script.suggested_disposition
        if suggested is None and self.call.result == "connected":
            # A conversation's outcome is the script's to suggest, once it reached its end: a
            # script stopped halfway suggests nothing (the agent says what happened).
            suggested = "completed" if script.call is None else None
        elif suggested is None:
            suggested = SUGGESTED.get(self.call.result or "")
        facts = self.call
        return Outcome(
            uid=self._call_uid or str(uuid.uuid4()),
            patient_id=self.offer.claim.patient_id,
            lease_token=self.offer.claim.lease_token,
            user_id=self.user.id,
            disposition=disposition or suggested or "",
            started_at=facts.started_at or self.offer.claim.claimed_at,
            ended_at=facts.ended_at or now,
            connected_at=facts.connected_at,
            phone_number=facts.number,
            call_result=facts.result or ("not_dialed" if facts.started_at is None else None),
            dial_mode="sip" if self.softphone is not None and facts.started_at else "manual",
            sip_status=facts.sip_status,
            script_id=script.flow_id,
            answers=script.answers_state(),
            actions=() if disposition == LINE_FAILED else script.actions(),
        )

    def _journal_call(self, offer: Offer, permit: DialPermit) -> None:
        draft = self.app.call_from_thread(self._call_draft, offer, permit)
        if draft is not None:
            self._drafts().save(draft)  # fsynced; a save of the wrap-up later replaces it

    def _call_draft(self, offer: Offer, permit: DialPermit) -> Outcome | None:
        """The call about to be placed, as its wrap-up would open with it: no disposition yet
        (the agent says what happened)."""
        if self.offer is not offer:
            return None
        if self._call_uid is None:
            self._call_uid = str(uuid.uuid4())
        now = self.outreach.services.clock.now()
        return dataclasses.replace(
            self._draft(),
            disposition="",
            phone_number=permit.number,
            started_at=now,
            ended_at=now,
            call_result=None,
            dial_mode="sip" if self.softphone is not None else "manual",
        )

    def _open_wrap_up(self, draft: Outcome, ended: str = "") -> None:
        from console.screens.wrap_up import WrapUpScreen

        assert self.offer is not None and self.shift is not None
        if self._wrapping_up():  # one form per call: a second would be for a call stored already
            return
        self._set_agent_state("wrap_up")
        self.app.push_screen(
            WrapUpScreen(self.shift, self.offer.patient, draft, ended=ended),
            callback=self._wrapped_up,
        )

    def _drafts_root(self) -> Path:
        return Path(self.outreach.services.settings.ui.drafts_path)

    def _drafts(self) -> DraftStore:
        return DraftStore.of(self._drafts_root(), self.user)

    def _wrapped_up(self, recorded: Recorded | None) -> None:
        if recorded is None:  # closed without saving: still holding the patient
            if self._lease_gone:  # …unless the claim was lost meanwhile
                self._drop_offer()
            self.refresh_bindings()
            return
        self._lease_gone = False  # stored (late if the claim was gone): nothing more to hold
        self._saved = True
        self._let_go("Saved. Press r for your next patient, or p to take a break.")
        # Each wrap-up screen (~50 widgets, ~100 style nodes) is dropped as cycles: collected
        # here, as the save lands, not at a moment of Python's choosing — between the next `r`
        # and its frame, or during a call, whose audio thread would wait on it.
        let_go_of_closed_watchers(self.app)
        let_go_of_render_caches()
        gc.collect()
        if self._logout_seen:
            self._sign_out()

    # -- the script (keys; the panel draws, the screen saves its progress) ---------------------
    def action_script_choose(self, number: int) -> None:
        self.query_one(ScriptPanel).choose(number)

    def action_script_back(self) -> None:
        self.query_one(ScriptPanel).back()

    def action_script_forward(self) -> None:
        self.query_one(ScriptPanel).forward()

    def action_script_language(self) -> None:
        self.query_one(ScriptPanel).switch_language()

    def on_script_panel_changed(self, event: ScriptPanel.Changed) -> None:
        if self.offer is not None:  # queued to the draft writer's thread: the UI never waits
            self._script_drafts().save(self.offer, event.saved)
        # The footer redraws only when what the script keys can do changes (not at every step:
        # footer redraws cost): when it starts, and when Back or Forward turns on or off.
        view = event.panel.view
        moves = (view.can_back, view.can_forward) if view is not None else (False, False)
        if event.started or moves != self._script_moves:
            self._script_moves = moves
            self.refresh_bindings()

    def _script_drafts(self) -> ScriptDrafts:
        if self._script_store is None:
            self._script_store = ScriptDrafts(
                self._drafts_root(), self.user, self._script_not_saved
            )
        return self._script_store

    def _script_not_saved(self, error: OSError) -> None:  # on the draft writer's thread
        self.app.call_from_thread(
            self.notify, f"Script progress not saved locally: {error}", severity="warning"
        )

    def action_details(self) -> None:
        self.query_one(MedicationsTable).toggle_detail()
        self.query_one(AttemptHistory).toggle_detail()
        self.query_one(PatientCard).toggle_detail()

    def action_pause(self) -> None:
        from console.screens.pause import PauseScreen

        assert self.shift is not None
        self.app.push_screen(PauseScreen(self.shift), callback=self._paused)

    def _paused(self, choice: tuple[str, str] | None) -> None:
        if choice is None:
            return
        code, label = choice
        if self._retry is not None:
            self._retry.stop()
        self.pause_label = label
        self._set_agent_state("paused", code)
        self.phase = "paused"
        self.query_one(PatientCard).clear(f"Paused: {label}. Press r when you are ready again.")

    def action_sign_out(self) -> None:
        self._sign_out()

    @work(thread=True, exclusive=True, exit_on_error=False, group="agent")
    def _sign_out(self) -> None:
        assert self.shift is not None
        self.shift.sign_out()
        self.app.call_from_thread(self.outreach.signed_out)

    # -- background upkeep --------------------------------------------------------------------
    def _beat(self) -> None:
        if self.offer is not None:
            self._renew()

    @work(thread=True, exclusive=True, exit_on_error=False, group="heartbeat")
    def _renew(self) -> None:
        assert self.shift is not None
        self.shift.heartbeat()

    def _poll_supervisor(self) -> None:
        self._check_supervisor()

    @work(thread=True, exclusive=True, exit_on_error=False, group="supervisor")
    def _check_supervisor(self) -> None:
        assert self.shift is not None
        word = self.shift.supervisor_check()
        if word.released:
            self.app.call_from_thread(
                self._lease_lost,
                "A supervisor released this patient (or the claim ran out): "
                "record what happened in the wrap-up; it is stored as a late call.",
                word.lease_token,
            )
        if word.log_out and not self._logout_seen:
            self.app.call_from_thread(self._supervisor_logout)

    def _supervisor_logout(self) -> None:
        """A supervisor asked this agent to log out: at once when idle, after the wrap-up if not."""
        self._logout_seen = True
        if self.offer is None:
            self.notify("Your supervisor logged you out.", severity="warning", timeout=15)
            self._sign_out()
        else:
            self.notify(
                "Your supervisor asked you to log out: finish this call and its wrap-up.",
                severity="warning",
                timeout=30,
            )

    def _lease_lost(self, message: str, lease_token: str | None) -> None:
        """The claim `lease_token` is gone. Said only of the claim this screen holds, and not once
        its wrap-up's save has begun: a poll that read while the save stored the call, or that
        came back after the next patient was taken, is about a claim already done with."""
        offer = self.offer
        if offer is None or self._lease_gone or offer.claim.lease_token != lease_token:
            return
        if self.shift is None or not self.shift.holding(lease_token):
            return
        self._lease_gone = True
        self.notify(message, title="Patient released", severity="error", timeout=15)
        if self.phase not in LIVE and self.app.screen is self:
            if self.call.started_at is not None:  # a call was made: it is stored, late
                self.action_wrap_up()
            else:
                self._drop_offer()

    def _drop_offer(self) -> None:
        """Let go of a patient whose claim is gone: nothing more can be saved against it."""
        assert self.shift is not None
        self.shift.forget()
        self._lease_gone = False
        self._let_go(
            "This patient was released from you, so nothing was saved for them. "
            "Press r for your next patient."
        )

    def _let_go(self, message: str) -> None:
        """The patient is done with (saved, or released): clear the screen for the next one."""
        if self.offer is not None:
            self._script_drafts().discard(self.offer.claim.lease_token)
        self.offer = None
        self.call = CallFacts()
        if self._heartbeat is not None:
            self._heartbeat.pause()
        self.query_one(ScriptPanel).reset()
        self.query_one(MedicationsTable).clear_patient()
        self.query_one(AttemptHistory).clear_patient()
        self.query_one(PatientCard).clear(message)
        self.phase = "not_ready"

    def _tick(self) -> None:
        if not self.is_attached:
            return  # the timer fired while the screen was being torn down
        self._render_status()
        if self.phase in LIVE:
            self._render_dial()

    # -- rendering ----------------------------------------------------------------------------
    def _render_status(self) -> None:
        clock = self.outreach.services.clock
        # While holding a patient, the patient's own time (their calling window is in it);
        # between patients the first assigned pharmacy's. The line says whose.
        if self.offer is not None:
            patient = self.offer.patient
            zone: ZoneInfo | None = ZoneInfo(patient.timezone or patient.pharmacy.timezone)
            whose = "patient's time"
        else:
            zone = ZoneInfo(self.user.pharmacy_zones[0]) if self.user.pharmacy_zones else None
            whose = "pharmacy time" if zone else "your time"
        now = clock.now().astimezone(zone) if zone else clock.now().astimezone()
        labels = {
            "not_ready": "READY · press r" if self._saved else "NOT READY",
            "claiming": "READY · finding a patient…",
            "waiting": "READY · waiting for a patient",
            "preview": "PREVIEW",
            "dialing": "DIALING",
            "ringing": "RINGING",
            "connected": "ON CALL",
            "on_hold": "ON HOLD",
            "ended": "CALL ENDED · wrap-up",
            "line_failed": "LINE FAILED",
            "no_answer": "WRAP-UP",
            "busy": "WRAP-UP",
            "paused": f"PAUSED · {self.pause_label}",
            "checking": "PREVIEW · checking the window…",
        }
        secs = int(time.monotonic() - self._phase_since)
        clock_text = f"{whose} {now:%a %H:%M %Z}"
        if clock.is_practice:
            clock_text += " (practice clock)"
        text = f"[b]{labels[self.phase]}[/] {secs // 60}:{secs % 60:02d}  ·  {clock_text}"
        # The pharmacies only where they fit: the title already says who is signed in.
        pharmacies = ", ".join(self.user.pharmacy_codes) or "no pharmacies assigned"
        if self.size.width >= len(text) + len(pharmacies) + 12:
            text += f"  ·  {pharmacies}"
        self.query_one("#status-line", Static).update(text)
