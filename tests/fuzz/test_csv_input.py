"""CSV imports fuzzed: bad dates, negative and huge numbers, wrong column counts, BOMs, NULs and
other control characters, bytes that are not UTF-8, quotes, repeated identifiers, 10,000-character
fields, an empty file, a header alone. `outreach import csv` names every bad row as
`file:line: field: why`, exits 1 and stores nothing (a digest of every table before and after);
with --skip-bad-rows the good rows are stored and the bad ones reported."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, insert, select

from queues.imports.csv_files import COLUMNS
from queues.store.db import make_engine, upgrade
from queues.store.models import Campaign, Patient
from tests.fuzz.helpers import (
    SIGN_IN_TABLES,
    Run,
    cheap_passwords,
    digest,
    examples,
    run,
    signed_in_site,
)

KINDS = tuple(COLUMNS)
PATIENTS = (
    "mrn,first_name,last_name,birth_date,zip_code,state\n"
    "A1,Ann,Able,1950-03-04,66801,KS\nB2,Bob,Baker,1948-11-30,67202,KS\n"
)
RX = "mrn,rx_id,drug_name,rxnorm,refills_left\nA1,RX-1,Lisinopril 10 MG Oral Tablet,314076,3\n"

GARBAGE = st.one_of(
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8", categories=["Cc", "Zl", "Zs", "Cf"]), max_size=4),
    st.sampled_from(
        ["", "\x00", "\ufeff", '"', 'a"b', "a,b", "x\ny", "\x1b[2J", "x" * 10_000, "|", "-1",
         "1e400", "nan", "inf", "1_000", "٣", "2026-02-30", "20261202", "2026-W49-3", "9999-12-30",
         "0001-01-01", "03/04/1950", "true", "NULL"]
    ),
)  # fmt: skip
DAYS = st.dates().map(str) | st.sampled_from(["2026-11-01", "1950-03-04", "2099-01-01"])
GOOD: dict[str, st.SearchStrategy[str]] = {
    "mrn": st.sampled_from(["A1", "B2", "C3", "D4", "E5"]),
    "first_name": st.sampled_from(["Ann", "José", "Zoë", "O'Neil", "Mary Ann"]),
    "last_name": st.sampled_from(["Able", "Núñez", "Smith-Jones"]),
    "birth_date": DAYS,
    "zip_code": st.sampled_from(["66801", "67202-1234", "1234", "abcde"]),
    "state": st.sampled_from(["KS", "ks", "ZZ", "GU", "Kansas"]),
    "gender": st.sampled_from(["female", "male", "other"]),
    "language": st.sampled_from(["en", "es", "es-MX", "zz-9999999999", "e"]),
    "caregiver_phone": st.sampled_from(["(316) 555-0123", "12", ""]),
    "number": st.sampled_from(["+13165550188", "(316) 555-0123", "555"]),
    "kind": st.sampled_from(["mobile", "home", "work", "fax"]),
    "rank": st.sampled_from(["0", "1", "1.5", "1000", "1001"]),
    "rx_id": st.sampled_from(["RX-1", "RX-2", "R|X"]),
    "drug_name": st.sampled_from(["Lisinopril 10 MG Oral Tablet", "Metformin 500 MG"]),
    "rxnorm": st.sampled_from(["314076", "860975", ""]),
    "refills_left": st.sampled_from(["0", "3", "99", "100", "2.5"]),
    "written_on": DAYS,
    "fill_id": st.sampled_from(["F-1", "F-2", "F-3"]),
    "fill_date": DAYS,
    "days_supply": st.sampled_from(["30", "90", "", "0", "366", "3000000", "30.5"]),
    "quantity": st.sampled_from(["30", "0.5", "1e9", "1e10"]),
}
FLAG = st.sampled_from(["yes", "no", "1", "0", "true", "maybe"])


def cells(column: str) -> st.SearchStrategy[str]:
    good = GOOD.get(column, FLAG if column not in ("caregiver_name", "prescriber") else st.text())
    return good | good | GARBAGE


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[str, bytes, list[str]]:
    """A file of one kind: a header (sometimes wrong), rows of good and garbage cells (sometimes
    too few or too many), always one bad row, written by the csv module and then maybe mangled."""
    kind = draw(st.sampled_from(KINDS))
    required, optional = COLUMNS[kind]
    header = list(required) + draw(st.lists(st.sampled_from(optional), unique=True, max_size=4))
    header = draw(st.permutations(header))
    twist = draw(st.sampled_from(["none"] * 6 + ["drop", "unknown", "twice", "case"]))
    if twist == "drop":
        header.remove(draw(st.sampled_from(required)))
    elif twist == "unknown":
        header.append(draw(st.sampled_from(["zzz", "\x1b[31mred", "mrn "])))
    elif twist == "twice":
        header.append(header[0])
    elif twist == "case":
        header = [f" {h.upper()} " for h in header]
    rows: list[list[str]] = []
    for _ in range(draw(st.integers(0, 6))):
        row = [draw(cells(h.strip().lower())) for h in header]
        if draw(st.integers(0, 9)) == 0:
            shorter = bool(row) and draw(st.booleans())
            row = row[:-1] if shorter else [*row, "extra"]
        rows.append(row)
    # A row that is always wrong: "x" is no date, number or known MRN.
    rows.insert(draw(st.integers(0, len(rows))), ["x"] * len(header))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    raw = text.getvalue().encode("utf-8", "surrogatepass")
    mangle = draw(st.sampled_from(["none"] * 5 + ["bom", "two boms", "not utf-8", "nul", "cut"]))
    if mangle == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif mangle == "two boms":
        raw = b"\xef\xbb\xbf\xef\xbb\xbf" + raw
    elif mangle == "not utf-8":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\xc3(", b"\xe9t\xe9"])) + raw[at:]
    elif mangle == "nul":
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + b"\x00" + raw[at:]
    elif mangle == "cut":
        raw += "é".encode()[:1]
    event(f"{kind}, header {twist}, bytes {mangle}")
    return kind, raw, header


# -- the site ------------------------------------------------------------------------------------
def prepare(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """A pharmacy with two patients and a prescription, campaigns, and an admin signed in."""
    cheap_passwords(monkeypatch)
    engine = make_engine(url)
    upgrade(engine)
    signed_in_site(url, monkeypatch)
    with engine.begin() as conn:
        conn.execute(
            insert(Campaign),
            [
                dict(pharmacy_id=None, kind=kind, name=kind, script_id=kind, weight=1.0)
                for kind in ("refill_reminder", "adherence", "vaccine")
            ],
        )
    for kind, text in (("patients", PATIENTS), ("prescriptions", RX)):
        path = tmp_path / f"{kind}.csv"
        path.write_text(text)
        assert import_csv(url, kind, path).rc == 0
    return engine


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Engine]]:
    """One SQLite site for the whole file (each test compares the database with itself before
    and after, so what an earlier test stored does not matter)."""
    folder = tmp_path_factory.mktemp("site")
    url = f"sqlite:///{folder / 'outreach.db'}"
    with pytest.MonkeyPatch.context() as monkeypatch:
        engine = prepare(url, folder, monkeypatch)
        yield url, engine
    engine.dispose()


def import_csv(url: str, kind: str, path: Path, *more: str) -> Run:
    return run(["import", "csv", kind, str(path), "--pharmacy", "KS1", "--database", url, *more])


ROW_ERROR = r"(?P<file>.+):(?P<line>\d+): (?P<field>[a-z_]+): (?P<why>\S.*)"


def assert_refused(result: Run, path: Path, lines: int) -> list[int]:
    """Exit 1; either one `outreach: FILE:LINE: why` or the count and one `FILE:LINE: field: why`
    per bad record. Returns the lines named."""
    assert result.rc == 1, result
    assert "Traceback" not in result.out + result.err, result
    said = result.err.splitlines()
    assert said and said[0].startswith("outreach: "), result
    named = said[1:] if "bad record(s)" in said[0] else [said[0].removeprefix("outreach: ")]
    found = []
    for line in named:
        if line.startswith("… and "):
            continue
        match = re.fullmatch(ROW_ERROR, line) or re.fullmatch(r"(.+):(\d+): (.+)", line)
        assert match and match.group(1) == str(path), line
        assert 1 <= int(match.group(2)) <= lines, (line, lines)
        # Bounded after the file's name (a 10,000-character field is not echoed); the name is
        # the test's temporary path, longer under xdist (popen-gwN/).
        assert line.isprintable() and len(line) - len(str(path)) < 400, line
        found.append(int(match.group(2)))
    return found


def rejected_lines(result: Run) -> int:
    return sum(1 for line in result.out.splitlines() if line.startswith("rejected: "))


# No shrinking: each example is two imports, and shrinking a failure ran past the 120 s timeout;
# the failing file is printed as generated (a few short rows).
FUZZ = settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    max_examples=examples(30),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@FUZZ
@given(made=csv_files())
# Found under `pytest -n 3`: a header refused with the whole list of columns, a line of 420
# characters with the temporary path in it.
@example(
    made=(
        "patients",
        b"\xef\xbb\xbf\xef\xbb\xbfstate,zip_code,last_name,mrn,first_name,consent_to_call,"
        b"birth_date,mrn \r\nx,x,x,x,x,x,x,x\r\n",
        [],
    )
)
def test_a_fuzzed_file_is_refused_whole_or_its_good_rows_kept(
    site: tuple[str, Engine], tmp_path: Path, made: tuple[str, bytes, list[str]]
) -> None:
    url, engine = site
    kind, raw, _header = made
    path = tmp_path / f"fuzzed-{kind}.csv"
    path.write_bytes(raw)
    lines = len(raw.splitlines()) + 1  # \r, \n and \r\n end a line, for the csv module too
    before = digest(engine, SIGN_IN_TABLES)
    assert_refused(import_csv(url, kind, path), path, lines)
    assert digest(engine, SIGN_IN_TABLES) == before  # nothing stored, not even in part
    skipped = import_csv(url, kind, path, "--skip-bad-rows")
    assert "Traceback" not in skipped.out + skipped.err, skipped
    if skipped.rc != 0:  # the file itself is unreadable (header, encoding): still nothing stored
        assert_refused(skipped, path, lines)
        assert digest(engine, SIGN_IN_TABLES) == before
        event("skip: file refused whole")
        return
    rejected = [r for r in skipped.out.splitlines() if r.startswith("rejected: ")]
    assert rejected, skipped.out  # the bad row, at least
    for r in rejected:
        if "… and" not in r:
            match = re.fullmatch(ROW_ERROR, r.removeprefix("rejected: "))
            assert match and match.group("file") == str(path), r
    event("skip: good rows stored")


def test_skip_bad_rows_stores_exactly_the_good_patients(
    site: tuple[str, Engine], tmp_path: Path
) -> None:
    url, engine = site
    path = tmp_path / "mixed.csv"
    path.write_text(
        "mrn,first_name,last_name,birth_date,zip_code,state,language\n"
        "G1,Gus,Good,1960-01-02,66801,KS,es-MX\n"
        "N1,Nul\x00l,Bad,1960-01-02,66801,KS,en\n"
        'G2,"Quote, Comma",Good,1960-01-02,67202,KS,en\n'
        "F1,Fut,Bad,2999-01-01,66801,KS,en\n"
        "G1,Gus,Again,1960-01-02,66801,KS,en\n"
        "Z1,Zip,Bad,1960-01-02,١٢٣٤٥,KS,en\n"
        'L1,"Line\nbreak",Bad,1960-01-02,66801,KS,en\n'
        "S1,State,Bad,1960-01-02,66801,ZZ,en\n"
        "W1,Wide,Bad,1960-01-02,66801,KS,en,extra\n"
        f"X1,{'x' * 10_000},Bad,1960-01-02,66801,KS,en\n"
    )
    before = digest(engine, SIGN_IN_TABLES)
    refused = import_csv(url, "patients", path)
    assert assert_refused(refused, path, 12) == [3, 5, 6, 7, 8, 10, 11, 12]
    assert digest(engine, SIGN_IN_TABLES) == before
    for says in (
        ":3: first_name: contains a control character",
        ":5: birth_date: not a plausible date",
        ":6: mrn: given again (first on line 2)",
        ":7: zip_code: not a 5-digit ZIP code",
        ":8: first_name: contains a control character",
        ":10: state: not a US state's 2-letter code",
        ":11: row: 8 values for 7 columns",
        ":12: first_name: longer than 100 characters",
    ):
        assert says in refused.err, (says, refused.err)
    kept = import_csv(url, "patients", path, "--skip-bad-rows")
    assert kept.rc == 0, kept
    assert rejected_lines(kept) == 8
    with engine.connect() as conn:
        mrns = set(conn.scalars(select(Patient.mrn)))
        gus = conn.execute(select(Patient.language).where(Patient.mrn == "G1")).scalar_one()
    assert {"G1", "G2"} <= mrns and gus == "es"
    assert not mrns & {"N1", "F1", "Z1", "L1", "S1", "W1", "X1"}


@pytest.mark.parametrize(
    ("kind", "raw", "says"),
    [
        ("patients", b"", ":1: header: the file is empty"),
        ("phones", b"\xef\xbb\xbfmrn,number,mrn\n", ":1: header: column(s) mrn given twice"),
        ("phones", b"mrn,number,\x1b[2J\n", r"unknown column(s) '\x1b[2j'"),
        ("phones", b"mrn,number\n" + b"A1,3165550123\n" * 3000 + b"A1,\xff\n", ":3002: not UTF-8"),
        ("phones", b"mrn,number\nA1,3165550123\nA1," + b"9" * 200_000 + b"\n", ":3: row: field"),
        ("fills", b"mrn,rx_id,fill_id,fill_date\nA1,RX-1,F-9,9999-12-30\n", ":2: fill_date: not a"),
        ("fills", b"mrn,rx_id,fill_id,fill_date,days_supply\nA1,RX-1,F,2026-11-01,1_000\n", ":2: days"),
        ("prescriptions", b"mrn,rx_id,drug_name\nA1|RX,X,Aspirin\n", ":2: mrn: may not contain |"),
        ("prescriptions", b"mrn,rx_id,drug_name,refills_left\nA1,R,A,1e12\n", "refills_left: must"),
    ],
)  # fmt: skip
def test_each_kind_of_unreadable_file_is_one_clear_line(
    site: tuple[str, Engine], tmp_path: Path, kind: str, raw: bytes, says: str
) -> None:
    url, engine = site
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(raw)
    before = digest(engine, SIGN_IN_TABLES)
    for more in ((), ("--skip-bad-rows",)):
        result = import_csv(url, kind, path, *more)
        if more and result.rc == 0:
            assert says in result.out  # a bad row, reported; the rest stored
            continue
        assert_refused(result, path, raw.count(b"\n") + 1)
        assert says in result.err, result.err
        assert digest(engine, SIGN_IN_TABLES) == before


def test_a_header_alone_stores_nothing(site: tuple[str, Engine], tmp_path: Path) -> None:
    url, engine = site
    path = tmp_path / "fills.csv"
    path.write_text("mrn,rx_id,fill_id,fill_date\n")
    before = digest(engine, SIGN_IN_TABLES)
    done = import_csv(url, "fills", path)
    assert done.rc == 0 and "0 fills" in done.out, done
    assert digest(engine, SIGN_IN_TABLES) == before


def test_on_postgresql_a_nul_and_a_bad_date_store_nothing(
    pg_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL refuses a NUL in text: it is named before the database ever sees it."""
    engine = prepare(pg_url, tmp_path, monkeypatch)
    try:
        path = tmp_path / "mixed.csv"
        path.write_text(
            "mrn,first_name,last_name,birth_date,zip_code,state\n"
            "G1,Gus,Good,1960-01-02,66801,KS\n"
            "N1,Nul\x00l,Bad,1960-01-02,66801,KS\n"
            "D1,Day,Bad,1960-02-30,66801,KS\n"
        )
        before = digest(engine, SIGN_IN_TABLES)
        refused = import_csv(pg_url, "patients", path)
        assert assert_refused(refused, path, 5) == [3, 4]
        assert digest(engine, SIGN_IN_TABLES) == before
        kept = import_csv(pg_url, "patients", path, "--skip-bad-rows")
        assert kept.rc == 0 and rejected_lines(kept) == 2, kept
        with engine.connect() as conn:
            assert set(conn.scalars(select(Patient.mrn))) == {"A1", "B2", "G1"}
    finally:
        engine.dispose()


def test_the_terminal_shows_the_rows_and_no_traceback(
    site: tuple[str, Engine], tmp_path: Path
) -> None:
    """The installed entry point, in its own process."""
    url, _engine = site
    path = tmp_path / "fills.csv"
    path.write_bytes(b"mrn,rx_id,fill_id,fill_date\nA1,RX-1,F-1,9999-12-30\nA1,RX-1,F-2,\x00\n")
    done = subprocess.run(
        [str(Path(sys.executable).with_name("outreach")), "import", "csv", "fills", str(path),
         "--pharmacy", "KS1", "--database", url],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done
    assert "Traceback" not in done.stdout + done.stderr
    assert f"{path}:2: fill_date: not a plausible date" in done.stderr
    assert f"{path}:3: fill_date: contains a control character" in done.stderr
