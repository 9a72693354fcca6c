"""An import is all or nothing: a failure after its rows were written (here the database refuses
the import's own audit row, the last thing its transaction writes, after the store and the
queues' rebuild) leaves the database as it was, and the command says so in one line, with no
traceback. A real refusal by the database (a trigger), on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from console.cli import main
from tests.imports.conftest import FIXTURE, Writer, counts, snapshot

PATIENTS = (
    "mrn,first_name,last_name,birth_date,zip_code,state\n"
    "A1,Ann,Able,1950-03-04,66801,KS\n"
    "B2,Bob,Baker,1948-11-30,67202,KS\n"
)
CHANGED = PATIENTS.replace("Able", "Abel") + "C3,Cy,Cole,1947-01-02,67202,KS\n"
WHY = "simulated failure at the end of an import"


def refuse_the_import_audit_row(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_import BEFORE INSERT ON audit_events "
                    "WHEN NEW.action = 'data_imported' "
                    f"BEGIN SELECT RAISE(ABORT, '{WHY}'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse_import() RETURNS trigger LANGUAGE plpgsql AS "
                    f"$$ BEGIN RAISE EXCEPTION '{WHY}'; END $$"
                )
            )
            conn.execute(
                text(
                    "CREATE TRIGGER refuse_import BEFORE INSERT ON audit_events FOR EACH ROW "
                    "WHEN (NEW.action = 'data_imported') EXECUTE FUNCTION refuse_import()"
                )
            )


def allow_it_again(engine: Engine) -> None:
    on = "" if engine.dialect.name == "sqlite" else " ON audit_events"
    with engine.begin() as conn:
        conn.execute(text(f"DROP TRIGGER refuse_import{on}"))


def fails_plainly(capsys: pytest.CaptureFixture[str], *argv: str) -> None:
    capsys.readouterr()
    assert main(list(argv)) == 1
    err = capsys.readouterr().err
    assert err.startswith("outreach: ") and "Traceback" not in err, err


def test_a_csv_import_that_fails_at_its_end_leaves_the_database_as_it_was(
    site: str, engine: Engine, write: Writer, capsys: pytest.CaptureFixture[str]
) -> None:
    def load(path: Path) -> int:
        return main(
            ["import", "csv", "patients", str(path), "--pharmacy", "KS1", "--database", site]
        )

    assert load(write("patients.csv", PATIENTS)) == 0
    before = snapshot(engine)
    refuse_the_import_audit_row(engine)
    changed = write("changed.csv", CHANGED)  # one patient changed, one new
    fails_plainly(
        capsys, "import", "csv", "patients", str(changed), "--pharmacy", "KS1", "--database", site
    )
    assert snapshot(engine) == before
    allow_it_again(engine)  # the refusal was what stopped it: the same file now goes in
    assert load(changed) == 0 and snapshot(engine) != before


def test_a_fhir_import_that_fails_at_its_end_stores_nothing(
    site: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    before = counts(engine)
    refuse_the_import_audit_row(engine)
    fails_plainly(capsys, "import", "fhir", str(FIXTURE), "--pharmacy", "KS1", "--database", site)
    assert counts(engine) == before
    allow_it_again(engine)
    assert main(["import", "fhir", str(FIXTURE), "--pharmacy", "KS1", "--database", site]) == 0
    assert counts(engine)["patients"] == before["patients"] + 13
