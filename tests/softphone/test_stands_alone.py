"""The softphone stands alone (README "Layout"): its import-linter contract in pyproject.toml
forbids `queues`, Textual and every other part of `console`. Import-linter cannot forbid
`console` whole (the softphone is inside it), so the contract names each sibling: a module added
to `console/` must be named there too, or the softphone could import it unseen."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_softphone_contract_names_every_other_part_of_console() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = project["tool"]["importlinter"]["contracts"]
    (alone,) = [c for c in contracts if c["source_modules"] == ["console.softphone"]]
    forbidden = set(alone["forbidden_modules"])
    assert {"queues", "textual"} <= forbidden
    siblings = {
        f"console.{p.stem}"
        for p in (ROOT / "console").iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()
    }
    assert siblings - {"console.softphone"} <= forbidden, sorted(siblings - forbidden)
