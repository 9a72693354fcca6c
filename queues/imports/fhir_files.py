"""FHIR input from files: bulk-data NDJSON (one resource a line), bundles (transaction, batch,
collection, searchset) or single resources as JSON, and folders of them.

A large NDJSON file (or download) can be validated by a pool of worker processes (PARSE_WORKERS;
off, as measured on two shared cores): each reads a share of consecutive lines into a reader of its
own, merged back in file order (FhirReader.merge), so what is read is what one process reads.
The lines stored as they are are passed over here first, never sent (queues.imports.fhir_digests).
"""

from __future__ import annotations

import multiprocessing
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from queues.imports.fhir import FhirReader
from queues.imports.records import ImportRowError, SourceUnreadable

SUFFIXES = (".ndjson", ".json")
# Worker processes for a large file: 1, no pool. Measured 2026-12-07 on the shared 2-core machine
# (load 16-60), reading the same NDJSON alternately: 22,000 resources one process 7.0-10.0 s, two
# workers 15.7-19.2 s; 220,000 resources one process 107.5 s (25.6 s CPU), two workers 250 s.
# Each worker imports the program again (forkserver) and competes for the same two cores, so the
# pool is kept (tested equal to one process) but off; raise it where cores are free.
PARSE_WORKERS = 1
# Below this many bytes of NDJSON one process reads it; validating one resource with
# fhir.resources is ~70 µs of CPU, ~120 µs with the reading around it.
POOL_MIN_BYTES = 4 << 20
CHUNK_LINES = 2000  # lines a worker reads at a time: ~0.25 s of CPU


def files_of(source: str | Path) -> list[Path]:
    """The file, or a folder's .ndjson and .json files that hold FHIR resources (a bulk export's
    `log.ndjson` of export events is left out). A URL (other than http/https, which name a
    server) is refused as one, not looked for as a file."""
    if isinstance(source, str):
        url = urlsplit(source)
        if (
            re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", url.scheme)
            and source[len(url.scheme) :][:3] == "://"
        ):
            where = url._replace(netloc=url.hostname or "").geturl()  # never its user or password
            raise SourceUnreadable(
                f"{where}: a {url.scheme}:// URL cannot be imported; give a FHIR server's "
                "http:// or https:// base URL, or a file or folder"
            )
    path = Path(source)
    if path.is_dir():
        found = sorted(
            p for p in path.iterdir() if p.is_file() and p.suffix in SUFFIXES and _holds_fhir(p)
        )
        if not found:
            raise SourceUnreadable(f"{path}: no .ndjson or .json files in this folder")
        return found
    if not path.is_file():
        raise SourceUnreadable(f"{path}: no such file or folder")
    return [path]


def _holds_fhir(path: Path) -> bool:
    """False for a file whose first line is a JSON object with no resourceType."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(1 << 20)
        data = orjson.loads(first)
    except (OSError, orjson.JSONDecodeError):
        return True  # read_file reports it
    return not (isinstance(data, dict) and "resourceType" not in data)


def read_file(
    path: Path, reader: FhirReader, advance: Callable[[int], None] = lambda _n: None
) -> None:
    """Feed one file's resources to `reader`; `advance(bytes)` reports progress."""
    where = str(path)
    try:
        handle = path.open("rb")
    except OSError as error:
        raise SourceUnreadable(f"{where}: {error.strerror}") from None
    with handle:
        if path.suffix == ".ndjson":
            size = path.stat().st_size
            read_lines(enumerate(handle, 1), where, reader, advance, size >= POOL_MIN_BYTES)
            return
        data = handle.read()
    advance(len(data))
    try:
        document = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as error:
        reader.errors.append(ImportRowError(where, _line_of(data, error.pos), "json", error.msg))
        return
    read_document(document, where, reader)


def read_lines(
    lines: Iterable[tuple[int, bytes]],
    where: str,
    reader: FhirReader,
    advance: Callable[[int], None] = lambda _n: None,
    parallel: bool = False,
) -> None:
    """NDJSON lines (numbered from 1) into `reader`; `parallel`: by the worker pool."""
    workers = min(_cores(), PARSE_WORKERS) if parallel else 1
    if workers < 2:
        for number, line in lines:
            advance(len(line))
            if line.strip():
                read_line(line, where, number, reader)
        return
    try:
        _read_in_pool(lines, where, reader, advance, workers)
    except BrokenProcessPool as error:
        raise SourceUnreadable(
            f"{where}: a worker process reading it stopped ({error}); nothing was stored"
        ) from None


def _read_in_pool(
    lines: Iterable[tuple[int, bytes]],
    where: str,
    reader: FhirReader,
    advance: Callable[[int], None],
    workers: int,
) -> None:
    pending: deque[Future[FhirReader]] = deque()
    chunk: list[tuple[int, bytes, int | None]] = []
    days = reader.default_days_supply
    with ProcessPoolExecutor(workers, mp_context=_context()) as pool:
        for number, line in lines:
            advance(len(line))
            if not line.strip():
                continue
            handled, digest = _first_look(line, where, number, reader)
            if not handled:
                chunk.append((number, line, digest))
            if len(chunk) >= CHUNK_LINES:
                pending.append(pool.submit(_read_chunk, where, chunk, days))
                chunk = []
                while len(pending) > 2 * workers:  # bounded memory; merged in file order
                    reader.merge(pending.popleft().result())
        if chunk:
            pending.append(pool.submit(_read_chunk, where, chunk, days))
        while pending:
            reader.merge(pending.popleft().result())


def _first_look(
    line: bytes, where: str, number: int, reader: FhirReader
) -> tuple[bool, int | None]:
    """What the parent does with a line before any worker: (True, _) when that is all (passed
    over as stored, or deferred to the end), else (False, its digest or None)."""
    d = reader.digests
    if d is None:
        return False, None
    # A request naming a Medication resource is always read: that resource may have changed.
    digest = None if b"medicationReference" in line else d.digest(line)
    if digest is None:
        return False, None
    if reader.pass_over(digest, line, where, number):
        return True, digest
    if d.patients:
        try:
            raw = orjson.loads(line.removeprefix(b"\xef\xbb\xbf"))
        except orjson.JSONDecodeError:
            return False, digest  # reported when it is read
        if isinstance(raw, dict) and reader.defer(raw, digest, line, where, number):
            return True, digest
    return False, digest


def _read_chunk(
    where: str, chunk: list[tuple[int, bytes, int | None]], default_days_supply: int
) -> FhirReader:
    """In a worker: a share of a file's lines, read into a reader of its own."""
    reader = FhirReader(default_days_supply=default_days_supply)
    for number, line, digest in chunk:
        _decode_and_read(line, where, number, reader, digest)
    return reader


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _context() -> Any:
    """Workers forked from a server process that imported the reader and the FHIR models once
    (not from this one: its threads, a progress bar's, must not be forked)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["queues.imports.fhir_files", "fhir.resources.R4B"])
    return context


def read_line(line: bytes, where: str, number: int, reader: FhirReader) -> None:
    """One NDJSON line: passed over when stored as it is, else read."""
    handled, digest = _first_look(line, where, number, reader)
    if not handled:
        _decode_and_read(line, where, number, reader, digest)


def _decode_and_read(
    line: bytes, where: str, number: int, reader: FhirReader, digest: int | None
) -> None:
    try:
        raw = orjson.loads(line.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as error:
        reader.errors.append(ImportRowError(where, number, "json", error.msg))
        return
    if not isinstance(raw, dict):
        reader.errors.append(ImportRowError(where, number, "resource", "not a JSON object"))
        return
    if raw.get("resourceType") == "Bundle":
        read_document(raw, where, reader, number)
        return
    reader.read(raw, where, number, digest=digest)


def read_document(document: Any, where: str, reader: FhirReader, line: int = 1) -> None:
    """A resource, or a bundle whose entries are read one by one (a bundle's errors name the
    entry, `entry[3].resource.birthDate`)."""
    if not isinstance(document, dict):
        reader.errors.append(ImportRowError(where, line, "resource", "not a JSON object"))
        return
    if document.get("resourceType") != "Bundle":
        reader.read(document, where, line)
        return
    for index, entry, aliases, error in bundle_entries(document):
        if error:
            reader.errors.append(ImportRowError(where, line, f"entry[{index}]", error))
            continue
        before = len(reader.errors)
        reader.read(entry, where, line, aliases)
        for e in reader.errors[before:]:
            e.field = f"entry[{index}].resource.{e.field}"
            e.args = (f"{e.file}:{e.line}: {e.field}: {e.why}",)


def bundle_entries(
    bundle: dict[str, Any],
) -> Iterator[tuple[int, dict[str, Any], dict[str, str], str | None]]:
    """(index, resource, fullUrl aliases, error) for each entry of a bundle."""
    kind = bundle.get("type")
    if kind not in ("transaction", "batch", "collection", "searchset", "document", "message"):
        yield 0, {}, {}, f"bundle type {kind!r} is not one an import reads"
        return
    entries = bundle.get("entry", [])
    if not isinstance(entries, list):
        yield 0, {}, {}, "entry is not a list"
        return
    aliases: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and isinstance(entry.get("resource"), dict):
            resource = entry["resource"]
            url = entry.get("fullUrl")
            if isinstance(url, str) and resource.get("id"):
                aliases[url] = f"{resource.get('resourceType')}/{resource['id']}"
    for index, entry in enumerate(entries):
        resource = entry.get("resource") if isinstance(entry, dict) else None
        if not isinstance(resource, dict):
            yield index, {}, aliases, "no resource"
            continue
        if (
            kind == "transaction"
            and not resource.get("id")
            and isinstance(entry.get("fullUrl"), str)
        ):
            resource = {**resource, "id": entry["fullUrl"].rsplit(":", 1)[-1][:64]}
            aliases[entry["fullUrl"]] = f"{resource.get('resourceType')}/{resource['id']}"
        yield index, resource, aliases, None


def _line_of(data: bytes, pos: int | None) -> int:
    return 1 if pos is None else data.count(b"\n", 0, pos) + 1
