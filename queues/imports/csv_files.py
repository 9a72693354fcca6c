"""CSV exports → import records: patients, phones, prescriptions and fills files, UTF-8 with or
without a byte-order mark, a header row naming the columns (README "Importing data").

A million-line fills file is read at a few microseconds a line (bench/import.py): the csv module's
C reader splits the lines, each kind's row reader takes its columns by index (no dict per row),
and a value that repeats down a column — a fill date, a days supply, a state, a drug — is checked
once per file and its answer (the value, or why it is refused) looked up after that.

A whole export read again passes over the lines stored as they are by the digest of their bytes
before the csv module or the decoder sees them (~0.4 µs a line; queues.imports.digests): the file
is read as blocks of lines (queues.imports.csv_lines) and only the other lines are parsed.

This module reads the file (its header, its lines, its errors) and picks the path: the row
readers of the line path are in queues.imports.csv_rows, the chunk readers of the column path in
queues.imports.csv_columns, and the checks of a value both share in queues.imports.csv_values.
"""

from __future__ import annotations

import codecs
import csv
import unicodedata
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import compress, filterfalse
from operator import not_
from pathlib import Path
from typing import Any

from queues.imports.csv_columns import CHUNKS
from queues.imports.csv_lines import Feed, body, read_header
from queues.imports.csv_rows import READERS
from queues.imports.csv_values import IDENTIFIERS, Bad
from queues.imports.digests import LineDigests, Passed
from queues.imports.records import Batch, ImportRowError, SourceUnreadable

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
    if kind in CHUNKS:
        read = _by_columns(kind, path, default_days_supply, advance, digests)
        if read is not None:
            return read
    return _by_lines(kind, path, default_days_supply, advance, digests)


@contextmanager
def _rows(
    kind: str, path: Path
) -> Iterator[tuple[Iterator[bytes], list[str], dict[str, int], int]]:
    """The file's blocks of lines after its header (queues.imports.csv_lines), the header, each
    column's index in it, and the header's last line."""
    where = str(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise SourceUnreadable(f"{where}: {error.strerror}") from None
    required, optional = COLUMNS[kind]
    with handle:
        try:
            read = read_header(handle)
        except UnicodeDecodeError:
            raise _not_utf8(path) from None
        except csv.Error as error:
            raise SourceUnreadable(f"{where}:1: header: not a CSV header ({error})") from None
        header = [h.strip().lower() for h in read.values]
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
        yield read.rest, header, {name: i for i, name in enumerate(header)}, read.lines


def _by_columns(
    kind: str,
    path: Path,
    default_days_supply: int,
    advance: Callable[[int], None],
    digests: LineDigests | None,
) -> CsvResult | None:
    """The file read a block of lines at a time: the lines stored as they are passed over by
    their digests before anything else, the others read by the csv module and each block's
    values checked by column (a value that repeats down a column once), as _by_lines would read
    them; None at anything _by_lines would report or read otherwise (a bad value, a wrong count
    of values, a control character, a repeated identifier, a record over more than one line, a
    byte that is not UTF-8), before anything is kept: the file is then read line by line. The
    progress advanced is not taken back (a file with errors goes past its size)."""
    where = str(path)
    batch = Batch()
    origins = FileLines(kind, where)
    of: dict[str, int] = {}
    passed: list[tuple[list[int], list[int]]] = []  # a block's digests, those not passed
    stored: set[int] = set()
    with _rows(kind, path) as (rest, header, index, line):
        if digests is not None:
            digests.start(header)
        columns = len(header)
        read_chunk = CHUNKS[kind](index, default_days_supply)
        for block, bodies, found in _digested(rest, digests):
            advance(len(block))
            first, line = line + 1, line + len(bodies)
            lines: Sequence[int] = range(first, line + 1)
            if digests is not None:
                stored = digests.stored
            # Lines stored as they are are passed over (queues.imports.digests): every line
            # here starts a record, as each line read below is checked to be one record.
            if stored and found:
                missing = list(filterfalse(stored.__contains__, found))
                if len(missing) < len(found):
                    passed.append((found, missing))
                    keep = _where(found, missing)
                    bodies = [bodies[i] for i in keep]
                    lines = [lines[i] for i in keep]
                    found = missing
                    if not bodies:
                        continue
            try:
                texts = b"\n".join(bodies).decode("utf-8").split("\n")
            except UnicodeDecodeError:
                return None
            texts.append("")  # one record a line: a quote left open would run into this one
            try:
                chunk = list(csv.reader(texts))
            except csv.Error:
                return None
            if len(chunk) != len(texts):
                return None  # a quoted value over more than one line
            chunk.pop()
            joined = list(map("".join, chunk))
            if not all(map(str.strip, joined)):  # lines of blank values only are passed over
                keep = [i for i, values in enumerate(joined) if values.strip()]
                chunk = [chunk[i] for i in keep]
                lines = [lines[i] for i in keep]
                found = [found[i] for i in keep] if found else found
                if not chunk:
                    continue
            if set(map(len, chunk)) != {columns}:
                return None
            if not "".join(joined).isprintable():
                return None  # _printable says which, and whether it is one
            held = len(batch.patients) + len(batch.prescriptions) + len(batch.fills)
            try:
                keys = read_chunk(list(zip(*chunk, strict=True)), batch)
            except Bad:
                return None
            if len(batch.patients) + len(batch.prescriptions) + len(batch.fills) != held + len(
                keys
            ):
                return None  # an identifier given twice
            if found:
                of.update(zip(keys, found, strict=True))
            origins.line.update(zip(keys, lines, strict=True))
    if digests is not None:
        digests.of.update(of)
        for found, missing in passed:
            digests.passed.block(found, missing)
    return CsvResult(batch, [], origins)


# Blocks read and digested ahead while the stored digests are still being read: ~1 MB each, so
# ~32 MB of a file (~800,000 fills) and their lines and digests held at most.
AHEAD = 32


def _digested(
    rest: Iterator[bytes], digests: LineDigests | None
) -> Iterator[tuple[bytes, list[bytes], list[int]]]:
    """Each block, its lines without their ends, and their digests (none without `digests`).
    While the stored digests are still being read (on a thread: queues.imports.run), up to AHEAD
    blocks are read and digested ahead, so that the two run at once: the database reads (and
    SQLite's or psycopg's C code waits) without the interpreter's lock."""
    if digests is None:
        for block in rest:
            yield block, block.splitlines(), []
        return
    ahead: deque[tuple[bytes, list[bytes], list[int]]] = deque()
    for block in rest:
        bodies = block.splitlines()
        ahead.append((block, bodies, digests.chunk(bodies)))
        if len(ahead) < AHEAD and not digests.ready():
            continue
        while ahead:
            yield ahead.popleft()
    yield from ahead


def _where(found: list[int], missing: list[int]) -> list[int]:
    """Where in `found` the digests `missing` (picked out of it, in order) are. A whole export's
    block has a few dozen lines changed in ~25,000: found by list.index, one scan of the block
    at C speed in all; a block of mostly new lines by one pass."""
    if len(missing) > 64:
        among = set(missing)
        return list(compress(range(len(found)), map(among.__contains__, found)))
    at, out = -1, []
    for digest in missing:
        at = found.index(digest, at + 1)
        out.append(at)
    return out


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
    with _rows(kind, path) as (rest, header, index, line):
        if digests is not None:
            digests.start(header)
        stored = digests.stored if digests is not None else set()
        passed = digests.passed if digests is not None else Passed()
        read_row = READERS[kind](index, default_days_supply)
        columns = len(header)
        ids_at = [index[c] for c in IDENTIFIERS.get(kind, ())]
        last_id = IDENTIFIERS[kind][-1] if ids_at else ""
        first_seen: dict[Any, int] = {}
        lines = _Lines(rest, digests, advance, stored, passed)
        feed = Feed(lines)
        rows = csv.reader(feed)
        # `line`: the last line read; a record starts on the line after it.
        while (found := lines.record()) is not None:
            # The lines before it stored as they were made (queues.imports.digests) were passed
            # over, each where a record starts.
            passed_over, raw, digest = found
            start = line = line + passed_over + 1
            feed.first = raw
            feed.more.clear()
            try:
                values = next(rows)
            except UnicodeDecodeError:
                raise _not_utf8(path) from None
            except csv.Error as error:
                # The rest of the file cannot be told apart into rows any more: refuse it whole
                # (with --skip-bad-rows too: the rows after it would be lost without a word).
                raise SourceUnreadable(
                    f"{where}:{start}: row: {error}; nothing was stored"
                ) from None
            line += len(feed.more)
            if feed.more and digests is not None:
                # A quoted value over line ends: the record's digest is of all of its lines.
                digest = digests.digest(body(b"".join((raw, *feed.more))))
                if digest in stored:
                    passed.add(digest)
                    continue
            if feed.cut:
                digest = None  # a quote still open at the file's end (csv_lines.Feed)
            # Blank values only.
            if not "".join(values).strip():
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
                        raise Bad(last_id, f"given again (first on line {first})")
                key = read_row(values, batch)
            except Bad as bad:
                errors.append(ImportRowError(where, start, bad.field, bad.why))
                continue
            line_of[key] = start
            if digests is not None:
                digests.of[key] = digest
    return CsvResult(batch, errors, origins)


class _Lines:
    """The lines of a file's blocks after its header (line ends kept), each with the digest of its
    bytes (digests.chunk, a block at a time), taken two ways: `record` where a record starts,
    passing over the lines before it whose digests are stored (a run of them at C speed, not a
    line at a time: a phones file read again was ~1 µs a line); `next` for the lines a quoted
    value goes on over (csv_lines.Feed), stored or not. The progress advances by a block as it
    is reached."""

    def __init__(
        self,
        rest: Iterator[bytes],
        digests: LineDigests | None,
        advance: Callable[[int], None],
        stored: set[int],
        passed: Passed,
    ) -> None:
        self.rest, self.digests, self.advance = rest, digests, advance
        self.stored, self.passed = stored, passed
        self.raws: list[bytes] = []
        self.found: list[int] = []  # the digest of each of `raws` (none without digests)
        self.read: list[int] = []  # where in `raws` the lines not stored are, in order
        self.at = 0  # the next line of `raws` to take

    def _next_block(self) -> bool:
        block = next(self.rest, None)
        if block is None:
            return False
        self.advance(len(block))
        self.raws, self.at = block.splitlines(keepends=True), 0
        if self.digests is None:
            self.found, self.read = [], list(range(len(self.raws)))
        else:
            self.found = self.digests.chunk(block.splitlines())
            stored = map(self.stored.__contains__, self.found)
            self.read = list(compress(range(len(self.raws)), map(not_, stored)))
        return True

    def record(self) -> tuple[int, bytes, int | None] | None:
        """The next line not stored where a record starts, after passing over the stored lines
        before it (added to `passed`): how many were passed over, the line, its digest; None at
        the file's end."""
        passed_over = 0
        while True:
            if self.at >= len(self.raws) and not self._next_block():
                return None
            at = self.at
            k = bisect_left(self.read, at)
            upto = self.read[k] if k < len(self.read) else len(self.raws)
            if upto > at:
                self.passed.block(self.found[at:upto], [])
                passed_over += upto - at
            if upto == len(self.raws):
                self.at = upto
                continue
            self.at = upto + 1
            return passed_over, self.raws[upto], self.found[upto] if self.found else None

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> bytes:
        if self.at >= len(self.raws) and not self._next_block():
            raise StopIteration
        self.at += 1
        return self.raws[self.at - 1]


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
            raise Bad(name, "contains a control character (a line break, tab, NUL or escape)")
