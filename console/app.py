"""OutreachApp: signs the user in, then opens the agent's workspace (or the supervisor's view).

Services are handed in by the CLI (or a test); the app never builds engines itself and never
blocks its event loop: database work runs in thread workers.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from queues.views.user import SignedInUser

if TYPE_CHECKING:  # handed in by the CLI or a test; the app never builds it
    from console.services.container import Services
    from console.services.outbox import OutboxCourier

STYLES = Path(__file__).parent / "styles"
# Python's cyclic garbage collector, tuned for a console that runs all day. Textual builds and
# drops screens (the wrap-up's ~50 widgets and ~100 style nodes per patient) as cycles, so full
# collections came about once a patient, each walking every object alive since start-up (~145,000
# after sign-in): a pause of tens of ms on a quiet machine, hundreds on a loaded one, that landed
# between a key and its frame (measured: 42 full collections in 60 patients). After sign-in what
# is alive is kept out of the collector's walks (gc.freeze), and young objects get a bigger first
# generation, so a frame's short-lived objects die young instead of being promoted mid-frame.
GC_THRESHOLDS = (10_000, 10, 10)


class OutreachApp(App[int]):
    TITLE = "Outreach Console"
    CSS_PATH = [STYLES / "app.tcss"]
    ENABLE_COMMAND_PALETTE = True
    COMMAND_PALETTE_BINDING = "ctrl+p"
    BINDINGS = [
        Binding("ctrl+q", "quit", "Quit", id="quit", show=False, priority=True),
    ]
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]

    def __init__(self, services: Services, signed_in_as: SignedInUser | None = None) -> None:
        super().__init__()
        self.services = services
        self.user: SignedInUser | None = None
        # `outreach serve` signed this user in already (a one-time ticket): no login screen, and
        # signing out ends this console (the browser's session with it).
        self._served_user = signed_in_as
        self._last_input = time.monotonic()
        self._idle_timer_started = False
        self._courier: OutboxCourier | None = None
        self._gc_saved: tuple[int, int, int] | None = None  # the thresholds before sign-in

    def on_mount(self) -> None:
        from console.screens.login import LoginScreen

        self.theme = self.services.settings.ui.theme
        if self.services.settings.ui.keymap:
            self.set_keymap(dict(self.services.settings.ui.keymap))
        if self._served_user is not None:
            self.push_screen(Screen())  # a blank first screen, which signing in replaces
            self.signed_in(self._served_user)
        else:
            self.push_screen(LoginScreen())
        self.set_interval(15, self._check_idle)
        # The console's presence beat: a console that dies shows its agent offline in a lease.
        lease = self.services.settings.queue.lease_seconds
        self.set_interval(max(lease / 3, 1), self._present)
        # The outbox is delivered from every running console (a thread; rows are claimed).
        self._courier = self.services.outbox_courier()
        if self._courier is not None:
            self._courier.start()

    def on_unmount(self) -> None:
        self._thaw()
        if self._courier is not None:
            self._courier.stop(wait=2.0)  # a send under way ends by its timeout; its claim runs out

    def signed_in(self, user: SignedInUser) -> None:
        """Called by the login screen once the password checked out."""
        self.user = user
        self._last_input = time.monotonic()
        self.sub_title = f"{user.display_name} · {user.role}"
        self._present()
        self.call_after_refresh(self._freeze)
        if user.is_supervisor:
            from console.screens.floor import FloorScreen

            self.switch_screen(FloorScreen(user))
        else:
            from console.screens.workspace import WorkspaceScreen

            self.switch_screen(WorkspaceScreen(user))

    def _freeze(self) -> None:
        """What start-up and sign-in made is alive all day: out of the collector's walks."""
        if self._gc_saved is None:
            self._gc_saved = gc.get_threshold()
            gc.set_threshold(*GC_THRESHOLDS)
        gc.unfreeze()
        gc.collect()
        gc.freeze()

    def _thaw(self) -> None:
        """Signed out or closing: what was kept out of the walks may be garbage now."""
        gc.unfreeze()
        if self._gc_saved is not None:
            gc.set_threshold(*self._gc_saved)
            self._gc_saved = None

    def signed_out(self) -> None:
        from console.screens.lock import LockScreen
        from console.screens.login import LoginScreen

        self._thaw()
        self.user = None
        self.sub_title = ""
        if self._served_user is not None:
            self.exit()
            return
        if isinstance(self.screen, LockScreen):  # a supervisor's sign-out while locked
            # From the app's own queue, never as a screen's callback: `call_after_refresh` ran
            # the switch inside the workspace's message pump, and switching the workspace away
            # waits for that pump to end, which waited for the switch (the console hung).
            self.call_later(self._unlock_to_sign_in)
            return
        self.switch_screen(LoginScreen())

    async def _unlock_to_sign_in(self) -> None:
        from console.screens.login import LoginScreen

        # The lock, and anything the agent had open under it (a wrap-up): down to the workspace.
        while len(self.screen_stack) > 2:
            await self.pop_screen()
        await self.switch_screen(LoginScreen())  # the workspace

    def _present(self) -> None:
        user = self.user
        if user is not None:
            self.run_worker(
                lambda: self.services.accounts.present(user),
                thread=True,
                exclusive=True,
                group="presence",
                exit_on_error=False,  # a database away: the next beat tries again
            )

    # -- idle lock (45 CFR 164.312(a)(2)(iii)) -------------------------------------------------
    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key | events.MouseDown):
            self._last_input = time.monotonic()
        await super().on_event(event)

    def _check_idle(self) -> None:
        from console.screens.lock import LockScreen

        # The config keeps it within 1-30 minutes; it cannot be switched off.
        limit = max(self.services.settings.ui.idle_lock_minutes, 1) * 60
        if self.user is None or isinstance(self.screen, LockScreen):
            return
        if time.monotonic() - self._last_input >= limit:
            self.lock()

    def lock(self) -> None:
        from console.screens.lock import LockScreen

        if self.user is not None and not isinstance(self.screen, LockScreen):
            self.push_screen(
                LockScreen(self.user, self.services.settings.ui.lock_release_minutes * 60)
            )

    @property
    def locked(self) -> bool:
        from console.screens.lock import LockScreen

        return isinstance(self.screen, LockScreen)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # Locked, nothing but the password: no command palette (it would list the screen's
        # actions beneath, and run them).
        if action == "command_palette" and self.locked:
            return False
        return super().check_action(action, parameters)

    def action_command_palette(self) -> None:
        if not self.locked:
            super().action_command_palette()

    # -- command palette: every visible binding of the screen is a command -------------------
    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        if self.locked:
            return
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.show or binding.action in seen or not active.enabled:
                continue
            seen.add(binding.action)
            node = active.node

            def run(node: object = node, action: str = binding.action) -> None:
                self.call_later(self.run_action, action, node)

            yield SystemCommand(
                binding.description, f"{binding.tooltip or binding.description} ({key})", run
            )
        if self.user is not None:
            yield SystemCommand("Lock the console", "Lock now; sign in again to return", self.lock)
