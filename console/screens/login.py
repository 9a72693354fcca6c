"""Sign-in: user name and password (argon2), one generic message when it fails; then the one-time
code (TOTP) for an account that has one."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Center, Vertical
from textual.widgets import Button, Header, Input, Label, Static
from textual.worker import Worker, WorkerState

from console.screens.base import OutreachScreen
from console.widgets.footer import Footer
from queues.errors import AuthenticationFailed, SecondFactorRequired, SignInSlowed
from queues.views.user import SignedInUser

DEMO_HINT = (
    "Demo database. Log-ins (user / password):\n"
    "  agent       [b]agent[/] / [b]agent-demo-1[/]\n"
    "  supervisor  [b]supervisor[/] / [b]supervisor-demo-1[/]\n"
    "  admin       [b]admin[/] / [b]admin-demo-1[/]"
)


class LoginScreen(OutreachScreen[None]):
    AUTO_FOCUS = "#username"

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with Center(), Vertical(id="login-box"):
            yield Static("Outreach Console", id="login-title")
            yield Static("Sign in to start your shift.", id="login-sub")
            yield Static("", id="demo-hint")
            yield Label("User name")
            yield Input(id="username", placeholder="user name")
            yield Label("Password")
            yield Input(id="password", password=True, placeholder="password")
            yield Label("One-time code", id="code-label")
            yield Input(id="code", placeholder="6 digits from your authenticator app", max_length=6)
            yield Button("Sign in", id="sign-in", variant="primary")
            yield Static("", id="login-error")
        yield Footer()

    def on_mount(self) -> None:
        for selector in ("#code-label", "#code"):
            self.query_one(selector).display = False
        self._show_demo_hint()

    @work(thread=True, exit_on_error=False, group="demo-hint")
    def _show_demo_hint(self) -> None:
        if self.outreach.services.accounts.is_demo():
            self.app.call_from_thread(self._reveal_hint)

    def _reveal_hint(self) -> None:
        hint = self.query_one("#demo-hint", Static)
        hint.update(DEMO_HINT)
        hint.display = True

    @on(Input.Submitted, "#username")
    def _to_password(self) -> None:
        self.query_one("#password", Input).focus()

    @on(Input.Submitted, "#password")
    @on(Input.Submitted, "#code")
    @on(Button.Pressed, "#sign-in")
    def _submit(self) -> None:
        username = self.query_one("#username", Input).value
        password = self.query_one("#password", Input).value
        code_input = self.query_one("#code", Input)
        code = code_input.value.strip() if code_input.display else None
        if not username or not password:
            self._fail("Enter your user name and password.")
            return
        if code_input.display and not code:
            self._ask_code("Enter the 6-digit code from your authenticator app.")
            return
        self.query_one("#sign-in", Button).disabled = True
        self.query_one("#login-error", Static).update("Signing in…")
        self._sign_in(username, password, code)

    @work(thread=True, exclusive=True, exit_on_error=False, group="login")
    def _sign_in(self, username: str, password: str, code: str | None) -> SignedInUser:
        return self.outreach.services.accounts.sign_in(username, password, code)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        # The console is entered from the app's own queue: the workspace's tasks copy the context
        # they are started in, and started from the worker (call_from_thread) or from this
        # screen's handler they would keep Textual's active_worker or active_message_pump — the
        # worker, this screen and the typed password — reachable all shift.
        # (Failures: WorkerFailures.on_worker_state_changed, also called.)
        if event.worker.group == "login" and event.state is WorkerState.SUCCESS:
            user = event.worker.result
            assert isinstance(user, SignedInUser)
            self.app.call_later(self.outreach.signed_in, user)

    def worker_failed(self, group: str, error: BaseException | None, message: str) -> None:
        if group == "demo-hint":
            return  # the hint is a courtesy; signing in says what is wrong with the database
        if isinstance(error, SecondFactorRequired):
            self._ask_code(message)
        elif isinstance(error, AuthenticationFailed | SignInSlowed):
            self._fail(message)
        else:
            self._fail(f"Cannot sign in now: {message}")

    def _ask_code(self, message: str) -> None:
        self.query_one("#login-error", Static).update(message)
        self.query_one("#sign-in", Button).disabled = False
        for selector in ("#code-label", "#code"):
            self.query_one(selector).display = True
        self.query_one("#code", Input).focus()

    def _fail(self, message: str) -> None:
        self.query_one("#login-error", Static).update(message)
        self.query_one("#sign-in", Button).disabled = False
        for selector in ("#code-label", "#code"):
            self.query_one(selector).display = False
        self.query_one("#code", Input).value = ""
        password = self.query_one("#password", Input)
        password.value = ""
        password.focus()
