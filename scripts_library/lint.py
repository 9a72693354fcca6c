"""`outreach scripts lint`: every problem in a set of flows, as `file:line: message`.

Beyond the schema (schema.py): targets that do not exist, unreachable steps, dead ends, missing
translations, placeholders the patient context lacks, health information before identity is
verified or in a voicemail, and branch conditions the engine cannot evaluate.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from scripts_library.conditions import check as check_condition
from scripts_library.library import (
    CLOSING,
    FLOWS_DIR,
    OPENING,
    bundled_library,
    flow_files,
    load_flows,
)
from scripts_library.placeholders import (
    FIELDS,
    allowed,
    health_terms_in,
    placeholders_in,
    provided_by,
)
from scripts_library.schema import (
    FLOW_PREFIX,
    NEXT_SECTION,
    Flow,
    FlowError,
    Problem,
    Step,
)

# Every subject the campaign rules make must have a section in the bundled library.
REQUIRED_SUBJECTS = (
    "refill_reminder",
    "med_sync_enrollment",
    "pre_sync_check",
    "post_dispense",
    "adherence",
    "vaccine:zoster",
    "vaccine:pneumococcal",
    "vaccine:rsv",
    "vaccine:influenza",
    "dsme",
    "smoking_cessation",
)


def lint(paths: Iterable[Path] = ()) -> list[Problem]:
    paths = list(paths)
    files = flow_files(paths)
    flows, problems = load_flows(files)
    for path in paths:  # asked to check a folder that holds nothing to check
        if path.is_dir() and not flow_files([path]):
            problems.append(Problem(str(path), 1, "no .toml flow files in this folder"))
    known = dict(flows)
    if paths:  # single files may jump into bundled flows (the caregiver path, wrong number)
        try:
            for fid, f in bundled_library().flows.items():
                known.setdefault(fid, f)
        except FlowError:
            pass
    for flow in flows.values():
        problems.extend(lint_flow(flow, known))
    whole_library = not paths or any(p.resolve() == FLOWS_DIR.resolve() for p in paths)
    if whole_library and flows:
        problems.extend(_library_problems(flows, files))
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.message))


def lint_flow(flow: Flow, known: dict[str, Flow]) -> list[Problem]:
    out: list[Problem] = []

    def bad(message: str, step: Step | None = None, key: str | None = None) -> None:
        out.append(Problem(flow.path, flow.line_of(step.id if step else None, key), message))

    asked = {s.key for s in flow.steps.values() if s.type == "ask" and s.key}
    provides = provided_by(flow.subjects) if flow.part == "section" else frozenset()
    for lang in flow.languages:
        if lang not in flow.title:
            bad(f"title has no {lang!r} translation", key="title")
    for step in flow.steps.values():
        _check_targets(flow, step, known, bad)
        _check_words(flow, step, provides, asked, bad)
        for case in step.cases:
            why, calls = check_condition(case.when)
            for message in why:
                bad(f"step {step.id!r}: {message}", step, "cases")
            for fn, arg in calls:
                if fn == "answer" and arg not in asked:
                    bad(
                        f"step {step.id!r}: answer({arg!r}) — no step of this flow asks {arg!r}",
                        step,
                        "cases",
                    )
    _check_reachable(flow, bad)
    _check_auto_loops(flow, bad)
    _check_privacy(flow, known, bad)
    return out


def _check_targets(flow: Flow, step: Step, known: dict[str, Flow], bad: Bad) -> None:
    for target in step.targets():
        if target == NEXT_SECTION:
            if flow.part in ("closing", "standalone"):
                bad(
                    f"step {step.id!r}: {NEXT_SECTION} — a {flow.part} flow has no next part; "
                    "end it with an end step",
                    step,
                )
        elif target.startswith(FLOW_PREFIX):
            other = target[len(FLOW_PREFIX) :]
            if other not in known:
                bad(f"step {step.id!r}: goes to flow {other!r}, which does not exist", step)
            elif known[other].part not in ("branch",):
                bad(
                    f"step {step.id!r}: {target} — only branch flows are entered this way "
                    f"({other} is a {known[other].part})",
                    step,
                )
        elif target not in flow.steps:
            bad(f"step {step.id!r}: goes to {target!r}, which is not a step of {flow.id}", step)


def _check_words(
    flow: Flow, step: Step, provides: frozenset[str], asked: set[str], bad: Bad
) -> None:
    texts = [("text", step.text), ("hint", step.hint)]
    texts += [("choices", c.label) for c in step.choices]
    for field, words in texts:
        if not words and field != "choices":
            continue
        for lang in flow.languages:
            if lang not in words:
                what = f"choice {field}" if field == "choices" else field
                bad(f"step {step.id!r}: {what} has no {lang!r} translation", step, field)
        for text in words.values():
            for name in placeholders_in(text):
                _check_placeholder(flow, step, name, provides, field, bad)
    for field, template in step.detail.items():
        for name in placeholders_in(template):
            if name.startswith("answer."):
                if name[len("answer.") :] not in asked:
                    bad(
                        f"step {step.id!r}: detail {field} uses {{{name}}} but no step of this "
                        "flow asks that",
                        step,
                        "detail",
                    )
            else:
                _check_placeholder(flow, step, name, provides, "detail", bad)


def _check_placeholder(
    flow: Flow, step: Step, name: str, provides: frozenset[str], field: str, bad: Bad
) -> None:
    spec = FIELDS.get(name)
    if spec is None:
        bad(
            f"step {step.id!r}: {{{name}}} is not a placeholder the patient context has "
            f"(known: {', '.join(sorted(FIELDS))})",
            step,
            field,
        )
    elif spec.needs and spec.needs not in provides:
        covered = ", ".join(flow.subjects) or f"the {flow.part} flow {flow.id}"
        bad(
            f"step {step.id!r}: {{{name}}} needs a subject that provides {spec.needs!r}; "
            f"{covered} does not",
            step,
            field,
        )


def _check_reachable(flow: Flow, bad: Bad) -> None:
    seen: set[str] = set()
    todo = [flow.start]
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in flow.steps:
            continue
        seen.add(sid)
        todo.extend(t for t in flow.steps[sid].targets() if t in flow.steps)
    for step in flow.steps.values():
        if step.id not in seen:
            bad(f"step {step.id!r} is unreachable from {flow.start!r}", step)
    # A dead end: a reachable step from which the call can never finish or move on. Walked
    # backwards from the steps that finish, over the reversed edges: each step and edge once (a
    # pass over every step until nothing changed took one pass per step of a long chain).
    comes_from: dict[str, list[str]] = {}
    finishes: set[str] = set()
    for s in flow.steps.values():
        targets = s.targets()
        if s.terminal or any(t == NEXT_SECTION or t.startswith(FLOW_PREFIX) for t in targets):
            finishes.add(s.id)
        for t in targets:
            comes_from.setdefault(t, []).append(s.id)
    back = list(finishes)
    while back:
        for before in comes_from.get(back.pop(), ()):
            if before not in finishes:
                finishes.add(before)
                back.append(before)
    for sid in sorted(seen - finishes, key=lambda i: flow.steps[i].line):
        bad(f"step {sid!r} is a dead end: the call cannot finish from here", flow.steps[sid])


def _check_auto_loops(flow: Flow, bad: Bad) -> None:
    """Branch and action steps are passed through without being shown: a loop made only of them
    spins (the engine gives up after MAX_AUTO_STEPS and the agent is stuck). Each loop is named at
    the step it comes back to; a depth-first walk, each step and edge once."""
    auto = {sid: s for sid, s in flow.steps.items() if s.auto}
    state: dict[str, int] = {}  # 1: on the walk's path, 2: done
    for root in auto:
        if root in state:
            continue
        path: list[str] = [root]
        at = {root: 0}  # step -> its place on the path
        edges = [iter([t for t in auto[root].targets() if t in auto])]
        state[root] = 1
        while edges:
            nxt = next(edges[-1], None)
            if nxt is None:
                done = path.pop()
                state[done] = 2
                del at[done]
                edges.pop()
            elif state.get(nxt) == 1:
                loop = [*path[at[nxt] :], nxt][:12]  # a long loop is named by its start
                bad(
                    f"step {nxt!r}: branch and action steps loop back to it without showing "
                    f"anything ({' → '.join(loop)}); the call would spin",
                    flow.steps[nxt],
                )
            elif nxt not in state:
                state[nxt] = 1
                at[nxt] = len(path)
                path.append(nxt)
                edges.append(iter([t for t in auto[nxt].targets() if t in auto]))


def _check_privacy(flow: Flow, known: dict[str, Flow], bad: Bad) -> None:
    """Walk (step, verified) pairs from the start: words shown unverified or on voicemail may
    carry no health information; the sections are entered only verified."""
    seen: set[tuple[str, bool]] = set()
    todo = [(flow.start, flow.requires_verification)]
    while todo:
        sid, verified = todo.pop()
        if (sid, verified) in seen or sid not in flow.steps:
            continue
        seen.add((sid, verified))
        step = flow.steps[sid]
        voicemail = step.type == "voicemail"
        if voicemail or not verified:
            words = [(f"text.{k}", v) for k, v in step.text.items()]
            words += [(f"hint.{k}", v) for k, v in step.hint.items()]
            words += [("choices", w) for c in step.choices for w in c.label.values()]
            for key, text in words:
                for name in placeholders_in(text):
                    why = allowed(name, verified=verified, voicemail=voicemail)
                    if why and name in FIELDS:
                        bad(f"step {sid!r}: {why}", step, key)
                terms = health_terms_in(text)
                if terms:
                    where = "a voicemail" if voicemail else "a step before identity is verified"
                    bad(f"step {sid!r}: {where} names {', '.join(terms)}", step, key)
        for target in step.targets():
            after = verified or (step.type == "verify" and target == step.passed)
            if target == NEXT_SECTION and not after:
                bad(
                    f"step {sid!r}: goes on to the due sections (health information) before "
                    "identity is verified",
                    step,
                )
            elif target.startswith(FLOW_PREFIX):
                other = known.get(target[len(FLOW_PREFIX) :])
                if other is not None and other.requires_verification and not after:
                    bad(
                        f"step {sid!r}: enters {other.id}, which needs a verified identity, "
                        "before identity is verified",
                        step,
                    )
            else:
                todo.append((target, after))


def _library_problems(flows: dict[str, Flow], files: list[Path]) -> list[Problem]:
    first = str(files[0]) if files else "scripts_library/flows"
    out = []
    for needed, part in ((OPENING, "opening"), (CLOSING, "closing")):
        flow = flows.get(needed)
        if flow is None:
            out.append(Problem(first, 1, f"the library has no {part} flow {needed!r}"))
        elif flow.part != part:
            out.append(Problem(flow.path, flow.line_of(key="part"), f"{needed} must be a {part}"))
    sections = [f for f in flows.values() if f.part == "section"]
    for subject in REQUIRED_SUBJECTS:
        if not any(
            p == subject or subject.startswith(p + ":") or p.startswith(subject)
            for f in sections
            for p in f.subjects
        ):
            out.append(Problem(first, 1, f"no section covers the subject {subject!r}"))
    return out


class Bad(Protocol):
    def __call__(self, message: str, step: Step | None = None, key: str | None = None) -> None: ...
