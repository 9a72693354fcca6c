"""The nightly re-import of a pharmacy's whole export: the lines stored as they are are passed over by
their digest (queues.imports.digests), nothing is written for them, and what changed since — by
this file, another file or another import — is brought back to what the file says."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from queues.imports.records import ImportFailed
from queues.imports.run import ImportSummary, import_csv
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Fill, Patient
from tests.imports.conftest import Writer, snapshot, writes

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
HEADER = "mrn,first_name,last_name,birth_date,zip_code,state\n"
ANN = "A1,Ann,Able,1950-03-04,66801,KS\n"
BOB = "B2,Bob,Baker,1948-11-30,67202,KS\n"
RX = "mrn,rx_id,drug_name,rxnorm,refills_left\nA1,RX-1,Lisinopril 10 MG Oral Tablet,314076,3\n"


def run(sessions: sessionmaker[Session], kind: str, path: Path, days: int = 30) -> ImportSummary:
    settings = ImportSettings(default_days_supply=days)
    return import_csv(sessions, kind, path, "KS1", NOW, QueueSettings(), settings)


def zip_of(sessions: sessionmaker[Session], mrn: str) -> str:
    with sessions() as s:
        return s.scalars(select(Patient.zip_code).where(Patient.mrn == mrn)).one()


def test_the_same_export_again_reads_no_line_and_writes_no_row(
    site: str, engine: Engine, sessions: sessionmaker[Session], write: Writer
) -> None:
    patients = write("patients.csv", HEADER + ANN + BOB)
    assert run(sessions, "patients", patients).patients_created == 2
    before = snapshot(engine)
    with writes(engine) as written:
        again = run(sessions, "patients", patients)
    assert (again.patients_created, again.patients_updated, again.patients_unchanged) == (0, 0, 2)
    assert again.rebuilt_patients == 0
    assert written == []
    assert snapshot(engine) == before


def test_a_changed_line_in_the_whole_export_updates_only_its_row(
    site: str, engine: Engine, sessions: sessionmaker[Session], write: Writer
) -> None:
    run(sessions, "patients", write("patients.csv", HEADER + ANN + BOB))
    moved = write("moved.csv", HEADER + ANN + BOB.replace("67202", "67203"))
    result = run(sessions, "patients", moved)
    assert (result.patients_updated, result.patients_unchanged, result.rebuilt_patients) == (
        1,
        1,
        1,
    )
    assert zip_of(sessions, "B2") == "67203"
    assert run(sessions, "patients", moved).patients_updated == 0  # its new line is known now


def test_a_row_changed_by_another_file_is_put_back_by_the_export(
    site: str, sessions: sessionmaker[Session], write: Writer
) -> None:
    """The night's export, then a file of one change, then the next night's export unchanged:
    the row the change wrote no longer carries the export's line, so that line is read again."""
    export = write("patients.csv", HEADER + ANN + BOB)
    run(sessions, "patients", export)
    run(sessions, "patients", write("change.csv", HEADER + BOB.replace("67202", "67209")))
    assert zip_of(sessions, "B2") == "67209"
    result = run(sessions, "patients", export)
    assert (result.patients_updated, result.patients_unchanged) == (1, 1)
    assert zip_of(sessions, "B2") == "67202"


@pytest.mark.parametrize(
    "lines",
    [(BOB.replace("67202", "67250"), BOB), (BOB, BOB.replace("67202", "67299"))],
    ids=["the-stored-line-last", "a-new-line-last"],
)
def test_a_row_named_twice_is_refused_even_when_one_line_is_passed_over(
    site: str, sessions: sessionmaker[Session], write: Writer, lines: tuple[str, str]
) -> None:
    """B2 is stored from the line `BOB`; a file naming B2 twice, once with `BOB` itself, is read
    again in full, and the repeat is named as in any file (csv_files), nothing stored."""
    run(sessions, "patients", write("patients.csv", HEADER + ANN + BOB))
    with pytest.raises(ImportFailed, match=r"twice\.csv:4: mrn: given again \(first on line 3\)"):
        run(sessions, "patients", write("twice.csv", HEADER + ANN + "".join(lines)))
    assert zip_of(sessions, "B2") == "67202"


def test_the_same_values_under_another_header_change_nothing_and_are_known_after(
    site: str, engine: Engine, sessions: sessionmaker[Session], write: Writer
) -> None:
    """Another column order is another line: read once, found equal (no patient changed, no
    rebuild), and from then on passed over like any line stored."""
    run(sessions, "patients", write("patients.csv", HEADER + ANN))
    reordered = write(
        "reordered.csv",
        "first_name,mrn,last_name,birth_date,zip_code,state\nAnn,A1,Able,1950-03-04,66801,KS\n",
    )
    result = run(sessions, "patients", reordered)
    assert (result.patients_updated, result.patients_unchanged, result.rebuilt_patients) == (
        0,
        1,
        0,
    )
    assert zip_of(sessions, "A1") == "66801"
    with writes(engine) as written:
        assert run(sessions, "patients", reordered).patients_unchanged == 1
    assert written == []


def test_an_estimated_fill_follows_a_new_default_days_supply(
    site: str, sessions: sessionmaker[Session], write: Writer
) -> None:
    """A fill line without days supply stores the configured default: the line alone does not
    say what it stores, so a new default reads it again."""
    run(sessions, "patients", write("patients.csv", HEADER + ANN))
    run(sessions, "prescriptions", write("rx.csv", RX))
    fills = write("fills.csv", "mrn,rx_id,fill_id,fill_date,days_supply\nA1,RX-1,F-1,2026-11-20,\n")
    run(sessions, "fills", fills, days=30)
    assert run(sessions, "fills", fills, days=30).fills == 0
    assert run(sessions, "fills", fills, days=90).fills == 1
    with sessions() as s:
        assert s.scalars(select(Fill.days_supply)).one() == 90


def test_a_file_much_smaller_than_the_table_is_read_in_full_with_the_same_result(
    site: str, engine: Engine, sessions: sessionmaker[Session], write: Writer
) -> None:
    """Fewer bytes than the table has rows: the stored digests are not read (run._few_lines);
    its unchanged line still writes nothing, its changed line updates its row and keeps its
    digest, and the whole export after it passes over both lines."""
    many = "".join(f"M{n},Mo,Many,1950-03-04,66801,KS\n" for n in range(400))
    export = HEADER + ANN + BOB + many
    run(sessions, "patients", write("patients.csv", export))
    small = write("small.csv", HEADER + ANN + BOB.replace("67202", "67203"))
    assert small.stat().st_size < 402  # the table's highest id
    with writes(engine) as written:
        result = run(sessions, "patients", small)
    assert (result.patients_updated, result.patients_unchanged) == (1, 1)
    assert len(written) == 1 and "UPDATE patients" in written[0]
    assert zip_of(sessions, "B2") == "67203"
    whole = write("whole.csv", export.replace("67202", "67203"))
    before = snapshot(engine)
    with writes(engine) as written:
        again = run(sessions, "patients", whole)
    assert (again.patients_updated, again.patients_unchanged) == (0, 402)
    assert written == [] and snapshot(engine) == before
