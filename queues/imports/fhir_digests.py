"""The resources of a FHIR export already stored as they are, known by a digest of each NDJSON line.

What CSV has (queues.imports.digests), for FHIR: a row made from a bulk-data line keeps that line's
digest (`source_digest`, migration 0019), and the next import of the pharmacy passes over every line
whose digest is stored without validating it. A FHIR row depends on more than its own line, so:

- a MedicationDispense (a fill) is its line: passed over at once; its prescription still counts as
  dispensed and as in the import;
- a MedicationRequest (a prescription) is passed over at once when it names no Medication
  resource (a line with `medicationReference` is always read: the Medication may have changed);
  one left with no dispense in the import, and no estimated fill stored (made from that line),
  is read at the end after all, as its estimated fill must be made;
- a Patient's row also holds what RelatedPerson, Condition, Observation and Consent said of it
  (they have no row of their own, so they are always read): its digest is the line's mixed with
  those facts, checked when the import ends; a patient whose line and facts are as stored is
  passed over, any other is read then.

Bundles (and resources not from an NDJSON line) are always read. The digest covers the line (its
ends' whitespace left out), FHIR_RULES, the default days supply and the RxNorm table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import xxhash
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session, sessionmaker

from queues.imports.digests import _rxnorm_version
from queues.store.db import reading
from queues.store.models import Patient, Prescription

# Raise it when queues.imports.fhir reads a resource into other values than before.
FHIR_RULES = 1

TABLES = ("patients", "prescriptions", "fills")


@dataclass(frozen=True)
class StoredFill:
    fill: str  # MedicationDispense id
    prescription: str  # MedicationRequest id
    patient: str  # MRN


@dataclass(frozen=True)
class StoredRequest:
    prescription: str
    patient: str
    estimated: bool  # its estimated fill ("est:" + id) is stored


class FhirDigests:
    """For one FHIR import of one pharmacy: the digests of its stored rows, what was passed over,
    and (filled in by FhirReader.finish) the digest each record written is made from."""

    def __init__(
        self,
        patients: set[int],
        prescriptions: dict[int, StoredRequest],
        fills: dict[int, StoredFill],
        default_days_supply: int,
    ) -> None:
        self.patients = patients
        self.prescriptions = prescriptions
        self.fills = fills
        salt = f"fhir\x1e{FHIR_RULES}\x1e{default_days_supply}\x1e{_rxnorm_version()}"
        self._seed = xxhash.xxh3_64_intdigest(salt.encode())
        self.of: dict[str, dict[str, int]] = {t: {} for t in TABLES}
        self.passed: dict[str, set[int]] = defaultdict(set)

    def digest(self, line: bytes) -> int:
        # 63 bits, so it fits a signed BIGINT (as queues.imports.digests).
        return xxhash.xxh3_64_intdigest(line.strip(), self._seed) >> 1

    def facts(self, facts: dict[str, object] | None) -> int:
        """A digest of what other resources said of a patient (0 for nothing)."""
        if not facts:
            return 0
        text = repr(sorted(facts.items()))
        return xxhash.xxh3_64_intdigest(text.encode(), self._seed) >> 1

    # StoredLines (queues.imports.store)
    def line_of(self, table: str, key: str) -> int | None:
        return self.of[table].get(key) if table in self.of else None

    def was_passed(self, table: str, digest: int) -> bool:
        return digest in self.passed.get(table, ())

    def passed_count(self, table: str) -> int:
        return len(self.passed.get(table, ()))


def stored_fhir_digests(
    conn: Connection, pharmacy_id: int, default_days_supply: int
) -> FhirDigests:
    """The digests of a pharmacy's rows (those a CSV import wrote never match a FHIR line's)."""
    pid = int(pharmacy_id)
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(
            "SELECT source_digest FROM patients "
            f"WHERE pharmacy_id = {pid} AND source_digest IS NOT NULL"
        )
        patients = {d for (d,) in cursor.fetchall()}
        cursor.execute(
            "SELECT r.source_digest, r.source_id, p.mrn, EXISTS (SELECT 1 FROM fills f "
            "WHERE f.prescription_id = r.id AND f.source_id = 'est:' || r.source_id) "
            "FROM prescriptions r JOIN patients p ON p.id = r.patient_id "
            f"WHERE p.pharmacy_id = {pid} AND r.source_digest IS NOT NULL "
            "AND r.source_id IS NOT NULL"
        )
        requests = {d: StoredRequest(rx, mrn, bool(est)) for d, rx, mrn, est in cursor.fetchall()}
        cursor.execute(
            "SELECT f.source_digest, f.source_id, r.source_id, p.mrn FROM fills f "
            "JOIN prescriptions r ON r.id = f.prescription_id "
            "JOIN patients p ON p.id = r.patient_id "
            f"WHERE p.pharmacy_id = {pid} AND f.source_digest IS NOT NULL "
            "AND f.source_id IS NOT NULL AND r.source_id IS NOT NULL"
        )
        fills = {d: StoredFill(f, rx, mrn) for d, f, rx, mrn in cursor.fetchall()}
    finally:
        cursor.close()
    return FhirDigests(patients, requests, fills, default_days_supply)


def stored_prescriptions(
    sessions: sessionmaker[Session], pharmacy_id: int, ids: set[str]
) -> dict[str, set[str]]:
    """Which of `ids` (MedicationRequest ids) name a prescription stored for the pharmacy, and for
    which patients (MRNs): the requests a file of dispenses alone refers to (FhirReader.finish)."""
    found: dict[str, set[str]] = defaultdict(set)
    wanted = sorted(ids)
    with reading(sessions) as session:
        for i in range(0, len(wanted), 500):
            rows = session.execute(
                select(Prescription.source_id, Patient.mrn)
                .join(Patient, Patient.id == Prescription.patient_id)
                .where(
                    Patient.pharmacy_id == pharmacy_id,
                    Prescription.source_id.in_(wanted[i : i + 500]),
                )
            )
            for source, mrn in rows:
                if source is not None:
                    found[source].add(mrn)
    return dict(found)
