"""What every fuzz test here needs: the CLI run in-process with its output caught, and a digest of
every table of a database, to see that a refused command stored nothing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, select

from console.cli import main

# What a signed-in command may write even when it then refuses: the sign-in's own audit row (and
# its clearing of a place's failures). Everything else must be as it was.
SIGN_IN_TABLES = frozenset({"audit_events", "audit_chain", "sign_in_sources"})


def examples(default: int) -> int:
    """Examples per property: a handful of seconds in the suite; OUTREACH_FUZZ_EXAMPLES=2000 for a
    long hunt."""
    return int(os.environ.get("OUTREACH_FUZZ_EXAMPLES", default))


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


def run(argv: list[str], stdin: str = "") -> Run:
    """`outreach ARGV` in this process: its exit status, stdout and stderr. Anything but an exit
    status (an exception, a traceback) fails the test that called it."""
    # As a terminal's streams are: UTF-8, stdout strict and stderr escaping what it cannot encode
    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        try:
            rc = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            rc = exit_.code if isinstance(exit_.code, int) else 1
    return Run(rc, _text_of(out), _text_of(err))


def _text_of(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", "replace")


@contextlib.contextmanager
def _stdin(text: str) -> Any:
    import sys

    before = sys.stdin
    sys.stdin = io.StringIO(text)
    try:
        yield
    finally:
        sys.stdin = before


def assert_refused_plainly(result: Run, argv: list[str]) -> None:
    """A refusal: exit 1 or 2, something said on stderr, no traceback, no internal error."""
    assert result.rc in (1, 2), (argv, result)
    assert result.err.strip(), (argv, result)
    assert "Traceback" not in result.err + result.out, (argv, result)
    assert "internal error" not in result.err, (argv, result)


_SCHEMAS: dict[str, MetaData] = {}


def digest(engine: Engine, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """Per table (but `skip`), a SHA-256 of every row in primary-key order."""
    key = engine.url.render_as_string()
    meta = _SCHEMAS.get(key)
    if meta is None:  # read once per database: its schema does not change under a test
        meta = _SCHEMAS[key] = MetaData()
        meta.reflect(engine)
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for name, table in sorted(meta.tables.items()):
            if name in skip:
                continue
            order = list(table.primary_key.columns) or list(table.columns)
            h = hashlib.sha256()
            for row in conn.execute(select(table).order_by(*order)):
                h.update(json.dumps(list(row), default=repr).encode())
            out[name] = h.hexdigest()
    return out


ADMIN, ADMIN_PASSWORD = "fuzz_admin", "fuzz-admin-password-1"
PHARMACY = ["--name", "Kansas One", "--timezone", "America/Chicago", "--caller-id", "+13165550100"]


def cheap_passwords(monkeypatch: Any) -> None:
    """Argon2 at its lowest cost for the fuzzed commands' sign-ins: what is fuzzed is the input,
    not the hash (at the product's cost each sign-in takes ~0.5 s on a loaded machine)."""
    import argon2

    from queues import auth

    if hasattr(auth, "_hasher"):
        cheap = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
        monkeypatch.setattr(auth, "_hasher", cheap)


def signed_in_site(db_url: str, monkeypatch: Any, code: str = "KS1") -> None:
    """A database with pharmacy `code` and an admin, and OUTREACH_USER/OUTREACH_PASSWORD set to
    that admin, so every command reaches past its sign-in. Works whether or not the commands ask
    for a sign-in yet: the first admin is added as the first user (no sign-in needed), with the
    pharmacy when `users add` still wants one."""
    database = ["--database", db_url]
    monkeypatch.delenv("OUTREACH_USER", raising=False)
    monkeypatch.delenv("OUTREACH_PASSWORD", raising=False)
    added = run(["pharmacy", "add", code, *PHARMACY, *database]).rc == 0
    user = ["users", "add", ADMIN, "--role", "admin", *database]
    made = run(user, stdin=ADMIN_PASSWORD + "\n")
    if made.rc != 0:
        made = run([*user, "--pharmacy", code], stdin=ADMIN_PASSWORD + "\n")
    assert made.rc == 0, made
    monkeypatch.setenv("OUTREACH_USER", ADMIN)
    monkeypatch.setenv("OUTREACH_PASSWORD", ADMIN_PASSWORD)
    if not added:
        done = run(["pharmacy", "add", code, *PHARMACY, *database])
        assert done.rc == 0, done
