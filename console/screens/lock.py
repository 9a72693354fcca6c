"""The idle lock: after the configured idle time the console hides patient data until the same
user signs in again (45 CFR 164.312(a)(2)(iii))."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from console.screens.base import WorkerFailures
from queues.views.user import SignedInUser


class LockScreen(WorkerFailures, ModalScreen[None]):
    AUTO_FOCUS = "#unlock-password"

    def __init__(self, user: SignedInUser) -> None:
        super().__init__()
        self.user = user

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="lock-box"):
            yield Static("Console locked", id="lock-title")
            yield Static(f"Signed in as {self.user.display_name}. Enter your password to go on.")
            yield Input(id="unlock-password", password=True, placeholder="password")
            yield Static("", id="lock-error")

    @on(Input.Submitted)
    def _unlock(self, event: Input.Submitted) -> None:
        self._check(event.value)

    @work(thread=True, exclusive=True, exit_on_error=False, group="unlock")
    def _check(self, password: str) -> None:
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        app.services.accounts.unlock(self.user, password)
        app.call_from_thread(self.dismiss)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        self._fail(message)

    def _fail(self, message: str) -> None:
        self.query_one("#lock-error", Static).update(message)
        self.query_one("#unlock-password", Input).value = ""
