"""One import, all or nothing: read the source, upsert it into the pharmacy's rows, rebuild the queues
of the patients it changed — in one transaction, so a failure anywhere leaves the database as it was.
Fills that arrive close the refill tasks they answer and credit the call that asked (the build's
closing step: queues.building.build)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.access import check_may_import
from queues.audit import record
from queues.building.build import build_queues
from queues.collector import collector_paused
from queues.errors import OutreachError
from queues.imports.csv_files import read_csv
from queues.imports.digests import TABLES, DuplicateLine, LineDigests, StoredLines
from queues.imports.fhir import FhirReader, StoredPrescriptions
from queues.imports.fhir_digests import FhirDigests, stored_fhir_digests, stored_prescriptions
from queues.imports.fhir_files import files_of, read_file
from queues.imports.fhir_server import EXPORT_ERROR, SEARCH_REFUSED, FhirServer
from queues.imports.records import Batch, ImportFailed, ImportRowError, Rejected
from queues.imports.settings import ImportSettings
from queues.imports.store import StoreResult, store_batch, stored_digests, unresolved_errors
from queues.settings import QueueSettings
from queues.store.db import reading, transaction
from queues.store.models import Pharmacy
from queues.views.user import SignedInUser


class Progress(Protocol):
    """What an import reports as it goes; the CLI draws a bar from it."""

    def start(self, what: str, total: int | None) -> None: ...

    def advance(self, amount: int) -> None: ...


class NoProgress:
    def start(self, what: str, total: int | None) -> None:
        pass

    def advance(self, amount: int) -> None:
        pass


@dataclass(frozen=True)
class ImportSummary:
    patients_created: int
    patients_updated: int
    patients_unchanged: int
    rejected: list[Rejected]
    prescriptions: int
    fills: int
    fills_estimated: int
    conditions: int
    immunizations: int
    phones: int
    skipped_resources: dict[str, int]
    seconds: float
    rebuilt_patients: int
    build: str = ""
    phases: dict[str, float] = field(default_factory=dict, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "patients_created": self.patients_created,
            "patients_updated": self.patients_updated,
            "patients_unchanged": self.patients_unchanged,
            "rejected": [{"source": r.source, "reason": r.reason} for r in self.rejected],
            "prescriptions": self.prescriptions,
            "fills": self.fills,
            "fills_estimated": self.fills_estimated,
            "conditions": self.conditions,
            "immunizations": self.immunizations,
            "phones": self.phones,
            "skipped_resources": dict(sorted(self.skipped_resources.items())),
            "export_errors": len(self.export_errors()),
            "rebuilt_patients": self.rebuilt_patients,
            "seconds": round(self.seconds, 3),
        }

    def export_errors(self) -> list[Rejected]:
        """What a bulk export's manifest listed as errors (their OperationOutcomes' text)."""
        return [r for r in self.rejected if r.source.startswith(EXPORT_ERROR)]

    def lines(self, *, resources: bool = True) -> list[str]:
        """`resources`: a FHIR import's (the CSV one reads no resources to skip)."""
        # A type the server refused to search is named on its own line: its data is missing, not
        # unused (its fills, say, never came in).
        refused = sorted(k for k in self.skipped_resources if f"({SEARCH_REFUSED}" in k)
        skipped = sum(v for k, v in self.skipped_resources.items() if k not in refused)
        not_read = [f"not read: the server refused the search for {k}" for k in refused]
        errors = self.export_errors()
        if errors:
            shown = "; ".join(f"{r.source}: {r.reason}" for r in errors[:3])
            more = f" … and {len(errors) - 3} more (in rejected)" if len(errors) > 3 else ""
            not_read.append(f"the server's export reported {len(errors)} error(s): {shown}{more}")
        return [
            f"patients: {self.patients_created} new, {self.patients_updated} changed, "
            f"{self.patients_unchanged} unchanged",
            f"written: {self.prescriptions} prescriptions, {self.fills} fills "
            f"({self.fills_estimated} estimated), {self.phones} phones, {self.conditions} "
            f"conditions, {self.immunizations} immunizations (new or changed)",
            f"skipped: {skipped} resources of types the console does not use; "
            f"rejected: {len(self.rejected)}"
            if resources
            else f"rows rejected: {len(self.rejected)}",  # each one is a "rejected: …" line
            *not_read,
            f"queues rebuilt for {self.rebuilt_patients} patients: {self.build}",
            f"took {self.seconds:.1f} s",
        ]


def pharmacy_id(session: Session, code: str) -> int:
    found = session.scalar(select(Pharmacy.id).where(Pharmacy.code == code))
    if found is None:
        raise OutreachError(
            f"--pharmacy: no pharmacy {code!r}; add it with `outreach pharmacy add`"
        )
    return found


def read_fhir(
    source: str,
    settings: ImportSettings,
    progress: Progress,
    *,
    bulk: bool | None = None,
    digests: FhirDigests | None = None,
    stored: StoredPrescriptions | None = None,
) -> Batch:
    """Every resource of a file, folder or server into one Batch; any invalid one fails it all.
    `digests`: of the pharmacy's stored rows, whose lines are passed over (fhir_digests);
    `stored`: finds the stored requests of dispenses whose request is not in the source."""
    reader = FhirReader(default_days_supply=settings.default_days_supply, digests=digests)
    if source.lower().startswith(("http://", "https://")):  # RFC 3986: any case
        server = FhirServer(source, settings.auth())
        try:
            progress.start("downloading", None)
            if settings.fhir_bulk if bulk is None else bulk:
                server.bulk_export(reader, progress.advance)
            else:
                server.search(reader, progress.advance)
        finally:
            server.close()
    else:
        files = files_of(source)  # a str: a URL of another scheme is refused as one
        progress.start("reading", sum(f.stat().st_size for f in files))
        for f in files:
            read_file(f, reader, progress.advance)
    if reader.errors:
        raise ImportFailed(reader.errors)
    return reader.finish(stored)


def import_batch(
    sessions: sessionmaker[Session],
    pharmacy_code: str,
    batch: Batch,
    now: datetime,
    queue_settings: QueueSettings,
    progress: Progress,
    *,
    started: float,
    origins: Mapping[tuple[str, str], tuple[str, int]] | None = None,
    skip_bad_rows: bool = False,
    on_stored: Callable[[StoreResult], None] = lambda _r: None,
    by: SignedInUser | None = None,
    what: str = "batch",
    digests: StoredLines | None = None,
) -> ImportSummary:
    """Store and rebuild in one transaction. A reference the database cannot match (a fill for
    an unknown patient) fails the import unless `skip_bad_rows`, then it is reported. The import
    is audited in the same transaction, as `by` (what: "fhir", "csv patients"…; counts only)."""
    progress.start("storing", len(batch.patients) + len(batch.prescriptions) + len(batch.fills))
    with transaction(sessions) as session:
        pid = pharmacy_id(session, pharmacy_code)
        conn = session.connection()
        stored_at = time.perf_counter()
        with collector_paused():
            result = store_batch(conn, pid, batch, progress.advance, digests)
        stored_s = time.perf_counter() - stored_at
        if result.unresolved:
            errors = unresolved_errors(result, origins or {})
            if not skip_bad_rows:
                raise ImportFailed(errors)
            result.rejected.extend(
                Rejected(f"{e.file}:{e.line}", f"{e.field}: {e.why}") for e in errors
            )
        on_stored(result)
        progress.start("rebuilding queues", None)
        built = build_queues(session, now, queue_settings, patients=result.changed_patients)
        record(
            session,
            "data_imported",
            user_id=by.id if by is not None else None,
            detail={
                "pharmacy": pharmacy_code,
                "what": what,
                "patients_created": result.patients_created,
                "patients_updated": result.patients_updated,
                "rejected": len(result.rejected),
            },
        )
    seconds = time.perf_counter() - started
    return ImportSummary(
        result.patients_created,
        result.patients_updated,
        result.patients_unchanged,
        result.rejected,
        result.prescriptions,
        result.fills,
        result.fills_estimated,
        result.conditions,
        result.immunizations,
        result.phones,
        dict(batch.skipped),
        seconds,
        len(result.changed_patients),
        built.describe(),
        {"store": round(stored_s, 3), **built.phases},
    )


def import_fhir(
    sessions: sessionmaker[Session],
    source: str,
    pharmacy_code: str,
    now: datetime,
    queue_settings: QueueSettings,
    settings: ImportSettings,
    progress: Progress | None = None,
    *,
    by: SignedInUser | None = None,
) -> ImportSummary:
    """`by`: the signed-in user, who must be an admin or a supervisor of the pharmacy (None: a
    trusted caller in the same process, a test or a benchmark)."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    with reading(sessions) as session:
        pid = pharmacy_id(session, pharmacy_code)  # a wrong code fails before any download
        if by is not None:
            check_may_import(session, by, pharmacy_code)
        # The lines stored as they are are passed over (queues.imports.fhir_digests).
        days = settings.default_days_supply
        stored = stored_fhir_digests(session.connection(), pid, days)
    for again in (False, True):
        digests = None if again else stored
        batch = read_fhir(
            source,
            settings,
            progress,
            digests=digests,
            stored=lambda ids: stored_prescriptions(sessions, pid, ids),
        )
        try:
            return import_batch(
                sessions,
                pharmacy_code,
                batch,
                now,
                queue_settings,
                progress,
                started=started,
                by=by,
                what="fhir",
                digests=digests,
            )
        except DuplicateLine:
            if again:
                raise
    raise AssertionError("unreachable")


def import_csv(
    sessions: sessionmaker[Session],
    kind: str,
    path: Path,
    pharmacy_code: str,
    now: datetime,
    queue_settings: QueueSettings,
    settings: ImportSettings,
    progress: Progress | None = None,
    *,
    skip_bad_rows: bool = False,
    by: SignedInUser | None = None,
) -> ImportSummary:
    """`by` as for import_fhir."""
    started = time.perf_counter()
    progress = progress or NoProgress()
    with reading(sessions) as session:
        pid = pharmacy_id(session, pharmacy_code)  # a wrong code fails before the file is read
        if by is not None:
            check_may_import(session, by, pharmacy_code)
        try:
            size: int | None = path.stat().st_size
        except OSError:
            size = None
        few = kind not in TABLES or _few_lines(session, TABLES[kind], size)
    # The lines stored as they are are passed over (queues.imports.digests), unless the file is
    # too small for that to pay. Their digests are read on a thread, in a snapshot of their own
    # taken before the import's transaction as before, while the file's first blocks are read
    # and digested (csv_files._digested): each ~0.3 s of a whole fills export of a million.
    reader = ThreadPoolExecutor(1, thread_name_prefix="stored-digests")
    stored: set[int] | Future[set[int]] = set()
    if not few:
        stored = reader.submit(_stored_digests, sessions, pid, TABLES[kind])
    reader.shutdown(wait=False)
    try:
        for again in (False, True):
            digests = None if again else LineDigests(kind, stored, settings.default_days_supply)
            progress.start("reading", size)
            with collector_paused():
                read = read_csv(kind, path, settings.default_days_supply, progress.advance, digests)
            if read.errors and not skip_bad_rows:
                raise ImportFailed(read.errors)
            read.batch.rejected.extend(_rejected(read.errors))
            try:
                return import_batch(
                    sessions,
                    pharmacy_code,
                    read.batch,
                    now,
                    queue_settings,
                    progress,
                    started=started,
                    origins=read.origins,
                    skip_bad_rows=skip_bad_rows,
                    digests=digests,
                    by=by,
                    what=f"csv {kind}",
                )
            except DuplicateLine:
                if again:
                    raise
    finally:
        # A file refused before its digests were asked for: the read ends before the import
        # does, so nothing uses the engine after it returns.
        if isinstance(stored, Future):
            wait([stored])
    raise AssertionError("unreachable")


def _stored_digests(sessions: sessionmaker[Session], pid: int, table: str) -> set[int]:
    with reading(sessions) as session:
        return stored_digests(session.connection(), pid, table)


def _few_lines(session: Session, table: str, size: int | None) -> bool:
    """A file with fewer bytes than `table` has rows (its highest id, at once from the key's
    index): fewer lines, at 20-60 bytes a line, than a twentieth of the rows. Reading every
    stored digest of the pharmacy's rows (~1 µs a row) would cost more than reading such a
    file's lines in full (~10 µs a line, read and compared: an unchanged row is still left as
    it is). A file of 1,000 changed fills against 1,000,000 stored: the digests were half of
    its import's CPU (20,000 / 200,000: 0.22 s of 0.49 s)."""
    if size is None:
        return False
    top = session.connection().exec_driver_sql(f"SELECT max(id) FROM {table}").scalar()
    return size < int(top or 0)


def _rejected(errors: list[ImportRowError]) -> list[Rejected]:
    return [Rejected(f"{e.file}:{e.line}", f"{e.field}: {e.why}") for e in errors]
