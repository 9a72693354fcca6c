"""The lines of a CSV export already stored as they are, known by a digest of each line.

A pharmacy sends its whole export every night and most of it is what it sent the night before. A
row an import writes from a CSV line keeps that line's digest (`source_digest`, migration 0019);
the next import of the same kind of file reads the pharmacy's digests once and passes over every
line whose digest is among them — the row it would make is the row stored — without parsing it,
comparing it or writing anything. A row changed since by anything else (another file, a FHIR
import) had its digest replaced or cleared by that write, so its line is read again.

The digest covers the line's values, the file's header (the same values under other columns say
other things), the kind of file, and everything else that decides what a line stores: the default
days supply of a fill, the RxNorm table a prescription is classified by, and LINE_RULES, to be
raised whenever the reading of a line changes (queues.imports.csv_files).
"""

from __future__ import annotations

from functools import cache
from itertools import repeat
from typing import Protocol

import xxhash

from queues.imports.rxnorm import TABLE as RXNORM_TABLE

# Raise it when csv_files reads a line into other values than before: every line is read again.
LINE_RULES = 1

# kind of CSV file -> the table its rows are written to
TABLES = {
    "patients": "patients",
    "phones": "phones",
    "prescriptions": "prescriptions",
    "fills": "fills",
}


class StoredLines(Protocol):
    """What the store asks of an import's digests (LineDigests for a CSV file, FhirDigests for a
    FHIR import, queues.imports.fhir_digests): which digest the row of `key` in `table` was made
    from, and whether a digest was passed over as stored."""

    def line_of(self, table: str, key: str) -> int | None: ...

    def was_passed(self, table: str, digest: int) -> bool: ...

    def passed_count(self, table: str) -> int: ...


class DuplicateLine(Exception):
    """A file names one row on two lines, one of them passed over as stored: which line comes last
    decides, so the file is read again in full (queues.imports.run)."""


class LineDigests:
    """For one CSV file: passes over the lines stored as they are, and keeps the digest of every
    other line under the key of the record it made (read_csv calls `start`, `unchanged`, `note`)."""

    def __init__(self, kind: str, stored: set[int], default_days_supply: int) -> None:
        self.kind = kind
        self.table = TABLES[kind]
        self.stored = stored
        self.of: dict[str, int] = {}  # record key -> digest of the line that made it
        self.passed: set[int] = set()  # digests of the lines passed over
        self._extra = f"{default_days_supply}" if kind == "fills" else ""
        if kind == "prescriptions":
            self._extra = f"{_rxnorm_version()}"
        self._seed = 0
        self._current = 0
        self._hash = xxhash.xxh3_64_intdigest

    def start(self, header: list[str]) -> None:
        salt = "\x1e".join((str(LINE_RULES), self.kind, self._extra, "\x1f".join(header)))
        self._seed = xxhash.xxh3_64_intdigest(salt.encode())

    def unchanged(self, joined: str) -> bool:
        """True for a line stored as it is (then it is not read further). `joined`: the line's
        values joined by U+001F, the unit separator."""
        # 63 bits, so a digest fits a signed BIGINT; xxh3 (xxhash) at ~0.1 µs a line, since a
        # line passed over should cost little more than reading it.
        digest = self._hash(joined.encode(), self._seed) >> 1
        if digest in self.stored:
            self.passed.add(digest)
            return True
        self._current = digest
        return False

    def chunk(self, joined: list[str]) -> list[int]:
        """The digest of each of a chunk of lines, as `unchanged` makes it (read_csv's column
        path, which keeps what they say itself)."""
        digests = map(self._hash, map(str.encode, joined), repeat(self._seed))
        return [digest >> 1 for digest in digests]

    def note(self, key: str) -> None:
        """The record `key` was made by the line `unchanged` last said was not stored."""
        self.of[key] = self._current

    # StoredLines
    def line_of(self, table: str, key: str) -> int | None:
        return self.of.get(key) if table == self.table else None

    def was_passed(self, table: str, digest: int) -> bool:
        return table == self.table and digest in self.passed

    def passed_count(self, table: str) -> int:
        return len(self.passed) if table == self.table else 0


@cache
def _rxnorm_version() -> int:
    return xxhash.xxh3_64_intdigest(RXNORM_TABLE.read_bytes())
