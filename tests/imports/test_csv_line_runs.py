"""The line path (queues.imports.csv_files: a phones file, or any file with something to report)
passes over a run of stored lines at once where a record starts: over files of several blocks
(csv_lines.BLOCK), with a quoted value over a line end across a block's end, it reads what a line
by line pass does — the records not stored as a plain read gives them, the errors and lines
numbered the same, and every stored line passed over counted once."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from queues.imports.csv_files import read_csv
from queues.imports.csv_lines import BLOCK
from queues.imports.digests import LineDigests

DAYS = 30


def _phones(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["mrn", "number", "kind"])
    writer.writerows(rows)
    return out.getvalue().encode()


def _across_first_block_end(changed: list[list[str]], rows: list[list[str]]) -> int:
    """A row whose record, made three lines by a value over line ends, is cut by the first
    block's end (the last line end in the file's first BLOCK bytes)."""
    line = len(_phones(rows[:1])) - len(_phones([]))
    guess = (BLOCK - len(_phones([]))) // line
    for n in range(guess - 10, guess + 10):
        made = [list(r) for r in changed]
        made[n][1] = "\r\n" + ",".join(rows[n + 1]) + "\r\n"
        data = _phones(made)
        start = data.index(f"\n{made[n][0]},".encode()) + 1
        end = data.index(b"\n", data.index(b"\n", data.index(b"\n", start) + 1) + 1) + 1
        if data.index(b"\n", start) < BLOCK - 1 and end > BLOCK:
            return n
    raise AssertionError("no row across the first block's end")


def test_runs_of_stored_lines_over_blocks_read_as_line_by_line(tmp_path: Path) -> None:
    rows = [[f"P{n:06d}", f"+1214555{n % 10000:04d}", "mobile"] for n in range(80_000)]
    first = tmp_path / "first.csv"
    first.write_bytes(_phones(rows))
    assert first.stat().st_size > 2 * BLOCK  # three blocks at least
    digests = LineDigests("phones", set(), DAYS)
    read_csv("phones", first, DAYS, digests=digests)
    stored = {d for d in digests.of.values() if d is not None}
    assert len(stored) == len(rows)

    # The next export: a few rows changed, one at the start, some at the end; a row added; and
    # in the record that crosses the first block's end, a value over line ends (refused: a
    # control character) whose middle line is the very text of the stored line after it.
    changed = [list(r) for r in rows]
    for n in (0, 7, 25_000, 79_998, 79_999):
        changed[n][2] = "home"
    changed.append(["P999999", "+12145559999", "mobile"])
    across = _across_first_block_end(changed, rows)
    changed[across][1] = "\r\n" + ",".join(rows[across + 1]) + "\r\n"
    again = tmp_path / "again.csv"
    again.write_bytes(_phones(changed))

    plain = read_csv("phones", again, DAYS)
    digests = LineDigests("phones", stored, DAYS)
    got = read_csv("phones", again, DAYS, digests=digests)

    assert [str(e) for e in got.errors] == [str(e) for e in plain.errors]
    assert [e.line for e in plain.errors] == [across + 2]  # the header is line 1
    expected = {mrn: phones for mrn, phones in plain.batch.phones.items()}
    read = got.batch.phones
    read_again = {0, 7, 25_000, 79_998, 79_999, len(rows)}
    assert set(read) == {changed[n][0] for n in read_again}
    assert all(read[mrn] == expected[mrn] for mrn in read)
    assert {k: got.origins.line[k] for k in got.origins.line} == {
        k: plain.origins.line[k] for k in got.origins.line
    }
    # Every other line passed over, once: all but the changed, the one cut in two, the new.
    assert len(digests.passed) == len(rows) - 5 - 1
