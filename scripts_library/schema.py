"""The flow file format: TOML read into frozen dataclasses, with every problem named by file and line.

One file holds one flow in every language it speaks (the step graph is shared, the words are not),
so an agent can switch language mid-call without losing their place. `scripts_library/README.md`
documents the format; `lint.py` adds the checks that need the whole graph.
"""

from __future__ import annotations

import math
import re
import tomllib
from bisect import bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from queues.views.outcome import ACTION_KINDS

LANGUAGES = ("en", "es")
PARTS = ("opening", "section", "closing", "branch", "standalone")
STEP_TYPES = ("say", "ask", "verify", "branch", "action", "voicemail", "end")
ANSWER_TYPES = ("choice", "yes_no", "number", "date", "text")
VERIFY_WHO = ("patient", "caregiver")
# The disposition codes of the reference data (migration 0002); the wrap-up checks them again.
DISPOSITIONS = (
    "completed",
    "callback_requested",
    "transferred_pharmacist",
    "refused",
    "do_not_call",
    "voicemail",
    "no_answer",
    "busy",
    "wrong_number",
    "deceased",
)
NEXT_SECTION = "@next"  # leave this part of the call: the next due subject, or the close
FLOW_PREFIX = "@flow:"  # continue in another flow (no return), e.g. the caregiver path

_TOP_KEYS = {
    "id",
    "title",
    "part",
    "languages",
    "subjects",
    "order",
    "start",
    "requires_verification",
    "description",
    "steps",
}
_STEP_KEYS: dict[str, set[str]] = {
    "say": {"text", "hint", "next"},
    "ask": {"text", "hint", "key", "answer", "choices", "next", "yes", "no", "min", "max"},
    "verify": {"text", "hint", "who", "passed", "failed", "tries"},
    "branch": {"cases", "else", "hint"},
    "action": {"action", "detail", "next", "hint"},
    "voicemail": {"text", "hint", "disposition"},
    "end": {"text", "hint", "disposition"},
}
YES_NO_LABELS = {"yes": {"en": "Yes", "es": "Sí"}, "no": {"en": "No", "es": "No"}}
ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
KEY_RE = re.compile(r"^[a-z][a-z0-9_.]*$")


MAX_MESSAGE = 300  # a problem quotes what the file says; a 1 MB value is cut, not printed whole


def printable(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` safe for a terminal line: control characters (an escape sequence in a step name,
    a newline in a value) shown as escapes, and cut at `limit` characters."""
    if not text.isprintable():
        text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", printable(self.message))

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class FlowError(Exception):
    """A flow that cannot be loaded; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass(frozen=True)
class Choice:
    value: str
    label: Mapping[str, str]
    next: str


@dataclass(frozen=True)
class Case:
    when: str
    next: str


@dataclass(frozen=True)
class Step:
    id: str
    type: str
    line: int
    text: Mapping[str, str] = field(default_factory=dict)
    hint: Mapping[str, str] = field(default_factory=dict)
    next: str | None = None
    key: str | None = None
    answer: str | None = None
    choices: tuple[Choice, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    who: str | None = None
    passed: str | None = None
    failed: str | None = None
    tries: int = 2
    cases: tuple[Case, ...] = ()
    otherwise: str | None = None
    action: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
    disposition: str | None = None

    @property
    def auto(self) -> bool:
        """Steps the engine passes through without showing them."""
        return self.type in ("branch", "action")

    @property
    def terminal(self) -> bool:
        return self.type in ("end", "voicemail")

    def targets(self) -> list[str]:
        out = [self.next, self.passed, self.failed, self.otherwise]
        out += [c.next for c in self.choices] + [c.next for c in self.cases]
        return [t for t in out if t]


@dataclass(frozen=True)
class Flow:
    id: str
    path: str
    part: str
    title: Mapping[str, str]
    languages: tuple[str, ...]
    subjects: tuple[str, ...]
    order: int
    start: str
    requires_verification: bool
    steps: Mapping[str, Step]
    lines: tuple[str, ...] = ()

    def line_of(self, step_id: str | None = None, key: str | None = None) -> int:
        return self._line_index.line(step_id, key)

    @cached_property
    def _line_index(self) -> LineIndex:
        return LineIndex(self.lines)


def find_line(lines: tuple[str, ...] | list[str], step_id: str | None, key: str | None) -> int:
    """The line of a step's table header (or of a key inside it); 1 when not found. One look-up
    reads the whole file: for many, build a LineIndex once."""
    return LineIndex(lines).line(step_id, key)


_STEP_HEADER = re.compile(r'^\s*\[\s*steps\s*\.\s*"?([^"\]]*?)"?\s*\]')
_TABLE = re.compile(r"^\s*\[")


class LineIndex:
    """Where each step's table starts and ends in a flow file, read in one pass, so the line of
    every step and problem is found without reading the file again (a 4,000-step flow asks
    thousands of times: reading it each time made loading and linting quadratic)."""

    def __init__(self, lines: tuple[str, ...] | list[str]) -> None:
        self.lines = lines
        self.tables: list[int] = []  # 0-based numbers of the lines that open a table
        self.steps: dict[str, int] = {}  # step id -> 0-based line of its first header
        for n, text in enumerate(lines):
            if _TABLE.match(text):
                self.tables.append(n)
                header = _STEP_HEADER.match(text)
                if header:
                    self.steps.setdefault(header.group(1), n)

    def line(self, step_id: str | None, key: str | None) -> int:
        """The line of a step's table header (or of a key inside it, or of a top-level key with
        no step); 1 when the step is not found."""
        if step_id is not None:
            found = self.steps.get(step_id)
            if found is None:
                return 1
            start = found
            after = bisect_right(self.tables, start)
            end = self.tables[after] if after < len(self.tables) else len(self.lines)
        else:
            start, end = 0, self.tables[0] if self.tables else len(self.lines)
        if key is not None:
            pattern = re.compile(rf"^\s*\"?{re.escape(key)}\"?\s*[.=]")
            for n in range(start, end):
                if pattern.match(self.lines[n]):
                    return n + 1
        return start + 1


class _Reader:
    """Collects problems while turning the TOML tables into dataclasses."""

    def __init__(self, path: str, lines: list[str]) -> None:
        self.path = path
        self.lines = lines
        self.index = LineIndex(lines)
        self.problems: list[Problem] = []

    def bad(self, message: str, step: str | None = None, key: str | None = None) -> None:
        self.problems.append(Problem(self.path, self.index.line(step, key), message))

    def text(self, raw: Any, where: str, step: str | None, key: str) -> dict[str, str]:
        if raw is None:
            return {}
        if isinstance(raw, str):
            self.bad(f'{where}: give the words per language, e.g. {key}.en = "…"', step, key)
            return {}
        if not isinstance(raw, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in raw.items()
        ):
            self.bad(f"{where}: expected a table of language = text", step, key)
            return {}
        unknown = sorted(set(raw) - set(LANGUAGES))
        if unknown:
            self.bad(f"{where}: unknown language {', '.join(map(repr, unknown))}", step, key)
        return {k: v for k, v in raw.items() if k in LANGUAGES}

    def string(self, raw: Any, where: str, step: str | None, key: str) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            self.bad(f"{where}: expected a string, got {type(raw).__name__}", step, key)
            return None
        return raw


def load_flow(path: Path) -> Flow:
    """Read one flow file; FlowError lists every schema problem as file:line: message."""
    name = str(path)
    if path.is_dir():
        raise FlowError([Problem(name, 1, "is a directory, not a flow file")])
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise FlowError([Problem(name, 1, f"cannot read the file: {exc.strerror}")]) from None
    try:
        source = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        why = f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at line {line}); save it as UTF-8"
        raise FlowError([Problem(name, line, why)]) from None
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(match.group(1)) if match else 1
        raise FlowError([Problem(name, line, f"not valid TOML: {exc}")]) from None
    except RecursionError:  # `a = [[[[…]]]]` thousands deep: tomllib recurses once per level
        raise FlowError([Problem(name, 1, "not valid TOML: nested too deeply")]) from None
    return parse_flow(data, name, source)


def parse_flow(data: dict[str, Any], name: str, source: str) -> Flow:
    lines = source.splitlines()
    r = _Reader(name, lines)
    for key in sorted(set(data) - _TOP_KEYS):
        r.bad(f"unknown key {key!r} (known: {', '.join(sorted(_TOP_KEYS))})", None, key)
    flow_id = r.string(data.get("id"), "id", None, "id") or ""
    if not flow_id:
        r.bad("id: every flow needs an id", None, "id")
    elif not ID_RE.match(flow_id):
        r.bad(f"id: {flow_id!r} must be lower_snake_case", None, "id")
    part = r.string(data.get("part"), "part", None, "part") or ""
    if part not in PARTS:
        r.bad(f"part: {part!r} is not one of {', '.join(PARTS)}", None, "part")
    langs_raw = data.get("languages", [])
    languages: tuple[str, ...] = ()
    if not isinstance(langs_raw, list) or not all(isinstance(x, str) for x in langs_raw):
        r.bad('languages: expected a list like ["en", "es"]', None, "languages")
    else:
        languages = tuple(langs_raw)
        for lang in LANGUAGES:
            if lang not in languages:
                r.bad(
                    f"languages: every flow exists in English and Spanish; {lang!r} is missing",
                    None,
                    "languages",
                )
        for lang in languages:
            if lang not in LANGUAGES:
                r.bad(
                    f"languages: {lang!r} is not supported ({', '.join(LANGUAGES)})",
                    None,
                    "languages",
                )
    subjects_raw = data.get("subjects", [])
    subjects: tuple[str, ...] = ()
    if not isinstance(subjects_raw, list) or not all(isinstance(x, str) for x in subjects_raw):
        r.bad("subjects: expected a list of campaign kinds or subjects", None, "subjects")
    else:
        subjects = tuple(subjects_raw)
    if part == "section" and not subjects:
        r.bad(
            "subjects: a section names the campaign kinds or subjects it covers", None, "subjects"
        )
    order = data.get("order", 100)
    if not isinstance(order, int) or isinstance(order, bool):
        r.bad("order: expected a whole number", None, "order")
        order = 100
    requires = data.get("requires_verification", part == "section")
    if not isinstance(requires, bool):
        r.bad("requires_verification: expected true or false", None, "requires_verification")
        requires = True
    start = r.string(data.get("start"), "start", None, "start") or ""
    title = r.text(data.get("title"), "title", None, "title")
    steps_raw = data.get("steps")
    steps: dict[str, Step] = {}
    if not isinstance(steps_raw, dict) or not steps_raw:
        r.bad("steps: a flow needs at least one [steps.NAME] table", None, "steps")
    else:
        for step_id, raw in steps_raw.items():
            step = _parse_step(r, step_id, raw)
            if step is not None:
                steps[step_id] = step
    if not start:
        r.bad("start: name the first step", None, "start")
    elif steps and start not in steps:
        r.bad(f"start: there is no step {start!r}", None, "start")
    if r.problems:
        raise FlowError(r.problems)
    return Flow(
        id=flow_id,
        path=name,
        part=part,
        title=title,
        languages=languages,
        subjects=subjects,
        order=order,
        start=start,
        requires_verification=requires,
        steps=steps,
        lines=tuple(lines),
    )


def _parse_step(r: _Reader, sid: str, raw: Any) -> Step | None:
    line = r.index.line(sid, None)
    if not ID_RE.match(sid):
        r.bad(f"step {sid!r}: step names are lower_snake_case", sid)
    if not isinstance(raw, dict):
        r.bad(f"step {sid!r}: expected a table", sid)
        return None
    kind = raw.get("type")
    if kind not in STEP_TYPES:
        r.bad(f"step {sid!r}: type {kind!r} is not one of {', '.join(STEP_TYPES)}", sid, "type")
        return None
    allowed = _STEP_KEYS[kind] | {"type"}
    for key in sorted(set(raw) - allowed):
        r.bad(
            f"step {sid!r}: {key!r} does not belong in a {kind} step "
            f"(allowed: {', '.join(sorted(allowed))})",
            sid,
            key,
        )
    where = f"step {sid!r}"
    text = r.text(raw.get("text"), f"{where} text", sid, "text")
    hint = r.text(raw.get("hint"), f"{where} hint", sid, "hint")
    nxt = r.string(raw.get("next"), f"{where} next", sid, "next")
    fields: dict[str, Any] = {"text": text, "hint": hint, "next": nxt}
    if kind in ("say", "ask", "verify", "voicemail") and not text:
        r.bad(f"{where}: a {kind} step needs text", sid, "text")
    if kind == "say" and not nxt:
        r.bad(f"{where}: dead end — a say step needs next", sid)
    if kind == "ask":
        fields.update(_parse_ask(r, sid, raw, nxt))
    elif kind == "verify":
        who = raw.get("who", "patient")
        if who not in VERIFY_WHO:
            r.bad(f"{where}: who must be one of {', '.join(VERIFY_WHO)}", sid, "who")
        tries = raw.get("tries", 2)
        if not isinstance(tries, int) or isinstance(tries, bool) or not 1 <= tries <= 5:
            r.bad(f"{where}: tries must be a whole number from 1 to 5", sid, "tries")
            tries = 2
        passed = r.string(raw.get("passed"), f"{where} passed", sid, "passed")
        failed = r.string(raw.get("failed"), f"{where} failed", sid, "failed")
        if not passed or not failed:
            r.bad(f"{where}: a verify step needs both passed and failed", sid)
        fields.update(who=who, tries=tries, passed=passed, failed=failed)
    elif kind == "branch":
        cases = []
        raw_cases = raw.get("cases", [])
        if not isinstance(raw_cases, list) or not raw_cases:
            r.bad(f'{where}: cases must be a list of {{ when = "…", next = "…" }}', sid, "cases")
            raw_cases = []
        for c in raw_cases:
            if not (
                isinstance(c, dict)
                and isinstance(c.get("when"), str)
                and isinstance(c.get("next"), str)
                and set(c) <= {"when", "next"}
            ):
                r.bad(f'{where}: each case is {{ when = "…", next = "…" }}', sid, "cases")
                continue
            cases.append(Case(c["when"], c["next"]))
        otherwise = r.string(raw.get("else"), f"{where} else", sid, "else")
        if not otherwise:
            r.bad(f"{where}: a branch needs else, where to go when no case holds", sid)
        fields.update(cases=tuple(cases), otherwise=otherwise)
    elif kind == "action":
        action = raw.get("action")
        if action not in ACTION_KINDS:
            r.bad(
                f"{where}: action {action!r} is not one of {', '.join(ACTION_KINDS)}", sid, "action"
            )
        detail = raw.get("detail", {})
        if not isinstance(detail, dict) or not all(isinstance(v, str) for v in detail.values()):
            r.bad(f"{where}: detail is a table of name = text", sid, "detail")
            detail = {}
        if not nxt:
            r.bad(f"{where}: dead end — an action step needs next", sid)
        fields.update(action=action, detail=detail)
    elif kind in ("voicemail", "end"):
        disposition = raw.get("disposition", "voicemail" if kind == "voicemail" else None)
        if disposition not in DISPOSITIONS:
            r.bad(
                f"{where}: disposition {disposition!r} is not one of {', '.join(DISPOSITIONS)}",
                sid,
                "disposition",
            )
        fields.update(disposition=disposition)
    return Step(id=sid, type=kind, line=line, **fields)


def _parse_ask(r: _Reader, sid: str, raw: dict[str, Any], nxt: str | None) -> dict[str, Any]:
    where = f"step {sid!r}"
    out: dict[str, Any] = {}
    key = raw.get("key")
    if not isinstance(key, str) or not KEY_RE.match(key):
        r.bad(
            f'{where}: an ask step records its answer under key = "lower.dotted_name"', sid, "key"
        )
    out["key"] = key if isinstance(key, str) else None
    answer = raw.get("answer")
    if answer not in ANSWER_TYPES:
        r.bad(f"{where}: answer {answer!r} is not one of {', '.join(ANSWER_TYPES)}", sid, "answer")
        return out
    out["answer"] = answer
    if answer == "choice":
        raw_choices = raw.get("choices")
        if not isinstance(raw_choices, list) or len(raw_choices) < 2:
            r.bad(f"{where}: a choice needs at least two choices", sid, "choices")
            raw_choices = []
        if len(raw_choices) > 9:
            r.bad(f"{where}: at most nine choices (they go on the number keys)", sid, "choices")
        choices, seen = [], set()
        for c in raw_choices:
            ok = (
                isinstance(c, dict)
                and isinstance(c.get("value"), str)
                and isinstance(c.get("next"), str)
            )
            if not ok:
                r.bad(
                    f'{where}: each choice is {{ value = "…", next = "…", en = "…", es = "…" }}',
                    sid,
                    "choices",
                )
                continue
            extra = set(c) - {"value", "next", *LANGUAGES}
            if extra:
                r.bad(
                    f"{where}: choice {c['value']!r} has unknown keys {', '.join(sorted(extra))}",
                    sid,
                    "choices",
                )
            if c["value"] in seen:
                r.bad(f"{where}: choice value {c['value']!r} appears twice", sid, "choices")
            seen.add(c["value"])
            label = {lang: c[lang] for lang in LANGUAGES if isinstance(c.get(lang), str)}
            choices.append(Choice(c["value"], label, c["next"]))
        out["choices"] = tuple(choices)
        if nxt:
            r.bad(f"{where}: a choice goes where each choice says; remove next", sid, "next")
    elif answer == "yes_no":
        yes = r.string(raw.get("yes"), f"{where} yes", sid, "yes")
        no = r.string(raw.get("no"), f"{where} no", sid, "no")
        if not yes or not no:
            r.bad(f"{where}: a yes_no question needs both yes and no", sid)
        out["choices"] = tuple(
            Choice(v, YES_NO_LABELS[v], t) for v, t in (("yes", yes), ("no", no)) if t
        )
    else:
        if not nxt:
            r.bad(f"{where}: dead end — a {answer} question needs next", sid)
        for bound, name in (("min", "minimum"), ("max", "maximum")):
            value = raw.get(bound)
            if value is None:
                continue
            if answer != "number" or not isinstance(value, int | float) or isinstance(value, bool):
                r.bad(f"{where}: {bound} is a number and only for number questions", sid, bound)
                continue
            number = _finite(value)
            if number is None:
                r.bad(f"{where}: {bound} must be a number from -1e15 to 1e15", sid, bound)
                continue
            out[name] = number
        low, high = out.get("minimum"), out.get("maximum")
        if low is not None and high is not None and low > high:
            r.bad(f"{where}: min is above max: no answer could be given", sid, "min")
    return out


def _finite(value: int | float) -> float | None:
    """`value` as a float an answer can be compared with (10**400 cannot be one; inf, nan and
    numbers past what an agent types are mistakes)."""
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and abs(number) <= 1e15 else None
