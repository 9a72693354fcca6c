"""A death recorded on a call is not undone by the pharmacy's next export, which still lists the
patient as alive (it lags the call by days): the patient stays deceased and out of every queue,
while the rest of the export's line (a new ZIP) still applies."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.imports.run import import_csv
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Patient, QueueEntry
from tests.imports.conftest import Writer

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
HEADER = "mrn,first_name,last_name,birth_date,zip_code,state\n"


def run(sessions: sessionmaker[Session], path: Path) -> None:
    import_csv(sessions, "patients", path, "KS1", NOW, QueueSettings(), ImportSettings())


def test_an_export_that_lags_a_recorded_death_does_not_bring_the_patient_back(
    site: str, sessions: sessionmaker[Session], write: Writer
) -> None:
    run(sessions, write("patients.csv", HEADER + "A1,Ann,Able,1950-03-04,66801,KS\n"))
    with sessions.begin() as s:
        # What queues.outcomes leaves when an agent records the disposition "deceased".
        s.execute(update(Patient).where(Patient.mrn == "A1").values(deceased=True))
    run(sessions, write("patients2.csv", HEADER + "A1,Ann,Able,1950-03-04,67202,KS\n"))
    with sessions() as s:
        ann = s.scalars(select(Patient).where(Patient.mrn == "A1")).one()
        assert ann.deceased is True
        assert ann.zip_code == "67202"
        waiting = s.scalars(select(QueueEntry.status).where(QueueEntry.patient_id == ann.id)).all()
        assert "open" not in waiting
