"""CSV exports → import records: patients, phones, prescriptions and fills files, UTF-8 with or
without a byte-order mark, a header row naming the columns (README "Importing data").

A million-line fills file is read at a few microseconds a line (bench/import.py): the csv module's
C reader splits the lines, each kind's row reader takes its columns by index (no dict per row),
and a value that repeats down a column — a fill date, a days supply, a state, a drug — is checked
once per file and its answer (the value, or why it is refused) looked up after that.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import islice
from pathlib import Path
from typing import Any, TypeVar

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
from queues.imports.rxnorm import DrugClass, classify

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
_FLAGS = {**dict.fromkeys(TRUE, True), **dict.fromkeys(FALSE, False)}
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
# A US number already in E.164 whose area code starts 2-9: phonenumbers gives it back as it is
# (its parse is ~30 µs a number; test_csv checks the two agree), anything else goes through e164.
_NANP_E164 = re.compile(r"\+1[2-9][0-9]{9}")
EARLIEST_DAY = date(1900, 1, 1)
EARLIEST_BIRTH = date(1880, 1, 1)
# A column's checked values kept per file, at most this many (an export's fill dates, days
# supplies, states and drugs are a few thousand; unique values just miss).
_MEMO_LIMIT = 100_000
# Bytes read between two progress updates (a terminal's progress bar takes a lock per update).
_PROGRESS_STEP = 1 << 16

T = TypeVar("T")


class _Bad(Exception):
    def __init__(self, field: str, why: str) -> None:
        self.field, self.why = field, why


class FileLines(Mapping[tuple[str, str], tuple[str, int]]):
    """Where each record of one file was read, for the store's errors: (kind, key) -> (file,
    line), kept as one dictionary of key -> line (a tuple key and a tuple value a line were a
    tenth of reading a fills file)."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where
        self.line: dict[str, int] = {}

    def __getitem__(self, item: tuple[str, str]) -> tuple[str, int]:
        kind, key = item
        if kind != self.kind:
            raise KeyError(item)
        return self.where, self.line[key]

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return ((self.kind, key) for key in self.line)

    def __len__(self) -> int:
        return len(self.line)


@dataclass
class CsvResult:
    batch: Batch
    errors: list[ImportRowError]
    origins: FileLines  # (kind, key) -> (file, line), for store errors


# A row reader: the line's values (as the csv module gives them, not stripped) into the batch;
# returns the record's key. Made per file by _READERS[kind](index, default days supply).
RowReader = Callable[[list[str], Batch], str]
# A chunk reader: a chunk of clean lines as columns (each a tuple of one column's values, as the
# csv module gives them) into the batch; returns the records' keys in line order, or raises _Bad
# at the first value the row reader would refuse (which value, it does not say: the file is then
# read again line by line, which names each). Made per file by _CHUNKS[kind](index, default days).
ChunkReader = Callable[[list[tuple[str, ...]], Batch], list[str]]
# Lines read and checked together on the column path (a progress update each).
_CHUNK = 20_000


def read_csv(
    kind: str,
    path: Path,
    default_days_supply: int,
    advance: Callable[[int], None] = lambda _n: None,
    digests: LineDigests | None = None,
) -> CsvResult:
    """A file's records, and its bad rows as `file:line: field: why`. A file of clean lines (no
    error, no repeat, one line a record) is read by columns, each distinct value of a column
    checked once; any other is read line by line, as the column path's answer would be the same
    wherever it has one (tests/imports/test_csv_columns.py)."""
    if kind not in COLUMNS:
        raise SourceUnreadable(f"{kind}: not one of {', '.join(KINDS)}")
    if kind in _CHUNKS:
        read = _by_columns(kind, path, default_days_supply, advance, digests)
        if read is not None:
            return read
    return _by_lines(kind, path, default_days_supply, advance, digests)


@contextmanager
def _rows(kind: str, path: Path) -> Iterator[tuple[Any, list[str], dict[str, int]]]:
    """The file's csv reader past its header, the header, and each column's index in it."""
    where = str(path)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise SourceUnreadable(f"{where}: {error.strerror}") from None
    required, optional = COLUMNS[kind]
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
        yield rows, header, {name: i for i, name in enumerate(header)}


def _by_columns(
    kind: str,
    path: Path,
    default_days_supply: int,
    advance: Callable[[int], None],
    digests: LineDigests | None,
) -> CsvResult | None:
    """The file read _CHUNK lines at a time, each chunk's values checked by column (a value that
    repeats down a column once), as _by_lines would read it; None at anything _by_lines would
    report or read otherwise (a bad value, a wrong count of values, a control character, a
    repeated identifier, a record over more than one line, a byte that is not UTF-8), before
    anything is kept: the file is then read line by line. The progress advanced is not taken
    back (a file with errors goes past its size)."""
    where = str(path)
    batch = Batch()
    origins = FileLines(kind, where)
    of: dict[str, int] = {}
    passed: set[int] = set()
    stored = digests.stored if digests is not None else set()
    with _rows(kind, path) as (rows, header, index):
        if digests is not None:
            digests.start(header)
        columns = len(header)
        read_chunk = _CHUNKS[kind](index, default_days_supply)
        line = rows.line_num
        try:
            while chunk := list(islice(rows, _CHUNK)):
                first, line = line + 1, rows.line_num
                if line - first + 1 != len(chunk):
                    return None  # a quoted value over more than one line
                joined = list(map("\x1f".join, chunk))
                advance(sum(map(len, joined)) + len(joined))
                lines: Sequence[int] = range(first, line + 1)
                found = digests.chunk(joined) if digests is not None else []
                # Lines stored as they are, and lines of blank values only, are passed over.
                stored_here = stored.intersection(found) if found else set()
                if stored_here or not all(map(str.strip, joined)):
                    passed |= stored_here
                    keep: Sequence[int] = range(len(chunk))
                    if stored_here:
                        keep = [i for i, digest in enumerate(found) if digest not in stored_here]
                    keep = [i for i in keep if joined[i].strip()]
                    chunk = [chunk[i] for i in keep]
                    lines = [lines[i] for i in keep]
                    found = [found[i] for i in keep] if found else found
                    if not chunk:
                        continue
                if set(map(len, chunk)) != {columns}:
                    return None
                if not "".join(map("".join, chunk)).isprintable():
                    return None  # _printable says which, and whether it is one
                held = len(batch.patients) + len(batch.prescriptions) + len(batch.fills)
                keys = read_chunk(list(zip(*chunk, strict=True)), batch)
                if len(batch.patients) + len(batch.prescriptions) + len(batch.fills) != held + len(
                    keys
                ):
                    return None  # an identifier given twice
                if found:
                    of.update(zip(keys, found, strict=True))
                origins.line.update(zip(keys, lines, strict=True))
        except (_Bad, csv.Error, UnicodeDecodeError):
            return None
    if digests is not None:
        digests.of.update(of)
        digests.passed.update(passed)
    return CsvResult(batch, [], origins)


def _by_lines(
    kind: str,
    path: Path,
    default_days_supply: int,
    advance: Callable[[int], None],
    digests: LineDigests | None,
) -> CsvResult:
    where = str(path)
    batch, errors = Batch(), []
    origins = FileLines(kind, where)
    line_of = origins.line
    with _rows(kind, path) as (rows, header, index):
        if digests is not None:
            digests.start(header)
        unchanged = digests.unchanged if digests is not None else None
        note = digests.note if digests is not None else None
        read_row = _READERS[kind](index, default_days_supply)
        columns = len(header)
        ids_at = [index[c] for c in IDENTIFIERS.get(kind, ())]
        last_id = IDENTIFIERS[kind][-1] if ids_at else ""
        first_seen: dict[Any, int] = {}
        line = 1  # the last line read; a record starts on the line after it
        unreported = 0
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
            unreported += len(joined) + 1
            if unreported >= _PROGRESS_STEP:
                advance(unreported)
                unreported = 0
            if unchanged is not None and unchanged(joined):
                continue  # stored as this very line made it (queues.imports.digests)
            # Blank values only (U+001F is whitespace to str.strip, as are the values' own).
            if not joined.strip():
                continue
            if len(values) != columns:
                why = f"{len(values)} values for {columns} columns"
                errors.append(ImportRowError(where, start, "row", why))
                continue
            try:
                if not "".join(values).isprintable():  # one test per row; the field if it fails
                    _printable(header, values)
                if ids_at:
                    ids = (
                        values[ids_at[0]].strip()
                        if len(ids_at) == 1
                        else tuple([values[i].strip() for i in ids_at])
                    )
                    first = first_seen.get(ids)
                    if first is None:
                        first_seen[ids] = start
                    elif all(ids) if isinstance(ids, tuple) else ids:
                        raise _Bad(last_id, f"given again (first on line {first})")
                key = read_row(values, batch)
            except _Bad as bad:
                errors.append(ImportRowError(where, start, bad.field, bad.why))
                continue
            line_of[key] = start
            if note is not None:
                note(key)
        if unreported:
            advance(unreported)
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


def _printable(header: list[str], values: list[str]) -> None:
    """No control characters (a NUL, an escape, a line break inside a quoted value): PostgreSQL
    refuses a NUL, and the rest would reach an agent's screen. A no-break space and the like
    are fine (str.isprintable refuses those too, so it only says when to look closer); so is
    whitespace around a value, which is stripped."""
    for name, raw in zip(header, values, strict=True):
        value = raw.strip()
        if not value.isprintable() and any(
            unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value
        ):
            raise _Bad(name, "contains a control character (a line break, tab, NUL or escape)")


# -- values ---------------------------------------------------------------------------------------
def _memo(check: Callable[[str], T]) -> Callable[[str], T]:
    """`check` of a column's value, asked once per distinct value (its answer or its _Bad kept)."""
    answers: dict[str, T] = {}
    refusals: dict[str, _Bad] = {}

    def checked(value: str) -> T:
        try:
            return answers[value]
        except KeyError:
            pass
        bad = refusals.get(value)
        if bad is not None:
            raise _Bad(bad.field, bad.why)
        try:
            answer = check(value)
        except _Bad as refused:
            if len(refusals) < _MEMO_LIMIT:
                refusals[value] = refused
            raise
        if len(answers) < _MEMO_LIMIT:
            answers[value] = answer
        return answer

    return checked


def _column(index: dict[str, int], name: str) -> Callable[[list[str]], str]:
    """The stripped value of column `name` of a row; "" when the file has no such column."""
    at = index.get(name)
    if at is None:
        return lambda _values: ""
    return lambda values: values[at].strip()


def _text(value: str, name: str, limit: int, required: bool = True) -> str:
    if required and not value:
        raise _Bad(name, "empty")
    if len(value) > limit:
        raise _Bad(name, f"longer than {limit} characters")
    return value


def _identifier(value: str, name: str) -> str:
    """An MRN, rx_id or fill_id: `|` joins them into one key (mrn|rx_id), so it may not be in one."""
    if not value:
        raise _Bad(name, "empty")
    if len(value) > 64:
        raise _Bad(name, "longer than 64 characters")
    if "|" in value:
        raise _Bad(name, "may not contain |")
    return value


def _days(name: str, earliest: date = EARLIEST_DAY) -> Callable[[str], date]:
    """A (non-empty) YYYY-MM-DD date from `earliest` to a year from today (a fill dated
    9999-12-30 would run out past the calendar's end); today is read once per file."""
    latest = date.today() + timedelta(days=366)

    def day(value: str) -> date:
        try:
            if not _ISO_DAY.fullmatch(value):
                raise ValueError(value)
            found = date.fromisoformat(value)
        except ValueError:
            raise _Bad(name, "not a date like 2026-12-02") from None
        if not earliest <= found <= latest:
            raise _Bad(name, f"not a plausible date ({earliest} to {latest})")
        return found

    return _memo(day)


def _flag(value: str, name: str, default: bool | None = False) -> Any:
    if not value:
        return default
    found = _FLAGS.get(value.lower())
    if found is None:
        raise _Bad(name, "not true/false (yes/no, 1/0)")
    return found


def _numbers(
    name: str, low: float = 0, high: float = 1e9, whole: bool = False
) -> Callable[[str], float]:
    """A (non-empty) number from `low` to `high`, as float() reads it."""

    def number(value: str) -> float:
        if not _NUMBER.fullmatch(value):  # not float()'s "1_000", "nan", "inf", other digits
            raise _Bad(name, "not a number")
        found = float(value)
        if not low <= found <= high:
            raise _Bad(name, f"must be from {low:g} to {high:g}")
        if whole and found != int(found):
            raise _Bad(name, "must be a whole number")
        return found

    return _memo(number)


def _phone_number(value: str) -> str | None:
    return value if _NANP_E164.fullmatch(value) else e164(value)


def _patient_values() -> tuple[
    Callable[[str], str], Callable[[str], str], Callable[[str], str], Callable[[str], date]
]:
    """A patients file's checks of a ZIP code, a state, a language and a birth date (stripped
    values; each distinct value checked once)."""
    today = date.today()

    def zip_code(value: str) -> str:
        found = _text(value, "zip_code", 10)[:5]
        if len(found) != 5 or not (found.isascii() and found.isdigit()):
            raise _Bad("zip_code", "not a 5-digit ZIP code")
        return found

    def state(value: str) -> str:
        found = _text(value, "state", 2).upper()
        if found not in STATES:
            raise _Bad("state", "not a US state's 2-letter code")
        return found

    def language_code(value: str) -> str:
        tag = _LANGUAGE.fullmatch(_text(value, "language", 16, required=False) or "en")
        if tag is None:
            raise _Bad("language", "not a language code like en, es or es-MX")
        return tag.group(1).lower()

    dates = _days("birth_date", EARLIEST_BIRTH)

    def birth_date(value: str) -> date:
        if not value:
            raise _Bad("birth_date", "empty")
        found = dates(value)
        if found > today:
            raise _Bad("birth_date", "not a plausible birth date")
        return found

    return _memo(zip_code), _memo(state), _memo(language_code), birth_date


def _supplies(name: str = "days_supply") -> Callable[[str], int]:
    """A fill's days supply: a whole number of days from 1 to MAX_DAYS_SUPPLY."""
    supply_days = _numbers(name, low=1, high=1e9, whole=True)

    def supply(value: str) -> int:
        days = supply_days(value)
        if days > MAX_DAYS_SUPPLY:
            why = f"{int(days)} days: at most {MAX_DAYS_SUPPLY} days per fill"
            raise _Bad("days_supply", why)
        return int(days)

    return _memo(supply)


# -- one reader per kind of file -----------------------------------------------------------------
def _patients(index: dict[str, int], _default_days: int) -> RowReader:
    mrn_at = index["mrn"]
    first_at, last_at = index["first_name"], index["last_name"]
    birth_at, zip_at, state_at = index["birth_date"], index["zip_code"], index["state"]
    gender, language, deceased = (_column(index, c) for c in ("gender", "language", "deceased"))
    caregiver_name, caregiver_relation, caregiver_phone, caregiver_authorized = (
        _column(index, c)
        for c in ("caregiver_name", "caregiver_relation", "caregiver_phone", "caregiver_authorized")
    )
    consent, tobacco, hospice, esrd = (
        _column(index, c) for c in ("consent_to_call", "tobacco_use", "hospice", "esrd")
    )
    zip_codes, states, languages, birth_date = _patient_values()

    def read(values: list[str], batch: Batch) -> str:
        mrn = _identifier(values[mrn_at].strip(), "mrn")
        zip_ = zip_codes(values[zip_at].strip())
        state_ = states(values[state_at].strip())
        language_ = languages(language(values))
        phone_given = caregiver_phone(values)
        phone = _phone_number(phone_given) if phone_given else None
        if phone_given and phone is None:
            raise _Bad("caregiver_phone", "not a phone number")
        birth = birth_date(values[birth_at].strip())
        batch.patients[mrn] = PatientRec(
            mrn,
            _text(values[first_at].strip(), "first_name", 100),
            _text(values[last_at].strip(), "last_name", 100),
            birth,
            zip_,
            state_,
            gender=_text(gender(values), "gender", 16, required=False) or None,
            language=language_,
            deceased=_flag(deceased(values), "deceased"),
            caregiver_name=_text(caregiver_name(values), "caregiver_name", 200, False) or None,
            caregiver_relation=_text(caregiver_relation(values), "caregiver_relation", 64, False)
            or None,
            caregiver_phone=phone,
            caregiver_authorized=_flag(caregiver_authorized(values), "caregiver_authorized"),
            consent_to_call=_flag(consent(values), "consent_to_call", None),
            tobacco_use=_flag(tobacco(values), "tobacco_use"),
            hospice=_flag(hospice(values), "hospice"),
            esrd=_flag(esrd(values), "esrd"),
        )
        return mrn

    return read


def _phones(index: dict[str, int], _default_days: int) -> RowReader:
    mrn_at, number_at = index["mrn"], index["number"]
    kind_of, rank_of = _column(index, "kind"), _column(index, "rank")
    ranks = _numbers("rank", high=1000, whole=True)

    def read(values: list[str], batch: Batch) -> str:
        mrn = _identifier(values[mrn_at].strip(), "mrn")
        number = _phone_number(_text(values[number_at].strip(), "number", 40))
        if number is None:
            raise _Bad("number", "not a phone number")
        kind = (kind_of(values) or "mobile").lower()
        if kind not in PHONE_KINDS:
            raise _Bad("kind", f"not one of {', '.join(PHONE_KINDS)}")
        rank = rank_of(values)
        phones = batch.phones.setdefault(mrn, [])
        if phones:
            phones[:] = [p for p in phones if p.number != number]
        phones.append(PhoneRec(mrn, number, kind, int(ranks(rank)) if rank else 0))
        return f"{mrn}|{number}"

    return read


def _prescriptions(index: dict[str, int], _default_days: int) -> RowReader:
    mrn_at, rx_at, name_at = index["mrn"], index["rx_id"], index["drug_name"]
    rxnorm_of, refills_of, written_of = (
        _column(index, c) for c in ("rxnorm", "refills_left", "written_on")
    )
    active_of, chronic_of, prescriber_of = (
        _column(index, c) for c in ("active", "chronic", "prescriber")
    )
    refill_counts = _numbers("refills_left", high=99, whole=True)
    written_days = _days("written_on")
    drugs: dict[tuple[str | None, str], DrugClass] = {}

    def read(values: list[str], batch: Batch) -> str:
        mrn = _identifier(values[mrn_at].strip(), "mrn")
        rx_id = _identifier(values[rx_at].strip(), "rx_id")
        name = _text(values[name_at].strip(), "drug_name", 200)
        rxnorm = _text(rxnorm_of(values), "rxnorm", 20, required=False) or None
        drug = drugs.get((rxnorm, name))
        if drug is None:
            drug = classify(rxnorm, name)
            if len(drugs) < _MEMO_LIMIT:
                drugs[(rxnorm, name)] = drug
        refills = refills_of(values)
        refills_left = int(refill_counts(refills)) if refills else 0
        written = written_of(values)
        key = f"{mrn}|{rx_id}"
        batch.prescriptions[key] = PrescriptionRec(
            rx_id,
            mrn,
            name,
            drug.ingredient,
            rxnorm,
            drug.pqa_class,
            _flag(chronic_of(values), "chronic", drug.chronic),
            refills_left,
            written_days(written) if written else None,
            _flag(active_of(values), "active", True),
            _text(prescriber_of(values), "prescriber", 200, required=False) or None,
        )
        return key

    return read


def _fills(index: dict[str, int], default_days: int) -> RowReader:
    mrn_at, rx_at, fill_at, date_at = (
        index["mrn"], index["rx_id"], index["fill_id"], index["fill_date"]
    )  # fmt: skip
    days_of, quantity_of = _column(index, "days_supply"), _column(index, "quantity")
    fill_days = _days("fill_date")
    supplies, quantities = _supplies(), _numbers("quantity")

    def read(values: list[str], batch: Batch) -> str:
        mrn = _identifier(values[mrn_at].strip(), "mrn")
        rx_id = _identifier(values[rx_at].strip(), "rx_id")
        fill_id = _identifier(values[fill_at].strip(), "fill_id")
        when = values[date_at].strip()
        if not when:
            raise _Bad("fill_date", "empty")
        day = fill_days(when)
        days = days_of(values)
        quantity = quantity_of(values)
        key = f"{mrn}|{rx_id}"
        fill_key = f"{key}|{fill_id}"
        batch.fills[fill_key] = FillRec(
            fill_id,
            key,
            day,
            supplies(days) if days else default_days,
            quantities(quantity) if quantity else 0.0,
            estimated=not days,
        )
        return fill_key

    return read


_READERS: dict[str, Callable[[dict[str, int], int], RowReader]] = {
    "patients": _patients,
    "phones": _phones,
    "prescriptions": _prescriptions,
    "fills": _fills,
}


# -- the same, a chunk of clean lines at a time (read_csv's column path) -------------------------
def _stripped(values: tuple[str, ...]) -> list[str]:
    return list(map(str.strip, values))


def _optional(columns: list[tuple[str, ...]], at: int | None) -> list[str]:
    """A column's stripped values; "" on every line when the file has no such column."""
    return [""] * len(columns[0]) if at is None else _stripped(columns[at])


def _identifiers(values: tuple[str, ...], name: str) -> list[str]:
    """_identifier of every value of a column."""
    found = _stripped(values)
    if not all(found) or max(map(len, found)) > 64 or "|" in "".join(found):
        raise _Bad(name, "an identifier _identifier refuses")
    return found


def _each(values: list[str], check: Callable[[str], T]) -> list[T]:
    """`check` of each value of a column, asked once per distinct value."""
    answers = {value: check(value) for value in set(values)}
    return list(map(answers.__getitem__, values))


def _patient_chunks(index: dict[str, int], _default_days: int) -> ChunkReader:
    zip_codes, states, languages, birth_date = _patient_values()
    at = index.get

    def caregiver_phone(value: str) -> str | None:
        phone = _phone_number(value) if value else None
        if value and phone is None:
            raise _Bad("caregiver_phone", "not a phone number")
        return phone

    def optional_text(name: str, limit: int) -> Callable[[str], str | None]:
        return lambda value: _text(value, name, limit, required=False) or None

    def flag(name: str, default: bool | None = False) -> Callable[[str], Any]:
        return lambda value: _flag(value, name, default)

    def read(columns: list[tuple[str, ...]], batch: Batch) -> list[str]:
        mrn = _identifiers(columns[index["mrn"]], "mrn")
        records = map(
            PatientRec,
            mrn,
            _each(_stripped(columns[index["first_name"]]), lambda v: _text(v, "first_name", 100)),
            _each(_stripped(columns[index["last_name"]]), lambda v: _text(v, "last_name", 100)),
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
    refill_counts = _numbers("refills_left", high=99, whole=True)
    written_days = _days("written_on")
    at = index.get

    def read(columns: list[tuple[str, ...]], batch: Batch) -> list[str]:
        mrn = _identifiers(columns[index["mrn"]], "mrn")
        rx_id = _identifiers(columns[index["rx_id"]], "rx_id")
        name = _each(_stripped(columns[index["drug_name"]]), lambda v: _text(v, "drug_name", 200))
        rxnorm = _each(
            _optional(columns, at("rxnorm")),
            lambda v: _text(v, "rxnorm", 20, required=False) or None,
        )
        codes = list(zip(rxnorm, name, strict=True))
        classes = {code: classify(*code) for code in set(codes)}
        drug = list(map(classes.__getitem__, codes))
        chronic = [
            d.chronic if given is None else given
            for given, d in zip(
                _each(_optional(columns, at("chronic")), lambda v: _flag(v, "chronic", None)),
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
            _each(_optional(columns, at("active")), lambda v: _flag(v, "active", True)),
            _each(
                _optional(columns, at("prescriber")),
                lambda v: _text(v, "prescriber", 200, required=False) or None,
            ),
        )
        batch.prescriptions.update(zip(keys, records, strict=True))
        return keys

    return read


def _fill_chunks(index: dict[str, int], default_days: int) -> ChunkReader:
    fill_days = _days("fill_date")
    supplies, quantities = _supplies(), _numbers("quantity")
    days_at, quantity_at = index.get("days_supply"), index.get("quantity")

    def day(value: str) -> date:
        if not value:
            raise _Bad("fill_date", "empty")
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
_CHUNKS: dict[str, Callable[[dict[str, int], int], ChunkReader]] = {
    "patients": _patient_chunks,
    "prescriptions": _prescription_chunks,
    "fills": _fill_chunks,
}
