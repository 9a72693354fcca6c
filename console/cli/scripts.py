"""`outreach scripts lint|list|try`: check the call flows, list them, walk one in the terminal."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any, TextIO

from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in
from queues.errors import OutreachError
from scripts_library.engine import AnswerError, ScriptedCall, ScriptError
from scripts_library.facts import SAMPLE_PATIENT, DueItem, PatientFacts
from scripts_library.library import CLOSING, OPENING, CallPlan, Library, Segment
from scripts_library.lint import lint
from scripts_library.placeholders import PrivacyViolation
from scripts_library.schema import Flow, FlowError, load_flow


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    scripts = sub.add_parser("scripts", help="call flows: lint, list, try")
    scripts_sub = scripts.add_subparsers(dest="scripts_command", metavar="ACTION", required=True)
    lint_cmd = scripts_sub.add_parser(
        "lint",
        help="check flows (default: the whole bundled library)",
        description="Check every flow: schema, unreachable steps, dead ends, missing "
        "translations, placeholders the patient context lacks, health information before "
        "identity verification or in a voicemail. Prints file:line: message; exit status 1 "
        "if there is any problem.",
    )
    lint_cmd.add_argument("paths", nargs="*", metavar="PATH", help="flow files or directories")
    lint_cmd.set_defaults(func=cmd_lint)
    list_cmd = scripts_sub.add_parser("list", help="each flow's id, subjects and languages")
    list_cmd.add_argument("--json", action="store_true", help="one JSON array on the last line")
    list_cmd.set_defaults(func=cmd_list)
    try_cmd = scripts_sub.add_parser(
        "try",
        parents=[common],
        help="walk a flow in the terminal, for the script author",
        description="Walk FLOW (an id or a .toml file) step by step. A section is tried inside a "
        "whole call: greeting and identity check, the section, the close. Keys: Enter goes on, "
        "a number picks an answer, text answers a question, b goes back, l switches language, "
        "q quits. Without --patient a synthetic sample patient is used (no sign-in). With "
        "--patient ID a patient from the database is shown: a signed-in user's view, of their "
        "own pharmacies' patients only (an admin: any pharmacy), audited as them. " + SIGN_IN_HELP,
    )
    try_cmd.add_argument("flow", metavar="FLOW")
    try_cmd.add_argument("--lang", choices=("en", "es"), help="language (default: the patient's)")
    try_cmd.add_argument(
        "--patient",
        type=int,
        metavar="ID",
        help="a patient of your pharmacies from the database (signed in; an audited view)",
    )
    add_sign_in_arguments(try_cmd)
    try_cmd.set_defaults(func=cmd_try)


def _shown(path: str) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return path


def cmd_lint(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.paths]
    missing = [p for p in paths if not p.exists()]
    for p in missing:
        print(f"{p}:1: no such file or directory", file=sys.stderr)
    existing = [p for p in paths if p.exists()]
    problems = lint(existing) if existing or not paths else []
    for problem in problems:
        print(f"{_shown(problem.file)}:{problem.line}: {problem.message}")
    checked = "the bundled library" if not paths else ", ".join(str(p) for p in paths)
    count = len(problems) + len(missing)
    print(f"{count} problem{'s' if count != 1 else ''} in {checked}", file=sys.stderr)
    return 1 if count else 0


def cmd_list(args: argparse.Namespace) -> int:
    try:
        library = Library.load()
    except FlowError as exc:
        return flow_error_exit(exc)
    rows = [
        {
            "id": f.id,
            "part": f.part,
            "title": f.title.get("en", f.id),
            "subjects": list(f.subjects),
            "languages": list(f.languages),
        }
        for f in sorted(library.flows.values(), key=lambda f: (_part_rank(f), f.order, f.id))
    ]
    print(f"{'ID':<24}{'PART':<12}{'LANGUAGES':<11}SUBJECTS")
    for r in rows:
        subjects = ", ".join(r["subjects"]) or "—"
        print(f"{r['id']:<24}{r['part']:<12}{'/'.join(r['languages']):<11}{subjects}")
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    return 0


def _part_rank(flow: Flow) -> int:
    return ("opening", "section", "closing", "branch", "standalone").index(flow.part)


# -- try ---------------------------------------------------------------------------------------
def cmd_try(args: argparse.Namespace) -> int:
    try:
        library, flow = _library_with(args.flow)
    except FlowError as exc:
        return flow_error_exit(exc)
    facts, items = _patient(args) if args.patient is not None else (SAMPLE_PATIENT, ())
    plan = _plan_for(library, flow, facts, items)
    try:
        call = ScriptedCall.start(library, facts, (), language=args.lang, plan=plan)
        return walk(call, sys.stdin, sys.stdout)
    except (PrivacyViolation, ScriptError) as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1


def _library_with(name: str) -> tuple[Library, Flow]:
    """The bundled library, with FLOW's file in place of the bundled flow of the same id."""
    library = Library.load()
    path = Path(name)
    if name.endswith(".toml") or path.exists():
        flow = load_flow(path)
        flows = dict(library.flows)
        flows[flow.id] = flow
        return Library(flows), flow
    if name not in library.flows:
        raise OutreachError(f"no flow {name!r}; `outreach scripts list` shows them")
    return library, library.flows[name]


def _plan_for(
    library: Library, flow: Flow, facts: PatientFacts, items: tuple[DueItem, ...]
) -> CallPlan:
    if flow.part == "standalone":
        return CallPlan((Segment(flow.id),))
    if flow.part == "section":
        mine = [i for i in items if (s := library.section_for(i)) and s.id == flow.id]
        item = mine[0] if mine else sample_item(flow, facts)
        return CallPlan(
            (Segment(OPENING), Segment(flow.id, item, item.subject), Segment(CLOSING, key="close"))
        )
    if flow.part == "closing" or flow.id == CLOSING:
        return CallPlan((Segment(OPENING), Segment(flow.id, key="close")))
    # the opening, and branch flows (entered from the opening)
    return (
        library.plan(items)
        if flow.id == OPENING and items
        else CallPlan((Segment(OPENING), Segment(CLOSING, key="close")))
    )


def sample_item(flow: Flow, facts: PatientFacts) -> DueItem:
    """A due subject of the kind the section covers, on the sample patient's data."""
    pattern = flow.subjects[0]
    today = date.today()
    med = facts.medications[0] if facts.medications else None
    rx = med.prescription_id if med else None
    if pattern == "refill_reminder":
        run_out = med.run_out if med and med.run_out else today
        return DueItem(pattern, f"rx:{rx}:{run_out.isoformat()}", prescription_id=rx)
    if pattern == "adherence":
        return DueItem(pattern, f"pdc:STATIN:{today.year}", parts={"pdc": 0.71})
    if pattern == "pre_sync_check":
        return DueItem(pattern, f"presync:{(today + timedelta(days=5)).isoformat()}")
    if pattern == "post_dispense":
        word = med.drug_name.split()[0].lower() if med else "drug"
        return DueItem(pattern, f"newstart:{word}:{today.isoformat()}")
    if pattern.startswith("vaccine:"):
        return DueItem("vaccine", pattern)
    if pattern == "dsme":
        return DueItem("diabetes_education", "dsme")
    return DueItem(pattern, pattern)


def _patient(args: argparse.Namespace) -> tuple[PatientFacts, tuple[DueItem, ...]]:
    from console.cli.core import services_for
    from queues.access import acting_scope
    from queues.context import load_patient_context
    from queues.store.db import transaction
    from scripts_library.facts import facts_from_context, items_from_context

    services = services_for(args)
    try:
        user = sign_in(args, services)
        with transaction(services.sessions) as session:
            scope = acting_scope(session, user)
            ctx = load_patient_context(  # NotAllowed for a patient of another pharmacy
                session,
                args.patient,
                user_id=user.id,
                pharmacy_ids=scope.pharmacy_ids,
                today=services.clock.now().date(),
            )
            facts = facts_from_context(ctx, user.display_name)
            items = items_from_context(ctx)
    finally:
        services.close()
    return facts, items


def walk(call: ScriptedCall, stdin: TextIO, out: TextIO) -> int:
    """The terminal walker: one step at a time until the end of the script or `q`."""

    def say(text: str = "") -> None:
        print(text, file=out, flush=True)

    def ask(prompt: str) -> str | None:
        out.write(prompt)
        out.flush()
        line = stdin.readline()
        return None if not line else line.rstrip("\n")

    while True:
        view = call.view()
        say(
            f"\n[{view.section}/{view.sections}] {view.flow_title} · {view.step_id} ({view.type})"
            f" · {view.language}{' · verified' if view.verified else ''}"
        )
        say(f"  {view.text}")
        if view.hint:
            say(f"  ({view.hint})")
        for c in view.choices:
            say(f"  {c.number}. {c.label}{'  ← answered' if c.chosen else ''}")
        if view.finished:
            say(f"\nEnd of script — suggested disposition: {view.disposition}")
            break
        if view.type == "verify":
            name = ask("  name> ")
            born = ask("  birth date> ") if name is not None else None
            if name is None or born is None:
                break
            if name.strip().lower() in ("b", "q"):
                if name.strip().lower() == "q":
                    break
                call.back()
                continue
            try:
                say(f"  → {call.verify(name, born).message}")
            except AnswerError as exc:
                say(f"  ! {exc}")
            continue
        line = ask("> ")
        if line is None or line.strip() == "q":
            break
        entry = line.strip()
        try:
            if entry == "b":
                if not call.back():
                    say("  ! this is the first step")
            elif entry.startswith("l"):
                lang = entry[1:].strip() or ("es" if view.language == "en" else "en")
                call.switch_language(lang)
            elif entry == "":
                if not call.forward():
                    say("  ! answer first")
            elif entry.isdigit() and view.choices:
                call.choose(int(entry))
            else:
                call.answer(entry)
        except AnswerError as exc:
            say(f"  ! {exc}")
    actions = [dataclasses.asdict(a) for a in call.actions()]
    say("Actions: " + (json.dumps(actions, ensure_ascii=False) if actions else "none"))
    say("Answers: " + json.dumps(call.record(), ensure_ascii=False))
    return 0


def flow_error_exit(exc: FlowError) -> int:
    for problem in exc.problems:
        print(f"{_shown(problem.file)}:{problem.line}: {problem.message}", file=sys.stderr)
    return 1
