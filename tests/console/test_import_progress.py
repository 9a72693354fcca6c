"""`outreach import`'s progress bar (rich, on stderr): shown on a terminal for a step that has run
for more than a second, never off a terminal (a pipe, a log file, --json read by a script) and
never for a short import. The step's clock is the module's, stood still or moved by the test."""

from __future__ import annotations

import io
import re
import sys
import types

import pytest

from console.cli import imports


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def run_a_step(monkeypatch: pytest.MonkeyPatch, stderr: io.StringIO, seconds: float) -> str:
    """Read 10 records of patients.csv, `seconds` into the import, on `stderr`."""
    clock = [100.0]
    monkeypatch.setattr(imports, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    monkeypatch.setattr(sys, "stderr", stderr)
    progress = imports.TerminalProgress()
    progress.start("reading patients.csv", 10)
    clock[0] += seconds
    progress.advance(4)
    progress.advance(6)
    progress.stop()
    return stderr.getvalue()


def test_a_step_longer_than_a_second_shows_a_bar_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shown = run_a_step(monkeypatch, Terminal(), seconds=1.5)
    assert "reading patients.csv" in shown and "━" in shown and "100%" in shown


def test_a_step_under_a_second_shows_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_a_step(monkeypatch, Terminal(), seconds=0.5) == ""


def test_off_a_terminal_nothing_is_drawn(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run_a_step(monkeypatch, Pipe(), seconds=30) == ""


def test_a_step_of_unknown_length_after_a_counted_one_shows_no_percentage(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The rebuild after the store has no count: a pulsing bar, not the store's total at 0%."""
    clock = [100.0]
    monkeypatch.setattr(imports, "time", types.SimpleNamespace(monotonic=lambda: clock[0]))
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    progress = imports.TerminalProgress()
    progress.start("storing", 10)
    clock[0] += 1.5
    progress.advance(10)
    progress.start("rebuilding queues", None)
    progress.stop()
    frames = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal.getvalue()).split("\r")
    rebuilding = [f for f in frames if f.startswith("rebuilding queues")]
    assert rebuilding and not any("%" in f for f in rebuilding), rebuilding
