"""An installed console has every data file its code reads: a wheel carries only the Python
modules and what `[tool.setuptools.package-data]` in pyproject.toml lists, so a data file left out
works in the source tree (an editable install) and is missing from `pip install .`."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[1]


def test_every_data_file_in_the_packages_is_listed_as_package_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = project["tool"]["setuptools"]
    packages = [p.rstrip("*") for p in setuptools["packages"]["find"]["include"]]
    listed = setuptools.get("package-data", {})
    missing = []
    for package in packages:
        base = ROOT / package
        shipped = {f for pattern in listed.get(package, []) for f in base.glob(pattern)}
        for f in sorted(base.rglob("*")):
            if not f.is_file() or "__pycache__" in f.parts or f.suffix in (".py", ".pyc"):
                continue
            # A folder's README.md is notes for developers unless listed (scripts_library's is).
            if f not in shipped and f.name != "README.md":
                missing.append(str(f.relative_to(ROOT)))
    assert not missing, f"not in pyproject.toml's package-data (a wheel would lack them): {missing}"
