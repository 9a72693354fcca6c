"""A CSV file as its physical lines, in blocks of bytes: what lets a whole-export re-import pass
over a line already stored by the digest of its bytes, before the csv module or the UTF-8 decoder
sees it (queues.imports.digests), while a quoted value over two lines is still read as one record.

Lines end as a text file opened with newline="" ends them, which is where the csv module sees
them end: at "\\n", "\\r\\n" or a lone "\\r" (bytes.splitlines splits at those three only). A
block is cut after a line's end, never between the "\\r" and "\\n" of one, so its lines are the
file's lines. The header is read here (the first record, after a UTF-8 byte-order mark if there
is one); the readers of csv_files take the blocks after it.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

# Bytes read at a time: ~25,000 lines of a fills export; a block's lines are checked together.
BLOCK = 1 << 20


def blocks(handle: BinaryIO, size: int = BLOCK) -> Iterator[bytes]:
    """The rest of the file, each block ending with a line's end (but the file's last, which
    may have none)."""
    rest = b""
    while True:
        data = handle.read(size)
        if not data:
            if rest:
                yield rest
            return
        data = rest + data if rest else data
        cut = data.rfind(b"\n")
        if cut < 0:
            # Lines ended by a lone "\r" (a last "\r" may be the first half of a "\r\n").
            cut = data.rfind(b"\r", 0, len(data) - 1)
        if cut < 0:
            rest = data
            continue
        yield data[: cut + 1]
        rest = data[cut + 1 :]


def physical_lines(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Each line of the blocks, with its line end."""
    for block in chunks:
        yield from block.splitlines(keepends=True)


def body(line: bytes) -> bytes:
    """A line (or a record's lines) without the line end it closes with: what a digest covers, so
    that an export saved with "\\r\\n" and one with "\\n" are the same lines."""
    return line.rstrip(b"\r\n")


class Feed:
    """The physical lines the csv module reads a record from: `first`, then as many more as a
    quoted value that goes on over line ends takes (kept in `more`, for the record's digest and
    its last line's number). `cut`: the file ended inside a quoted value, and the csv module
    ended the record there — a record such bytes would not make anywhere but at the file's end,
    so it gets no digest (its row is read again next time)."""

    def __init__(self, lines: Iterator[bytes]) -> None:
        self.lines = lines
        self.first: bytes | None = None
        self.more: list[bytes] = []
        self.cut = False

    def __iter__(self) -> Feed:
        return self

    def __next__(self) -> str:
        raw = self.first
        if raw is None:
            try:
                raw = next(self.lines)
            except StopIteration:
                self.cut = True  # the csv module ends the record here
                raise
            self.more.append(raw)
        else:
            self.first = None
        return raw.decode("utf-8")


@dataclass
class Header:
    values: list[str]  # as the csv module reads them, not yet stripped
    lines: int  # the physical lines it took (1 but for a quoted name over a line end)
    rest: Iterator[bytes]  # the blocks after it


def read_header(handle: BinaryIO) -> Header:
    """The file's first record, after a byte-order mark. Raises UnicodeDecodeError or csv.Error
    as the csv module would on a text file."""
    chunks = blocks(handle)
    first = next(chunks, b"")
    if first.startswith(codecs.BOM_UTF8):
        first = first[len(codecs.BOM_UTF8) :]
    first_lines = first.splitlines(keepends=True)
    lines = _chained(iter(first_lines), chunks)
    start = next(lines, None)
    if start is None:
        return Header([], 0, iter(()))
    feed = Feed(lines)
    feed.first = start
    values = next(csv.reader(feed), [])
    taken = 1 + len(feed.more)
    if taken <= len(first_lines):  # the blocks after the first are not read yet
        return Header(values, taken, _prepended(b"".join(first_lines[taken:]), chunks))
    # A quote left open in the header ran into the next blocks: the lines it left, as blocks.
    return Header(values, taken, _rejoined(lines))


def _chained(lines: Iterator[bytes], chunks: Iterator[bytes]) -> Iterator[bytes]:
    yield from lines
    yield from physical_lines(chunks)


def _prepended(left: bytes, chunks: Iterator[bytes]) -> Iterator[bytes]:
    if left:
        yield left
    yield from chunks


def _rejoined(lines: Iterator[bytes]) -> Iterator[bytes]:
    """Lines back into blocks of about BLOCK bytes."""
    out: list[bytes] = []
    size = 0
    for line in lines:
        out.append(line)
        size += len(line)
        if size >= BLOCK:
            yield b"".join(out)
            out, size = [], 0
    if out:
        yield b"".join(out)
