"""The idle lock: after the configured idle time the console shows nothing of the patient until
the same user signs in again (45 CFR 164.312(a)(2)(iii)); locked past the grace, the patient goes
back to the queue (the draft wrap-up is kept on disk). A supervisor's sign-out takes it at its next
check (every `SUPERVISOR_POLL_SECONDS`, the floor's refresh): the patient goes back to the queue at
once, the agent offline, and the console shows the sign-in screen saying why.

A full screen, not a box over the workspace: nothing beneath is drawn while it is up.
"""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.screen import Screen
from textual.widgets import Input, Static

from console.screens.base import WorkerFailures
from queues.views.user import SignedInUser

# As often as the workspace asks (and the floor refreshes): a sign-out shows within one refresh.
SUPERVISOR_POLL_SECONDS = 2.0


class LockScreen(WorkerFailures, Screen[None]):
    # A Screen, not a ModalScreen: it is opaque, so nothing of the workspace beneath is drawn.
    AUTO_FOCUS = "#unlock-password"

    def __init__(self, user: SignedInUser, release_after_seconds: float = 300) -> None:
        super().__init__()
        self.user = user
        self.release_after_seconds = release_after_seconds
        self.released = False

    def compose(self) -> ComposeResult:
        with Center(), Vertical(id="lock-box"):
            yield Static("Console locked", id="lock-title")
            yield Static(f"Signed in as {self.user.display_name}. Enter your password to go on.")
            yield Input(id="unlock-password", password=True, placeholder="password")
            yield Static("", id="lock-error")

    def on_mount(self) -> None:
        self.set_timer(self.release_after_seconds, self.release_patient)
        self.set_interval(SUPERVISOR_POLL_SECONDS, self._check_sign_out)

    @work(thread=True, exclusive=True, exit_on_error=False, group="lock-sign-out")
    def _check_sign_out(self) -> None:
        """Has a supervisor signed this agent out? Then the console has been (see Accounts)."""
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        if app.services.accounts.sign_out_if_asked(self.user):
            app.call_from_thread(self._signed_out)

    def _signed_out(self) -> None:
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        if app.user is None:
            return  # already signed out
        app.notify(
            "Your supervisor signed you out while the console was locked; any patient you held "
            "went back to the queue.",
            title="Signed out",
            severity="warning",
            timeout=30,
        )
        app.signed_out()

    def release_patient(self) -> None:
        """The grace is over: give the held patient back (the console stays locked)."""
        self._release()

    @work(thread=True, exclusive=True, exit_on_error=False, group="lock-release")
    def _release(self) -> None:
        from console.app import OutreachApp

        app = self.app
        assert isinstance(app, OutreachApp)
        app.services.accounts.release_on_lock(self.user)
        self.released = True

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
        if group in ("lock-release", "lock-sign-out"):
            return  # the lease runs out by itself; the next check tries again
        self._fail(message)

    def _fail(self, message: str) -> None:
        self.query_one("#lock-error", Static).update(message)
        self.query_one("#unlock-password", Input).value = ""
