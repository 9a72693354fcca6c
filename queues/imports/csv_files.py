"""CSV exports → import records: patients, phones, prescriptions and fills files, UTF-8 with or
without a byte-order mark, a header row naming the columns (README "Importing data")."""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from queues.adherence.supply import MAX_DAYS_SUPPLY
from queues.compliance.states import US_STATES
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
# Where a patient may live: the states and DC (queues.compliance), the territories and the
# military post offices (USPS codes).
STATES = US_STATES | {"AS", "GU", "MP", "VI", "AA", "AE", "AP"}
# Each kind's identifier: a second row with the same one is a mistake in the export (which of the
# two is right?), named at both lines. Phones are keyed by the number: a repeat is the same phone.
IDENTIFIERS: dict[str, tuple[str, ...]] = {
    "patients": ("mrn",),
    "prescriptions": ("mrn", "rx_id"),
    "fills": ("mrn", "rx_id", "fill_id"),
}
_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d{1,3})?")
_LANGUAGE = re.compile(r"([A-Za-z]{2,3})([-_][A-Za-z0-9]{1,8})*")
EARLIEST_DAY = date(1900, 1, 1)


class _Today:
    """The latest plausible date, a year from today: set once per file (date.today() for each
    of a million rows cost a tenth of the reading)."""

    latest = date.today() + timedelta(days=366)

    @classmethod
    def set(cls) -> None:
        cls.latest = date.today() + timedelta(days=366)


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
    _Today.set()
    batch, errors = Batch(), []
    origins: dict[tuple[str, str], tuple[str, int]] = {}
    required, optional = COLUMNS[kind]
    parse = _PARSERS[kind]
    with handle:
        rows = csv.reader(handle)
        try:
            header = [h.strip().lower() for h in next(rows, [])]
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except csv.Error as error:
            raise SourceUnreadable(f"{where}:1: header: not a CSV header ({error})") from None
        missing = [c for c in required if c not in header]
        unknown = [c for c in header if c not in required and c not in optional]
        twice = sorted({c for c in header if header.count(c) > 1})
        if not header or missing or unknown or twice:
            why = f"missing column(s) {', '.join(missing)}" if missing else ""
            if unknown:
                shown = ", ".join(c if c.isprintable() else repr(c) for c in unknown)
                why += ("; " if why else "") + f"unknown column(s) {shown}"
            if twice:
                why += ("; " if why else "") + f"column(s) {', '.join(twice)} given twice"
            raise SourceUnreadable(
                f"{where}:1: header: {why if header else 'the file is empty'} (columns: "
                f"{', '.join(required)} required; {', '.join(optional)} optional)"
            )
        index = {name: i for i, name in enumerate(header)}
        if digests is not None:
            digests.start(header)
        identifier = IDENTIFIERS.get(kind)
        first_seen: dict[tuple[str, ...], int] = {}
        line = 1  # the last line read; a record starts on the line after it
        while True:
            try:
                values = next(rows)
            except StopIteration:
                break
            except UnicodeDecodeError:
                raise _not_utf8(path) from None
            except csv.Error as error:
                # The rest of the file cannot be told apart into rows any more: refuse it whole
                # (with --skip-bad-rows too: the rows after it would be lost without a word).
                raise SourceUnreadable(
                    f"{where}:{line + 1}: row: {error}; nothing was stored"
                ) from None
            start, line = line + 1, rows.line_num
            joined = "\x1f".join(values)  # the values as one text: its length, its digest
            advance(len(joined) + 1)
            if digests is not None and digests.unchanged(joined):
                continue  # stored as this very line made it (queues.imports.digests)
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                why = f"{len(values)} values for {len(header)} columns"
                errors.append(ImportRowError(where, start, "row", why))
                continue
            row = {name: values[i].strip() for name, i in index.items()}
            try:
                if not "".join(values).isprintable():  # one test per row; the field if it fails
                    _printable(row)
                if identifier is not None:
                    ids = tuple(row[c] for c in identifier)
                    if ids in first_seen and all(ids):
                        raise _Bad(identifier[-1], f"given again (first on line {first_seen[ids]})")
                    first_seen.setdefault(ids, start)
                key = parse(row, batch, default_days_supply)
            except _Bad as bad:
                errors.append(ImportRowError(where, start, bad.field, bad.why))
                continue
            origins[(kind, key)] = (where, start)
            if digests is not None:
                digests.note(key)
    return CsvResult(batch, errors, origins)


def _not_utf8(path: Path) -> SourceUnreadable:
    """The exact line of the first byte that is not UTF-8 (the text reader decodes ahead of the
    CSV reader by whole buffers, so its position says little)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 0
    with path.open("rb") as raw:
        for line, data in enumerate(raw, 1):
            try:
                decoder.decode(data)
            except UnicodeDecodeError as error:
                return SourceUnreadable(
                    f"{path}:{line}: not UTF-8 text ({error.reason} at byte {error.start + 1} of "
                    "the line); save the export as UTF-8; nothing was stored"
                )
    return SourceUnreadable(f"{path}:{max(line, 1)}: not UTF-8 text (cut off in a character)")


def _printable(row: dict[str, str]) -> None:
    """No control characters (a NUL, an escape, a line break inside a quoted value): PostgreSQL
    refuses a NUL, and the rest would reach an agent's screen. A no-break space and the like
    are fine (str.isprintable refuses those too, so it only says when to look closer)."""
    for name, value in row.items():
        if not value.isprintable() and any(
            unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value
        ):
            raise _Bad(name, "contains a control character (a line break, tab, NUL or escape)")


def _text(row: dict[str, str], name: str, limit: int, required: bool = True) -> str:
    value = row.get(name, "")
    if required and not value:
        raise _Bad(name, "empty")
    if len(value) > limit:
        raise _Bad(name, f"longer than {limit} characters")
    return value


def _identifier(row: dict[str, str], name: str) -> str:
    """An MRN, rx_id or fill_id: `|` joins them into one key (mrn|rx_id), so it may not be in one."""
    value = _text(row, name, 64)
    if "|" in value:
        raise _Bad(name, "may not contain |")
    return value


def _day(
    row: dict[str, str], name: str, required: bool = True, earliest: date = EARLIEST_DAY
) -> date | None:
    """A YYYY-MM-DD date from `earliest` to a year from today (a fill dated 9999-12-30 would run
    out past the calendar's end)."""
    value = row.get(name, "")
    if not value:
        if required:
            raise _Bad(name, "empty")
        return None
    try:
        if not _ISO_DAY.fullmatch(value):
            raise ValueError(value)
        day = date.fromisoformat(value)
    except ValueError:
        raise _Bad(name, "not a date like 2026-12-02") from None
    latest = _Today.latest
    if not earliest <= day <= latest:
        raise _Bad(name, f"not a plausible date ({earliest} to {latest})")
    return day


def _flag(row: dict[str, str], name: str, default: bool | None = False) -> Any:
    value = row.get(name, "").lower()
    if not value:
        return default
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise _Bad(name, "not true/false (yes/no, 1/0)")


def _number(
    row: dict[str, str],
    name: str,
    default: float | None,
    low: float = 0,
    high: float = 1e9,
    whole: bool = False,
) -> float | None:
    value = row.get(name, "")
    if not value:
        return default
    if not _NUMBER.fullmatch(value):  # not float()'s "1_000", "nan", "inf" or other scripts' digits
        raise _Bad(name, "not a number")
    number = float(value)
    if not low <= number <= high:
        raise _Bad(name, f"must be from {low:g} to {high:g}")
    if whole and number != int(number):
        raise _Bad(name, "must be a whole number")
    return number


def _patient(row: dict[str, str], batch: Batch, _default: int) -> str:
    mrn = _identifier(row, "mrn")
    zip_code = _text(row, "zip_code", 10)[:5]
    if len(zip_code) != 5 or not (zip_code.isascii() and zip_code.isdigit()):
        raise _Bad("zip_code", "not a 5-digit ZIP code")
    state = _text(row, "state", 2).upper()
    if state not in STATES:
        raise _Bad("state", "not a US state's 2-letter code")
    language = _text(row, "language", 16, required=False) or "en"
    tag = _LANGUAGE.fullmatch(language)
    if tag is None:
        raise _Bad("language", "not a language code like en, es or es-MX")
    caregiver_phone = row.get("caregiver_phone", "")
    phone = e164(caregiver_phone) if caregiver_phone else None
    if caregiver_phone and phone is None:
        raise _Bad("caregiver_phone", "not a phone number")
    birth = _day(row, "birth_date", earliest=date(1880, 1, 1))
    assert birth is not None
    if birth > date.today():
        raise _Bad("birth_date", "not a plausible birth date")
    batch.patients[mrn] = PatientRec(
        mrn,
        _text(row, "first_name", 100),
        _text(row, "last_name", 100),
        birth,
        zip_code,
        state,
        gender=_text(row, "gender", 16, required=False) or None,
        language=tag.group(1).lower(),
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
    mrn = _identifier(row, "mrn")
    number = e164(_text(row, "number", 40))
    if number is None:
        raise _Bad("number", "not a phone number")
    kind = (row.get("kind") or "mobile").lower()
    if kind not in PHONE_KINDS:
        raise _Bad("kind", f"not one of {', '.join(PHONE_KINDS)}")
    rank = _number(row, "rank", 0, high=1000, whole=True)
    phones = batch.phones.setdefault(mrn, [])
    phones[:] = [p for p in phones if p.number != number]
    phones.append(PhoneRec(mrn, number, kind, int(rank or 0)))
    return f"{mrn}|{number}"


def _prescription(row: dict[str, str], batch: Batch, _default: int) -> str:
    mrn, rx_id = _identifier(row, "mrn"), _identifier(row, "rx_id")
    name = _text(row, "drug_name", 200)
    rxnorm = _text(row, "rxnorm", 20, required=False) or None
    drug = classify(rxnorm, name)
    refills = _number(row, "refills_left", 0, high=99, whole=True)
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
    mrn, rx_id = _identifier(row, "mrn"), _identifier(row, "rx_id")
    fill_id = _identifier(row, "fill_id")
    when = _day(row, "fill_date")
    assert when is not None
    days = _number(row, "days_supply", None, low=1, high=1e9, whole=True)
    if days is not None and days > MAX_DAYS_SUPPLY:
        why = f"{int(days)} days: at most {MAX_DAYS_SUPPLY} days per fill"
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
