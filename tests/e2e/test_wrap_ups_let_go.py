"""A shift's wrap-ups do not pile up in memory: each wrap-up screen (its notes TextArea watched
the app's theme, and Textual kept the watcher) is let go once the next one is saved, and so are
its widgets' rendered lines (Textual's StylesCache.get_inner_outer kept them in an lru_cache), so a
console worked all day does not grow by a screen of widgets per patient."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from pathlib import Path

from textual._styles_cache import StylesCache
from textual.widget import Widget
from textual.widgets import TextArea

from console.app import OutreachApp
from console.screens.workspace import WorkspaceScreen
from console.screens.wrap_up import WrapUpScreen
from tests.e2e.helpers import choose_disposition, login, press, until
from tests.world import make_world

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


async def test_four_saved_wrap_ups_leave_at_most_the_last_one_alive(tmp_path: Path) -> None:
    patients = {"Alvarez": 1, "Brown": 3, "Chen": 5, "Diaz": 2, "Evans": 4}
    w = make_world(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", NOW, patients)
    app = OutreachApp(w.services)
    async with app.run_test(size=(120, 40)) as pilot:
        await login(pilot, "ana")
        for _ in range(4):
            await press(pilot, "r", "w")
            await until(pilot, lambda: isinstance(app.screen, WrapUpScreen), "the wrap-up")
            await choose_disposition(pilot, "no_answer")
            await press(pilot, "ctrl+s")
            await until(pilot, lambda: isinstance(app.screen, WorkspaceScreen), "the save")
        gc.collect()
        alive = [o for o in gc.get_objects() if isinstance(o, TextArea)]
        assert len(alive) <= 1, f"{len(alive)} wrap-up notes fields still alive after 4 saves"
        objects = gc.get_objects()
        owned = {id(o._styles_cache) for o in objects if isinstance(o, Widget)}
        orphans = [o for o in objects if isinstance(o, StylesCache) and id(o) not in owned]
        assert orphans == [], f"{len(orphans)} removed widgets' rendered lines kept after 4 saves"
