"""A drug's ingredient, PQA measure class and chronic flag, from its RxNorm code or its name, by the
table shipped in data/rxnorm_pqa.tsv (its header says where it comes from and when)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE = Path(__file__).parent / "data" / "rxnorm_pqa.tsv"


@dataclass(frozen=True)
class DrugClass:
    ingredient: str
    pqa_class: str | None
    chronic: bool


@dataclass(frozen=True)
class _Table:
    by_code: dict[str, DrugClass]
    by_ingredient: dict[str, DrugClass]
    pattern: re.Pattern[str]


@cache
def _table() -> _Table:
    by_code: dict[str, DrugClass] = {}
    by_ingredient: dict[str, DrugClass] = {}
    lines = (line for line in TABLE.read_text(encoding="utf-8").splitlines() if line.strip())
    for line in lines:
        if line.startswith(("#", "kind\t")):
            continue
        kind, code, ingredient, pqa_class, chronic, _name = line.split("\t")
        drug = DrugClass(ingredient, pqa_class or None, chronic == "1")
        if kind == "rxcui":
            by_code[code] = drug
        else:
            by_ingredient[ingredient] = drug
    names = sorted(by_ingredient, key=len, reverse=True)  # "insulin glargine" before "insulin"
    pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in names) + r")\b", re.IGNORECASE)
    return _Table(by_code, by_ingredient, pattern)


def classify(rxnorm: str | None, name: str) -> DrugClass:
    """By the code when the table has it; else by the ingredients named in `name` (a combination
    keeps them all, "sacubitril/valsartan"); else the name's first word, not a measure class,
    chronic (refill work is the safer guess for a drug nobody classified)."""
    table = _table()
    if rxnorm and rxnorm in table.by_code:
        return table.by_code[rxnorm]
    found: list[str] = []
    for match in table.pattern.finditer(name):
        ingredient = match.group(1).lower()
        if ingredient not in found:
            found.append(ingredient)
    if not found:
        first = name.strip().split(" ")[0].lower() if name.strip() else "unknown"
        return DrugClass(first[:100], None, True)
    drugs = [table.by_ingredient[i] for i in found]
    pqa_class = next((d.pqa_class for d in drugs if d.pqa_class), None)
    return DrugClass("/".join(found)[:100], pqa_class, all(d.chronic for d in drugs))
