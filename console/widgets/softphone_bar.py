"""Where the softphone's call stands: state, timer, mute, audio, and a DTMF keypad for IVRs.

The bar only shows and asks: its keys and keypad post messages (DialPressed, HangupPressed,
MuteToggled, DtmfPressed); the screen decides. `post_phone_event` (thread-safe: the phone line calls
it from the softphone thread) turns the softphone's events into CallChanged, DtmfChanged and
PhoneNote messages, which the bar shows and lets bubble up to the screen.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

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
    PhoneEvent,
    PhoneNotice,
    RegistrationEvent,
)

KEYS = "123456789*0#"
DISPOSITION_LABEL = {
    "busy": "Busy",
    "refused": "Refused",
    "wrong_number": "Wrong number",
    "no_answer": "No answer",
}


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


class SoftphoneBar(Horizontal, can_focus=True):
    DEFAULT_CSS = """
    SoftphoneBar { height: 3; padding: 0 1; border: round $primary; }
    SoftphoneBar:focus-within, SoftphoneBar:focus { border: round $accent; }
    SoftphoneBar #sp-info { width: 1fr; }
    SoftphoneBar #sp-state { text-style: bold; }
    SoftphoneBar.-connected #sp-state { color: $success; }
    SoftphoneBar.-ended #sp-state { color: $warning; }
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
        with Vertical(id="sp-info"):
            yield Static("SOFTPHONE" if self.enabled else "MANUAL DIAL", id="sp-mode")
            yield Static(self._idle_text(), id="sp-state")
        with Horizontal(id="sp-keypad"):
            for key in KEYS:
                yield KeyCap(key)

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
        self.set_class(new == "connected", "-connected")
        self.set_class(new == "ended", "-ended")

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
        if event.state == CallState.DIALING:
            text = "Dialing…"
        elif event.state == CallState.RINGING:
            text = "Ringing…"
        elif event.state == CallState.CONNECTED:
            since = self._connected_mono or time.monotonic()
            text = f"Connected {clock(time.monotonic() - since)}"
            if self.muted:
                text += " · MUTED"
        else:
            reason = event.reason
            text = f"Ended — {REASON_TEXT[reason]}" if reason else "Ended"
            if event.sip_status and event.sip_status >= 300:
                text += f" (SIP {event.sip_status})"
            if event.detail and reason is not None and reason.value in ("blocked", "failed"):
                text += f": {event.detail}"
            suggested = event.suggested_disposition
            if suggested:
                text += f" · wrap-up: {DISPOSITION_LABEL.get(suggested, suggested)}"
        if self._dtmf and event.state == CallState.CONNECTED:
            text += f" · keys {self._dtmf}"
        if self.audio and self.audio != "on" and event.state != CallState.ENDED:
            text += f" · {self.audio}"
        return text

    def _render_state(self) -> None:
        self.query_one("#sp-state", Static).update(self.state_text())

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
