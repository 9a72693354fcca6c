"""How long a script step takes to draw in the real agent workspace (budget: 50 ms).

Walks a bundled Spanish refill + vaccine call in the real app (headless, Pilot) and times, per
step: the engine's view, the panel update, and the screen's full layout and render with the new
step, against the same full render with nothing changed (the floor, same run).

    python bench/script_render.py [--steps N] [--size 80x24] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from console.app import OutreachApp
from console.widgets.script_panel import ScriptPanel
from tests.e2e.helpers import press
from tests.e2e.test_scripted_call import (
    login_and_take_patient,
    spanish_refill_and_vaccine_world,
    verify_identity,
)

BUDGET_MS = 50.0


def draw(app: OutreachApp, full: bool = False) -> None:
    """Lay out and render the screen now: what the next frame does (the regions that changed),
    or with `full` every region (the floor)."""
    screen = app.screen
    screen._refresh_layout(app.size)  # Textual 8.2 internals: the frame's work, synchronously
    screen._compositor.render_update(full=full)


async def measure(steps: int, size: tuple[int, int]) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"engine": [], "step": [], "floor": []}
    with tempfile.TemporaryDirectory() as tmp:
        world = spanish_refill_and_vaccine_world(Path(tmp))
        app = OutreachApp(world.services)
        async with app.run_test(size=size) as pilot:
            panel = await login_and_take_patient(pilot)
            await press(pilot, "right_square_bracket", "1")
            await verify_identity(pilot, panel, "Pat Alvarez", "01/04/1955")
            assert isinstance(panel, ScriptPanel) and panel.call is not None
            for i in range(steps):
                t0 = time.perf_counter()
                panel.call.view()
                t1 = time.perf_counter()
                (panel.forward if i % 2 == 0 else panel.back)()
                draw(app)
                t2 = time.perf_counter()
                draw(app, full=True)
                t3 = time.perf_counter()
                times["engine"].append((t1 - t0) * 1000)
                times["step"].append((t2 - t1) * 1000)
                times["floor"].append((t3 - t2) * 1000)
                await pilot.pause()
        world.services.close()
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--size", default="120x40", help="terminal size, e.g. 80x24")
    parser.add_argument("--json", action="store_true", help="one JSON object on the last line")
    args = parser.parse_args(argv)
    width, height = (int(x) for x in args.size.split("x"))
    times = asyncio.run(measure(args.steps, (width, height)))
    rows = [
        ("engine view (plain Python)", times["engine"]),
        ("step: move + layout + changed regions", times["step"]),
        ("floor: full render, nothing changed", times["floor"]),
    ]
    print(f"script step render, {args.steps} steps at {args.size} (budget {BUDGET_MS:.0f} ms)")
    print(f"{'what':<38}{'p50 ms':>9}{'p90 ms':>9}{'max ms':>9}")
    for label, values in rows:
        print(f"{label:<38}{pct(values, 0.5):>9.2f}{pct(values, 0.9):>9.2f}{max(values):>9.2f}")
    floor = statistics.median(times["floor"])
    result: dict[str, Any] = {
        "steps": args.steps,
        "size": args.size,
        "engine_p50_ms": round(pct(times["engine"], 0.5), 3),
        "p50_ms": round(pct(times["step"], 0.5), 2),
        "p90_ms": round(pct(times["step"], 0.9), 2),
        "max_ms": round(max(times["step"]), 2),
        "floor_p50_ms": round(floor, 2),
        "ratio_vs_floor": round(pct(times["step"], 0.5) / floor, 2) if floor else None,
        "budget_ms": BUDGET_MS,
        "within_budget": pct(times["step"], 0.9) <= BUDGET_MS,
    }
    print(f"step p50 is {result['ratio_vs_floor']}x a full-screen render in the same run")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
