"""Dates no real record carries are refused by the FHIR reader, as the CSV reader refuses them: a
dispense dated 9999-12-30 stored would overflow the rebuild's run-out arithmetic, a birth in 1850
is a typo. Each is named in the import's `rejected` list; the resources beside them still import."""

from __future__ import annotations

from typing import Any

from queues.imports.fhir import FhirReader
from queues.imports.records import Batch
from tests.imports.test_fhir_gaps import patient

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"


def request(rid: str, pid: str, authored: str = "2026-10-01") -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": authored,
        "medicationCodeableConcept": {
            "coding": [{"system": RXNORM, "code": "314076", "display": "lisinopril 10 MG"}]
        },
    }


def dispense(did: str, rid: str, handed_over: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationDispense",
        "id": did,
        "status": "completed",
        "authorizingPrescription": [{"reference": f"MedicationRequest/{rid}"}],
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": "314076"}]},
        "whenHandedOver": handed_over,
        "daysSupply": {"value": 30},
    }


def read(*resources: dict[str, Any]) -> Batch:
    reader = FhirReader()
    for n, r in enumerate(resources, 1):
        reader.read(r, "bundle.json", n)
    assert not reader.errors
    return reader.finish()


def reasons(batch: Batch) -> dict[str, str]:
    return {r.source: r.reason for r in batch.rejected}


def test_a_dispense_dated_in_the_year_9999_is_rejected_and_the_good_one_kept() -> None:
    batch = read(
        patient("p1"),
        request("rx1", "p1"),
        dispense("d-good", "rx1", "2026-11-01"),
        dispense("d-far", "rx1", "9999-12-30"),
    )
    assert set(batch.fills) == {"d-good"}
    why = reasons(batch)["MedicationDispense/d-far"]
    assert "9999-12-30" in why and "a year from today" in why


def test_a_birth_in_1850_and_a_prescription_written_in_3000_are_rejected() -> None:
    batch = read(
        patient("old", birthDate="1850-01-01"),
        patient("p2"),
        request("rx-future", "p2", authored="3000-01-01"),
        request("rx-ok", "p2"),
    )
    assert set(batch.patients) == {"p2"}
    why = reasons(batch)
    assert "1850-01-01" in why["Patient/old"]
    assert "3000-01-01" in why["MedicationRequest/rx-future"]
    assert "MedicationRequest/rx-ok" not in why
