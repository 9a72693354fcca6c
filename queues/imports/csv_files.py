"""CSV exports → import records: patients, phones, prescriptions and fills files, UTF-8 with or
without a byte-order mark, a header row naming the columns (README "Importing data")."""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from queues.adherence.supply import MAX_DAYS_SUPPLY
from queues.imports.digests import LineDigests
from queues.imports.fhir import e164
from queues.imports.records import (
    Batch,
    FillRec,
    ImportRowError,
    PatientRec,
    PhoneRec,
    PrescriptionRec,
    SourceUnreadable,
)
from queues.imports.rxnorm import classify

# kind -> (required columns, optional columns)
COLUMNS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "patients": (
        ("mrn", "first_name", "last_name", "birth_date", "zip_code", "state"),
        (
            "gender",
            "language",
            "deceased",
            "caregiver_name",
            "caregiver_relation",
            "caregiver_phone",
            "caregiver_authorized",
            "consent_to_call",
            "tobacco_use",
            "hospice",
            "esrd",
        ),
    ),
    "phones": (("mrn", "number"), ("kind", "rank")),
    "prescriptions": (
        ("mrn", "rx_id", "drug_name"),
        ("rxnorm", "refills_left", "written_on", "active", "chronic", "prescriber"),
    ),
    "fills": (("mrn", "rx_id", "fill_id", "fill_date"), ("days_supply", "quantity")),
}
KINDS = tuple(COLUMNS)
TRUE = {"1", "true", "yes", "y", "t"}
FALSE = {"0", "false", "no", "n", "f"}
PHONE_KINDS = ("mobile", "home", "work")


class _Bad(Exception):
    def __init__(self, field: str, why: str) -> None:
        self.field, self.why = field, why


@dataclass
class CsvResult:
    batch: Batch
    errors: list[ImportRowError]
    origins: dict[tuple[str, str], tuple[str, int]]  # (kind, key) -> (file, line), for store errors


def read_csv(
    kind: str,
    path: Path,
    default_days_supply: int,
    advance: Callable[[int], None] = lambda _n: None,
    digests: LineDigests | None = None,
) -> CsvResult:
    if kind not in COLUMNS:
        raise SourceUnreadable(f"{kind}: not one of {', '.join(KINDS)}")
    where = str(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise SourceUnreadable(f"{where}: {error.strerror}") from None
    batch, errors = Batch(), []
    origins: dict[tuple[str, str], tuple[str, int]] = {}
    required, optional = COLUMNS[kind]
    parse = _PARSERS[kind]
    with handle:
        rows = csv.reader(handle)
        try:
            header = [h.strip().lower() for h in next(rows, [])]
        except (UnicodeDecodeError, csv.Error) as error:
            raise SourceUnreadable(f"{where}:1: not a UTF-8 CSV file ({error})") from None
        missing = [c for c in required if c not in header]
        unknown = [c for c in header if c not in required and c not in optional]
        if not header or missing or unknown:
            why = f"missing column(s) {', '.join(missing)}" if missing or not header else ""
            if unknown:
                why += ("; " if why else "") + f"unknown column(s) {', '.join(unknown)}"
            raise SourceUnreadable(
                f"{where}:1: header: {why or 'empty file'} (columns: {', '.join(required)}"
                f" required; {', '.join(optional)} optional)"
            )
        index = {name: i for i, name in enumerate(header)}
        if digests is not None:
            digests.start(header)
        line = 1
        try:
            for values in rows:
                line = rows.line_num
                joined = "\x1f".join(values)  # the values as one text: its length, its digest
                advance(len(joined) + 1)
                if digests is not None and digests.unchanged(joined):
                    continue  # stored as this very line made it (queues.imports.digests)
                if not any(v.strip() for v in values):
                    continue
                if len(values) != len(header):
                    errors.append(
                        ImportRowError(
                            where, line, "row", f"{len(values)} values for {len(header)} columns"
                        )
                    )
                    continue
                row = {name: values[i].strip() for name, i in index.items()}
                try:
                    key = parse(row, batch, default_days_supply)
                except _Bad as bad:
                    errors.append(ImportRowError(where, line, bad.field, bad.why))
                    continue
                origins[(kind, key)] = (where, line)
                if digests is not None:
                    digests.note(key)
        except UnicodeDecodeError as error:
            raise SourceUnreadable(f"{where}:{line + 1}: not UTF-8 ({error.reason})") from None
        except csv.Error as error:
            errors.append(ImportRowError(where, rows.line_num, "row", str(error)))
    return CsvResult(batch, errors, origins)


def _text(row: dict[str, str], name: str, limit: int, required: bool = True) -> str:
    value = row.get(name, "")
    if required and not value:
        raise _Bad(name, "empty")
    if len(value) > limit:
        raise _Bad(name, f"longer than {limit} characters")
    return value


def _day(row: dict[str, str], name: str, required: bool = True) -> date | None:
    value = row.get(name, "")
    if not value:
        if required:
            raise _Bad(name, "empty")
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _Bad(name, "not a date like 2026-12-02") from None


def _flag(row: dict[str, str], name: str, default: bool | None = False) -> Any:
    value = row.get(name, "").lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise _Bad(name, "not true/false (yes/no, 1/0)")


def _number(row: dict[str, str], name: str, default: float | None, low: float = 0) -> float | None:
    value = row.get(name, "")
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise _Bad(name, "not a number") from None
    if not number >= low or number > 1e9:
        raise _Bad(name, f"must be at least {low:g}")
    return number


def _patient(row: dict[str, str], batch: Batch, _default: int) -> str:
    mrn = _text(row, "mrn", 64)
    zip_code = _text(row, "zip_code", 10)[:5]
    if len(zip_code) != 5 or not zip_code.isdigit():
        raise _Bad("zip_code", "not a 5-digit ZIP code")
    state = _text(row, "state", 2).upper()
    if len(state) != 2 or not state.isalpha():
        raise _Bad("state", "not a 2-letter state")
    caregiver_phone = row.get("caregiver_phone", "")
    phone = e164(caregiver_phone) if caregiver_phone else None
    if caregiver_phone and phone is None:
        raise _Bad("caregiver_phone", "not a phone number")
    birth = _day(row, "birth_date")
    assert birth is not None
    if not date(1880, 1, 1) <= birth <= date.today():
        raise _Bad("birth_date", "not a plausible birth date")
    batch.patients[mrn] = PatientRec(
        mrn,
        _text(row, "first_name", 100),
        _text(row, "last_name", 100),
        birth,
        zip_code,
        state,
        gender=_text(row, "gender", 16, required=False) or None,
        language=(_text(row, "language", 8, required=False) or "en").lower(),
        deceased=_flag(row, "deceased"),
        caregiver_name=_text(row, "caregiver_name", 200, required=False) or None,
        caregiver_relation=_text(row, "caregiver_relation", 64, required=False) or None,
        caregiver_phone=phone,
        caregiver_authorized=_flag(row, "caregiver_authorized"),
        consent_to_call=_flag(row, "consent_to_call", None),
        tobacco_use=_flag(row, "tobacco_use"),
        hospice=_flag(row, "hospice"),
        esrd=_flag(row, "esrd"),
    )
    return mrn


def _phone(row: dict[str, str], batch: Batch, _default: int) -> str:
    mrn = _text(row, "mrn", 64)
    number = e164(_text(row, "number", 40))
    if number is None:
        raise _Bad("number", "not a phone number")
    kind = (row.get("kind") or "mobile").lower()
    if kind not in PHONE_KINDS:
        raise _Bad("kind", f"not one of {', '.join(PHONE_KINDS)}")
    rank = _number(row, "rank", 0)
    phones = batch.phones.setdefault(mrn, [])
    phones[:] = [p for p in phones if p.number != number]
    phones.append(PhoneRec(mrn, number, kind, int(rank or 0)))
    return f"{mrn}|{number}"


def _prescription(row: dict[str, str], batch: Batch, _default: int) -> str:
    mrn, rx_id = _text(row, "mrn", 64), _text(row, "rx_id", 64)
    name = _text(row, "drug_name", 200)
    rxnorm = _text(row, "rxnorm", 20, required=False) or None
    drug = classify(rxnorm, name)
    refills = _number(row, "refills_left", 0)
    batch.prescriptions[f"{mrn}|{rx_id}"] = PrescriptionRec(
        rx_id,
        mrn,
        name,
        drug.ingredient,
        rxnorm,
        drug.pqa_class,
        _flag(row, "chronic", drug.chronic),
        int(refills or 0),
        _day(row, "written_on", required=False),
        _flag(row, "active", True),
        _text(row, "prescriber", 200, required=False) or None,
    )
    return f"{mrn}|{rx_id}"


def _fill(row: dict[str, str], batch: Batch, default_days: int) -> str:
    mrn, rx_id, fill_id = _text(row, "mrn", 64), _text(row, "rx_id", 64), _text(row, "fill_id", 64)
    when = _day(row, "fill_date")
    assert when is not None
    days = _number(row, "days_supply", None, low=1)
    if days is not None and days > MAX_DAYS_SUPPLY:
        why = f"{row['days_supply']} days: at most {MAX_DAYS_SUPPLY} days per fill"
        raise _Bad("days_supply", why)
    quantity = _number(row, "quantity", 0.0)
    key = f"{mrn}|{rx_id}"
    batch.fills[f"{key}|{fill_id}"] = FillRec(
        fill_id,
        key,
        when,
        int(days) if days is not None else default_days,
        float(quantity or 0.0),
        estimated=days is None,
    )
    return f"{key}|{fill_id}"


_PARSERS: dict[str, Callable[[dict[str, str], Batch, int], str]] = {
    "patients": _patient,
    "phones": _phone,
    "prescriptions": _prescription,
    "fills": _fill,
}
