"""What a source says, in the project's words, before anything is stored: plain rows keyed by the
source's identifiers (a patient's is its MRN), gathered into one Batch per import.

The records an import makes by the million (patients, phones, prescriptions, fills) are slotted
dataclasses, not frozen ones: a frozen dataclass sets each field through object.__setattr__, ~1 µs
a fill, a fifth of reading a fills file by columns (queues.imports.csv_files); nothing changes a
record once made (a change is a dataclasses.replace)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from queues.errors import OutreachError


@dataclass(slots=True)
class PatientRec:
    source_id: str  # stored as the patient's MRN: unique per pharmacy
    first_name: str
    last_name: str
    birth_date: date
    zip_code: str
    state: str
    gender: str | None = None
    language: str = "en"
    deceased: bool = False
    caregiver_name: str | None = None
    caregiver_relation: str | None = None
    caregiver_phone: str | None = None
    caregiver_authorized: bool = False
    consent_to_call: bool | None = None
    tobacco_use: bool = False
    hospice: bool = False
    esrd: bool = False


@dataclass(slots=True)
class PhoneRec:
    patient: str
    number: str  # E.164
    kind: str  # mobile | home | work
    rank: int = 0


@dataclass(slots=True)
class PrescriptionRec:
    source_id: str
    patient: str
    drug_name: str
    ingredient: str
    rxnorm: str | None
    pqa_class: str | None
    chronic: bool
    refills_left: int
    written_on: date | None
    active: bool
    prescriber: str | None = None


@dataclass(slots=True)
class FillRec:
    source_id: str
    prescription: str
    fill_date: date
    days_supply: int
    quantity: float
    estimated: bool = False


@dataclass(frozen=True)
class ConditionRec:
    source_id: str
    patient: str
    code: str
    display: str


@dataclass(frozen=True)
class ImmunizationRec:
    source_id: str
    patient: str
    vaccine: str
    given_on: date


@dataclass(frozen=True)
class Rejected:
    """A record left out, and why (no health information: the source's id and a reason)."""

    source: str
    reason: str


@dataclass
class Batch:
    """Everything one import read, keyed by source identifier (the last record of an id wins)."""

    patients: dict[str, PatientRec] = field(default_factory=dict)
    phones: dict[str, list[PhoneRec]] = field(default_factory=dict)  # patient -> numbers
    prescriptions: dict[str, PrescriptionRec] = field(default_factory=dict)
    fills: dict[str, FillRec] = field(default_factory=dict)
    conditions: dict[str, ConditionRec] = field(default_factory=dict)
    immunizations: dict[str, ImmunizationRec] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)  # resource type -> count

    def skip(self, kind: str) -> None:
        self.skipped[kind] = self.skipped.get(kind, 0) + 1


class ImportRowError(OutreachError):
    """One bad record: `file:line: field: why` (STYLE.md), never the record's values."""

    def __init__(self, file: str, line: int | str, field: str, why: str) -> None:
        self.file, self.line, self.field, self.why = file, line, field, why
        super().__init__(f"{file}:{line}: {field}: {why}")


class ImportFailed(OutreachError):
    """A source with errors: nothing was stored. `errors` lists each (first ones in the message)."""

    def __init__(self, errors: list[ImportRowError], shown: int = 20, *, hint: str = "") -> None:
        """`hint`: what the caller's command offers besides (`import csv`: --skip-bad-rows); the
        library names no option, as not every command that imports has one."""
        self.errors = errors
        lines = [str(e) for e in errors[:shown]]
        more = len(errors) - shown
        if more > 0:
            lines.append(f"… and {more} more")
        stored = f"nothing was stored ({hint})" if hint else "nothing was stored"
        super().__init__(f"{len(errors)} bad record(s); {stored}:\n" + "\n".join(lines))


class SourceUnreadable(OutreachError):
    """The source itself could not be read (a missing file, a server that refused)."""
