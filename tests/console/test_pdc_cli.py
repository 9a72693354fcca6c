"""`outreach pdc` as a user runs it (in this process, tests/cli.py) on a CSV of fills."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.console.test_cli import outreach

# PQA-style example: IPSD Mar 25; Mar 25–Jun 22, a 12-day gap, Jul 5–Oct 2, and a Sep 25 refill
# shifted to Oct 3–Dec 31. 270 of 282 days.
EXAMPLE = """drug,fill_date,days_supply
metformin,2018-03-25,90
metformin,2018-07-05,90
metformin,2018-09-25,90
"""


def fills_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fills.csv"
    path.write_text(text, encoding="utf-8")
    return path


def last_json(stdout: str) -> dict[str, object]:
    result: dict[str, object] = json.loads(stdout.strip().splitlines()[-1])
    return result


def test_json_last_line_has_pdc_days_and_verdict(tmp_path: Path) -> None:
    path = fills_file(tmp_path, EXAMPLE)
    run = outreach(
        "pdc", "--fills", str(path), "--from", "2018-01-01", "--to", "2018-12-31", "--json"
    )
    assert run.returncode == 0, run.stderr
    got = last_json(run.stdout)
    assert {k: got[k] for k in ("pdc", "covered_days", "denominator_days", "adherent")} == {
        "pdc": 0.957447,
        "covered_days": 270,
        "denominator_days": 282,
        "adherent": True,
    }
    assert "270 of 282" in run.stdout and "0.957447" in run.stdout


def test_two_drugs_and_a_fill_before_the_period(tmp_path: Path) -> None:
    # Lisinopril Dec 20 +30 carries to Jan 18; its Jan 10 refill is shifted to Jan 19–Feb 17.
    # Losartan Mar 1 +30 (Mar 1–30) is another drug, not shifted. IPSD Jan 10; to Mar 31 is 81 days;
    # covered Jan 10–Feb 17 (39) + Mar 1–30 (30) = 69. Without the earlier fill: 30 + 30 = 60.
    path = fills_file(
        tmp_path,
        "drug,fill_date,days_supply\nlisinopril,2025-12-20,30\nlisinopril,2026-01-10,30\n"
        "losartan,2026-03-01,30\n",
    )
    args = ("pdc", "--fills", str(path), "--from", "2026-01-01", "--to", "2026-03-31", "--json")
    carried = last_json(outreach(*args).stdout)
    assert (carried["covered_days"], carried["denominator_days"]) == (69, 81)
    assert carried["pdc"] == round(69 / 81, 6) and carried["adherent"] is True
    strict = last_json(outreach(*args, "--no-carry-in").stdout)
    assert (strict["covered_days"], strict["adherent"]) == (60, False)


def test_no_fill_in_the_period_says_so(tmp_path: Path) -> None:
    path = fills_file(tmp_path, EXAMPLE)
    run = outreach(
        "pdc", "--fills", str(path), "--from", "2019-01-01", "--to", "2019-12-31", "--json"
    )
    assert run.returncode == 0
    assert "not in the measure" in run.stdout
    assert last_json(run.stdout)["pdc"] is None


@pytest.mark.parametrize(
    ("row", "field", "why"),
    [
        ("metformin,2018-02-30,90", "fill_date", "not a date"),
        ("metformin,2018-08-01,-30", "days_supply", "at least 1"),
    ],
)
def test_a_bad_row_stops_with_file_line_and_field(
    tmp_path: Path, row: str, field: str, why: str
) -> None:
    path = fills_file(tmp_path, EXAMPLE + row + "\n")
    run = outreach(
        "pdc", "--fills", str(path), "--from", "2018-01-01", "--to", "2018-12-31", "--json"
    )
    assert run.returncode != 0
    assert f"{path}, line 5, field {field}" in run.stderr and why in run.stderr
    assert run.stdout == ""
