"""How long `outreach scripts lint` takes as a flow grows: it should grow with the flow, not with its
square.

Writes generated section flows of N steps (a chain of ask → branch → say, both languages, a
placeholder in every say) and lints each alone as `outreach scripts lint FILE` does
(`scripts_library.lint.lint`), best of --repeat runs. The floor is `tomllib.loads` of the same file
in the same run: linting must read the TOML, so lint / floor staying flat as N grows is what
"linear" looks like (a quadratic lint doubles it with every doubling of N). With --problems every
third step also lacks its Spanish text and the last tenth of the flow is unreachable, so the lint
has a problem to place (file:line) for most steps.

    python bench/flow_lint.py [--steps 500,1000,2000,4000] [--repeat 3] [--problems] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tomllib
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from scripts_library.lint import lint


def flow_text(steps: int, problems: bool) -> str:
    """A section flow of `steps` steps; with `problems`, missing translations and a dead tail."""
    out = [
        'id = "bench_flow"',
        'part = "section"',
        'title = { en = "Bench", es = "Banco" }',
        'languages = ["en", "es"]',
        'subjects = ["refill_reminder"]',
        "order = 99",
        'start = "s0"',
        "",
    ]
    cut = steps - steps // 10 if problems else steps  # steps from here on are never reached
    for i in range(steps):
        nxt = f"s{i + 1}" if i + 1 < steps and i + 1 != cut else "@next"
        out.append(f"[steps.s{i}]")
        if i % 3 == 0:
            out += [
                'type = "ask"',
                f'key = "k{i}"',
                'answer = "choice"',
                'text.en = "Is this still right?"',
                'text.es = "¿Sigue siendo así?"',
                f'choices = [{{ value = "a", next = "{nxt}", en = "Yes", es = "Sí" }}, '
                f'{{ value = "b", next = "{nxt}", en = "No", es = "No" }}]',
            ]
        elif i % 3 == 1:
            out += [
                'type = "branch"',
                f"cases = [{{ when = \"answer('k{i - 1}') == 'a'\", next = \"{nxt}\" }}]",
                f'else = "{nxt}"',
            ]
        else:
            out += ['type = "say"', 'text.en = "Your {rx.drug} runs out around {rx.run_out}."']
            if not problems:
                out.append('text.es = "Su {rx.drug} se termina alrededor del {rx.run_out}."')
            out.append(f'next = "{nxt}"')
        out.append("")
    return "\n".join(out)


def best_of(repeat: int, run: Any) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return min(times)


def measure(sizes: list[int], repeat: int, problems: bool) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="outreach-bench-") as tmp:
        for steps in sizes:
            path = Path(tmp) / f"bench_flow_{steps}.toml"
            text = flow_text(steps, problems)
            path.write_text(text, encoding="utf-8")
            found = lint([path])
            mine = [p for p in found if p.file == str(path)]
            lint_s = best_of(repeat, lambda p=path: lint([p]))
            floor_s = best_of(repeat, lambda t=text: tomllib.loads(t))
            rows.append(
                {
                    "steps": steps,
                    "problems": len(mine),
                    "lint_s": round(lint_s, 4),
                    "floor_s": round(floor_s, 4),
                    "ratio": round(lint_s / floor_s, 2),
                    "us_per_step": round(lint_s / steps * 1e6, 1),
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="500,1000,2000,4000", help="flow sizes, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per size")
    parser.add_argument("--problems", action="store_true", help="give most steps a problem")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    sizes = [int(n) for n in args.steps.split(",") if n.strip()]
    rows = measure(sizes, max(1, args.repeat), args.problems)
    print(
        f"flow lint, best of {args.repeat}{', most steps with a problem' if args.problems else ''}"
    )
    print(
        f"{'steps':>7} {'problems':>9} {'lint s':>9} {'toml s':>9} {'lint/toml':>10} {'µs/step':>9}"
    )
    for r in rows:
        print(
            f"{r['steps']:>7,} {r['problems']:>9,} {r['lint_s']:>9.3f} {r['floor_s']:>9.3f} "
            f"{r['ratio']:>10.2f} {r['us_per_step']:>9.1f}"
        )
    first, last = rows[0], rows[-1]
    growth = (last["lint_s"] / first["lint_s"]) / (last["steps"] / first["steps"])
    print(
        f"time grew {last['lint_s'] / first['lint_s']:.1f}x for {last['steps'] / first['steps']:.0f}x "
        f"the steps ({growth:.2f}x per step; 1.0 is linear)"
    )
    if args.json:
        print(
            json.dumps(
                {"problems_mode": args.problems, "rows": rows, "growth_per_step": round(growth, 2)}
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
