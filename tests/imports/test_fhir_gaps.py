"""What real FHIR servers do that the first import did not expect: a search the server refuses for
one resource type (404/403 with an OperationOutcome), a Medication contained in its
MedicationRequest, and the caregiver given as Patient.contact rather than a RelatedPerson."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.imports.fhir import FhirReader
from queues.imports.records import SourceUnreadable
from queues.imports.run import NoProgress, import_fhir, read_fhir
from queues.imports.settings import ImportSettings
from queues.settings import QueueSettings
from queues.store.models import Patient, Prescription
from tests.conftest import add_pharmacy
from tests.imports.conftest import FIXTURE
from tests.imports.fhir_server import CLIENT_ID, ServerState, fhir_server

NOW = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
KINDS = ("Patient", "MedicationRequest", "Immunization", "Condition")
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
NOT_SUPPORTED: dict[str, Any] = {
    "resourceType": "OperationOutcome",
    "issue": [
        {
            "severity": "error",
            "code": "not-supported",
            "diagnostics": "Resource type MedicationDispense is not supported by this server",
        }
    ],
}
FORBIDDEN: dict[str, Any] = {
    "resourceType": "OperationOutcome",
    "issue": [
        {"severity": "error", "code": "forbidden", "details": {"text": "scope lacks Consent"}}
    ],
}


def patient(pid: str, **extra: Any) -> dict[str, Any]:
    """A synthetic patient (no real person) in Wichita, Kansas."""
    return {
        "resourceType": "Patient",
        "id": pid,
        "name": [{"use": "official", "family": "Testperson", "given": ["Robin"]}],
        "birthDate": "1950-03-04",
        "gender": "female",
        "address": [{"use": "home", "postalCode": "67202", "state": "KS"}],
        "telecom": [{"system": "phone", "value": "316-555-0142", "use": "mobile"}],
        **extra,
    }


def contact(code: str, family: str, phone: str | None, **extra: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "relationship": [{"coding": [{"system": V2_0131, "code": code}]}],
        "name": {"family": family, "given": ["Casey"]},
        **extra,
    }
    if phone:
        found["telecom"] = [{"system": "phone", "value": phone}]
    return found


def request_with_contained_medication(rid: str, pid: str) -> dict[str, Any]:
    return {
        "resourceType": "MedicationRequest",
        "id": rid,
        "status": "active",
        "intent": "order",
        "subject": {"reference": f"Patient/{pid}"},
        "authoredOn": "2026-11-01",
        "contained": [
            {
                "resourceType": "Medication",
                "id": "med1",
                "code": {
                    "coding": [
                        {
                            "system": RXNORM,
                            "code": "314076",
                            "display": "lisinopril 10 MG Oral Tablet",
                        }
                    ]
                },
            }
        ],
        "medicationReference": {"reference": "#med1"},
        "dispenseRequest": {"expectedSupplyDuration": {"value": 30, "code": "d"}},
    }


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ServerState]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    monkeypatch.setenv("TEST_FHIR_KEY", pem)
    with fhir_server(FIXTURE, KINDS, key.public_key()) as state:
        yield state


def searches() -> ImportSettings:
    return ImportSettings(
        fhir_client_id=CLIENT_ID, fhir_private_key_env="TEST_FHIR_KEY", fhir_bulk=False
    )


def test_a_type_the_server_refuses_is_skipped_with_its_reason_and_the_rest_imported(
    server: ServerState,
) -> None:
    server.refused["MedicationDispense"] = (404, NOT_SUPPORTED)
    server.refused["Consent"] = (403, FORBIDDEN)
    server.refused["Observation"] = (400, b"")  # no OperationOutcome: the status alone
    batch = read_fhir(server.base, searches(), NoProgress())
    assert len(batch.patients) == 13 and len(batch.prescriptions) == 1745  # as with no refusal
    refused = {k: v for k, v in batch.skipped.items() if "search refused" in k}
    assert refused == {
        "MedicationDispense (search refused: 404: Resource type MedicationDispense is not "
        "supported by this server)": 1,
        "Consent (search refused: 403: scope lacks Consent)": 1,
        "Observation (search refused: 400)": 1,
    }


def test_a_refused_patient_search_fails_the_import_plainly(server: ServerState) -> None:
    server.refused["Patient"] = (404, NOT_SUPPORTED)
    with pytest.raises(SourceUnreadable, match=r"/Patient\?_count=1000: the server answered 404"):
        read_fhir(server.base, searches(), NoProgress())


def test_a_contained_medication_and_a_patient_contact_are_imported_from_a_server(
    server: ServerState, sessions: sessionmaker[Session]
) -> None:
    server.files["Patient"].append(
        json.dumps(
            patient(
                "contact-1",
                contact=[
                    contact("E", "Employer Desk", "316-555-0100"),  # an employer: not a caregiver
                    contact("N", "Testkin", "316-555-0199"),
                ],
            )
        )
    )
    server.files["MedicationRequest"].append(
        json.dumps(request_with_contained_medication("rx-contained", "contact-1"))
    )
    server.refused["MedicationDispense"] = (404, NOT_SUPPORTED)
    with sessions.begin() as session:
        add_pharmacy(session, "KS1")
    result = import_fhir(sessions, server.base, "KS1", NOW, QueueSettings(), searches())
    assert result.patients_created == 14
    assert (
        "not read: the server refused the search for MedicationDispense (search refused: 404: "
        "Resource type MedicationDispense is not supported by this server)"
    ) in result.lines()
    assert not [r for r in result.rejected if "rx-contained" in r.source]
    with sessions() as session:
        stored = session.scalars(select(Patient).where(Patient.mrn == "contact-1")).one()
        assert (stored.caregiver_name, stored.caregiver_relation, stored.caregiver_phone) == (
            "Casey Testkin",
            "next of kin",
            "+13165550199",
        )
        rx = session.scalars(select(Prescription).where(Prescription.patient_id == stored.id)).one()
        assert (rx.rxnorm, rx.drug_name, rx.pqa_class) == (
            "314076",
            "lisinopril 10 MG Oral Tablet",
            "RASA",
        )


def read(*resources: dict[str, Any]) -> FhirReader:
    reader = FhirReader()
    for n, r in enumerate(resources, 1):
        reader.read(r, "bundle.json", n)
    assert not reader.errors
    return reader


def test_a_related_person_wins_over_a_patient_contact_in_any_order() -> None:
    related = {
        "resourceType": "RelatedPerson",
        "id": "rp1",
        "patient": {"reference": "Patient/p1"},
        "relationship": [{"text": "daughter"}],
        "name": [{"family": "Related", "given": ["Dana"]}],
        "telecom": [{"system": "phone", "value": "316-555-0177"}],
    }
    with_contact = patient("p1", contact=[contact("N", "Testkin", "316-555-0199")])
    for order in ((related, with_contact), (with_contact, related)):
        rec = read(*order).finish().patients["p1"]
        assert (rec.caregiver_name, rec.caregiver_relation, rec.caregiver_phone) == (
            "Dana Related",
            "daughter",
            "+13165550177",
        )


def test_the_contact_with_a_phone_is_the_caregiver_and_a_desk_never_is() -> None:
    contacts = [
        contact("C", "Nophone", None),
        contact("I", "Insurer", "316-555-0111"),
        {"organization": {"display": "Home Health Co"}, "telecom": [{"system": "phone",
                                                                     "value": "316-555-0122"}]},
        contact("CP", "Reachable", "316-555-0133"),
    ]  # fmt: skip
    rec = read(patient("p2", contact=contacts)).finish().patients["p2"]
    assert (rec.caregiver_name, rec.caregiver_relation, rec.caregiver_phone) == (
        "Casey Reachable",
        "contact person",
        "+13165550133",
    )
    only_desks = [contact("E", "Employer", "316-555-0100")]
    rec = read(patient("p3", contact=only_desks)).finish().patients["p3"]
    assert rec.caregiver_name is None and rec.caregiver_phone is None


def test_a_missing_contained_medication_is_rejected_by_name() -> None:
    broken = request_with_contained_medication("rx-broken", "p4")
    broken["medicationReference"] = {"reference": "#nothere"}
    batch = read(patient("p4"), broken).finish()
    assert "rx-broken" not in batch.prescriptions
    assert [(r.source, r.reason) for r in batch.rejected] == [
        ("MedicationRequest/rx-broken", "no drug named")
    ]


def test_a_contact_whose_period_ended_is_not_a_current_caregiver() -> None:
    ended = contact("N", "Formerkin", "316-555-0144", period={"end": "2020-06-30"})
    current = contact("C", "Stillhere", "316-555-0155", period={"start": "2019-01-01"})
    later = contact("N", "Untilnextyear", "316-555-0166", period={"end": "2099-12-31"})
    rec = read(patient("p5", contact=[ended, current])).finish().patients["p5"]
    assert (rec.caregiver_name, rec.caregiver_phone) == ("Casey Stillhere", "+13165550155")
    rec = read(patient("p6", contact=[ended])).finish().patients["p6"]
    assert rec.caregiver_name is None and rec.caregiver_phone is None
    rec = read(patient("p7", contact=[later])).finish().patients["p7"]
    assert rec.caregiver_phone == "+13165550166"  # an end still ahead: current
    related = {
        "resourceType": "RelatedPerson",
        "id": "rp-ended",
        "patient": {"reference": "Patient/p8"},
        "relationship": [{"text": "son"}],
        "name": [{"family": "Gone", "given": ["Lee"]}],
        "telecom": [{"system": "phone", "value": "316-555-0188"}],
        "period": {"start": "2015-01-01", "end": "2021-01-01"},
    }
    rec = read(patient("p8", contact=[current]), related).finish().patients["p8"]
    assert rec.caregiver_name == "Casey Stillhere"  # the ended RelatedPerson does not win


def outcome(text: str, **extra: Any) -> str:
    issue = {"severity": "error", "code": "processing", "diagnostics": text, **extra}
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]})


def test_a_bulk_exports_error_files_are_counted_and_named_by_their_text_alone(
    server: ServerState, sessions: sessionmaker[Session]
) -> None:
    # The server's own words, and (in `expression`, `details.coding`) what it was reading: only
    # the words are kept.
    server.errors["err-1.ndjson"] = [
        outcome("Unable to export Observation: timeout", expression=["Patient/secret-77"]),
        outcome("MedicationDispense page 4 could not be read"),
        json.dumps({"resourceType": "Patient", "id": "p-in-error", "birthDate": "1950-01-01"}),
    ]
    server.errors["gone.ndjson"] = None  # listed, but the server answers 404
    with sessions.begin() as session:
        add_pharmacy(session, "KS1")
    bulk = ImportSettings(fhir_client_id=CLIENT_ID, fhir_private_key_env="TEST_FHIR_KEY")
    result = import_fhir(sessions, server.base, "KS1", NOW, QueueSettings(), bulk)
    assert result.patients_created == 13  # the export's data is imported whole
    errors = [(r.source, r.reason) for r in result.export_errors()]
    assert errors[:3] == [
        ("$export error (err-1.ndjson:1)", "Unable to export Observation: timeout"),
        ("$export error (err-1.ndjson:2)", "MedicationDispense page 4 could not be read"),
        (
            "$export error (err-1.ndjson:3)",
            "an error the server did not explain (no OperationOutcome text)",
        ),
    ]
    assert errors[3][0] == "$export error (gone.ndjson)"
    assert errors[3][1].startswith("the error file could not be fetched:")
    assert "404" in errors[3][1]
    assert result.as_json()["export_errors"] == 4
    said = "\n".join(result.lines())
    assert "the server's export reported 4 error(s): $export error (err-1.ndjson:1): Unable" in said
    everything = json.dumps(result.as_json())
    assert "secret-77" not in everything and "p-in-error" not in everything
    assert "1950-01-01" not in everything
