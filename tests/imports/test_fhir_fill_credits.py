"""A fill that arrives by a FHIR import (a MedicationDispense) closes the refill task it answers and
credits the call that asked, as a CSV fills file does (tests/imports/test_csv.py): the rebuild
after any import does it. Both backends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.imports.run import import_fhir
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Attempt, Patient, Task, User
from tests.imports.test_fhir_dates import dispense, request
from tests.imports.test_fhir_gaps import patient

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def bundle(path: Path, *resources: dict[str, Any]) -> str:
    entries = [{"resource": r} for r in resources]
    path.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    return str(path)


def test_a_dispense_imported_from_fhir_closes_the_refill_task_and_credits_the_call(
    site: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    queue, settings = QueueSettings(), ImportSettings()
    # Handed over 26 days ago for 30: runs out in 4 days, inside the refill window.
    first = bundle(
        tmp_path / "first.json",
        patient("p1"),
        request("rx1", "p1", authored="2026-10-01"),
        dispense("d1", "rx1", "2026-11-06"),
    )
    result = import_fhir(sessions, first, "KS1", NOW, queue, settings)
    assert (result.patients_created, result.fills, result.fills_estimated) == (1, 1, 0)
    with sessions() as s:
        task = s.scalars(select(Task).where(Task.subject.like("rx:%"))).one()
        assert task.status == "open"
        task_id = task.id
    with sessions.begin() as s:  # the call that asked for the refill
        agent = User(username="a1", display_name="A", role="agent", password_hash="x")
        s.add(agent)
        s.flush()
        patient_id = s.scalars(select(Patient.id)).one()  # the only one
        call = Attempt(
            uid="call-1", patient_id=patient_id, user_id=agent.id, started_at=NOW + timedelta(hours=1),
            ended_at=NOW + timedelta(hours=1, minutes=2), disposition="completed",
        )  # fmt: skip
        s.add(call)
        s.flush()
        call_id = call.id
    later = NOW + timedelta(days=1)
    # The next export: what it held before and the new dispense. (A file of the new dispense
    # alone does as well: tests/imports/test_fhir_dispense_delta.py.)
    refill = bundle(
        tmp_path / "refill.json",
        patient("p1"),
        request("rx1", "p1", authored="2026-10-01"),
        dispense("d1", "rx1", "2026-11-06"),
        dispense("d2", "rx1", "2026-12-03"),
    )
    result = import_fhir(sessions, refill, "KS1", later, queue, settings)
    assert (result.patients_unchanged, result.fills, result.rebuilt_patients) == (1, 1, 1)
    with sessions() as s:
        closed = s.get_one(Task, task_id)
        assert (closed.status, closed.closed_reason, closed.success_attempt_id) == (
            "closed", "filled", call_id,
        )  # fmt: skip
