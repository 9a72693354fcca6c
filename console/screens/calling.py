"""What the agent's screen does on the line: the number to dial, the second compliance check
before any dial, manual marks or the softphone's call, and what the call's end suggests for the
wrap-up. `WorkspaceScreen` builds on it with the shift around the call (claim, script, wrap-up).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from textual import work
from textual.reactive import reactive

from console.screens.base import OutreachScreen
from console.softphone import DialPermit, EndReason, SoftphoneError
from console.widgets.dial_bar import DialBar
from console.widgets.softphone_bar import SoftphoneBar, end_text, line_failed, line_failure_text
from queues.errors import NotCallable
from queues.views.shift import Offer

if TYPE_CHECKING:
    from console.services.agent_shift import AgentShift
    from console.services.phone_line import PhoneLine

Phase = Literal[
    "not_ready",
    "claiming",
    "waiting",
    "preview",
    "dialing",
    "ringing",  # the softphone heard 180/183
    "connected",
    "on_hold",  # the softphone's call is held (by either side)
    "ended",  # the softphone's call ended (either side hung up): the wrap-up opens
    "line_failed",  # it never reached the patient's phone: recorded by the console itself
    "no_answer",
    "busy",
    "paused",
    "checking",
]
# While one of these lasts a call is on the line (or being placed).
LIVE = ("dialing", "ringing", "connected", "on_hold")
# Manual marks → the disposition the wrap-up pre-selects (the agent can change it).
SUGGESTED = {"connected": "completed", "no_answer": "no_answer", "busy": "busy"}


@dataclass
class CallFacts:
    """What happened on the line, for the attempt record."""

    number: str | None = None
    started_at: datetime | None = None
    connected_at: datetime | None = None
    ended_at: datetime | None = None
    result: str | None = None
    sip_status: int | None = None
    suggested: str | None = None  # from how the softphone's call ended
    ended_how: str = ""  # how the softphone's call ended, in words ("The patient hung up")
    line_failure: str = ""  # set when the line failed: what the agent reads


class CallingScreen(OutreachScreen[None]):
    # init=False: the first read of `phase` may come before the screen is composed (the footer
    # asks check_action as the screen is being switched to), and the watcher draws the status
    # line; on_mount draws it.
    phase: reactive[Phase] = reactive("not_ready", init=False)

    def __init__(self) -> None:
        super().__init__()
        self.shift: AgentShift | None = None
        self.offer: Offer | None = None
        self.call = CallFacts()
        self.phone_index = 0
        self.softphone: PhoneLine | None = None

    def action_dial(self) -> None:
        if self.offer is None or self._number() is None:
            return
        self.phase = "checking"
        self._check_then_dial(self.offer, self._number() or "")

    @work(thread=True, exclusive=True, exit_on_error=False, group="dial")
    def _check_then_dial(self, offer: Offer, number: str) -> None:
        """The calling window, do-not-call and caps again, now: the agent may have read a while.
        The one check per dial; the softphone gets a permit, never the database."""
        assert self.shift is not None
        permit = self.shift.dial_permit(offer, number)
        # Written ahead: the call is on this computer's disk before the INVITE leaves, so a
        # console killed mid-call reopens its wrap-up at sign-in and the call counts (caps).
        self._journal_call(offer, permit)
        self.app.call_from_thread(self._dial, offer, permit)

    def _journal_call(self, offer: Offer, permit: DialPermit) -> None:
        """On the dial's worker thread, before the dial: the workspace keeps a draft of it."""

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "dial":  # nothing was dialled: back to the preview, with the reason
            self.phase = "preview"
            if isinstance(error, NotCallable):
                self.notify(message, title="Not called", severity="warning", timeout=12)
            else:
                self.notify(
                    f"Could not check the number: {message}",
                    title="Not called",
                    severity="warning",
                    timeout=12,
                )
            return
        super().worker_failed(group, error, message)

    def _dial(self, offer: Offer, permit: DialPermit) -> None:
        if self.offer is not offer:
            return
        self.call = CallFacts(number=permit.number, started_at=self.outreach.services.clock.now())
        self.phase = "dialing"
        self._set_agent_state("dialing")
        if self.softphone is None:
            return
        try:
            self.softphone.dial(permit)
        except SoftphoneError as exc:
            self.notify(str(exc), title="Softphone", severity="error")
            self.phase = "preview"

    def action_hangup(self) -> None:
        if self.softphone is not None:
            self.softphone.hangup()

    def action_mute(self) -> None:
        self.query_one(SoftphoneBar).toggle_mute()

    def action_hold(self) -> None:
        """Put the connected call on hold, or resume it; the screen changes when the far end
        has agreed (the softphone's ON_HOLD / CONNECTED events)."""
        if self.softphone is not None and self.phase in ("connected", "on_hold"):
            self.softphone.hold(self.phase == "connected")

    def action_keypad(self) -> None:
        self.query_one(SoftphoneBar).focus()

    def on_softphone_bar_mute_toggled(self, message: SoftphoneBar.MuteToggled) -> None:
        if self.softphone is not None:
            self.softphone.mute(message.muted)

    def on_softphone_bar_dtmf_pressed(self, message: SoftphoneBar.DtmfPressed) -> None:
        if self.softphone is not None:
            self.softphone.dtmf(message.key)

    def on_softphone_bar_call_changed(self, message: SoftphoneBar.CallChanged) -> None:
        event, now = message.event, self.outreach.services.clock.now()
        state = event.state.value  # "on_hold" is newer than some softphones: compare by value
        if self.phase not in LIVE:
            return  # a late event of a call already ended here
        if state == "ringing":
            self.call.sip_status = event.sip_status
            self.phase = "ringing"
        elif state == "connected":
            if self.call.connected_at is None:
                self.call.connected_at = now
                self._set_agent_state("on_call")
            self.call.result = "connected"
            self.phase = "connected"
        elif state == "on_hold":
            self.phase = "on_hold"
        elif state == "ended":
            if event.reason == EndReason.BLOCKED:
                self.notify(event.detail, title="Not called", severity="warning", timeout=12)
                self.call = CallFacts()
                self.phase = "preview"
                return
            self.call.ended_at, self.call.sip_status = now, event.sip_status
            self.call.ended_how = end_text(event)
            if line_failed(event):
                self.call.result, self.call.suggested = "failed", None
                self.call.line_failure = line_failure_text(event)
                self.phase = "line_failed"
                self.after_line_failure()
                return
            self.call.result = event.call_result
            self.call.suggested = event.suggested_disposition
            self.phase = "ended"
            self.after_call_ended()

    def after_line_failure(self) -> None:
        """The line failed (phase "line_failed"): the workspace records it by itself."""

    def after_call_ended(self) -> None:
        """The softphone's call ended, from either side (phase "ended"): the workspace opens the
        wrap-up."""

    def action_mark(self, result: str) -> None:
        now = self.outreach.services.clock.now()
        self.call.result = result
        if result == "connected":
            self.call.connected_at = now
            self.phase = "connected"
            self._set_agent_state("on_call")
        else:
            self.call.ended_at = now
            self.phase = "no_answer" if result == "no_answer" else "busy"

    def action_next_number(self) -> None:
        self.phone_index = (self.phone_index + 1) % max(len(self._dialable()), 1)
        self._render_dial()

    @work(thread=True, exclusive=True, exit_on_error=False, group="agent")
    def _set_agent_state(self, state: str, pause_code: str | None = None) -> None:
        assert self.shift is not None
        self.shift.set_state(state, pause_code)

    def _dialable(self) -> list[str]:
        if self.offer is None:
            return []
        # Numbers callable now first (in the record's order), then the others: those the agent
        # may try later; the dial-time check refuses them with the reason until they open.
        now_ok = set(self.offer.callable_numbers)
        numbers = [p.number for p in self.offer.patient.phones if p.dialable]
        return [n for n in numbers if n in now_ok] + [n for n in numbers if n not in now_ok]

    def _number(self) -> str | None:
        numbers = self._dialable()
        return numbers[self.phone_index % len(numbers)] if numbers else None

    def _render_dial(self) -> None:
        bar = self.query_one(DialBar)
        if self.offer is None:
            bar.show(None, "", "idle", softphone=self.softphone is not None)
            return
        number = self.call.number or self._number()
        phone = next((p for p in self.offer.patient.phones if p.number == number), None)
        label = ""
        if phone is not None:
            label = f"{phone.kind} · best time: {phone.best_time or 'any'}"
            if phone.number not in self.offer.callable_numbers:
                label += " · not callable now"
            others = len(self._dialable()) - 1
            if others > 0 and self.phase == "preview":
                label += f" · {others} more (t)"
        shown = (*LIVE, "ended", "line_failed", "no_answer", "busy")
        state: str = self.phase if self.phase in shown else "ready"
        if number is None:
            state = "no_number"
        elapsed = ""
        started = self.call.connected_at or self.call.started_at
        if self.phase in LIVE and started is not None:
            secs = int((self.outreach.services.clock.now() - started).total_seconds())
            elapsed = f"{secs // 60:02d}:{secs % 60:02d}"
        detail = {
            "ringing": f"SIP {self.call.sip_status}" if self.call.sip_status else "",
            "ended": self.call.ended_how,
            "line_failed": self.call.line_failure,
        }.get(state, "")
        bar.show(number, label, state, elapsed, softphone=self.softphone is not None, detail=detail)
