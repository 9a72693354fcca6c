"""Where the softphone's call stands: state, timer, mute, audio, and a DTMF keypad for IVRs.

The bar only shows and asks: its keys and keypad post messages (DialPressed, HangupPressed,
MuteToggled, DtmfPressed); the screen decides. `post_phone_event` (thread-safe: the phone line calls
it from the softphone thread) turns the softphone's events into CallChanged, DtmfChanged and
PhoneNote messages, which the bar shows and lets bubble up to the screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Click
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import Static

from console.softphone.events import (
    REASON_TEXT,
    CallEvent,
    CallState,
    DtmfEvent,
    EndReason,
    PhoneEvent,
    PhoneNotice,
    RegistrationEvent,
)
from queues.views.outcome import disposition_words

KEYS = "123456789*0#"


# A final status from the trunk, not the patient's phone: its own failure (408, 5xx) or a refusal
# of our account or of the call's form (401/403/407, 3xx not followed, 488/606 no common media).
_LINE_STATUSES = {401, 403, 407, 408, 420, 421, 423, 428, 429, 488, 494, 606}


def line_failed(event: CallEvent) -> bool:
    """The call ended without reaching the patient's phone, through no doing of the patient's:
    no route, a network error, no response at all, or the trunk's 5xx, 408 or refusal. Recorded
    as a technical failure (`line_failed`), never as a patient outcome. The softphone's own
    verdict (`CallEvent.technical`, where it gives one) counts first."""
    if event.state != CallState.ENDED or event.reason in (None, EndReason.BLOCKED):
        return False
    if getattr(event, "technical", False):
        return True
    if event.reason in (EndReason.NETWORK_ERROR, EndReason.TIMEOUT):
        return True
    status = event.sip_status
    if status is None:
        return event.reason == EndReason.FAILED  # the softphone could not place it at all
    return 300 <= status < 400 or 500 <= status < 600 or status in _LINE_STATUSES


def line_failure_text(event: CallEvent) -> str:
    """ "the line failed: 503 Service Unavailable — nothing was said to the patient"."""
    what = event.detail or (f"SIP {event.sip_status}" if event.sip_status else "no route")
    return f"the line failed: {what} — nothing was said to the patient"


def end_text(event: CallEvent) -> str:
    """How a call ended, in words, with the SIP status: "The patient hung up (SIP 200)"."""
    if line_failed(event):
        text = line_failure_text(event)
        return text[0].upper() + text[1:]
    text = REASON_TEXT[event.reason] if event.reason else "Ended"
    if event.sip_status:
        text += f" (SIP {event.sip_status})"
    elif event.reason == EndReason.REMOTE_HANGUP:
        text += " (BYE)"
    return text


def _registration_failed(event: RegistrationEvent) -> bool:
    """A failure the agent should know about; being registered (or unregistering) is normal."""
    return not event.registered and event.detail != "unregistered"


def clock(seconds: float) -> str:
    s = max(int(seconds), 0)
    return f"{s // 60:02d}:{s % 60:02d}"


class KeyCap(Static):
    """One key of the keypad; a click sends its tone."""

    def __init__(self, key: str) -> None:
        super().__init__(f" {key} ", classes="keycap")
        self.key = key

    def on_click(self, event: Click) -> None:
        event.stop()
        self.post_message(SoftphoneBar.DtmfPressed(self.key))


class SoftphoneBar(Vertical, can_focus=True):
    # Two rows, no border: the mode and the keypad, then where the call stands (a bordered bar of
    # three rows had room for one line, and the state line was never seen).
    DEFAULT_CSS = """
    SoftphoneBar { height: 2; padding: 0 1; background: $boost; }
    SoftphoneBar:focus-within, SoftphoneBar:focus { background: $accent 25%; }
    SoftphoneBar #sp-top { height: 1; }
    SoftphoneBar #sp-mode { width: 1fr; text-style: bold; color: $accent; }
    SoftphoneBar #sp-state { text-style: bold; height: 1; }
    SoftphoneBar.-connected #sp-state { color: $success; }
    SoftphoneBar.-ended #sp-state { color: $warning; }
    SoftphoneBar.-on_hold #sp-state { color: $accent; }
    SoftphoneBar #sp-keypad { width: auto; height: 1; }
    SoftphoneBar .keycap { width: 3; height: 1; background: $boost; margin-right: 0; }
    SoftphoneBar .keycap:hover { background: $accent; }
    SoftphoneBar.-manual #sp-keypad { display: none; }
    """
    BINDINGS = [
        *[Binding(k, f"key('{k}')", k, show=False) for k in "1234567890"],
        Binding("asterisk", "key('*')", "*", show=False),
        Binding("number_sign", "key('#')", "#", show=False),
    ]

    # -- what the bar asks for --------------------------------------------------------------
    class DialPressed(Message):
        pass

    class HangupPressed(Message):
        pass

    @dataclass
    class MuteToggled(Message):
        muted: bool

    @dataclass
    class DtmfPressed(Message):
        key: str

    # -- what the softphone tells it ---------------------------------------------------------
    @dataclass
    class CallChanged(Message):
        """The softphone's call changed state (bubbles to the screen, which decides)."""

        event: CallEvent

    @dataclass
    class PhoneNote(Message):
        text: str

    @dataclass
    class DtmfChanged(Message):
        event: DtmfEvent

    state: reactive[str] = reactive("idle")
    muted: reactive[bool] = reactive(False)

    def __init__(self, *, enabled: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.enabled = enabled
        self.last: CallEvent | None = None
        self._connected_mono: float | None = None
        self._dtmf = ""
        self.audio = ""

    def compose(self) -> ComposeResult:
        with Horizontal(id="sp-top"):
            yield Static("SOFTPHONE" if self.enabled else "MANUAL DIAL", id="sp-mode")
            with Horizontal(id="sp-keypad"):
                for key in KEYS:
                    yield KeyCap(key)
        yield Static(self._idle_text(), id="sp-state")

    def on_mount(self) -> None:
        self.set_class(not self.enabled, "-manual")
        self.set_interval(1, self._tick)

    def _idle_text(self) -> str:
        if not self.enabled:
            return "No SIP account: dial on your desk phone."
        return "Ready to dial."

    # -- showing ----------------------------------------------------------------------------
    def post_phone_event(self, event: PhoneEvent) -> None:
        """The softphone's event as this bar's message. Thread-safe (only `post_message`): the
        phone line calls it from the softphone thread."""
        if isinstance(event, CallEvent):
            self.post_message(self.CallChanged(event))
        elif isinstance(event, DtmfEvent):
            self.post_message(self.DtmfChanged(event))
        elif isinstance(event, PhoneNotice):
            self.post_message(self.PhoneNote(event.text))
        elif isinstance(event, RegistrationEvent) and _registration_failed(event):
            self.post_message(self.PhoneNote(event.detail))

    @on(CallChanged)
    def _show_call(self, message: CallChanged) -> None:
        event = message.event
        self.last = event
        if event.state == CallState.DIALING:
            self._dtmf = ""
            self.muted = False
            self.audio = event.audio
        if event.state == CallState.CONNECTED:
            self._connected_mono = time.monotonic()
        self.state = event.state.value
        self._render_state()

    @on(DtmfChanged)
    def _show_dtmf(self, message: DtmfChanged) -> None:
        self._dtmf = message.event.sent
        self._render_state()

    @on(PhoneNote)
    def _show_note(self, message: PhoneNote) -> None:
        if message.text.startswith("audio off"):
            self.audio = message.text
            self._render_state()

    def watch_state(self, old: str, new: str) -> None:
        for state in ("connected", "ended", "on_hold"):
            self.set_class(new == state, f"-{state}")

    def watch_muted(self, muted: bool) -> None:
        if self.is_mounted:
            self._render_state()

    def _tick(self) -> None:
        if self.state == "connected":
            self._render_state()

    def state_text(self) -> str:
        event = self.last
        if event is None or not self.enabled:
            return self._idle_text()
        state = event.state.value  # "on_hold" is newer than some softphones: compare by value
        if state == "dialing":
            text = "Dialing…"
        elif state == "ringing":
            text = f"Ringing… (SIP {event.sip_status})" if event.sip_status else "Ringing…"
        elif state in ("connected", "on_hold"):
            since = self._connected_mono or time.monotonic()
            text = f"Connected {clock(time.monotonic() - since)}"
            if state == "on_hold":
                who = getattr(event, "hold", "")
                text += {"remote": " · ON HOLD (by the patient's side)", "local": " · ON HOLD"}.get(
                    who, " · ON HOLD"
                )
        else:
            text = f"Ended — {end_text(event)}"
            reason = event.reason
            if (
                event.detail
                and reason is not None
                and reason.value == "blocked"
                and not line_failed(event)
            ):
                text += f": {event.detail}"
            suggested = event.suggested_disposition
            if suggested and not line_failed(event):
                text += f" · wrap-up: {disposition_words(suggested)}"
        if self.muted and state != "ended":
            text += " · MUTED"
        if self._dtmf and state != "ended":
            text += f" · keys sent {self._dtmf}"
        if self.audio and self.audio != "on" and state != "ended":
            text += f" · {self.audio}"
        return text

    def _render_state(self) -> None:
        # Plain text: the softphone's sentences carry brackets ("pip install '.[audio]'").
        self.query_one("#sp-state", Static).update(Text(self.state_text()))

    # -- asking -----------------------------------------------------------------------------
    def action_key(self, key: str) -> None:
        self.post_message(self.DtmfPressed(key))

    def request_dial(self) -> None:
        self.post_message(self.DialPressed())

    def request_hangup(self) -> None:
        self.post_message(self.HangupPressed())

    def toggle_mute(self) -> None:
        self.muted = not self.muted
        self.post_message(self.MuteToggled(self.muted))
