"""FHIR R4 resources → import records, through `fhir.resources`' models (the R4B package: R4's
resources as R4B keeps them, validated by pydantic), never hand-walked dicts.

Read: Patient (with Patient.contact as the caregiver when no RelatedPerson names one), RelatedPerson
(caregiver), Medication (also contained in a MedicationRequest), MedicationRequest, MedicationDispense (fills),
Condition (diabetes, ESRD, hospice), Immunization (the vaccines the campaigns ask about),
Observation (tobacco smoking status), Consent. Every other resource type is counted and skipped.
A prescription with no dispense gets one estimated fill (`FhirReader.finish`). With the digests of
a pharmacy's stored rows (queues.imports.fhir_digests) the lines stored as they are are passed over
unvalidated, and `finish` reads the few whose row depends on what changed elsewhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import phonenumbers
from pydantic import ValidationError

from queues.adherence.supply import MAX_DAYS_SUPPLY
from queues.imports.fhir_digests import FhirDigests, StoredFill, StoredRequest
from queues.imports.records import (
    Batch,
    ConditionRec,
    FillRec,
    ImmunizationRec,
    ImportRowError,
    PatientRec,
    PhoneRec,
    PrescriptionRec,
    Rejected,
)
from queues.imports.rxnorm import classify
from queues.imports.settings import DEFAULT_DAYS_SUPPLY

READ = (
    "Patient",
    "RelatedPerson",
    "Medication",
    "MedicationRequest",
    "MedicationDispense",
    "Condition",
    "Immunization",
    "Observation",
    "Consent",
)
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

# What the campaign rules read of a record's conditions (queues.building.rules.clinical, adherence):
# SNOMED CT and ICD-10 codes (ICD-10 by prefix).
DIABETES = ("44054006", "46635009", "73211009", "E10", "E11", "E13")
ESRD = ("46177005", "433146000", "N18.6", "Z99.2")
HOSPICE = ("385763009", "170935008", "Z51.5")
# CVX vaccine codes → the vaccines the vaccine campaign counts.
CVX = {
    **dict.fromkeys(("121", "187", "188"), "zoster"),
    **dict.fromkeys(("33", "100", "109", "133", "152", "215", "216"), "pneumococcal"),
    **dict.fromkeys(("303", "304", "305", "306", "307"), "rsv"),
    **dict.fromkeys(
        (
            "15", "16", "88", "111", "135", "140", "141", "144", "149", "150", "151", "153",
            "155", "158", "161", "166", "168", "171", "185", "186", "197", "200", "201", "202",
            "205", "320",
        ),
        "influenza",
    ),
}  # fmt: skip
# Which of the pharmacy's stored prescriptions have these MedicationRequest ids (their source ids):
# id -> the MRNs of the patients holding one (queues.imports.fhir_digests.stored_prescriptions).
StoredPrescriptions = Callable[[set[str]], dict[str, set[str]]]

SMOKING_STATUS = "72166-2"  # LOINC: tobacco smoking status
SMOKER = {
    "449868002", "428041000124106", "77176002", "65568007", "428071000124103",
    "428061000124105", "230059006", "81703003",
}  # fmt: skip
PHONE_KINDS = {"mobile": "mobile", "home": "home", "work": "work"}
CAREGIVER_RELATIONS = {
    "CHILD": "child", "DAU": "daughter", "SON": "son", "SPS": "spouse", "HUSB": "husband",
    "WIFE": "wife", "PRN": "parent", "MTH": "mother", "FTH": "father", "SIB": "sibling",
    "FRND": "friend", "N": "next of kin", "C": "emergency contact", "GUARD": "guardian",
    "CP": "contact person", "EP": "emergency contact",
}  # fmt: skip
# Patient.contact relationships (HL7 v2 table 0131) that are an organization's desk, not a person
# who looks after the patient: never taken as the caregiver.
NOT_CAREGIVERS = {"E", "F", "I", "S", "BP", "PR"}


_MODELS: dict[str, Any] = {}


def _model(kind: str) -> Any:
    """The R4B model class of a resource type, looked up once."""
    found = _MODELS.get(kind)
    if found is None:
        from fhir.resources.R4B import get_fhir_model_class  # a second to import: when used

        found = _MODELS[kind] = get_fhir_model_class(kind)
    return found


def validation_errors(error: ValidationError, where: str, line: int | str) -> list[ImportRowError]:
    """One error per field, named by its path; never the value (it may be health information)."""
    out = []
    for e in error.errors(include_input=False, include_url=False):
        path = ".".join(str(p) for p in e["loc"]) or "resource"
        out.append(ImportRowError(where, line, path, str(e["msg"]).removeprefix("Value error, ")))
    return out


def local_ref(reference: str | None, kind: str, aliases: dict[str, str]) -> str | None:
    """The id a reference names ("Patient/abc", a bundle's "urn:uuid:…" fullUrl, an absolute URL)."""
    if not reference:
        return None
    reference = aliases.get(reference, reference)
    parts = reference.rstrip("/").split("/")
    if len(parts) >= 2 and parts[-2] == kind:
        return parts[-1]
    if len(parts) >= 4 and parts[-4] == kind and parts[-2] == "_history":
        return parts[-3]
    return None


def e164(value: str) -> str | None:
    """A US number as E.164, or None when it cannot be one."""
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _day(value: Any) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value)  # FHIR partial dates: "2024" or "2024-05"
    with contextlib.suppress(ValueError):
        return date.fromisoformat((text + "-01-01")[:10] if len(text) < 10 else text[:10])
    return None


def _implausible(day: date | None, earliest: date = date(1900, 1, 1)) -> str | None:
    """Why a date cannot be a real one here (None when it can): before `earliest`, or more than a
    year ahead. The CSV reader holds its dates to the same; a fill dated 9999-12-30 stored would
    overflow the rebuild's run-out arithmetic."""
    if day is None:
        return None
    latest = date.today() + timedelta(days=366)
    if earliest <= day <= latest:
        return None
    return f"{day.isoformat()} is not from {earliest.year} to a year from today"


def _codes(concept: Any) -> list[tuple[str | None, str]]:
    if concept is None:
        return []
    return [(c.system, c.code) for c in concept.coding or [] if c.code]


def _days(quantity: Any) -> int | None:
    """A duration as whole days (FHIR Duration / Quantity with a UCUM unit)."""
    if quantity is None or quantity.value is None:
        return None
    unit = (quantity.code or quantity.unit or "d").lower()
    factor = {"d": 1, "day": 1, "days": 1, "wk": 7, "week": 7, "weeks": 7, "mo": 30, "month": 30}
    days = float(quantity.value) * factor.get(unit, 1)
    return max(1, round(days)) if days > 0 else None


@dataclass
class _Request:
    rec: PrescriptionRec
    medication_ref: str | None
    supply_days: int | None  # from dispenseRequest or dosage, if they say
    quantity: float
    start: date | None


@dataclass
class FhirReader:
    """Reads resources one by one (any order), then `finish()` makes the Batch."""

    default_days_supply: int = DEFAULT_DAYS_SUPPLY
    batch: Batch = field(default_factory=Batch)
    errors: list[ImportRowError] = field(default_factory=list)
    _medications: dict[str, tuple[str | None, str]] = field(default_factory=dict)
    _requests: dict[str, _Request] = field(default_factory=dict)
    _facts: dict[str, dict[str, Any]] = field(default_factory=dict)  # patient -> fields to set
    # patient -> caregiver from Patient.contact; a RelatedPerson's (in _facts) wins over it
    _contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    _smoking_at: dict[str, date] = field(default_factory=dict)
    _dispensed_to: dict[str, str] = field(default_factory=dict)  # fill -> its subject's MRN
    # Passing over what is stored (queues.imports.fhir_digests); None: every line is read.
    digests: FhirDigests | None = None
    _digest: int | None = None  # of the line being read
    _line_of: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> key -> digest
    _passed_fills: dict[str, StoredFill] = field(default_factory=dict)
    _passed_requests: dict[str, tuple[StoredRequest, bytes, str, int, int]] = field(
        default_factory=dict
    )
    _deferred_patients: list[tuple[str, int, bytes, str, int]] = field(default_factory=list)

    def pass_over(self, digest: int, line: bytes, where: str, number: int) -> bool:
        """True for a line whose fill or prescription is stored as it is: it is not read."""
        d = self.digests
        if d is None:
            return False
        fill = d.fills.get(digest)
        if fill is not None:
            self._passed_fills[fill.fill] = fill
            d.passed["fills"].add(digest)
            return True
        request = d.prescriptions.get(digest)
        if request is not None:
            self._passed_requests[request.prescription] = (request, line, where, number, digest)
            d.passed["prescriptions"].add(digest)
            return True
        return False

    def defer(self, raw: dict[str, Any], digest: int, line: bytes, where: str, number: int) -> bool:
        """A Patient line of a pharmacy with stored patients waits for `finish`, which knows what
        the other resources said of the patient (its row holds that too)."""
        d = self.digests
        pid = raw.get("id")
        if d is None or not d.patients or raw.get("resourceType") != "Patient":
            return False
        if not isinstance(pid, str):
            return False
        self._deferred_patients.append((pid, digest, line, where, number))
        return True

    def merge(self, other: FhirReader) -> None:
        """What another reader read of the lines after this one's (a worker's share of a file,
        queues.imports.fhir_files), as if this reader had read them itself."""
        b, o = self.batch, other.batch
        b.patients.update(o.patients)
        b.phones.update(o.phones)
        b.fills.update(o.fills)
        b.conditions.update(o.conditions)
        b.immunizations.update(o.immunizations)
        b.rejected.extend(o.rejected)
        for kind, count in o.skipped.items():
            b.skipped[kind] = b.skipped.get(kind, 0) + count
        self.errors.extend(other.errors)
        self._medications.update(other._medications)
        self._requests.update(other._requests)
        self._contacts.update(other._contacts)
        self._dispensed_to.update(other._dispensed_to)
        for patient, facts in other._facts.items():
            facts = dict(facts)
            at = other._smoking_at.get(patient)
            if at is not None:
                if at < self._smoking_at.get(patient, date.min):
                    facts.pop("tobacco_use", None)  # an older status than one already read
                else:
                    self._smoking_at[patient] = at
            self._facts.setdefault(patient, {}).update(facts)
        for table, found in other._line_of.items():
            self._line_of.setdefault(table, {}).update(found)

    def _noted(self, table: str, key: str) -> None:
        if self._digest is not None:
            self._line_of.setdefault(table, {})[key] = self._digest

    def read(
        self,
        raw: dict[str, Any],
        where: str,
        line: int | str,
        aliases: dict[str, str] | None = None,
        *,
        digest: int | None = None,
    ) -> None:
        """One resource; `digest`: of the NDJSON line it is (None: from a bundle)."""
        self._digest = digest
        kind = raw.get("resourceType") if isinstance(raw, dict) else None
        if not isinstance(kind, str):
            self.errors.append(ImportRowError(where, line, "resourceType", "missing"))
            return
        if kind not in READ:
            self.batch.skip(kind)
            return
        try:
            resource = _model(kind).model_validate(raw)
        except ValidationError as error:
            self.errors.extend(validation_errors(error, where, line))
            return
        except (KeyError, TypeError, ValueError) as error:
            self.errors.append(ImportRowError(where, line, kind, f"not a FHIR R4 {kind}: {error}"))
            return
        getattr(self, f"_{kind.lower()}")(resource, aliases or {})

    def _patient(self, p: Any, _aliases: dict[str, str]) -> None:
        source = f"Patient/{p.id}"
        if not p.id:
            self.batch.rejected.append(Rejected("Patient (no id)", "a patient needs an id"))
            return
        names = p.name or []
        name = next((n for n in names if n.use == "official"), names[0] if names else None)
        address = next(iter(p.address or []), None)
        for a in p.address or []:
            if a.use == "home":
                address = a
                break
        zip_code = (address.postalCode or "")[:5] if address else ""
        state = (address.state or "").strip().upper() if address else ""
        why = None
        if name is None or not (name.family and name.given):
            why = "no family and given name"
        elif p.birthDate is None:
            why = "no birth date"
        elif bad_birth := _implausible(_day(p.birthDate), earliest=date(1880, 1, 1)):
            why = f"birth date {bad_birth}"
        elif len(zip_code) != 5 or not zip_code.isdigit():
            why = "no 5-digit ZIP code in its address"
        elif len(state) != 2:
            why = "no 2-letter state in its address"
        if why:
            self.batch.rejected.append(Rejected(source, why))
            return
        assert name is not None and name.family and name.given
        language = "en"
        for c in p.communication or []:
            codes = [code for _, code in _codes(c.language)]
            if codes and (c.preferred or language == "en"):
                language = codes[0].split("-")[0].lower()[:8]
        deceased = bool(p.deceasedBoolean) or p.deceasedDateTime is not None
        self.batch.patients[p.id] = PatientRec(
            p.id,
            str(name.given[0])[:100],
            str(name.family)[:100],
            _day(p.birthDate) or date(1900, 1, 1),
            zip_code,
            state,
            gender=p.gender,
            language=language,
            deceased=deceased,
        )
        phones: list[PhoneRec] = []
        for i, t in enumerate(p.telecom or []):
            if t.system != "phone" or not t.value or t.use == "old":
                continue
            number = e164(t.value)
            if number is None:
                self.batch.rejected.append(Rejected(f"{source} telecom[{i}]", "not a phone number"))
                continue
            rank = t.rank if t.rank is not None else 100 + i
            phones.append(PhoneRec(p.id, number, PHONE_KINDS.get(t.use or "", "home"), rank))
        self._noted("patients", p.id)
        phones.sort(key=lambda ph: ph.rank)
        self.batch.phones[p.id] = [replace(ph, rank=n) for n, ph in enumerate(phones)]
        contact = _contact_caregiver(p.contact or [])
        if contact is not None:
            self._contacts[p.id] = contact

    def _relatedperson(self, r: Any, aliases: dict[str, str]) -> None:
        patient = local_ref(r.patient.reference if r.patient else None, "Patient", aliases)
        if patient is None or r.active is False or _ended(r.period):
            return
        self._facts.setdefault(patient, {}).update(
            _caregiver(next(iter(r.name or []), None), r.relationship or [], r.telecom or [])
        )

    def _medication(self, m: Any, _aliases: dict[str, str]) -> None:
        if m.id:
            self._medications[f"Medication/{m.id}"] = self._drug(m.code)

    @staticmethod
    def _drug(concept: Any) -> tuple[str | None, str]:
        if concept is None:
            return None, ""
        rxnorm = next((code for system, code in _codes(concept) if system == RXNORM), None)
        name = concept.text or next((c.display for c in concept.coding or [] if c.display), "")
        return rxnorm, name or ""

    def _medicationrequest(self, r: Any, aliases: dict[str, str]) -> None:
        source = f"MedicationRequest/{r.id}"
        patient = local_ref(r.subject.reference if r.subject else None, "Patient", aliases)
        if not r.id or patient is None:
            self.batch.rejected.append(Rejected(source, "no id or no Patient subject"))
            return
        if r.status in ("entered-in-error", "draft", "cancelled") or r.intent == "proposal":
            self.batch.skip(f"MedicationRequest ({r.status or r.intent})")
            return
        rxnorm, name = self._drug(r.medicationCodeableConcept)
        med_ref = r.medicationReference.reference if r.medicationReference else None
        if med_ref and med_ref.startswith("#") and not name:
            # A contained Medication ("#id" names a resource inside this one, FHIR R4 §2.36).
            contained = next(
                (
                    c
                    for c in r.contained or []
                    if getattr(c, "id", None) == med_ref[1:]
                    and c.get_resource_type() == "Medication"
                ),
                None,
            )
            if contained is not None:
                rxnorm, name = self._drug(contained.code)
            med_ref = None
        dr = r.dispenseRequest
        supply = _days(dr.expectedSupplyDuration) if dr else None
        quantity = float(dr.quantity.value) if dr and dr.quantity and dr.quantity.value else 0.0
        if supply is None and quantity:
            per_day = _daily_dose(r.dosageInstruction or [])
            if per_day:
                supply = max(1, round(quantity / per_day))
        refills = int(dr.numberOfRepeatsAllowed or 0) if dr else 0
        start = _day(dr.validityPeriod.start) if dr and dr.validityPeriod else None
        written = _day(r.authoredOn)
        bad = _implausible(written) or _implausible(start)
        if bad:
            self.batch.rejected.append(Rejected(source, f"date {bad}"))
            return
        rec = PrescriptionRec(
            r.id,
            patient,
            name[:200],
            "",
            rxnorm,
            None,
            True,
            refills,
            written,
            r.status in ("active", "on-hold"),
            (r.requester.display or None) if r.requester else None,
        )
        course = _codes(r.courseOfTherapyType)
        if any(code == "acute" for _, code in course):
            rec = replace(rec, chronic=False)
        self._requests[r.id] = _Request(rec, med_ref, supply, quantity, start or written)
        self._noted("prescriptions", r.id)

    def _medicationdispense(self, d: Any, aliases: dict[str, str]) -> None:
        source = f"MedicationDispense/{d.id}"
        if d.status not in (None, "completed"):
            self.batch.skip(f"MedicationDispense ({d.status})")
            return
        refs = [a.reference for a in d.authorizingPrescription or []]
        request = next(
            (x for x in (local_ref(r, "MedicationRequest", aliases) for r in refs) if x), None
        )
        when = _day(d.whenHandedOver) or _day(d.whenPrepared)
        if not d.id or request is None or when is None:
            why = "no authorizingPrescription" if request is None else "no date handed over"
            self.batch.rejected.append(Rejected(source, why))
            return
        if bad := _implausible(when):
            self.batch.rejected.append(Rejected(source, f"date handed over {bad}"))
            return
        days = _days(d.daysSupply)
        if days is not None and days > MAX_DAYS_SUPPLY:
            why = f"daysSupply of {days} days: at most {MAX_DAYS_SUPPLY} days per fill"
            self.batch.rejected.append(Rejected(source, why))
            return
        quantity = float(d.quantity.value) if d.quantity and d.quantity.value else 0.0
        self.batch.fills[d.id] = FillRec(
            d.id, request, when, days or self.default_days_supply, quantity, estimated=days is None
        )
        subject = local_ref(d.subject.reference if d.subject else None, "Patient", aliases)
        if subject is not None:
            self._dispensed_to[d.id] = subject
        self._noted("fills", d.id)

    def _condition(self, c: Any, aliases: dict[str, str]) -> None:
        patient = local_ref(c.subject.reference if c.subject else None, "Patient", aliases)
        status = [code for _, code in _codes(c.clinicalStatus)]
        if (
            patient is None
            or not c.id
            or (status and status[0] not in ("active", "recurrence", "relapse"))
        ):
            self.batch.skip("Condition (not active)")
            return
        codes = [code for _, code in _codes(c.code)]
        code = next((x for x in codes if x.startswith((*DIABETES, *ESRD, *HOSPICE))), None)
        if code is None:
            self.batch.skip("Condition (not used by a campaign)")
            return
        display = (c.code.text if c.code else None) or code
        self.batch.conditions[c.id] = ConditionRec(c.id, patient, code, display[:200])
        if code.startswith(ESRD):
            self._facts.setdefault(patient, {})["esrd"] = True
        if code.startswith(HOSPICE):
            self._facts.setdefault(patient, {})["hospice"] = True

    def _immunization(self, i: Any, aliases: dict[str, str]) -> None:
        patient = local_ref(i.patient.reference if i.patient else None, "Patient", aliases)
        vaccine = next((CVX[code] for _, code in _codes(i.vaccineCode) if code in CVX), None)
        given = _day(i.occurrenceDateTime) or _day(i.occurrenceString)
        if (
            patient is None
            or not i.id
            or i.status != "completed"
            or vaccine is None
            or given is None
        ):
            self.batch.skip("Immunization (not a campaign's vaccine)")
            return
        self.batch.immunizations[i.id] = ImmunizationRec(i.id, patient, vaccine, given)

    def _observation(self, o: Any, aliases: dict[str, str]) -> None:
        patient = local_ref(o.subject.reference if o.subject else None, "Patient", aliases)
        if patient is None or SMOKING_STATUS not in [code for _, code in _codes(o.code)]:
            self.batch.skip("Observation (not smoking status)")
            return
        when = _day(o.effectiveDateTime) or _day(o.issued) or date.min
        if when < self._smoking_at.get(patient, date.min):
            return  # an older status than one already read
        self._smoking_at[patient] = when
        smoker = any(code in SMOKER for _, code in _codes(o.valueCodeableConcept))
        self._facts.setdefault(patient, {})["tobacco_use"] = smoker

    def _consent(self, c: Any, aliases: dict[str, str]) -> None:
        patient = local_ref(c.patient.reference if c.patient else None, "Patient", aliases)
        if patient is None or c.status != "active" or c.provision is None:
            self.batch.skip("Consent (not active)")
            return
        self._facts.setdefault(patient, {})["consent_to_call"] = c.provision.type != "deny"

    def _read_again(self, line: bytes, where: str, number: int, digest: int) -> None:
        """A line passed over or deferred, read after all (it decoded once already)."""
        self.read(orjson.loads(line.removeprefix(b"\xef\xbb\xbf")), where, number, digest=digest)

    def _settle_passed(self) -> None:
        """Read the deferred patients whose line or facts changed, and the passed-over requests
        left with no dispense (their estimated fill is made or checked)."""
        d = self.digests
        if d is None:
            return
        for pid, digest, line, where, number in self._deferred_patients:
            made = digest ^ d.facts(self._facts.get(pid))
            if made in d.patients:
                d.passed["patients"].add(made)
            else:
                self._read_again(line, where, number, digest)
        self._deferred_patients.clear()
        dispensed = {f.prescription for f in self.batch.fills.values()}
        dispensed.update(f.prescription for f in self._passed_fills.values())
        for rx, (request, line, where, number, digest) in list(self._passed_requests.items()):
            # (One also read from another line stays passed: the store then reads the whole
            # source again, queues.imports.digests.DuplicateLine.)
            if rx not in dispensed and rx not in self._requests and not request.estimated:
                del self._passed_requests[rx]
                d.passed["prescriptions"].discard(digest)
                self._read_again(line, where, number, digest)

    def finish(self, stored_prescriptions: StoredPrescriptions | None = None) -> Batch:
        """Resolve medications, classify drugs, estimate missing fills, set patient facts.
        `stored_prescriptions`: looks up the requests a dispense names that this import does not
        hold (None: such a dispense is rejected)."""
        self._settle_passed()
        batch = self.batch
        dispensed = {f.prescription for f in batch.fills.values()}
        dispensed.update(f.prescription for f in self._passed_fills.values())
        for request_id, req in self._requests.items():
            rxnorm, name = req.rec.rxnorm, req.rec.drug_name
            if not name and req.medication_ref:
                medication = local_ref(req.medication_ref, "Medication", {})
                rxnorm, name = self._medications.get(f"Medication/{medication}", (None, ""))
            if not name:
                batch.rejected.append(Rejected(f"MedicationRequest/{request_id}", "no drug named"))
                continue
            drug = classify(rxnorm, name)
            chronic = req.rec.chronic and drug.chronic
            batch.prescriptions[request_id] = replace(
                req.rec,
                drug_name=name[:200],
                rxnorm=rxnorm,
                ingredient=drug.ingredient,
                pqa_class=drug.pqa_class,
                chronic=chronic,
            )
            if (
                request_id not in dispensed
                and req.start is not None
                and req.supply_days is not None
                and req.supply_days > MAX_DAYS_SUPPLY
            ):
                why = (
                    f"expected supply of {req.supply_days} days: at most {MAX_DAYS_SUPPLY} days "
                    "per fill, so no estimated fill"
                )
                batch.rejected.append(Rejected(f"MedicationRequest/{request_id}", why))
            elif request_id not in dispensed and req.start is not None:
                batch.fills[f"est:{request_id}"] = FillRec(
                    f"est:{request_id}",
                    request_id,
                    req.start,
                    req.supply_days or self.default_days_supply,
                    req.quantity,
                    estimated=True,
                )
        passed = {rx: kept[0] for rx, kept in self._passed_requests.items()}
        elsewhere = {
            f.prescription
            for f in batch.fills.values()
            if f.prescription not in batch.prescriptions and f.prescription not in passed
        }
        # A dispense whose request was imported before (a pharmacy's daily delta of dispenses):
        # its prescription is the one stored for the pharmacy under that request's id.
        stored = stored_prescriptions(elsewhere) if stored_prescriptions and elsewhere else {}
        for fill_id, f in list(batch.fills.items()):
            if f.prescription in passed and f.prescription not in batch.prescriptions:
                # Its prescription is stored as it is: named as the store finds it, "MRN|id".
                of = passed[f.prescription]
                batch.fills[fill_id] = replace(f, prescription=f"{of.patient}|{of.prescription}")
            elif f.prescription not in batch.prescriptions:
                holders = stored.get(f.prescription, set())
                subject = self._dispensed_to.get(fill_id)
                if subject is not None:
                    holders = holders & {subject}
                if len(holders) == 1:
                    (mrn,) = holders
                    batch.fills[fill_id] = replace(f, prescription=f"{mrn}|{f.prescription}")
                    continue
                del batch.fills[fill_id]
                why = (
                    f"its prescription MedicationRequest/{f.prescription} is stored for "
                    f"{len(holders)} patients: name the patient in its subject"
                    if holders
                    else f"its prescription MedicationRequest/{f.prescription} is neither in "
                    "this import nor stored for this pharmacy"
                    + (f" (for Patient/{subject})" if subject is not None else "")
                )
                batch.rejected.append(Rejected(f"MedicationDispense/{fill_id}", why))
        for patient in self._facts.keys() | self._contacts.keys():
            rec = batch.patients.get(patient)
            if rec is not None:
                facts = {**self._contacts.get(patient, {}), **self._facts.get(patient, {})}
                batch.patients[patient] = replace(rec, **facts)
        self._note_digests()
        return batch

    def _note_digests(self) -> None:
        """The digest each row written is made from (a patient's mixed with its facts)."""
        d = self.digests
        if d is None:
            return
        lines = self._line_of
        for table, records in (
            ("fills", self.batch.fills),
            ("prescriptions", self.batch.prescriptions),
        ):
            found = lines.get(table, {})
            d.of[table] = {k: found[k] for k in records if k in found}
        found = lines.get("patients", {})
        d.of["patients"] = {
            k: found[k] ^ d.facts(self._facts.get(k)) for k in self.batch.patients if k in found
        }


def _caregiver(name: Any, relationships: Iterable[Any], telecom: Iterable[Any]) -> dict[str, Any]:
    """A caregiver's fields from a HumanName, relationship concepts and ContactPoints (the same in
    RelatedPerson and Patient.contact)."""
    full = " ".join([*(name.given or []), name.family or ""]).strip() if name else ""
    if not full and name is not None and name.text:
        full = name.text.strip()
    relation = None
    for rel in relationships:
        codes = [code for _, code in _codes(rel)]
        relation = rel.text or (CAREGIVER_RELATIONS.get(codes[0], codes[0]) if codes else None)
        if relation:
            break
    phone = next((e164(t.value) for t in telecom if t.system == "phone" and t.value), None)
    return {
        "caregiver_name": full[:200] or None,
        "caregiver_relation": (relation or "caregiver")[:64],
        "caregiver_phone": phone,
    }


def _contact_caregiver(contacts: Iterable[Any]) -> dict[str, Any] | None:
    """The caregiver among a Patient's current contacts (none whose period ended): the first person
    (not an employer's, insurer's or agency's desk) with a phone, else the first person with a
    name; None when there is none."""
    people = []
    for c in contacts:
        codes = {code for rel in c.relationship or [] for _, code in _codes(rel)}
        if codes & NOT_CAREGIVERS or (c.name is None and c.organization is not None):
            continue
        if _ended(c.period):
            continue  # a former contact (period.end in the past) is no one to call now
        found = _caregiver(c.name, c.relationship or [], c.telecom or [])
        if found["caregiver_name"] or found["caregiver_phone"]:
            people.append(found)
    return next((p for p in people if p["caregiver_phone"]), next(iter(people), None))


def _ended(period: Any) -> bool:
    """True for a Period whose end is before today (an open or future end is current)."""
    end = _day(period.end) if period is not None else None
    return end is not None and end < date.today()


def _daily_dose(dosage: Iterable[Any]) -> float | None:
    """Units a day from the first dosage with a timing and a dose ("1 tablet twice a day": 2)."""
    per_unit = {"d": 1.0, "h": 24.0, "wk": 1 / 7, "mo": 1 / 30}
    for d in dosage:
        repeat = d.timing.repeat if d.timing else None
        dose = next((r.doseQuantity for r in d.doseAndRate or [] if r.doseQuantity), None)
        if repeat is None or dose is None or dose.value is None or not repeat.period:
            continue
        frequency = repeat.frequency or 1
        per_day = frequency / float(repeat.period) * per_unit.get(repeat.periodUnit or "d", 1.0)
        if per_day > 0:
            return float(dose.value) * per_day
    return None
