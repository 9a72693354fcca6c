"""read_csv's column path reads a clean file exactly as the line path does — the same records in
the same order, the same lines, the same digests kept and passed over — and leaves every file it
cannot read so (a bad value, a repeat, a record over two lines, a blank line among stored ones)
to the line path, which names each error (queues.imports.csv_files)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from queues.imports import csv_files
from queues.imports.csv_files import COLUMNS, read_csv
from queues.imports.digests import LineDigests

DAYS = 30
GOOD: dict[str, list[str]] = {
    "mrn": ["A1", "B2", " C3 ", "D4", "E5", "F6"],
    "first_name": ["Ann", "José", "Zoë", "O'Neil", "Mary Ann", " Bo "],
    "last_name": ["Able", "Núñez", "Smith-Jones"],
    "birth_date": ["1950-03-04", "1948-11-30", " 2001-01-01"],
    "zip_code": ["66801", "67202-1234"],
    "state": ["KS", "ks", "GU"],
    "gender": ["female", "male", ""],
    "language": ["en", "es", "es-MX", ""],
    "caregiver_name": ["", "Carla Care"],
    "caregiver_relation": ["", "daughter"],
    "caregiver_phone": ["(316) 555-0123", "+13165550188", ""],
    "rx_id": ["RX-1", "RX-2", "RX-3"],
    "drug_name": ["Lisinopril 10 MG Oral Tablet", "Metformin 500 MG", "Aspirin"],
    "rxnorm": ["314076", "860975", ""],
    "refills_left": ["0", "3", "99", ""],
    "written_on": ["2026-11-01", ""],
    "prescriber": ["", "Dr. Who"],
    "fill_id": ["F-1", "F-2", "F-3", "F-4"],
    "fill_date": ["2026-11-01", "2025-02-28", " 2026-10-15 "],
    "days_supply": ["30", "90", "", "7"],
    "quantity": ["30", "0.5", ""],
}
FLAGS = ["yes", "no", "1", "0", "true", ""]
BAD = ["", "x" * 300, "A|B", "2026-02-30", "maybe", "\x00", "-1", "1e400", "ZZ", "1234"]


def cell(column: str, bad: bool) -> st.SearchStrategy[str]:
    good = st.sampled_from(GOOD.get(column, FLAGS))
    return good | st.sampled_from(BAD) if bad else good


@st.composite
def files(draw: st.DrawFn) -> tuple[str, str]:
    kind = draw(st.sampled_from(["patients", "prescriptions", "fills"]))
    required, optional = COLUMNS[kind]
    header = list(required) + draw(st.lists(st.sampled_from(optional), unique=True, max_size=4))
    header = draw(st.permutations(header))
    bad = draw(st.booleans())
    rows = draw(
        st.lists(
            st.one_of(
                st.tuples(*(cell(c, bad) for c in header)).map(list),
                st.just([""] * len(header)),  # a blank row
            ),
            max_size=25,
        )
    )
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return kind, out.getvalue()


def both(kind: str, path: Path, stored: set[int]) -> None:
    by_lines = LineDigests(kind, stored, DAYS)
    expected = csv_files._by_lines(kind, path, DAYS, lambda _n: None, by_lines)
    read = LineDigests(kind, stored, DAYS)
    got = read_csv(kind, path, DAYS, digests=read)
    assert got.batch == expected.batch
    assert list(vars(got.batch)[_field(kind)]) == list(vars(expected.batch)[_field(kind)])
    assert got.errors == expected.errors or [str(e) for e in got.errors] == [
        str(e) for e in expected.errors
    ]
    assert dict(got.origins.items()) == dict(expected.origins.items())
    assert (read.of, read.passed) == (by_lines.of, by_lines.passed)


def _field(kind: str) -> str:
    return {"patients": "patients", "prescriptions": "prescriptions", "fills": "fills"}[kind]


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(made=files(), share=st.sampled_from([0, 2, 3]))
def test_the_column_path_reads_as_the_line_path_does(
    tmp_path: Path, made: tuple[str, str], share: int
) -> None:
    kind, text = made
    path = tmp_path / f"{kind}.csv"
    path.write_text(text, encoding="utf-8")
    first = LineDigests(kind, set(), DAYS)
    csv_files._by_lines(kind, path, DAYS, lambda _n: None, first)
    # Some of the file's lines stored already (every other, every third), or none.
    digests = [d for d in first.of.values() if d is not None]
    stored = set(digests[::share]) if share else set()
    both(kind, path, stored)


def test_a_clean_file_is_read_by_columns_and_a_bad_one_by_lines(tmp_path: Path) -> None:
    path = tmp_path / "fills.csv"
    path.write_text(
        "mrn,rx_id,fill_id,fill_date,days_supply\n"
        + "".join(f"A{n},RX-1,F-{n},2026-11-01,30\n" for n in range(50_000))
    )
    assert csv_files._by_columns("fills", path, DAYS, lambda _n: None, None) is not None
    both("fills", path, set())
    with path.open("a") as out:
        out.write("A1,RX-1,F-1,2026-11-02,30\n")  # line 50,002 repeats line 3
    assert csv_files._by_columns("fills", path, DAYS, lambda _n: None, None) is None
    read = read_csv("fills", path, DAYS)
    assert [str(e) for e in read.errors] == [
        f"{path}:50002: fill_id: given again (first on line 3)"
    ]


@pytest.mark.parametrize(
    "text",
    [
        'mrn,first_name,last_name,birth_date,zip_code,state\nA1,"Ann\n",Able,1950-03-04,66801,KS\n'
        "B2,Bob,Baker,1948-11-30,67202,KS\n",  # a value over two lines, stripped to a good one
        "mrn,first_name,last_name,birth_date,zip_code,state\n\nA1,Ann,Able,1950-03-04,66801,KS\n",
        "mrn,first_name,last_name,birth_date,zip_code,state\r\nA1,Ann,Able,1950-03-04,66801,KS\r\n",
    ],
)
def test_lines_are_numbered_as_the_line_path_numbers_them(tmp_path: Path, text: str) -> None:
    path = tmp_path / "patients.csv"
    path.write_bytes(text.encode())
    both("patients", path, set())
