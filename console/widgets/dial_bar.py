"""The number to dial, shown big, and where the call stands: placed by the softphone, or dialled by
hand on the agent's desk phone (manual mode, when no SIP account is configured)."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.widgets import Digits, Static

from queues.phones import national

MODE = "MANUAL DIAL"
SOFTPHONE_MODE = "SOFTPHONE"
# At 80 columns the big digits leave about 42 for these: each fits, its key included.
STATE_TEXT = {
    "idle": "No patient yet.",
    "ready": "Dial it on your phone, then press [b]d[/].",
    "dialing": "[b]c[/] connected · [b]a[/] no answer · [b]b[/] busy",
    "connected": "Connected: follow the script; [b]w[/] wraps up.",
    "no_answer": "No answer: [b]w[/] to wrap up.",
    "busy": "Busy: [b]w[/] to wrap up.",
    "no_number": "Every number is flagged: [b]w[/] to wrap up.",
}
# The softphone places the call: the agent follows it here. {detail}: the SIP status, the reason.
SOFTPHONE_TEXT = {
    "idle": "No patient yet.",
    "ready": "Press [b]d[/] to call this number.",
    "dialing": "Calling… [b]h[/] hangs up.",
    "ringing": "Ringing ({detail}) · [b]h[/] hangs up.",
    "connected": "Connected: follow the script; [b]h[/] hangs up.",
    "on_hold": "On hold · [b]h[/] hangs up.",
    "ended": "{detail} · [b]w[/] wrap-up.",
    "line_failed": "{detail}",
    "no_answer": "No answer: [b]w[/] to wrap up.",
    "busy": "Busy: [b]w[/] to wrap up.",
    "no_number": "Every number is flagged: [b]w[/] to wrap up.",
}


def digits_for(e164: str) -> str:
    """214-555-0134: the national number in groups, narrow enough for big digits at 80 columns."""
    digits = "".join(ch for ch in national(e164) if ch.isdigit())
    if len(digits) == 10:
        return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"
    return digits


class DialBar(Horizontal):
    def compose(self) -> ComposeResult:
        with Vertical(id="dial-info"):
            yield Static(MODE, id="dial-mode")
            yield Static("", id="dial-number-label")
            yield Static(STATE_TEXT["idle"], id="dial-state")
        yield Digits("", id="dial-digits")

    def show(
        self,
        number: str | None,
        label: str,
        state: str,
        elapsed: str = "",
        *,
        softphone: bool = False,
        detail: str = "",
    ) -> None:
        try:
            digits = self.query_one("#dial-digits", Digits)
            number_label = self.query_one("#dial-number-label", Static)
            state_line = self.query_one("#dial-state", Static)
            mode = self.query_one("#dial-mode", Static)
        except NoMatches:
            # A worker's result can land while the screen is being taken down (sign-out, exit):
            # its parts are already gone and there is nothing left to show.
            return
        digits.update(digits_for(number) if number else "")
        number_label.update(label)
        texts, name = (SOFTPHONE_TEXT, SOFTPHONE_MODE) if softphone else (STATE_TEXT, MODE)
        text = texts.get(state, state)
        if "{detail}" in text:
            text = text.replace("{detail}", escape(detail)) if detail else texts["dialing"]
        state_line.update(text)
        # The call's time goes on the mode line, so the instruction keeps its room.
        mode.update(f"{name} · {elapsed}" if elapsed else name)
        self.set_class(state == "connected", "-connected")
        self.set_class(state in ("dialing", "ringing"), "-dialing")
        self.set_class(state == "on_hold", "-on-hold")
        self.set_class(state == "line_failed", "-line-failed")
