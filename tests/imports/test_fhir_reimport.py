"""The nightly re-import of a FHIR bulk export: the lines stored as they are are passed over by their
digest, unvalidated (queues.imports.fhir_digests), and what changed since — a line, or what another
resource says of a patient — ends as a reading of every line would leave it. Large files are read
by a pool of worker processes, into the same Batch one process makes."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

import queues.imports.fhir as fhir
import queues.imports.fhir_files as fhir_files
import queues.imports.run as run
from queues.imports.fhir_digests import FhirDigests
from queues.imports.run import ImportSummary, NoProgress, import_fhir, read_fhir
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Fill, Patient, Pharmacy, Prescription
from tests.conftest import add_pharmacy
from tests.imports.conftest import FIXTURE, writes

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
READ_KINDS = ("Patient", "MedicationRequest", "Condition", "Immunization", "Encounter")


def export(folder: Path, requests: int | None = None) -> Path:
    """The shared fixture's files the import reads (and one it skips), plus dispenses for the
    first three prescriptions; `requests`: only that many of its prescriptions."""
    folder.mkdir()
    for kind in READ_KINDS:
        shutil.copy(FIXTURE / f"{kind}.000.ndjson", folder / f"{kind}.000.ndjson")
    if requests is not None:
        write(folder, "MedicationRequest", lines(folder, "MedicationRequest")[:requests])
    dispensed = lines(folder, "MedicationRequest")[:3]
    dispenses = [dispense(f"md-{n}", r["id"], r["subject"]["reference"], 30) for n, r in
                 enumerate(dispensed)]  # fmt: skip
    write(folder, "MedicationDispense", dispenses)
    return folder


def dispense(did: str, rx: str, subject: str, days: int) -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": did,
        "status": "completed",
        "subject": {"reference": subject},
        "medicationCodeableConcept": {"text": "as prescribed"},
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rx}"}],
        "whenHandedOver": "2026-10-01",
        "daysSupply": {"value": days, "unit": "days", "code": "d"},
    }


def lines(folder: Path, kind: str) -> list[dict[str, Any]]:
    path = folder / f"{kind}.000.ndjson"
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def write(folder: Path, kind: str, resources: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in resources)
    (folder / f"{kind}.000.ndjson").write_text(text)


def run_import(sessions: sessionmaker[Session], folder: Path, code: str) -> ImportSummary:
    return import_fhir(sessions, str(folder), code, NOW, QueueSettings(), ImportSettings())


@contextmanager
def validated() -> Iterator[dict[str, int]]:
    """How many resources of each type fhir.resources validated while the block ran."""
    seen: dict[str, int] = {}
    original = fhir._model

    def counting(kind: str) -> Any:
        seen[kind] = seen.get(kind, 0) + 1
        return original(kind)

    fhir._model = counting
    try:
        yield seen
    finally:
        fhir._model = original


def stored(sessions: sessionmaker[Session], code: str) -> dict[str, Any]:
    """A pharmacy's imported rows by their source ids, without row ids or digests."""
    skip = {"id", "patient_id", "pharmacy_id", "prescription_id", "source_digest"}

    def values(row: Any) -> tuple[Any, ...]:
        return tuple(
            (c.name, getattr(row, c.key)) for c in row.__table__.columns if c.name not in skip
        )

    with sessions() as s:
        pid = s.scalars(select(Pharmacy.id).where(Pharmacy.code == code)).one()
        patients = {p.mrn: values(p) for p in s.scalars(select(Patient).where(
            Patient.pharmacy_id == pid))}  # fmt: skip
        rx = s.execute(
            select(Prescription, Patient.mrn)
            .join(Patient, Patient.id == Prescription.patient_id)
            .where(Patient.pharmacy_id == pid)
        ).all()
        fills = s.execute(
            select(Fill, Prescription.source_id)
            .join(Prescription, Prescription.id == Fill.prescription_id)
            .join(Patient, Patient.id == Prescription.patient_id)
            .where(Patient.pharmacy_id == pid)
        ).all()
        return {
            "patients": patients,
            "prescriptions": {(mrn, r.source_id): values(r) for r, mrn in rx},
            "fills": {(src, f.source_id): values(f) for f, src in fills},
        }


def test_the_same_export_again_validates_no_stored_line_and_writes_no_row(
    site: str, engine: Engine, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = export(tmp_path / "export")
    first = run_import(sessions, folder, "KS1")
    assert first.patients_created == 13 and first.fills == 1745  # 3 dispensed, 1742 estimated
    before = stored(sessions, "KS1")
    with validated() as seen, writes(engine) as written:
        again = run_import(sessions, folder, "KS1")
    assert (again.patients_created, again.patients_updated, again.patients_unchanged) == (0, 0, 13)
    assert again.prescriptions == again.fills == 0 and again.rejected == []
    # No Patient, MedicationRequest or MedicationDispense line validated; only the resources that
    # make no row of their own (their facts are a patient's) are read again.
    assert set(seen) <= {"Condition", "Immunization"}, seen
    assert written == []
    assert stored(sessions, "KS1") == before


def test_what_changed_is_read_again_and_ends_as_a_full_reading_leaves_it(
    site: str,
    sessions: sessionmaker[Session],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pharmacy KS1 re-imports with digests, KS2 the same two exports reading every line."""
    with sessions.begin() as s:
        add_pharmacy(s, "KS2", state="KS")
    first = export(tmp_path / "first", requests=200)  # five imports: kept small
    second = export(tmp_path / "second", requests=200)
    patients = lines(second, "Patient")
    patients[0]["address"][0]["postalCode"] = "67203"  # a line changed
    write(second, "Patient", patients)
    living = next(p for p in patients[1:] if not p.get("deceasedDateTime"))
    # A fact from another resource, about a patient whose own line is unchanged.
    related = {
        "resourceType": "RelatedPerson",
        "id": "rp-new",
        "patient": {"reference": f"Patient/{living['id']}"},
        "relationship": [{"text": "daughter"}],
        "name": [{"family": "Testkin", "given": ["Dana"]}],
        "telecom": [{"system": "phone", "value": "316-555-0177"}],
    }
    write(second, "RelatedPerson", [related])
    dispenses = lines(second, "MedicationDispense")
    dispenses[1]["daysSupply"]["value"] = 90  # a changed fill
    del dispenses[2]  # its prescription has no dispense now: an estimate is made again
    requests = lines(second, "MedicationRequest")
    dispenses.append(
        dispense("md-new", requests[5]["id"], requests[5]["subject"]["reference"], 28)
    )  # a prescription estimated so far gets a real dispense
    write(second, "MedicationDispense", dispenses)

    for folder in (first, second):
        run_import(sessions, folder, "KS1")
    with monkeypatch.context() as m:
        m.setattr(run, "stored_fhir_digests", lambda _c, _p, days: FhirDigests(set(), {}, {}, days))
        for folder in (first, second):
            run_import(sessions, folder, "KS2")
    with validated() as seen:
        again = run_import(sessions, second, "KS1")  # and once more: nothing left to read
    assert (again.patients_updated, again.prescriptions, again.fills) == (0, 0, 0)
    assert seen.get("Patient", 0) == 0 and seen.get("MedicationDispense", 0) == 0
    ks1 = stored(sessions, "KS1")
    assert ks1 == stored(sessions, "KS2")
    caregiver = dict(ks1["patients"][living["id"]])
    assert (caregiver["caregiver_name"], caregiver["caregiver_phone"]) == (
        "Dana Testkin",
        "+13165550177",
    )
    assert dict(ks1["patients"][patients[0]["id"]])["zip_code"] == "67203"


def test_a_changed_line_is_read_and_the_rest_passed_over(
    site: str, sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    folder = export(tmp_path / "export")
    run_import(sessions, folder, "KS1")
    patients = lines(folder, "Patient")
    patients[3]["gender"] = "other"
    write(folder, "Patient", patients)
    with validated() as seen:
        again = run_import(sessions, folder, "KS1")
    assert (again.patients_updated, again.patients_unchanged) == (1, 12)
    assert seen.get("Patient") == 1 and seen.get("MedicationRequest", 0) == 0


def test_a_pool_of_workers_reads_what_one_process_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = export(tmp_path / "export")
    # Smoking statuses out of date order, in different shares of the file: the newest wins.
    observations = [
        smoking("o1", "p-smoke", "2024-01-01", "77176002"),  # a smoker, then
        smoking("o2", "p-smoke", "2025-06-01", "8517006"),  # a former smoker, newest
        smoking("o3", "p-smoke", "2023-01-01", "77176002"),  # older again
    ]
    write(folder, "Observation", observations)
    extra = lines(folder, "Patient")[0] | {"id": "p-smoke"}
    with (folder / "Patient.000.ndjson").open("a") as handle:
        handle.write(json.dumps(extra) + "\n")
    one = read_fhir(str(folder), ImportSettings(), NoProgress())
    monkeypatch.setattr(fhir_files, "PARSE_WORKERS", 2)
    monkeypatch.setattr(fhir_files, "_cores", lambda: 2)
    monkeypatch.setattr(fhir_files, "POOL_MIN_BYTES", 0)
    monkeypatch.setattr(fhir_files, "CHUNK_LINES", 1)
    pooled = read_fhir(str(folder), ImportSettings(), NoProgress())
    assert pooled == one
    assert pooled.patients["p-smoke"].tobacco_use is False
    assert len(pooled.prescriptions) == 1745 and len(pooled.fills) == 1745


def smoking(oid: str, patient: str, when: str, code: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "72166-2"}]},
        "subject": {"reference": f"Patient/{patient}"},
        "effectiveDateTime": when,
        "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": code}]},
    }
