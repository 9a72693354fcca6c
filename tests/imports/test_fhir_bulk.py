"""The shared bulk export (13 synthetic patients) in, end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from queues.store.models import Fill, Patient, Phone, Prescription, Task
from tests.imports.conftest import FIXTURE, counts, run_json, snapshot


def test_the_bulk_fixture_imports_and_builds_its_patients_queues(
    site: str, engine: Engine, sessions: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_json(
        capsys, "import", "fhir", str(FIXTURE), "--pharmacy", "KS1", "--database", site
    )
    assert result["patients_created"] == 13
    assert result["patients_updated"] == result["patients_unchanged"] == 0
    assert result["prescriptions"] == 1745
    # No MedicationDispense in the export: each prescription gets one estimated fill.
    assert result["fills"] == result["fills_estimated"] == 1745
    assert result["immunizations"] > 0 and result["conditions"] >= 1
    assert result["skipped_resources"]["Encounter"] == 1215
    assert result["rejected"] == []
    assert set(result) >= {
        "patients_created", "patients_updated", "patients_unchanged", "rejected", "prescriptions",
        "fills", "fills_estimated", "conditions", "immunizations", "skipped_resources", "seconds",
    }  # fmt: skip
    with sessions() as s:
        patients = s.scalars(select(Patient)).all()
        assert all(p.zip_code.isdigit() and p.state == "KS" for p in patients)
        assert sum(p.deceased for p in patients) == 3
        assert {ph.number[:2] for ph in s.scalars(select(Phone))} == {"+1"}
        lisinopril = s.scalars(select(Prescription).where(Prescription.rxnorm == "314076")).first()
        assert lisinopril is not None and lisinopril.pqa_class == "RASA"
        assert all(f.estimated and f.days_supply == 30 for f in s.scalars(select(Fill)))
        # The vaccine campaign found the living patients old enough, at once (scoped build).
        assert s.scalars(select(Task).where(Task.status == "open")).first() is not None


def test_importing_the_same_export_again_changes_nothing(
    site: str, engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    run_json(capsys, "import", "fhir", str(FIXTURE), "--pharmacy", "KS1", "--database", site)
    before = snapshot(engine)
    again = run_json(
        capsys, "import", "fhir", str(FIXTURE), "--pharmacy", "KS1", "--database", site
    )
    assert (again["patients_created"], again["patients_updated"]) == (0, 0)
    assert again["patients_unchanged"] == 13
    assert again["prescriptions"] == again["fills"] == again["immunizations"] == 0
    assert snapshot(engine) == before
    assert counts(engine)["patients"] == 13


def test_an_estimated_run_out_says_so_in_the_patient_context(
    site: str, sessions: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import date

    from queues.context import load_patient_context

    run_json(capsys, "import", "fhir", str(FIXTURE), "--pharmacy", "KS1", "--database", site)
    with sessions() as s:
        rx = s.scalars(select(Prescription).where(Prescription.active.is_(True))).first()
        assert rx is not None
        patient = s.get_one(Patient, rx.patient_id)
        context = load_patient_context(
            s,
            rx.patient_id,
            user_id=0,
            pharmacy_ids=(patient.pharmacy_id,),
            today=date(2026, 12, 2),
        )
    medication = next(m for m in context.medications if m.prescription_id == rx.id)
    assert medication.estimated and medication.recent_fills[-1].estimated
