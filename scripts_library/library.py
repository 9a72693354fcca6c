"""The set of flows the console runs, and the plan of one call: opening, due sections, close."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from scripts_library.facts import DueItem
from scripts_library.schema import Flow, FlowError, Problem, load_flow

FLOWS_DIR = Path(__file__).parent / "flows"
OPENING = "call_opening"
CLOSING = "call_closing"


def flow_files(paths: Iterable[Path] = ()) -> list[Path]:
    """The .toml files named, or found under the directories named (default: the bundled ones)."""
    out: list[Path] = []
    for path in list(paths) or [FLOWS_DIR]:
        if path.is_dir():  # a folder named like a flow file is not one
            out.extend(sorted(p for p in path.rglob("*.toml") if not p.is_dir()))
        else:
            out.append(path)
    return out


@dataclass(frozen=True)
class Segment:
    """One part of the call: the opening, a due subject's section, or the close."""

    flow_id: str
    item: DueItem | None = None
    key: str = "call"  # where its answers are kept

    def as_dict(self) -> dict[str, Any]:
        return {
            "flow": self.flow_id,
            "key": self.key,
            "item": self.item.as_dict() if self.item else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Segment:
        item = data.get("item")
        return cls(str(data["flow"]), DueItem.from_dict(item) if item else None, str(data["key"]))


@dataclass(frozen=True)
class CallPlan:
    segments: tuple[Segment, ...]
    unscripted: tuple[DueItem, ...] = ()

    @property
    def sections(self) -> tuple[Segment, ...]:
        return tuple(s for s in self.segments if s.item is not None)


@dataclass(frozen=True)
class Library:
    flows: Mapping[str, Flow]

    @classmethod
    def load(cls, paths: Iterable[Path] = ()) -> Library:
        """Every flow, or FlowError with every problem (file:line) when any file is broken."""
        flows, problems = load_flows(flow_files(paths))
        if problems:
            raise FlowError(problems)
        return cls(flows)

    def get(self, flow_id: str) -> Flow:
        try:
            return self.flows[flow_id]
        except KeyError:
            raise KeyError(f"there is no flow {flow_id!r}") from None

    def section_for(self, item: DueItem) -> Flow | None:
        """The most specific section covering the item; the campaign's named script otherwise."""
        best: tuple[float, Flow] | None = None
        for flow in self.flows.values():
            if flow.part != "section":
                continue
            for pattern in flow.subjects:
                score = match_score(pattern, item)
                if score and (best is None or score > best[0]):
                    best = (score, flow)
        if best is not None:
            return best[1]
        named = self.flows.get(item.script_id or "")
        return named if named is not None and named.part == "section" else None

    def plan(self, items: Iterable[DueItem]) -> CallPlan:
        """One greeting and identity check, a section per due subject in clinical order, one
        close. Time-critical supply comes first, then safety, then programs and prevention: each
        section's `order` says where it goes."""
        found: list[tuple[int, date, int, Segment]] = []
        unscripted: list[DueItem] = []
        keys: set[str] = set()
        for n, item in enumerate(items):
            flow = self.section_for(item)
            if flow is None:
                unscripted.append(item)
                continue
            key = item.subject
            if key in keys:
                key = f"{item.kind}:{item.subject}"
            if key in keys:
                continue  # the same subject twice: one section is enough
            keys.add(key)
            found.append((flow.order, _due(item), n, Segment(flow.id, item, key)))
        found.sort(key=lambda f: f[:3])
        segments = (
            Segment(OPENING),
            *(f[3] for f in found),
            Segment(CLOSING, key="close"),
        )
        return CallPlan(segments, tuple(unscripted))


def _due(item: DueItem) -> date:
    raw = item.parts.get("due_on")
    if isinstance(raw, str):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    return date.max


def match_score(pattern: str, item: DueItem) -> float:
    """0 when the pattern does not cover the item; higher is more specific."""
    if pattern == item.subject:
        return 3.0
    if item.subject.startswith(pattern + ":"):
        return 2.0 + len(pattern) / 1000
    if pattern == item.kind:
        return 1.0
    return 0.0


@functools.cache
def bundled_library() -> Library:
    """The flows shipped in scripts_library/flows, read once per process (they are immutable)."""
    return Library.load()


def load_flows(files: Iterable[Path]) -> tuple[dict[str, Flow], list[Problem]]:
    """The flows of these files by id, and the problems of those that do not load (a broken file,
    an id used twice)."""
    flows: dict[str, Flow] = {}
    problems: list[Problem] = []
    for path in files:
        try:
            flow = load_flow(path)
        except FlowError as exc:
            problems.extend(exc.problems)
            continue
        if flow.id in flows:
            problems.append(
                Problem(
                    flow.path,
                    flow.line_of(key="id"),
                    f"flow id {flow.id!r} is also used by {flows[flow.id].path}",
                )
            )
            continue
        flows[flow.id] = flow
    return flows, problems
