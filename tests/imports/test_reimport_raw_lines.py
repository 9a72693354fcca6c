"""A whole-export re-import passes over a stored line by the digest of its bytes, before the csv
module reads it (queues.imports.digests, queues.imports.csv_lines) — and never passes over a line
that changed, a line inside a quoted value over two lines, or a row stored under the digests of
before (LINE_RULES 1, a digest of the values)."""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any

import pytest
import xxhash
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.imports.digests import TABLES
from queues.imports.run import ImportSummary, import_csv
from queues.imports.rxnorm import TABLE as RXNORM_TABLE
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Fill, Patient, Phone, Prescription
from tests.imports.conftest import snapshot, writes
from tests.imports.test_reimport_whole_export import NOW

PATIENTS = (
    "mrn,first_name,last_name,birth_date,zip_code,state,gender,language,deceased,caregiver_name,"
    "caregiver_relation,caregiver_phone,caregiver_authorized,consent_to_call,tobacco_use,hospice,"
    "esrd\n"
    "A1,Ann,Able,1950-03-04,66801,KS,female,en,no,Carla Care,daughter,+13165550188,yes,yes,no,"
    "no,no\n"
    "B2,Bob,Baker,1948-11-30,67202,KS,male,es,no,,,,no,,no,no,no\n"
)
PHONES = "mrn,number,kind,rank\nA1,+13165550123,mobile,1\nB2,+13165550124,home,2\n"
PRESCRIPTIONS = (
    "mrn,rx_id,drug_name,rxnorm,refills_left,written_on,active,chronic,prescriber\n"
    "A1,RX-1,Lisinopril 10 MG Oral Tablet,314076,3,2026-10-01,yes,yes,Dr. Who\n"
    "B2,RX-2,Metformin 500 MG,860975,1,2026-09-01,yes,yes,\n"
)
FILLS = (
    "mrn,rx_id,fill_id,fill_date,days_supply,quantity\n"
    "A1,RX-1,F-1,2026-11-01,30,30\n"
    "B2,RX-2,F-2,2026-10-15,90,180\n"
)
EXPORT = {"patients": PATIENTS, "phones": PHONES, "prescriptions": PRESCRIPTIONS, "fills": FILLS}


def run(sessions: sessionmaker[Session], kind: str, path: Path) -> ImportSummary:
    return import_csv(sessions, kind, path, "KS1", NOW, QueueSettings(), ImportSettings())


def put(path: Path, text: str, *, bom: bool = False, crlf: bool = False) -> Path:
    data = text.replace("\n", "\r\n") if crlf else text
    path.write_bytes((codecs.BOM_UTF8 if bom else b"") + data.encode())
    return path


def import_export(
    sessions: sessionmaker[Session], folder: Path, export: dict[str, str], **form: bool
) -> list[ImportSummary]:
    folder.mkdir(exist_ok=True)
    return [
        run(sessions, kind, put(folder / f"{kind}.csv", text, **form))
        for kind, text in export.items()
    ]


def stored(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every imported row's values, by table (ids and digests left out)."""
    with sessions() as s:
        return {
            "patients": sorted(
                (
                    tuple(getattr(p, c) for c in _columns(Patient, "pharmacy_id"))
                    for p in s.scalars(select(Patient))
                ),
                key=repr,
            ),
            "phones": sorted(
                (p.patient_id, p.number, p.kind, p.rank) for p in s.scalars(select(Phone))
            ),
            "prescriptions": sorted(
                (
                    tuple(getattr(r, c) for c in _columns(Prescription, "patient_id"))
                    for r in s.scalars(select(Prescription))
                ),
                key=repr,
            ),
            "fills": sorted(
                (f.prescription_id, f.source_id, f.fill_date, f.days_supply, f.quantity)
                for f in s.scalars(select(Fill))
            ),
        }


def _columns(model: Any, *keep: str) -> list[str]:
    return sorted(
        c.name
        for c in model.__table__.columns
        if c.name in keep or c.name not in ("id", "source_digest", "pharmacy_id", "patient_id")
    )


@pytest.mark.parametrize(
    "form",
    [{}, {"bom": True}, {"crlf": True}, {"bom": True, "crlf": True}],
    ids=["as-before", "with-a-bom", "crlf", "bom-and-crlf"],
)
def test_the_whole_export_again_in_another_form_writes_nothing(
    site: str,
    engine: Engine,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    form: dict[str, bool],
) -> None:
    """A byte-order mark belongs to the header and a line end to no line: the same rows saved
    with or without either are passed over, all four files, and nothing is written."""
    import_export(sessions, tmp_path / "first", EXPORT)
    before = snapshot(engine)
    with writes(engine) as written:
        again = import_export(sessions, tmp_path / "again", EXPORT, **form)
    assert written == []
    assert snapshot(engine) == before
    assert [s.rebuilt_patients for s in again] == [0, 0, 0, 0]
    assert again[0].patients_unchanged == 2


def test_a_bom_export_then_the_same_rows_without_one(
    site: str, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    import_export(sessions, tmp_path / "first", EXPORT, bom=True)
    before = snapshot(engine)
    with writes(engine) as written:
        import_export(sessions, tmp_path / "again", EXPORT)
    assert written == []
    assert snapshot(engine) == before


# (file, line of the export's text, column, another good value): every column of every file.
CHANGES = [
    ("patients", 1, "first_name", "Anne"),
    ("patients", 1, "last_name", "Abel"),
    ("patients", 1, "birth_date", "1950-03-05"),
    ("patients", 1, "zip_code", "66802"),
    ("patients", 1, "state", "MO"),
    ("patients", 1, "gender", "other"),
    ("patients", 1, "language", "es"),
    ("patients", 1, "deceased", "yes"),
    ("patients", 1, "caregiver_name", "Carl Care"),
    ("patients", 1, "caregiver_relation", "son"),
    ("patients", 1, "caregiver_phone", "+13165550199"),
    ("patients", 1, "caregiver_authorized", "no"),
    ("patients", 1, "consent_to_call", "no"),
    ("patients", 1, "tobacco_use", "yes"),
    ("patients", 1, "hospice", "yes"),
    ("patients", 1, "esrd", "yes"),
    ("patients", 2, "mrn", "C3"),
    ("phones", 1, "number", "+13165550177"),
    ("phones", 1, "kind", "work"),
    ("phones", 1, "rank", "5"),
    ("prescriptions", 1, "drug_name", "Lisinopril 20 MG Oral Tablet"),
    ("prescriptions", 1, "rxnorm", "314077"),
    ("prescriptions", 1, "refills_left", "2"),
    ("prescriptions", 1, "written_on", "2026-10-02"),
    ("prescriptions", 1, "active", "no"),
    ("prescriptions", 1, "chronic", "no"),
    ("prescriptions", 1, "prescriber", "Dr. No"),
    ("prescriptions", 2, "rx_id", "RX-3"),
    ("fills", 1, "fill_id", "F-9"),
    ("fills", 1, "fill_date", "2026-11-02"),
    ("fills", 1, "days_supply", "28"),
    ("fills", 1, "quantity", "28"),
]


@pytest.fixture(scope="module")
def plain_import(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[Any, ...]]]:
    """What a first import of the unchanged export stores: the same for every change below, so
    made once for the module (the tests only read it)."""
    return _first_import(tmp_path_factory.mktemp("plain"), EXPORT)


# Every column on SQLite; on PostgreSQL a value and an identifier of each file. Which lines are
# passed over is decided in Python for both; what the backend adds is the read of the stored
# digests, the same for any column.
ON_POSTGRES = {
    ("patients", "birth_date"),
    ("patients", "mrn"),
    ("phones", "kind"),
    ("phones", "number"),
    ("prescriptions", "refills_left"),
    ("prescriptions", "rx_id"),
    ("fills", "days_supply"),
    ("fills", "fill_id"),
}
BACKENDS_AND_CHANGES = [
    pytest.param(backend, *change, id=f"{backend}-{change[0]}-{change[2]}")
    for backend in ("sqlite", "postgres")
    for change in CHANGES
    if backend == "sqlite" or (change[0], change[2]) in ON_POSTGRES
]


@pytest.mark.parametrize(
    ("db_url", "kind", "line", "column", "value"), BACKENDS_AND_CHANGES, indirect=["db_url"]
)
def test_a_changed_value_in_any_column_of_any_file_is_stored(
    site: str,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    plain_import: dict[str, list[tuple[Any, ...]]],
    kind: str,
    line: int,
    column: str,
    value: str,
) -> None:
    """The whole export again with one value of one line changed: that line is read and its row
    is what a first import of the changed export makes, every other row as it was."""
    import_export(sessions, tmp_path / "first", EXPORT)
    changed = dict(EXPORT)
    changed[kind] = _with(EXPORT[kind], line, column, value)
    import_export(sessions, tmp_path / "again", changed)
    got = stored(sessions)[TABLES[kind]]
    plain = plain_import[TABLES[kind]]
    if column in ("mrn", "number", "rx_id", "fill_id"):
        # Another identifier is another row (the other files still name the one before, which
        # the export no longer lists and is kept).
        assert set(plain) < set(got) and len(got) == len(plain) + 1
        assert any(value in row for row in set(got) - set(plain))
    else:
        assert got != plain
        assert got == _first_import(tmp_path / "fresh", changed)[TABLES[kind]]


def _with(text: str, line: int, column: str, value: str) -> str:
    rows = [r.split(",") for r in text.splitlines()]
    rows[line][rows[0].index(column)] = value
    return "".join(",".join(r) + "\n" for r in rows)


def _first_import(folder: Path, export: dict[str, str]) -> dict[str, list[tuple[Any, ...]]]:
    """What a first import of `export` stores, on a database of its own (SQLite), with the
    patient and prescription ids as the test's database numbers them (both in file order)."""
    from queues.store.db import make_engine, session_factory
    from tests.conftest import add_pharmacy, copy_migrated

    folder.mkdir(exist_ok=True)
    engine = make_engine(copy_migrated(folder / "fresh.db"))
    try:
        sessions = session_factory(engine)
        with sessions.begin() as s:
            add_pharmacy(s, code="KS1", tz="America/Chicago", state="KS")
        import_export(sessions, folder, export)
        return stored(sessions)
    finally:
        engine.dispose()


def test_a_line_inside_a_quoted_value_is_never_taken_for_the_stored_line_it_equals(
    site: str, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """B2's line, stored, comes back as the middle line of A1's quoted first name: it is read as
    part of A1's record (a first name stripped of its line ends), not passed over as B2's."""
    header, ann, bob = PATIENTS.splitlines(keepends=True)
    import_export(sessions, tmp_path / "first", {"patients": PATIENTS})
    quoted = header + 'A1,"\n' + bob + '",' + ann.split(",", 2)[2] + bob
    result = run(sessions, "patients", put(tmp_path / "quoted.csv", quoted))
    assert (result.patients_updated, result.patients_unchanged) == (1, 1)
    with sessions() as s:
        names = {mrn: first for mrn, first in s.execute(select(Patient.mrn, Patient.first_name))}
    assert names == {"A1": bob.strip(), "B2": "Bob"}
    # The record over three lines is known by its digest now: passed over next time.
    with writes(engine) as written:
        again = run(sessions, "patients", put(tmp_path / "quoted.csv", quoted))
    assert written == []
    assert again.patients_unchanged == 2


def test_rows_stored_under_the_digests_of_before_are_read_again_once(
    site: str, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """Rows stored by the import before digests of bytes (LINE_RULES 1: a digest of the values
    the csv module read, salted without the pharmacy): after the upgrade the same export with one
    line changed updates that row; the others are read again, found equal, and only take the
    new digest; the next import passes over every line."""
    import_export(sessions, tmp_path / "first", EXPORT)
    with sessions.begin() as s:
        for model, kind in ((Patient, "patients"), (Fill, "fills")):
            header, *lines = EXPORT[kind].splitlines()
            for text in lines:
                key = text.split(",")[2 if kind == "fills" else 0]
                column = Fill.source_id if kind == "fills" else Patient.mrn
                old = _old_digest(kind, header.split(","), text.split(","))
                s.execute(update(model).where(column == key).values(source_digest=old))
    changed = dict(EXPORT)
    changed["patients"] = _with(PATIENTS, 2, "zip_code", "67203")
    again = import_export(sessions, tmp_path / "again", changed)
    assert (again[0].patients_updated, again[0].patients_unchanged) == (1, 1)
    assert again[3].fills == 0  # read again, found equal
    with sessions() as s:
        assert s.scalars(select(Patient.zip_code).where(Patient.mrn == "B2")).one() == "67203"
    before = snapshot(engine)
    with writes(engine) as written:
        import_export(sessions, tmp_path / "third", changed)
    assert written == []
    assert snapshot(engine) == before


def _old_digest(kind: str, header: list[str], values: list[str]) -> int:
    """A line's digest as LINE_RULES 1 made it (queues.imports.digests before 2026-12-07)."""
    extra = "30" if kind == "fills" else ""
    if kind == "prescriptions":
        extra = str(xxhash.xxh3_64_intdigest(RXNORM_TABLE.read_bytes()))
    salt = "\x1e".join(("1", kind, extra, "\x1f".join(h.strip().lower() for h in header)))
    seed = xxhash.xxh3_64_intdigest(salt.encode())
    return int(xxhash.xxh3_64_intdigest("\x1f".join(values).encode(), seed) >> 1)
