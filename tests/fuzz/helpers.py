"""What every fuzz test here needs: the CLI run in-process with its output caught, and a digest of
every table of a database, to see that a refused command stored nothing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, MetaData, select

from console.cli import main

# What a signed-in command may write even when it then refuses: the sign-in's own audit row (and
# its clearing of a place's failures). Everything else must be as it was.
SIGN_IN_TABLES = frozenset({"audit_events", "audit_chain", "sign_in_sources"})


@dataclass(frozen=True)
class Run:
    rc: int
    out: str
    err: str


def run(argv: list[str], stdin: str = "") -> Run:
    """`outreach ARGV` in this process: its exit status, stdout and stderr. Anything but an exit
    status (an exception, a traceback) fails the test that called it."""
    out, err = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
        _stdin(stdin),
    ):
        try:
            rc = main(argv)
        except SystemExit as exit_:  # argparse's usage errors
            rc = exit_.code if isinstance(exit_.code, int) else 1
    return Run(rc, out.getvalue(), err.getvalue())


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


def digest(engine: Engine, skip: frozenset[str] = frozenset()) -> dict[str, str]:
    """Per table (but `skip`), a SHA-256 of every row in primary-key order."""
    meta = MetaData()
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
