"""A console runs all day: the footer, redrawn each time the keys that work change, must not keep
every key it ever drew (Textual's own footer kept them all through its data bindings)."""

from __future__ import annotations

import gc

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.widgets._footer import FooterKey

from console.widgets.footer import Footer


class Toggling(App[None]):
    BINDINGS = [Binding("a", "noop", "Alpha"), Binding("b", "noop", "Beta")]
    shown = True

    def compose(self) -> ComposeResult:
        yield Footer()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        return self.shown

    def action_noop(self) -> None:
        pass


async def test_the_footer_lets_go_of_the_keys_it_no_longer_shows() -> None:
    gc.collect()
    before = {id(k) for k in gc.get_objects() if isinstance(k, FooterKey)}  # other tests' apps
    app = Toggling()
    async with app.run_test() as pilot:
        for _ in range(40):
            app.shown = not app.shown
            app.refresh_bindings()
            await pilot.pause()
        await pilot.pause()
        gc.collect()
        alive = [k for k in gc.get_objects() if isinstance(k, FooterKey) and id(k) not in before]
        shown = list(app.query(FooterKey))
    # What is on screen, and perhaps one set being replaced; never 40 redraws' worth.
    assert len(shown) >= 1
    assert len(alive) <= 3 * max(len(shown), 2), (len(alive), len(shown))
