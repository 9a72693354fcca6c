"""FHIR input from files: bulk-data NDJSON (one resource a line), bundles (transaction, batch,
collection, searchset) or single resources as JSON, and folders of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from queues.imports.fhir import FhirReader
from queues.imports.records import ImportRowError, SourceUnreadable

SUFFIXES = (".ndjson", ".json")


def files_of(path: Path) -> list[Path]:
    """The file, or a folder's .ndjson and .json files that hold FHIR resources (a bulk export's
    `log.ndjson` of export events is left out)."""
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
            for number, line in enumerate(handle, 1):
                advance(len(line))
                if line.strip():
                    read_line(line, where, number, reader)
            return
        data = handle.read()
    advance(len(data))
    try:
        document = orjson.loads(data.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as error:
        reader.errors.append(ImportRowError(where, _line_of(data, error.pos), "json", error.msg))
        return
    read_document(document, where, reader)


def read_line(line: bytes, where: str, number: int, reader: FhirReader) -> None:
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
    reader.read(raw, where, number)


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
