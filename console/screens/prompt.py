"""Small modal questions: a one-line answer (Enter answers, Escape cancels), or yes/no."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from console.widgets.footer import Footer


class PromptScreen(ModalScreen[str | None]):
    """Enter answers with what was typed ("" when nothing: the caller's default, if it has one);
    Escape cancels (None)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="cancel_prompt")]
    AUTO_FOCUS = "#prompt-input"

    def __init__(self, question: str, placeholder: str = "", value: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder
        self.value = value

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Static(self.question)
            yield Input(self.value, id="prompt-input", placeholder=self.placeholder)
        yield Footer()

    @on(Input.Submitted)
    def _answer(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip())

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A yes/no question for a control that changes what every agent gets."""

    BINDINGS = [
        Binding("y", "answer(True)", "Yes", id="confirm_yes"),
        Binding("n,escape", "answer(False)", "No", id="confirm_no"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Static(self.question)
            yield Static("[b]y[/] yes · [b]n[/] no", classes="prompt-hint")
        yield Footer()

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)
