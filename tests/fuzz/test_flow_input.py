"""Call-flow files fuzzed: whatever a flow file holds — a good flow with mutated values, wrong
types, missing keys, loops, unknown step kinds, bytes that are not UTF-8 or not TOML, a folder —
`outreach scripts lint` names each problem as `file:line: why` and exits 1; `scripts try` refuses
plainly. Never a traceback."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from scripts_library.library import FLOWS_DIR
from scripts_library.schema import STEP_TYPES
from tests.fuzz.helpers import Run, examples, run
from tests.scripts_library.helpers import SECTION

OUTREACH = str(Path(sys.executable).with_name("outreach"))  # the installed entry point
FUZZ = settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SEEDS: dict[str, dict[str, Any]] = {
    "kinds": tomllib.loads(textwrap.dedent(SECTION)),
    "call_opening": tomllib.loads((FLOWS_DIR / "call_opening.toml").read_text()),
    "refill_reminder": tomllib.loads((FLOWS_DIR / "refill_reminder.toml").read_text()),
}


# -- writing TOML (the standard library only reads it) -----------------------------------------
def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return (
            "nan"
            if math.isnan(value)
            else ("inf" if value > 0 else "-inf")
            if math.isinf(value)
            else repr(value)
        )
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
        )
    return json.dumps(value)


def to_toml(flow: dict[str, Any]) -> str:
    """The top-level keys, then each step as a `[steps."id"]` table (inline when a step is not a
    table, which a header cannot say)."""
    steps = flow.get("steps")
    as_tables = isinstance(steps, dict) and all(isinstance(v, dict) for v in steps.values())
    lines = [
        f"{json.dumps(k)} = {toml_value(v)}"
        for k, v in flow.items()
        if not (k == "steps" and as_tables)
    ]
    if as_tables:
        assert isinstance(steps, dict)
        for sid, step in steps.items():
            lines.append(f"\n[steps.{json.dumps(sid)}]")
            lines += [f"{json.dumps(k)} = {toml_value(v)}" for k, v in step.items()]
    return "\n".join(lines) + "\n"


# -- what the fuzz throws at a flow ------------------------------------------------------------
TARGETS = st.sampled_from(
    ["@next", "@flow:", "@flow:nope", "@flow:caregiver_on_the_line", "@flow:call_closing", "intro"]
)
SCALARS = (
    st.text(max_size=30)
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.booleans()
    | st.dates()
    | TARGETS
    | st.sampled_from([*STEP_TYPES, "jump", "choice", "number", "completed", "x" * 5000])
    | st.sampled_from(["age >= 65", "not " * 30 + "verified", "__import__('os')", "a\x00b"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)


def paths_of(data: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [here] if here else []
    if isinstance(data, dict):
        for k, v in data.items():
            out += paths_of(v, (*here, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            out += paths_of(v, (*here, i))
    return out


@st.composite
def mutated_flows(draw: st.DrawFn) -> dict[str, Any]:
    """A good flow with a few values replaced, keys removed or added, steps made to loop."""
    flow: dict[str, Any] = json.loads(
        json.dumps(SEEDS[draw(st.sampled_from(sorted(SEEDS)))], default=str)
    )
    for _ in range(draw(st.integers(1, 4))):
        paths = paths_of(flow)
        path = draw(st.sampled_from(paths))
        parent: Any = flow
        for part in path[:-1]:
            parent = parent[part]
        key = path[-1]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "loop"]))
        if op == "replace":
            parent[key] = draw(VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.text(max_size=10))] = draw(VALUES)
        elif op == "loop" and isinstance(flow.get("steps"), dict) and flow["steps"]:
            # an auto step that goes back to where it came from
            sid = draw(st.sampled_from(sorted(flow["steps"])))
            flow["steps"][sid + "_back"] = {"type": "action", "action": "callback", "next": sid}
            if isinstance(flow["steps"][sid], dict):
                flow["steps"][sid]["next"] = sid + "_back"
    return flow


@st.composite
def graphs(draw: st.DrawFn) -> dict[str, Any]:
    """A flow of random steps of every kind, pointing at each other at random (loops included)."""
    n = draw(st.integers(1, 6))
    ids = [f"s{i}" for i in range(n)]
    target = st.sampled_from([*ids, *ids, *ids, "@next", "@next", "missing"])
    words = st.fixed_dictionaries(
        {"en": st.sampled_from(["Hi", "{rx.drug}"]), "es": st.just("Hola")}
    )
    steps: dict[str, Any] = {}
    for sid in ids:
        kind = draw(st.sampled_from([*STEP_TYPES, "say", "branch", "action"]))
        step: dict[str, Any] = {"type": kind}
        if kind in ("say", "ask", "verify", "voicemail", "end"):
            step["text"] = draw(words)
        if kind in ("say", "action"):
            step["next"] = draw(target)
        if kind == "ask":
            step.update(key="k" + sid, answer=draw(st.sampled_from(["yes_no", "number", "text"])))
            step.update(yes=draw(target), no=draw(target)) if step["answer"] == "yes_no" else (
                step.update(next=draw(target))
            )
        if kind == "verify":
            step.update(passed=draw(target), failed=draw(target))
        if kind == "branch":
            when = st.sampled_from(["age >= 65", "verified", "answer('ks0') == 'yes'", "true"])
            step["cases"] = [{"when": draw(when), "next": draw(target)}]
            step["else"] = draw(target)
        if kind == "action":
            step["action"] = "callback"
        if kind in ("end", "voicemail"):
            step["disposition"] = "completed" if kind == "end" else "voicemail"
        steps[sid] = step
    return {
        "id": "fuzzed",
        "part": "section",
        "title": {"en": "Fuzzed", "es": "Fuzz"},
        "languages": ["en", "es"],
        "subjects": ["refill_reminder"],
        "start": "s0",
        "steps": steps,
    }


# -- what must hold ------------------------------------------------------------------------------
def lint_file(path: Path) -> Run:
    result = run(["scripts", "lint", str(path)])
    assert "Traceback" not in result.out + result.err, result
    assert result.rc in (0, 1), result
    shown = os.path.relpath(path)
    for line in result.out.splitlines():
        assert re.match(rf"{re.escape(shown)}(/[^:]+)?:\d+: \S", line), line
        assert line.isprintable(), line  # nothing the file holds reaches the terminal raw
        assert len(line) < 600, line
    problems = len(result.out.splitlines())
    assert (result.rc == 1) == (problems > 0), result
    assert result.err.rstrip().endswith(f"in {path}"), result.err
    return result


def try_file(path: Path, answers: str = "") -> Run:
    """`scripts try FILE` on the sample patient: walks or refuses, never a traceback."""
    result = run(["scripts", "try", str(path)], stdin=answers)
    assert "Traceback" not in result.out + result.err, result
    assert result.rc in (0, 1), result
    if result.rc == 1:
        assert result.err.strip(), result
    return result


@FUZZ
@given(flow=mutated_flows())
def test_a_mutated_flow_is_linted_to_file_and_line(tmp_path: Path, flow: dict[str, Any]) -> None:
    path = tmp_path / "fuzzed.toml"
    path.write_text(to_toml(flow), encoding="utf-8", errors="surrogatepass")
    if lint_file(path).rc == 0:
        event(f"lint clean; try exit {try_file(path, chr(10).join(['1', '', ''])).rc}")


@FUZZ
@given(flow=graphs(), answers=st.lists(st.sampled_from(["", "1", "2", "b", "yes", "3", "x"])))
def test_a_flow_that_lints_clean_can_be_walked(
    tmp_path: Path, flow: dict[str, Any], answers: list[str]
) -> None:
    """Random step graphs, loops included: what lint passes, the engine walks without spinning."""
    path = tmp_path / "graph.toml"
    path.write_text(to_toml(flow), encoding="utf-8")
    if lint_file(path).rc == 0:
        walked = try_file(path, "\n".join(["Pat Sample", "1950-01-01", *answers, "q"]) + "\n")
        assert "branch/action steps in a row" not in walked.err
        event(f"lint clean; try exit {walked.rc}")


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.integers(0, 10_000), st.binary(max_size=4)), min_size=1, max_size=6
    ),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "cp1252"]),
)
def test_mangled_bytes_are_named_by_file_and_line(
    tmp_path: Path, edits: list[tuple[int, bytes]], encoding: str
) -> None:
    raw = bytearray(
        textwrap.dedent(SECTION)
        .replace("Sobre", "Acerca del tratamiento")
        .encode(encoding, "replace")
    )
    for at, data in edits:
        at %= len(raw) + 1
        raw[at : at + len(data) // 2] = data
    path = tmp_path / "mangled.toml"
    path.write_bytes(bytes(raw))
    lint_file(path)


def test_folders_empty_files_missing_paths_and_huge_files_are_named(tmp_path: Path) -> None:
    folder = tmp_path / "flows"
    (folder / "not_a_file.toml").mkdir(parents=True)  # a folder named like a flow
    (folder / "empty.toml").write_text("")
    (folder / "deep.toml").write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    (folder / "loop").mkdir()
    (folder / "loop" / "self").symlink_to(folder / "loop")
    (folder / "dangling.toml").symlink_to(tmp_path / "nowhere.toml")
    result = lint_file(folder)
    assert result.rc == 1
    said = result.out
    assert "empty.toml:1: id: every flow needs an id" in said
    assert "deep.toml:1: not valid TOML: nested too deeply" in said
    assert "dangling.toml:1: cannot read the file: No such file or directory" in said
    assert "not_a_file.toml" not in said
    empty = tmp_path / "nothing"
    empty.mkdir()
    assert "nothing:1: no .toml flow files in this folder" in lint_file(empty).out
    # A folder given as the flow itself, and a path to nothing.
    assert "is a directory, not a flow file" in try_file(folder / "not_a_file.toml").err
    gone = run(["scripts", "lint", str(tmp_path / "gone.toml")])
    assert gone.rc == 1 and "gone.toml:1: no such file or directory" in gone.err
    # 2 MB of words in one step, and 3,000 steps: checked, not choked on.
    big = tmp_path / "big.toml"
    big.write_text(textwrap.dedent(SECTION).replace("Sent.", "Sent. " * 350_000))
    lint_file(big)
    chain = "\n".join(
        f'[steps.s{i}]\ntype = "say"\ntext = {{ en = "a", es = "b" }}\nnext = "s{i + 1}"'
        for i in range(3000)
    )
    long_flow = tmp_path / "long.toml"
    long_flow.write_text(
        'id = "long"\npart = "branch"\ntitle = { en = "L", es = "L" }\nlanguages = ["en", "es"]\n'
        f'start = "s0"\n{chain}\n[steps.s3000]\ntype = "end"\ntext = {{ en = "a", es = "b" }}\n'
        'disposition = "completed"\n'
    )
    assert lint_file(long_flow).rc == 0


def test_a_loop_of_steps_never_shown_is_named(tmp_path: Path) -> None:
    source = textwrap.dedent(SECTION).replace('next = "done"', 'next = "route"')
    path = tmp_path / "spin.toml"
    path.write_text(source)
    result = lint_file(path)
    line = next(n for n, text in enumerate(source.splitlines(), 1) if text == "[steps.route]")
    assert f"spin.toml:{line}: step 'route': branch and action steps loop back to it" in result.out


@pytest.mark.parametrize(
    ("source", "says"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\xff", "mangled.toml:1: not UTF-8 text (byte 0x89 at line 1)"),
        ('id = "x"\n\ntitle = "caf\xe9"\n'.encode("latin-1"), "mangled.toml:3: not UTF-8 text"),
        (b'id = "x"\n[steps.a\n', "mangled.toml:2: not valid TOML"),
    ],
)
def test_the_terminal_shows_one_line_per_problem_and_no_traceback(
    tmp_path: Path, source: bytes, says: str
) -> None:
    """The real entry point, in its own process: what reaches the terminal."""
    path = tmp_path / "mangled.toml"
    path.write_bytes(source)
    done = subprocess.run(
        [OUTREACH, "scripts", "lint", str(path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stdout.startswith(says), done.stdout
