"""One chunk reader per kind of CSV file (patients, prescriptions, fills; phones are left to the
line path): the column path of queues.imports.csv_files, which reads a chunk of clean lines a
column at a time, checking each distinct value of a column once by the checks of
queues.imports.csv_values. It never names a bad value: at the first it raises Bad and the file is
read again line by line (queues.imports.csv_rows), so its answer, wherever it has one, is the
line path's (tests/imports/test_csv_columns.py). Kept apart from the line path it must agree with.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from queues.imports.csv_values import (
    Bad,
    days_supplies,
    flag_value,
    iso_dates,
    numbers,
    patient_values,
    phone_number,
    text,
)
from queues.imports.records import Batch, FillRec, PatientRec, PrescriptionRec
from queues.imports.rxnorm import classify

# A chunk reader: a chunk of clean lines as columns (each a tuple of one column's values, as the
# csv module gives them) into the batch; returns the records' keys in line order, or raises Bad
# at the first value the row reader would refuse (which value, it does not say: the file is then
# read again line by line, which names each). Made per file by CHUNKS[kind](index, default days).
ChunkReader = Callable[[list[tuple[str, ...]], Batch], list[str]]

T = TypeVar("T")


# -- the same, a chunk of clean lines at a time (read_csv's column path) -------------------------
def _stripped(values: tuple[str, ...]) -> list[str]:
    return list(map(str.strip, values))


def _optional(columns: list[tuple[str, ...]], at: int | None) -> list[str]:
    """A column's stripped values; "" on every line when the file has no such column."""
    return [""] * len(columns[0]) if at is None else _stripped(columns[at])


def _identifiers(values: tuple[str, ...], name: str) -> list[str]:
    """identifier of every value of a column."""
    found = _stripped(values)
    if not all(found) or max(map(len, found)) > 64 or "|" in "".join(found):
        raise Bad(name, "an identifier csv_values.identifier refuses")
    return found


def _each(values: list[str], check: Callable[[str], T]) -> list[T]:
    """`check` of each value of a column, asked once per distinct value."""
    answers = {value: check(value) for value in set(values)}
    return list(map(answers.__getitem__, values))


def _patient_chunks(index: dict[str, int], _default_days: int) -> ChunkReader:
    zip_codes, states, languages, birth_date = patient_values()
    at = index.get

    def caregiver_phone(value: str) -> str | None:
        phone = phone_number(value) if value else None
        if value and phone is None:
            raise Bad("caregiver_phone", "not a phone number")
        return phone

    def optional_text(name: str, limit: int) -> Callable[[str], str | None]:
        return lambda value: text(value, name, limit, required=False) or None

    def flag(name: str, default: bool | None = False) -> Callable[[str], Any]:
        return lambda value: flag_value(value, name, default)

    def read(columns: list[tuple[str, ...]], batch: Batch) -> list[str]:
        mrn = _identifiers(columns[index["mrn"]], "mrn")
        records = map(
            PatientRec,
            mrn,
            _each(_stripped(columns[index["first_name"]]), lambda v: text(v, "first_name", 100)),
            _each(_stripped(columns[index["last_name"]]), lambda v: text(v, "last_name", 100)),
            _each(_stripped(columns[index["birth_date"]]), birth_date),
            _each(_stripped(columns[index["zip_code"]]), zip_codes),
            _each(_stripped(columns[index["state"]]), states),
            _each(_optional(columns, at("gender")), optional_text("gender", 16)),
            _each(_optional(columns, at("language")), languages),
            _each(_optional(columns, at("deceased")), flag("deceased")),
            _each(_optional(columns, at("caregiver_name")), optional_text("caregiver_name", 200)),
            _each(
                _optional(columns, at("caregiver_relation")),
                optional_text("caregiver_relation", 64),
            ),
            _each(_optional(columns, at("caregiver_phone")), caregiver_phone),
            _each(_optional(columns, at("caregiver_authorized")), flag("caregiver_authorized")),
            _each(_optional(columns, at("consent_to_call")), flag("consent_to_call", None)),
            _each(_optional(columns, at("tobacco_use")), flag("tobacco_use")),
            _each(_optional(columns, at("hospice")), flag("hospice")),
            _each(_optional(columns, at("esrd")), flag("esrd")),
        )
        batch.patients.update(zip(mrn, records, strict=True))
        return mrn

    return read


def _prescription_chunks(index: dict[str, int], _default_days: int) -> ChunkReader:
    refill_counts = numbers("refills_left", high=99, whole=True)
    written_days = iso_dates("written_on")
    at = index.get

    def read(columns: list[tuple[str, ...]], batch: Batch) -> list[str]:
        mrn = _identifiers(columns[index["mrn"]], "mrn")
        rx_id = _identifiers(columns[index["rx_id"]], "rx_id")
        name = _each(_stripped(columns[index["drug_name"]]), lambda v: text(v, "drug_name", 200))
        rxnorm = _each(
            _optional(columns, at("rxnorm")),
            lambda v: text(v, "rxnorm", 20, required=False) or None,
        )
        codes = list(zip(rxnorm, name, strict=True))
        classes = {code: classify(*code) for code in set(codes)}
        drug = list(map(classes.__getitem__, codes))
        chronic = [
            d.chronic if given is None else given
            for given, d in zip(
                _each(_optional(columns, at("chronic")), lambda v: flag_value(v, "chronic", None)),
                drug,
                strict=True,
            )
        ]
        keys = list(map("|".join, zip(mrn, rx_id, strict=True)))
        records = map(
            PrescriptionRec,
            rx_id,
            mrn,
            name,
            [d.ingredient for d in drug],
            rxnorm,
            [d.pqa_class for d in drug],
            chronic,
            _each(
                _optional(columns, at("refills_left")),
                lambda v: int(refill_counts(v)) if v else 0,
            ),
            _each(_optional(columns, at("written_on")), lambda v: written_days(v) if v else None),
            _each(_optional(columns, at("active")), lambda v: flag_value(v, "active", True)),
            _each(
                _optional(columns, at("prescriber")),
                lambda v: text(v, "prescriber", 200, required=False) or None,
            ),
        )
        batch.prescriptions.update(zip(keys, records, strict=True))
        return keys

    return read


def _fill_chunks(index: dict[str, int], default_days: int) -> ChunkReader:
    fill_days = iso_dates("fill_date")
    supplies, quantities = days_supplies(), numbers("quantity")
    days_at, quantity_at = index.get("days_supply"), index.get("quantity")

    def day(value: str) -> date:
        if not value:
            raise Bad("fill_date", "empty")
        return fill_days(value)

    def read(columns: list[tuple[str, ...]], batch: Batch) -> list[str]:
        mrn = _identifiers(columns[index["mrn"]], "mrn")
        rx_id = _identifiers(columns[index["rx_id"]], "rx_id")
        fill_id = _identifiers(columns[index["fill_id"]], "fill_id")
        days = _optional(columns, days_at)
        prescriptions = list(map("|".join, zip(mrn, rx_id, strict=True)))
        keys = list(map("|".join, zip(prescriptions, fill_id, strict=True)))
        records = map(
            FillRec,
            fill_id,
            prescriptions,
            _each(_stripped(columns[index["fill_date"]]), day),
            _each(days, lambda v: supplies(v) if v else default_days),
            _each(_optional(columns, quantity_at), lambda v: quantities(v) if v else 0.0),
            [not v for v in days],
        )
        batch.fills.update(zip(keys, records, strict=True))
        return keys

    return read


# Phones are left to the line path: a number given twice for a patient is no error there (the
# later line stands), and a phones file is a tenth of a fills file.
CHUNKS: dict[str, Callable[[dict[str, int], int], ChunkReader]] = {
    "patients": _patient_chunks,
    "prescriptions": _prescription_chunks,
    "fills": _fill_chunks,
}
