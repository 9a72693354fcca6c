"""`outreach ARGS` run in this process through `console.cli.main`, for CLI tests that check what a
command prints and stores: the same parser, commands and error handling as `python -m console`
without a fresh interpreter (~1 s of imports) per call. A test that needs a real process (exit
status through the shell, a broken pipe, signals, two processes at once) uses subprocess instead.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest

# Variables a developer's shell may hold that would change what a command does.
CLEARED = ("OUTREACH_DATABASE_URL", "OUTREACH_CONFIG", "OUTREACH_USER", "OUTREACH_PASSWORD")


def run(
    *args: str,
    stdin: str = "",
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    clear: Sequence[str] = CLEARED,
) -> subprocess.CompletedProcess[str]:
    """`outreach ARGS` with `stdin` as its input, the environment less `clear` plus `env`, in `cwd`:
    its exit status, stdout and stderr, as `subprocess.run(..., capture_output=True)` gives them.
    An exception out of `main` (a traceback a user would see) fails the calling test."""
    from console.cli import main

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="strict")
    err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8", errors="backslashreplace")
    with (
        _environment(clear, env or {}),
        _process_state(cwd),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        before_stdin = sys.stdin
        sys.stdin = io.StringIO(stdin)
        try:
            rc = main(list(args))
        except SystemExit as exit_:  # argparse: --help (0) and usage errors (2)
            code = exit_.code
            rc = code if isinstance(code, int) else (0 if code is None else 1)
        finally:
            sys.stdin = before_stdin
    return subprocess.CompletedProcess(["outreach", *args], rc, _text_of(out), _text_of(err))


def _text_of(stream: io.TextIOWrapper) -> str:
    stream.flush()
    buffer = stream.buffer
    assert isinstance(buffer, io.BytesIO)
    return buffer.getvalue().decode("utf-8", "replace")


@contextlib.contextmanager
def _environment(clear: Sequence[str], env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    for name in clear:
        os.environ.pop(name, None)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _process_state(cwd: Path | None) -> Iterator[None]:
    """What `main` changes for the whole process, put back afterwards: the working folder, the
    umask (private_files) and the root logger (setup_logging swaps its handlers for the log file)."""
    here = os.getcwd()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    umask = os.umask(0o022)
    os.umask(umask)
    if cwd is not None:
        os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(here)
        os.umask(umask)
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)


def cheap_passwords(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 at its lowest cost for a test whose point is not the hash (the product's parameters
    are checked in tests/queues/test_auth.py): each hash and sign-in at the product's cost takes
    ~0.5 s, seconds on a loaded machine. Commands run in this process (run) use it too."""
    import argon2

    from queues import auth

    cheap = argon2.PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", cheap)
