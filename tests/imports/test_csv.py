"""CSV exports in: the columns README documents, errors as file:line: field: why with nothing stored,
--skip-bad-rows, a re-import that changes nothing, and a fill that closes the task it answers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from console.cli import main
from queues.imports.records import ImportFailed, SourceUnreadable
from queues.imports.run import import_csv
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Attempt, Fill, Patient, Phone, Prescription, Task, User
from tests.imports.conftest import Writer, counts, run_json, snapshot

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
PATIENTS = (
    "mrn,first_name,last_name,birth_date,zip_code,state,language,tobacco_use\n"
    "A1,Ann,Able,1950-03-04,66801,KS,en,no\n"
    "B2,Bob,Baker,1948-11-30,67202,KS,es,yes\n"
)
PHONES = "mrn,number,kind,rank\nA1,(316) 555-0123,mobile,0\nB2,+13165550188,home,0\n"
RX = "mrn,rx_id,drug_name,rxnorm,refills_left\nA1,RX-1,Lisinopril 10 MG Oral Tablet,314076,3\n"


def fills_csv(fill_day: date, fill_id: str = "F-1", days: str = "30") -> str:
    return f"mrn,rx_id,fill_id,fill_date,days_supply\nA1,RX-1,{fill_id},{fill_day},{days}\n"


def load(site: str, capsys: pytest.CaptureFixture[str], kind: str, path: Path) -> dict[str, object]:
    return run_json(
        capsys, "import", "csv", kind, str(path), "--pharmacy", "KS1", "--database", site
    )


def test_the_four_files_load_with_or_without_a_bom(
    site: str, engine: Engine, sessions: sessionmaker[Session], write: Writer,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    patients = write("patients.csv", "\ufeff" + PATIENTS)  # Excel's UTF-8 BOM
    assert load(site, capsys, "patients", patients)["patients_created"] == 2
    assert load(site, capsys, "phones", write("phones.csv", PHONES))["phones"] == 2
    assert load(site, capsys, "prescriptions", write("rx.csv", RX))["prescriptions"] == 1
    result = load(site, capsys, "fills", write("fills.csv", fills_csv(date(2026, 11, 1))))
    assert (result["fills"], result["fills_estimated"]) == (1, 0)
    with sessions() as s:
        bob = s.scalars(select(Patient).where(Patient.mrn == "B2")).one()
        assert (bob.language, bob.tobacco_use) == ("es", True)
        assert s.scalars(select(Phone.number).order_by(Phone.number)).all() == [
            "+13165550123",
            "+13165550188",
        ]
        rx = s.scalars(select(Prescription)).one()
        assert (rx.ingredient, rx.pqa_class, rx.refills_left, rx.source_id) == (
            "lisinopril", "RASA", 3, "RX-1",
        )  # fmt: skip


def test_a_fill_without_days_supply_is_estimated(
    site: str, sessions: sessionmaker[Session], write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    load(site, capsys, "patients", write("p.csv", PATIENTS))
    load(site, capsys, "prescriptions", write("rx.csv", RX))
    result = load(site, capsys, "fills", write("f.csv", fills_csv(date(2026, 11, 1), days="")))
    assert result["fills_estimated"] == 1
    with sessions() as s:
        fill = s.scalars(select(Fill)).one()
        assert (fill.estimated, fill.days_supply) == (True, ImportSettings().default_days_supply)


def test_bad_rows_are_named_and_nothing_is_stored(
    site: str, engine: Engine, write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(
        "patients.csv",
        PATIENTS + "C3,Cy,Cole,1950-02-30,66801,KS,en,no\nD4,Di,Dunn,1951-01-01,6680,KS,en,maybe\n",
    )
    capsys.readouterr()
    assert (
        main(["import", "csv", "patients", str(path), "--pharmacy", "KS1", "--database", site]) == 1
    )
    err = capsys.readouterr().err
    assert f"{path}:4: birth_date: not a date like 2026-12-02" in err
    assert f"{path}:5: zip_code: not a 5-digit ZIP code" in err
    assert "nothing was stored" in err
    assert "Traceback" not in err
    assert counts(engine)["patients"] == 0


def test_skip_bad_rows_stores_the_good_ones_and_reports_the_rest(
    site: str, engine: Engine, write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("patients.csv", PATIENTS + "C3,Cy,Cole,not-a-date,66801,KS,en,no\n")
    capsys.readouterr()
    argv = ["import", "csv", "patients", str(path), "--pharmacy", "KS1", "--database", site]
    assert main([*argv, "--skip-bad-rows", "--json"]) == 0
    import json

    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["patients_created"] == 2
    assert result["rejected"] == [
        {"source": f"{path}:4", "reason": "birth_date: not a date like 2026-12-02"}
    ]


def test_a_fill_for_an_unknown_patient_fails_the_file_unless_skipped(
    site: str, engine: Engine, write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    load(site, capsys, "patients", write("p.csv", PATIENTS))
    load(site, capsys, "prescriptions", write("rx.csv", RX))
    bad = write("f.csv", fills_csv(date(2026, 11, 1)) + "Z9,RX-9,F-9,2026-11-02,30\n")
    capsys.readouterr()
    argv = ["import", "csv", "fills", str(bad), "--pharmacy", "KS1", "--database", site]
    assert main(argv) == 1
    assert f"{bad}:3: mrn: no patient Z9 at this pharmacy" in capsys.readouterr().err
    assert counts(engine)["fills"] == 0
    assert main([*argv, "--skip-bad-rows"]) == 0
    assert counts(engine)["fills"] == 1


def test_a_missing_column_or_file_is_one_clear_error(
    site: str, write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write("p.csv", "mrn,first_name\nA1,Ann\n")
    capsys.readouterr()
    assert (
        main(["import", "csv", "patients", str(path), "--pharmacy", "KS1", "--database", site]) == 1
    )
    err = capsys.readouterr().err
    assert f"{path}:1: header: missing column(s) last_name, birth_date, zip_code, state" in err
    assert (
        main(
            ["import", "csv", "fills", "/nonexistent.csv", "--pharmacy", "KS1", "--database", site]
        )
        == 1
    )
    assert "/nonexistent.csv" in capsys.readouterr().err
    assert (
        main(["import", "csv", "fills", str(path), "--pharmacy", "NOPE", "--database", site]) == 1
    )
    assert "no pharmacy 'NOPE'" in capsys.readouterr().err


def test_reimporting_a_file_changes_nothing_and_a_change_updates_in_place(
    site: str, engine: Engine, sessions: sessionmaker[Session], write: Writer,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    path = write("p.csv", PATIENTS)
    load(site, capsys, "patients", path)
    before = snapshot(engine)
    again = load(site, capsys, "patients", path)
    assert (again["patients_created"], again["patients_updated"], again["patients_unchanged"]) == (
        0, 0, 2,
    )  # fmt: skip
    assert snapshot(engine) == before
    changed = load(site, capsys, "patients", write("p2.csv", PATIENTS.replace("66801", "66802")))
    assert (changed["patients_updated"], changed["patients_unchanged"]) == (1, 1)
    with sessions() as s:
        assert s.scalars(select(Patient.zip_code).where(Patient.mrn == "A1")).one() == "66802"


def test_an_imported_fill_closes_the_refill_task_and_credits_the_call_that_asked(
    site: str, sessions: sessionmaker[Session], write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    queue = QueueSettings()
    settings = ImportSettings()
    for kind, text in (("patients", PATIENTS), ("prescriptions", RX)):
        import_csv(sessions, kind, write(f"{kind}.csv", text), "KS1", NOW, queue, settings)
    # Filled 26 days ago for 30: runs out in 4 days, inside the refill window.
    import_csv(
        sessions,
        "fills",
        write("f1.csv", fills_csv(date(2026, 11, 6))),
        "KS1",
        NOW,
        queue,
        settings,
    )
    with sessions() as s:
        task = s.scalars(select(Task).where(Task.subject.like("rx:%"))).one()
        assert task.status == "open"
    with sessions.begin() as s:
        agent = User(username="a1", display_name="A", role="agent", password_hash="x")
        s.add(agent)
        s.flush()
        patient_id = s.scalars(select(Patient.id).where(Patient.mrn == "A1")).one()
        call = Attempt(
            uid="call-1", patient_id=patient_id, user_id=agent.id, started_at=NOW + timedelta(hours=1),
            ended_at=NOW + timedelta(hours=1, minutes=2), disposition="completed",
        )  # fmt: skip
        s.add(call)
        s.flush()
        call_id = call.id
    later = NOW + timedelta(days=1)
    refill = write("f2.csv", fills_csv(date(2026, 12, 3), fill_id="F-2"))
    result = import_csv(sessions, "fills", refill, "KS1", later, queue, settings)
    assert result.fills == 1 and result.rebuilt_patients == 1
    with sessions() as s:
        task = s.get(Task, task.id)
        assert task is not None
        assert (task.status, task.closed_reason, task.success_attempt_id) == (
            "closed", "filled", call_id,
        )  # fmt: skip


FIELDS = ("mrn", "first_name", "last_name", "birth_date", "zip_code", "state")
cell = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(st.lists(cell, min_size=0, max_size=8), min_size=1, max_size=5))
def test_any_malformed_patients_file_fails_clearly_and_stores_nothing(
    site: str, engine: Engine, tmp_path: Path, rows: list[list[str]]
) -> None:
    import csv

    path = tmp_path / "fuzz.csv"
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(FIELDS)
        out.writerows(rows)
        out.writerow(["X", "", "", "", "", ""])  # one row is always bad (empty names)
    from sqlalchemy.orm import sessionmaker as make

    sessions = make(engine)
    with pytest.raises((ImportFailed, SourceUnreadable)) as failure:
        import_csv(sessions, "patients", path, "KS1", NOW, QueueSettings(), ImportSettings())
    first = str(failure.value).splitlines()[1 if isinstance(failure.value, ImportFailed) else 0]
    assert first.startswith(f"{path}:")
    assert counts(engine)["patients"] == 0
