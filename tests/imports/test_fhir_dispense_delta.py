"""A pharmacy's daily delta of dispenses: a FHIR file of MedicationDispenses alone (their
MedicationRequests imported before) is stored against the prescriptions stored for that pharmacy
under the requests' ids, closes the refill task it answers and credits the call that asked; a
dispense whose request is neither in the file nor stored is listed in `rejected` and the rest is
imported. As a bundle and as NDJSON (whose stored lines are passed over). Both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from console.cli import main
from queues.imports.run import import_fhir
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Attempt, Fill, Patient, Prescription, Task, User
from tests.imports.test_fhir_dates import dispense, request
from tests.imports.test_fhir_fill_credits import bundle
from tests.imports.test_fhir_gaps import patient

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def ndjson(path: Path, *resources: dict[str, Any]) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in resources))
    return str(path)


def _first_import(sessions: sessionmaker[Session], tmp_path: Path, as_ndjson: bool) -> int:
    """p1 with rx1 (handed over 26 days ago for 30: due for a refill) and p2 with rx2; the
    refill task's id."""
    resources = (
        patient("p1"),
        patient("p2"),
        request("rx1", "p1", authored="2026-10-01"),
        request("rx2", "p2", authored="2026-10-01"),
        dispense("d1", "rx1", "2026-11-06"),
        dispense("d2", "rx2", "2026-11-06"),
    )
    source = (
        ndjson(tmp_path / "first.ndjson", *resources)
        if as_ndjson
        else bundle(tmp_path / "first.json", *resources)
    )
    result = import_fhir(sessions, source, "KS1", NOW, QueueSettings(), ImportSettings())
    assert (result.patients_created, result.fills, result.rejected) == (2, 2, [])
    with sessions() as s:
        p1 = s.scalars(select(Patient.id).where(Patient.mrn == "p1")).one()
        return s.scalars(
            select(Task.id).where(Task.patient_id == p1, Task.subject.like("rx:%"))
        ).one()


def _the_call_that_asked(sessions: sessionmaker[Session]) -> int:
    with sessions.begin() as s:
        agent = User(username="a1", display_name="A", role="agent", password_hash="x")
        s.add(agent)
        s.flush()
        p1 = s.scalars(select(Patient.id).where(Patient.mrn == "p1")).one()
        call = Attempt(
            uid="call-1", patient_id=p1, user_id=agent.id, started_at=NOW + timedelta(hours=1),
            ended_at=NOW + timedelta(hours=1, minutes=2), disposition="completed",
        )  # fmt: skip
        s.add(call)
        s.flush()
        return call.id


@pytest.mark.parametrize("as_ndjson", [False, True], ids=["bundle", "ndjson"])
def test_a_file_of_dispenses_alone_closes_the_refill_task_and_credits_the_call(
    site: str, sessions: sessionmaker[Session], tmp_path: Path, as_ndjson: bool
) -> None:
    task_id = _first_import(sessions, tmp_path, as_ndjson)
    call_id = _the_call_that_asked(sessions)
    # The next day's delta: the new dispenses only; rx9 was never sent.
    delta = (
        dispense("d3", "rx1", "2026-12-03"),
        dispense("d4", "rx2", "2026-12-03"),
        dispense("d5", "rx9", "2026-12-03"),
    )
    source = (
        ndjson(tmp_path / "delta.ndjson", *delta)
        if as_ndjson
        else bundle(tmp_path / "delta.json", *delta)
    )
    result = import_fhir(
        sessions, source, "KS1", NOW + timedelta(days=1), QueueSettings(), ImportSettings()
    )
    assert result.fills == 2
    assert [(r.source, r.reason) for r in result.rejected] == [
        (
            "MedicationDispense/d5",
            "its prescription MedicationRequest/rx9 is neither in this import nor stored for "
            "this pharmacy",
        )
    ]
    with sessions() as s:
        fills = s.execute(
            select(Fill.source_id, Patient.mrn)
            .join(Prescription, Prescription.id == Fill.prescription_id)
            .join(Patient, Patient.id == Prescription.patient_id)
        ).all()
        assert sorted(fills) == [("d1", "p1"), ("d2", "p2"), ("d3", "p1"), ("d4", "p2")]
        closed = s.get_one(Task, task_id)
        assert (closed.status, closed.closed_reason, closed.success_attempt_id) == (
            "closed", "filled", call_id,
        )  # fmt: skip
    # The same delta again changes nothing and rejects the same dispense.
    again = import_fhir(
        sessions, source, "KS1", NOW + timedelta(days=1), QueueSettings(), ImportSettings()
    )
    assert (again.fills, [r.source for r in again.rejected]) == (0, ["MedicationDispense/d5"])


def test_a_dispense_naming_another_patient_than_its_stored_request_is_rejected(
    site: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    _first_import(sessions, tmp_path, as_ndjson=False)
    wrong = {**dispense("d3", "rx1", "2026-12-03"), "subject": {"reference": "Patient/p2"}}
    right = {**dispense("d4", "rx2", "2026-12-03"), "subject": {"reference": "Patient/p2"}}
    source = bundle(tmp_path / "delta.json", wrong, right)
    result = import_fhir(
        sessions, source, "KS1", NOW + timedelta(days=1), QueueSettings(), ImportSettings()
    )
    assert result.fills == 1
    assert [(r.source, r.reason) for r in result.rejected] == [
        (
            "MedicationDispense/d3",
            "its prescription MedicationRequest/rx1 is neither in this import nor stored for "
            "this pharmacy (for Patient/p2)",
        )
    ]


def test_the_command_imports_a_delta_of_dispenses_and_lists_the_unknown_one(
    site: str, sessions: sessionmaker[Session], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _first_import(sessions, tmp_path, as_ndjson=False)
    source = bundle(
        tmp_path / "delta.json",
        dispense("d3", "rx1", "2026-12-03"),
        dispense("d5", "rx9", "2026-12-03"),
    )
    capsys.readouterr()
    rc = main(["import", "fhir", source, "--pharmacy", "KS1", "--database", site, "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    assert rc == 0
    summary = json.loads(out[-1])
    assert summary["fills"] == 1
    assert summary["rejected"] == [
        {
            "source": "MedicationDispense/d5",
            "reason": "its prescription MedicationRequest/rx9 is neither in this import nor "
            "stored for this pharmacy",
        }
    ]
