"""`outreach queue stats` prints its counts as a table: every count ends in the same column, even
when a group of the due patients has a label longer than the others ("outside their calling
window until …", "blocked by their record (…)")."""

from __future__ import annotations

import re
from pathlib import Path

from tests.cli import run


def test_every_count_of_queue_stats_ends_in_the_same_column(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    made = run(
        "demo", "--seed-only", "--patients", "30", "--now", "2026-12-02T10:00", "--database", url
    )
    assert made.returncode == 0, made.stderr
    stats = run("queue", "stats", "--database", url)
    assert stats.returncode == 0, stats.stderr
    lines = stats.stdout.splitlines()
    table = [line for line in lines if re.fullmatch(r"\S.*?\s{2,}[\d,]+|  \S.*?\s{2,}[\d,]+", line)]
    assert [line.split("  ")[0] for line in table[:3]] == [
        "Pharmacies",
        "Patients",
        "Tasks open (unclaimed)",
    ]
    longest = max(len(re.sub(r"\s+[\d,]+$", "", line)) for line in table)
    assert longest > 28  # a label past the old fixed 28 columns is there
    assert len({len(line) for line in table}) == 1, "\n".join(table)
    assert len(table) == len(lines) - 1  # then the one summary sentence
