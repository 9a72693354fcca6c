"""Every `outreach` subcommand fuzzed: hypothesis-chosen garbage for each argument and flag (dates,
numbers, paths to nothing, to folders and to binary files, URLs, unicode). The command either
does its work or refuses: exit 1 or 2 with one clear line on stderr, never a traceback, and the
database as it was (but the sign-in's own audit rows). Signed in as an admin through
OUTREACH_USER/OUTREACH_PASSWORD, so the garbage reaches past the sign-in where there is one."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from console.cli import build_parser
from queues.store.db import make_engine, upgrade
from tests.fuzz.helpers import (
    SIGN_IN_TABLES,
    Run,
    cheap_passwords,
    digest,
    examples,
    run,
    signed_in_site,
)

# Not fuzzed here: `console` and `serve` run until stopped (a terminal UI, a web server), `demo`
# seeds hundreds of patients (its refusals are below); `--loop` runs until stopped; `--user` is
# always the signed-in admin (a wrong one is the sign-in's tests': repeated, it slows every
# sign-in from this place, as it should).
LONG_RUNNING = {("console",), ("serve",), ("demo",)}
NOT_FUZZED = {"--loop", "--user", "-h", "--help"}


@dataclass(frozen=True)
class Argument:
    flag: str | None  # None: positional
    dest: str
    nargs: int | str | None
    choices: tuple[str, ...]
    required: bool
    kind: str  # date | int | float | path | url | text | flag


@dataclass(frozen=True)
class Command:
    words: tuple[str, ...]
    arguments: tuple[Argument, ...]


def _kind(action: argparse.Action) -> str:
    name = action.dest.lower()
    typed = getattr(action.type, "__name__", "")
    if action.nargs == 0:
        return "flag"
    if typed == "int" or name in ("patients", "seed", "port", "priority", "patient"):
        return "int"
    if typed == "float":
        return "float"
    if "date" in typed or name in ("from_", "from", "to", "now", "at", "opens", "closes"):
        return "date"
    if typed in ("Path", "PurePath") or name in (
        "file", "fills", "paths", "output", "out", "flow", "config"
    ):  # fmt: skip
        return "path"
    if name in ("source", "endpoint", "public_url", "uri", "database"):
        return "url"
    return "text"


def commands() -> list[Command]:
    """Every leaf command of the parser as it stands (a command added later is fuzzed too)."""
    found: list[Command] = []

    def walk(parser: argparse.ArgumentParser, words: tuple[str, ...]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if subs:
            for name, child in subs[0].choices.items():
                walk(child, (*words, name))
            return
        arguments = []
        for action in parser._actions:
            flags = [f for f in action.option_strings if f.startswith("--")]
            if set(action.option_strings) & NOT_FUZZED:
                continue
            arguments.append(
                Argument(
                    flags[0] if flags else None,
                    action.dest,
                    action.nargs,
                    tuple(str(c) for c in action.choices or ()),
                    bool(action.required) or not action.option_strings,
                    _kind(action),
                )
            )
        found.append(Command(words, tuple(arguments)))

    walk(build_parser(), ())
    return [c for c in found if c.words not in LONG_RUNNING and c.words[:1] not in LONG_RUNNING]


COMMANDS = commands()


# -- the garbage -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Places:
    """Files and folders a path argument may point at, all under the test's folder."""

    folder: Path

    def pool(self) -> list[str]:
        f = self.folder
        return [
            str(f / "missing.csv"),
            str(f),  # a folder
            str(f / "binary.bin"),
            str(f / "empty.csv"),
            str(f / "no" / "such" / "folder" / "out.csv"),
            "relative-out.csv",
            "/dev/null",
            str(f / "☃ snow.csv"),
        ]


# What a command line can carry: any text but NUL, and bytes that are not UTF-8 (Python keeps
# them as the surrogates U+DC80–U+DCFF).
ARGUMENT_TEXT = st.text(
    st.characters(exclude_characters="\x00", exclude_categories=["Cs"])
    | st.characters(min_codepoint=0xDC80, max_codepoint=0xDCFF),
    max_size=12,
)
TEXT = st.one_of(
    ARGUMENT_TEXT,
    st.sampled_from(
        ["", " ", "-1", "0", "abc", "☃", "\u202e", "x" * 5000, "'; DROP TABLE patients;--", "KS1",
         "all", "admin", "%s%n", "{}", "null", "../escape"]
    ),
)  # fmt: skip
POOLS: dict[str, st.SearchStrategy[str]] = {
    "date": st.sampled_from(
        ["2026-12-02", "2026-13-45", "2026-02-30", "9999-12-31T25:00", "0001-01-01", "yesterday",
         "2026-12-02T10:00:00+99:00", "12/02/2026", "10:00", "25:61", "2026-12-02T10:00:00Z",
         "9999-12-31", "9999-12-31T23:59:59-12:00", "0001-01-01T00:00:00+14:00"]
    ),
    "int": st.sampled_from(
        ["-1", "0", "1", "7", "1.5", "abc", "99999999999999999999", "٣", "1e3", "2147483648",
         "9223372036854775808", "-9223372036854775809"]
    ),
    "float": st.sampled_from(["-1", "0", "0.5", "nan", "inf", "1e400", "abc", "1e-400"]),
    "url": st.sampled_from(
        ["http://127.0.0.1:1/", "https://[::1]:1/fhir", "ftp://127.0.0.1/", "http://", "not a url",
         "sip:x@127.0.0.1:1", "sips:☃@[::1]:1", "tel:+1", "sqlite:///nowhere/x.db", "mysql://u@h/d",
         "postgresql+psycopg://u@127.0.0.1:1/x", "file:///dev/null", "http://127.0.0.1:1/\x7f"]
    ),
}  # fmt: skip


@st.composite
def invocations(draw: st.DrawFn, places: Places, url: str) -> list[str]:
    command = draw(st.sampled_from(COMMANDS))
    event(" ".join(command.words))
    argv = list(command.words)
    paths = st.sampled_from(places.pool())
    for arg in command.arguments:
        if arg.dest in ("database",):
            continue  # below: the site's database, mostly
        if arg.kind == "flag":
            if draw(st.booleans()):
                argv.append(str(arg.flag))
            continue
        if not arg.required and draw(st.integers(0, 2)) == 0:
            continue
        if arg.choices:
            value = st.sampled_from(arg.choices) | st.sampled_from(arg.choices) | TEXT
        elif arg.kind == "path":
            value = paths | TEXT
        elif arg.kind == "url" and arg.dest != "source":
            value = POOLS["url"] | TEXT
        elif arg.kind == "url":  # import fhir: a path or a URL
            value = POOLS["url"] | paths
        else:
            value = POOLS.get(arg.kind, TEXT) | TEXT
        count = draw(st.integers(1, 2)) if arg.nargs in ("+", "*") else 1
        values = [draw(value) for _ in range(count)]
        if arg.flag is None:
            argv += values
        else:
            argv += [arg.flag, *values]
    database = draw(st.sampled_from([url] * 8 + ["not a url", "sqlite:///nowhere/x.db"]))
    if any(a.dest == "database" for a in command.arguments):
        argv += ["--database", database]
    return argv


# -- the site --------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine, Places]]:
    folder = tmp_path_factory.mktemp("cli")
    url = f"sqlite:///{folder / 'outreach.db'}"
    places = Places(folder / "places")
    places.folder.mkdir()
    (places.folder / "binary.bin").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 64)
    (places.folder / "empty.csv").write_text("")
    with pytest.MonkeyPatch.context() as monkeypatch:
        cheap_passwords(monkeypatch)
        engine = make_engine(url)
        upgrade(engine)
        signed_in_site(url, monkeypatch)
        monkeypatch.chdir(places.folder)  # whatever a command writes by a relative name lands here
        monkeypatch.delenv("OUTREACH_CONFIG", raising=False)
        monkeypatch.delenv("OUTREACH_DATABASE_URL", raising=False)
        yield url, engine, places
    engine.dispose()


def short(argv: list[str], result: Run | None = None) -> str:
    """The command line (and what it said), each piece cut to a readable length."""
    words = " ".join(repr(a[:60]) for a in argv)
    return words if result is None else f"{words} -> {result.rc}: {result.err[:600]!r}"


def assert_clear(result: Run, argv: list[str]) -> None:
    """Worked, or refused in one clear line; never a traceback or an internal error."""
    said = result.out + result.err
    assert "Traceback" not in said, short(argv, result)
    assert "internal error" not in result.err, short(argv, result)
    assert result.rc in (0, 1, 2), short(argv, result)
    if result.rc == 0:
        return
    lines = result.err.rstrip("\n").split("\n")  # a terminal breaks lines at \n alone
    assert lines, short(argv, result)
    # `outreach…: why`; a flow's problems are `FILE:LINE: why`, and lint ends with their count
    first = lines[0]
    assert re.match(r"outreach|.+:\d+: \S|\d+ problems? in ", first), short(argv, result)


# Each example is a command run in this process (~0.1 s); shrinking a failure is left out so a
# failure is reported within the test timeout, as generated (one short command line).
FUZZ = settings(
    max_examples=examples(90),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(data=st.data())
def test_every_command_refuses_garbage_plainly_and_stores_nothing(
    site: tuple[str, Engine, Places], data: st.DataObject
) -> None:
    url, engine, places = site
    argv = data.draw(invocations(places, url))
    before = digest(engine, SIGN_IN_TABLES)
    result = run(argv)
    assert_clear(result, argv)
    if result.rc != 0:
        assert digest(engine, SIGN_IN_TABLES) == before, short(argv, result)
    event(f"exit {result.rc}")


@pytest.fixture
def pg_site(pg_url: str, site: tuple[str, Engine, Places]) -> Iterator[tuple[str, Engine]]:
    """The same site on PostgreSQL (its INTEGER and VARCHAR(n) refuse what SQLite keeps)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        cheap_passwords(monkeypatch)
        engine = make_engine(pg_url)
        try:
            upgrade(engine)
            signed_in_site(pg_url, monkeypatch)
            yield pg_url, engine
        finally:
            engine.dispose()


@settings(
    max_examples=examples(25),
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_on_postgresql_every_command_refuses_garbage_plainly_and_stores_nothing(
    site: tuple[str, Engine, Places], pg_site: tuple[str, Engine], data: st.DataObject
) -> None:
    url, engine = pg_site
    argv = data.draw(invocations(site[2], url))
    before = digest(engine, SIGN_IN_TABLES)
    result = run(argv)
    assert_clear(result, argv)
    if result.rc != 0:
        assert digest(engine, SIGN_IN_TABLES) == before, short(argv, result)


def test_every_command_is_fuzzed() -> None:
    """The commands above are the parser's, less the long-running ones (a new one is in)."""
    words = {c.words for c in COMMANDS}
    for expected in (("import", "csv"), ("scripts", "lint"), ("queue", "explain"), ("pdc",)):
        assert expected in words
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize(
    "argv",
    [
        ["demo", "--seed-only", "--patients", "0"],
        ["demo", "--seed-only", "--patients", "abc"],
        ["demo", "--seed-only", "--now", "yesterday"],
        ["serve", "--port", "abc"],
        ["serve", "--port", "99999"],
        ["serve", "--port", "-1"],
    ],
)
def test_the_long_running_commands_refuse_bad_arguments_before_starting(
    site: tuple[str, Engine, Places], argv: list[str]
) -> None:
    url, engine, _places = site
    before = digest(engine, SIGN_IN_TABLES)
    result = run([*argv, "--database", url])
    assert result.rc in (1, 2), result
    assert_clear(result, argv)
    assert digest(engine, SIGN_IN_TABLES) == before


BIG = ("3000000000", "9223372036854775808")  # past PostgreSQL's INTEGER; past SQLite's too
OUT_OF_RANGE = [
    ["queue", "explain", "A1", "--now", "9999-12-31T23:59:59-12:00"],  # UTC: year 10000
    ["queue", "build", "--now", "9999-12-31T23:59:59-12:00"],
    ["queue", "explain", BIG[1]],
    ["campaigns", "set", BIG[1], "--weight", "1"],
    ["scripts", "try", "refill_reminder", "--patient", BIG[1]],
    ["pharmacy", "set", "KS1", "--priority", BIG[1]],
]


@pytest.mark.parametrize("argv", OUT_OF_RANGE)
def test_an_id_past_what_the_database_stores_is_refused_plainly(
    site: tuple[str, Engine, Places], argv: list[str]
) -> None:
    url, engine, _places = site
    before = digest(engine, SIGN_IN_TABLES)
    result = run([*argv, "--database", url])
    assert_clear(result, argv)
    assert result.rc in (1, 2), result
    assert digest(engine, SIGN_IN_TABLES) == before


@pytest.mark.parametrize(
    "argv",
    [
        ["scripts", "lint", "x" * 5000],
        ["import", "csv", "patients", "x" * 5000, "--pharmacy", "KS1"],
        ["pdc", "--fills", "x" * 5000, "--from", "2026-01-01", "--to", "2026-02-01"],
    ],
)
def test_a_path_the_system_cannot_take_is_named_in_one_line(
    site: tuple[str, Engine, Places], argv: list[str]
) -> None:
    """A file name too long for the file system: one line, not a traceback."""
    url, engine, _places = site
    database = ["--database", url] if argv[0] != "scripts" else []
    before = digest(engine, SIGN_IN_TABLES)
    result = run([*argv, *database])
    assert_clear(result, argv)
    assert result.rc == 1 and len(result.err.rstrip("\n").split("\n")) <= 2, short(argv, result)
    assert digest(engine, SIGN_IN_TABLES) == before


def test_on_postgresql_an_id_past_its_integer_or_a_text_past_its_column_is_refused_plainly(
    pg_url: str,
) -> None:
    """PostgreSQL's INTEGER ends at 2**31 - 1 (SQLite's at 2**63 - 1), and its VARCHAR(n) at n
    characters (SQLite keeps any length)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        cheap_passwords(monkeypatch)
        engine = make_engine(pg_url)
        try:
            upgrade(engine)
            signed_in_site(pg_url, monkeypatch)
            before = digest(engine, SIGN_IN_TABLES)
            for argv in (
                ["queue", "explain", BIG[0]],
                ["pharmacy", "set", "KS1", "--priority", BIG[0]],
            ):
                result = run([*argv, "--database", pg_url])
                assert_clear(result, argv)
                assert result.rc == 1 and "too large for the database" in result.err, result
            long = "x" * 5000
            for argv in (
                ["pharmacy", "set", "KS1", "--endpoint", f"https://{long}.example/"],
                ["users", "add", "bob", "--role", "admin", "--display-name", long],
            ):
                result = run([*argv, "--database", pg_url], stdin="bob-password-123\n")
                assert_clear(result, argv)
                assert result.rc == 1 and "longer than the database keeps" in result.err, result
            assert digest(engine, SIGN_IN_TABLES) == before
        finally:
            engine.dispose()


def smoke_argv(command: Command, places: Places, url: str) -> list[str]:
    """One refusal per command, past argparse where it can be: each argument a path to nothing
    or a word that is no date, number, code or user (a choice: its first)."""
    argv = list(command.words)
    for arg in command.arguments:
        if arg.kind == "flag" or (not arg.required and arg.dest != "database"):
            continue
        if arg.dest == "database":
            value = url
        elif arg.choices:
            value = arg.choices[0]
        elif arg.kind == "path":
            value = str(places.folder / "missing.csv")
        elif arg.kind == "url":
            value = "http://127.0.0.1:1/"
        else:
            value = "☃"
        argv += [value] if arg.flag is None else [arg.flag, value]
    return argv


# One process per kind of ending: each start costs 3 to 6 s on a loaded machine, so the in-process
# fuzz above covers every command and these show what reaches a real terminal.
SMOKED = (("pdc",), ("import", "csv"))


def test_no_traceback_reaches_the_terminal(site: tuple[str, Engine, Places]) -> None:
    """The installed entry point, in its own processes: an argparse mistake (exit 2) and a refusal
    past the sign-in (exit 1), each said on stderr in one line."""
    url, _engine, places = site
    outreach = str(Path(sys.executable).with_name("outreach"))
    argvs = [smoke_argv(c, places, url) for c in COMMANDS if c.words in SMOKED]
    assert len(argvs) == len(SMOKED)

    def call(argv: list[str]) -> tuple[list[str], subprocess.CompletedProcess[str]]:
        done = subprocess.run(
            [outreach, *argv],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            cwd=places.folder,
            env=os.environ.copy(),
            timeout=120,
            check=False,
        )
        return argv, done

    with ThreadPoolExecutor(max_workers=len(argvs)) as pool:
        results = list(pool.map(call, argvs))
    for argv, done in results:
        assert "Traceback" not in done.stdout + done.stderr, (argv, done.stderr[-2000:])
        assert done.returncode in (1, 2), (argv, done)
        lines = done.stderr.rstrip("\n").split("\n")
        assert len(lines) == 1 and lines[0].startswith("outreach"), (argv, done.stderr)


def test_an_unforeseen_failure_is_one_line_and_its_frames_go_to_the_log(
    site: tuple[str, Engine, Places],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The last line of defence: a bug (here `pdc` made to fail) is one line on stderr and exit 1;
    the log gets where it happened and its type, never its message (it may hold values)."""
    import console.cli

    values = "Ann Able 1950-03-04"  # what a message might carry (the log shows code lines)

    def broken(args: argparse.Namespace) -> int:
        raise RuntimeError(values)

    def parser_with_a_bug() -> argparse.ArgumentParser:
        parser = build_parser()
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                action.choices["pdc"].set_defaults(func=broken)
        return parser

    monkeypatch.setattr(console.cli, "build_parser", parser_with_a_bug)
    fills = str(site[2].folder / "empty.csv")
    result = run(["pdc", "--fills", fills, "--from", "2026-01-01", "--to", "2026-02-01"])
    assert result.rc == 1, result
    lines = result.err.rstrip("\n").split("\n")
    assert len(lines) == 1 and lines[0].startswith("outreach: internal error (RuntimeError at ")
    assert "Ann Able" not in result.err
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "RuntimeError" in logged and "test_cli_input.py" in logged
    assert "Ann Able" not in logged and "1950" not in logged
