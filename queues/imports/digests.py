"""The lines of a CSV export already stored as they are, known by a digest of each line.

A pharmacy sends its whole export every night and most of it is what it sent the night before. A
row an import writes from a CSV line keeps that line's digest (`source_digest`, migration 0019);
the next import of the same kind of file reads the pharmacy's digests once and passes over every
line whose digest is among them — the row it would make is the row stored — without parsing it,
decoding it, comparing it or writing anything. A row changed since by anything else (another
file, a FHIR import) had its digest replaced or cleared by that write, so its line is read again.

The digest covers the line's bytes as the file has them, without the line end ("\r\n" and "\n"
alike; a byte-order mark is the header's, not a line's), and a record whose quoted value goes on
over a line end covers all of its lines (queues.imports.csv_lines). Lines with the same values
written otherwise (quoted or not) are other lines: read once, found equal, then known. It also
covers the file's header (the same values under other columns say other things), the kind of
file, and everything else that decides what a line stores: the default days supply
of a fill, the RxNorm table a prescription is classified by, and LINE_RULES, to be raised
whenever the reading of a line changes (queues.imports.csv_files).

A line is passed over only where a record starts (the file's first line after the header, or the
line after a record read or passed over): the bytes of a record stored from one line are that one
record wherever a record starts, so the line after a quoted value left open is never taken for
a record of its own (csv_files checks every line it reads is one record before passing over the
next).
"""

from __future__ import annotations

from collections.abc import Iterator, Set
from concurrent.futures import Future
from functools import cache
from itertools import repeat
from typing import Protocol

import xxhash

from queues.imports.rxnorm import TABLE as RXNORM_TABLE

# Raise it when csv_files reads a line into other values than before: every line is read again
# (and its row, when found equal, takes the new digest). 2: a digest of the line's bytes, not of
# its values as the csv module read them (2026-12-07).
LINE_RULES = 2

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


class Passed(Set[int]):
    """The digests of a file's lines passed over, kept as the blocks of lines found them: one
    set a block (merging a whole export's million into one set cost a third of passing them
    over); the store asks after a few of them (DuplicateLine) and counts the patients'. A block
    of the column path is kept as its digests and those of them not passed over, made a set
    only when first asked after: a whole fills file's million are never asked after when none
    of its stored rows changed (a set of each block's was ~0.05 s of CPU a million)."""

    def __init__(self) -> None:
        self.parts: list[set[int]] = [set()]
        self._blocks: list[tuple[list[int], list[int]]] = []

    def add(self, digest: int) -> None:
        self.parts[0].add(digest)

    def block(self, found: list[int], missing: list[int]) -> None:
        """A block's digests (`found`) of which all but `missing` were passed over."""
        self._blocks.append((found, missing))

    def _settled(self) -> list[set[int]]:
        for found, missing in self._blocks:
            here = set(found)
            here.difference_update(missing)
            self.parts.append(here)
        self._blocks.clear()
        return self.parts

    def __contains__(self, digest: object) -> bool:
        return any(digest in part for part in self._settled())

    def __iter__(self) -> Iterator[int]:
        return iter(set().union(*self._settled()))

    def __len__(self) -> int:
        parts = self._settled()
        return len(set().union(*parts)) if len(parts) > 1 else len(parts[0])


class DuplicateLine(Exception):
    """A file names one row on two lines, one of them passed over as stored: which line comes last
    decides, so the file is read again in full (queues.imports.run)."""


class LineDigests:
    """For one CSV file: the digests of the lines stored as they are (`stored`; those of the file
    go to `passed`), and the digest of every other line under the key of the record it made
    (`of`; read_csv calls `start` with the header, then `chunk` or `digest`)."""

    def __init__(
        self, kind: str, stored: set[int] | Future[set[int]], default_days_supply: int
    ) -> None:
        self.kind = kind
        self.table = TABLES[kind]
        self._stored = stored
        # record key -> digest of the line that made it (None: a record that gets none)
        self.of: dict[str, int | None] = {}
        self.passed = Passed()  # digests of the lines passed over
        self._extra = f"{default_days_supply}" if kind == "fills" else ""
        if kind == "prescriptions":
            self._extra = f"{_rxnorm_version()}"
        self._seed = 0
        self._hash = xxhash.xxh3_64_intdigest

    @property
    def stored(self) -> set[int]:
        """The stored digests; still being read (queues.imports.run reads them on a thread while
        the file's first blocks are read and digested), waited for."""
        if isinstance(self._stored, Future):
            self._stored = self._stored.result()
        return self._stored

    def ready(self) -> bool:
        """The stored digests are read: asking for them will not wait."""
        return not isinstance(self._stored, Future) or self._stored.done()

    def start(self, header: list[str]) -> None:
        parts = (str(LINE_RULES), self.kind, self._extra, "\x1f".join(header))
        self._seed = xxhash.xxh3_64_intdigest("\x1e".join(parts).encode())

    def digest(self, line: bytes) -> int:
        """The digest of a line: its bytes without its line end (or a record's lines,
        csv_lines.body)."""
        # 63 bits, so a digest fits a signed BIGINT; xxh3 (xxhash) at ~0.1 µs a line, since a
        # line passed over should cost little more than reading it.
        return int(self._hash(line, self._seed) >> 1)

    def chunk(self, lines: list[bytes]) -> list[int]:
        """The digest of each of a block's lines (without their line ends), as `digest`
        makes it (read_csv's column path, which keeps what they say itself)."""
        return list(map(_HALF, map(self._hash, lines, repeat(self._seed))))

    # StoredLines
    def line_of(self, table: str, key: str) -> int | None:
        return self.of.get(key) if table == self.table else None

    def was_passed(self, table: str, digest: int) -> bool:
        return table == self.table and digest in self.passed

    def passed_count(self, table: str) -> int:
        return len(self.passed) if table == self.table else 0


# digest >> 1, mapped over a block's digests at C speed.
_HALF = (1).__rrshift__


@cache
def _rxnorm_version() -> int:
    return xxhash.xxh3_64_intdigest(RXNORM_TABLE.read_bytes())
