"""Upsert one Batch into a pharmacy's rows by source identifier, in the caller's transaction.

What is new is written set-based (binary COPY on PostgreSQL, one INSERT … SELECT over a JSON array on
SQLite); what changed is updated by id; what is the same is left alone, so a re-import writes
nothing. Rows the source no longer lists are kept (a fills file of one month is not the whole
history). A prescription that gets a dispensed fill loses the fills an import estimated for it.
"""

from __future__ import annotations

import sys
from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

from sqlalchemy import Connection, bindparam, column, table, update

from queues.imports.digests import DuplicateLine, LineDigests, StoredLines
from queues.imports.records import Batch, ImportRowError, Rejected
from queues.store.bulk import insert_rows

# The columns an import writes, per table, with the PostgreSQL type a binary COPY sends each as.
PATIENT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("first_name", "text"),
    ("last_name", "text"),
    ("birth_date", "date"),
    ("gender", "text"),
    ("language", "text"),
    ("zip_code", "text"),
    ("state", "text"),
    ("deceased", "bool"),
    ("caregiver_name", "text"),
    ("caregiver_relation", "text"),
    ("caregiver_phone", "text"),
    ("caregiver_authorized", "bool"),
    ("consent_to_call", "bool"),
    ("tobacco_use", "bool"),
    ("hospice", "bool"),
    ("esrd", "bool"),
)
RX_COLUMNS = (
    ("drug_name", "text"),
    ("ingredient", "text"),
    ("rxnorm", "text"),
    ("pqa_class", "text"),
    ("chronic", "bool"),
    ("refills_left", "int4"),
    ("prescriber", "text"),
    ("written_on", "date"),
    ("active", "bool"),
)
FILL_COLUMNS = (
    ("fill_date", "date"),
    ("days_supply", "int4"),
    ("quantity", "float8"),
    ("estimated", "bool"),
)
CONDITION_COLUMNS = (("code", "text"), ("display", "text"))
IMMUNIZATION_COLUMNS = (("vaccine", "text"), ("given_on", "date"))
PHONE_COLUMNS = (("kind", "text"), ("rank", "int4"))
DIGEST = (
    ("source_digest", "int8"),
)  # the CSV line a row was written from (queues.imports.digests)
_DECEASED = [name for name, _ in PATIENT_COLUMNS].index("deceased")


@dataclass
class StoreResult:
    patients_created: int = 0
    patients_updated: int = 0
    patients_unchanged: int = 0
    prescriptions: int = 0  # created or changed
    fills: int = 0
    fills_estimated: int = 0
    conditions: int = 0
    immunizations: int = 0
    phones: int = 0
    changed_patients: set[int] = field(default_factory=set)
    rejected: list[Rejected] = field(default_factory=list)
    unresolved: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, key, why)


def store_batch(
    conn: Connection,
    pharmacy_id: int,
    batch: Batch,
    advance: Callable[[int], None] = lambda _n: None,
    digests: StoredLines | None = None,
) -> StoreResult:
    """`digests`: of the CSV file (or FHIR import) the batch was read from; the lines it passed
    over are stored as they are, and every row written keeps the digest of its line."""
    out = StoreResult(rejected=list(batch.rejected))
    w = _Writer(conn, digests)
    mine = _scope(w, pharmacy_id, _patients_named(batch))
    # Patients: by MRN within the pharmacy (a file of no patients reads only their ids, once).
    stored = (
        {
            mrn: (pid, tuple(values), digest)
            for pid, digest, mrn, *values in w.rows(
                f"SELECT id, source_digest, mrn, {_names(PATIENT_COLUMNS)} FROM patients "
                f"WHERE {mine}"
            )
        }
        if batch.patients
        else {}
    )
    new: list[tuple[Any, ...]] = []
    if digests is not None:
        out.patients_unchanged += digests.passed_count("patients")
    patient_line = w.lines("patients")
    for mrn, p in batch.patients.items():
        values: tuple[Any, ...] = (
            p.first_name, p.last_name, p.birth_date, p.gender, p.language, p.zip_code, p.state,
            p.deceased, p.caregiver_name, p.caregiver_relation, p.caregiver_phone,
            p.caregiver_authorized, p.consent_to_call, p.tobacco_use, p.hospice, p.esrd,
        )  # fmt: skip
        line = patient_line(mrn)
        have = stored.get(mrn)
        if have is not None and have[1][_DECEASED] and not values[_DECEASED]:
            # A death already known (recorded on a call, or by an earlier file) is never undone
            # by an export that lags it: calling a family about their dead relative is the harm
            # to avoid above all. The rest of the line still applies.
            values = (*values[:_DECEASED], have[1][_DECEASED], *values[_DECEASED + 1 :])
        if have is None:
            new.append((pharmacy_id, mrn, *values, False, False, line))
        elif w.sort("patients", have[0], have[1], have[2], values, line):
            out.changed_patients.add(have[0])
        else:
            out.patients_unchanged += 1
    w.insert(
        "patients",
        (
            ("pharmacy_id", "int4"),
            ("mrn", "text"),
            *PATIENT_COLUMNS,
            ("do_not_call", "bool"),
            ("med_sync_enrolled", "bool"),
            *DIGEST,
        ),
        new,
    )
    updated = w.flush("patients", PATIENT_COLUMNS)
    out.patients_created, out.patients_updated = len(new), updated
    advance(len(batch.patients))
    if new or not batch.patients:
        patient_ids = {
            mrn: pid for pid, mrn in w.rows(f"SELECT id, mrn FROM patients WHERE {mine}")
        }
    else:  # every patient named was stored already: their ids were read with their values
        patient_ids = {mrn: have[0] for mrn, have in stored.items()}
    out.changed_patients.update(patient_ids[row[1]] for row in new)

    def patient_of(kind: str, key: str, mrn: str) -> int | None:
        pid = patient_ids.get(mrn)
        if pid is None:
            out.unresolved.append((kind, key, f"no patient {mrn} at this pharmacy"))
        return pid

    in_pharmacy = f"patient_id IN (SELECT id FROM patients WHERE {mine})"

    # Phones: by (patient, number); a number the source no longer lists is kept with its flags.
    if batch.phones:
        have_phones = {
            (pid, number): (phone_id, (kind, rank), digest)
            for phone_id, digest, pid, number, kind, rank in w.rows(
                "SELECT id, source_digest, patient_id, number, kind, rank FROM phones "
                f"WHERE {in_pharmacy}"
            )
        }
        new = []
        phone_line = w.lines("phones")
        for mrn, phones in batch.phones.items():
            for ph in phones:
                key = f"{mrn}|{ph.number}"
                pid = patient_of("phones", key, mrn)
                if pid is None:
                    continue
                values, line = (ph.kind, ph.rank), phone_line(key)
                found = have_phones.get((pid, ph.number))
                if found is None:
                    new.append((pid, ph.number, *values, False, False, line))
                    out.changed_patients.add(pid)
                elif w.sort("phones", *found, values, line):
                    out.changed_patients.add(pid)
        w.insert(
            "phones",
            (
                ("patient_id", "int4"),
                ("number", "text"),
                *PHONE_COLUMNS,
                ("wrong_number", "bool"),
                ("do_not_call", "bool"),
                *DIGEST,
            ),
            new,
        )
        out.phones = len(new) + w.flush("phones", PHONE_COLUMNS)

    # Prescriptions: by (patient, source id).
    rx_ids: dict[tuple[int, str], int] = {}
    rx_patient: dict[int, int] = {}
    if batch.prescriptions or batch.fills:
        have_rx = {}
        if batch.prescriptions:
            for rid, digest, pid, source, *values in w.rows(
                f"SELECT id, source_digest, patient_id, source_id, {_names(RX_COLUMNS)} "
                f"FROM prescriptions WHERE source_id IS NOT NULL AND {in_pharmacy}"
            ):
                have_rx[(pid, source)] = (rid, tuple(values), digest)
                rx_ids[(pid, source)] = rid
                rx_patient[rid] = pid
        else:  # a file of fills only: which prescription is which, not what they say
            for rid, pid, source in w.rows(
                "SELECT id, patient_id, source_id FROM prescriptions "
                f"WHERE source_id IS NOT NULL AND {in_pharmacy}"
            ):
                rx_ids[(pid, source)] = rid
                rx_patient[rid] = pid
        new = []
        rx_line = w.lines("prescriptions")
        for key, rx in batch.prescriptions.items():
            pid = patient_of("prescriptions", key, rx.patient)
            if pid is None:
                continue
            values = (
                rx.drug_name, rx.ingredient, rx.rxnorm, rx.pqa_class, rx.chronic, rx.refills_left,
                rx.prescriber, rx.written_on, rx.active,
            )  # fmt: skip
            line = rx_line(key)
            found = have_rx.get((pid, rx.source_id))
            if found is None:
                new.append((pid, rx.source_id, *values, line))
                out.changed_patients.add(pid)
            elif w.sort("prescriptions", *found, values, line):
                out.changed_patients.add(pid)
        w.insert(
            "prescriptions",
            (("patient_id", "int4"), ("source_id", "text"), *RX_COLUMNS, *DIGEST),
            new,
        )
        out.prescriptions = len(new) + w.flush("prescriptions", RX_COLUMNS)
        if new:
            for rid, pid, source in w.rows(
                f"SELECT id, patient_id, source_id FROM prescriptions WHERE source_id IS NOT NULL AND {in_pharmacy}"
            ):
                rx_ids[(pid, source)] = rid
                rx_patient[rid] = pid
    advance(len(batch.prescriptions))

    # Fills: by (prescription, source id).
    if batch.fills:
        have_fills: dict[tuple[int, str], tuple[int, tuple[Any, ...], int | None]] = {}
        estimated_of: dict[int, list[int]] = defaultdict(list)
        for fid, digest, rid, source, *values in w.rows(
            f"SELECT id, source_digest, prescription_id, source_id, {_names(FILL_COLUMNS)} "
            f"FROM fills WHERE prescription_id IN (SELECT id FROM prescriptions WHERE {in_pharmacy})"
        ):
            if source is not None:
                have_fills[(rid, source)] = (fid, tuple(values), digest)
            if values[-1]:
                estimated_of[rid].append(fid)
        new, dispensed = [], set()
        fill_line = w.lines("fills")
        # A fill's prescription and patient, found once per prescription (a million fills name
        # about a fifth as many).
        resolved: dict[str, tuple[int | None, int | None, str, str]] = {}
        changed_rx: set[int] = set()
        for key, f in batch.fills.items():
            found_rx = resolved.get(f.prescription)
            if found_rx is None:
                of = batch.prescriptions.get(f.prescription)
                mrn, rx_source = (of.patient, of.source_id) if of else f.prescription.split("|", 1)
                pid = patient_ids.get(mrn)
                rid = rx_ids.get((pid, rx_source)) if pid is not None else None
                found_rx = resolved[f.prescription] = (pid, rid, mrn, rx_source)
            pid, rid, mrn, rx_source = found_rx
            if rid is None:
                if pid is None:
                    out.unresolved.append(("fills", key, f"no patient {mrn} at this pharmacy"))
                else:
                    out.unresolved.append(
                        ("fills", key, f"no prescription {rx_source} for this patient")
                    )
                continue
            estimated = f.estimated
            if not estimated:
                dispensed.add(rid)
            found = have_fills.get((rid, f.source_id)) if have_fills else None
            if found is None:
                new.append(
                    (rid, f.source_id, f.fill_date, f.days_supply, float(f.quantity), estimated,
                     fill_line(key))
                )  # fmt: skip
            elif not w.sort(
                "fills",
                *found,
                (f.fill_date, f.days_supply, float(f.quantity), estimated),
                fill_line(key),
            ):
                continue
            changed_rx.add(rid)
            if estimated:
                out.fills_estimated += 1
        out.changed_patients.update(rx_patient[rid] for rid in changed_rx)
        # A prescription's estimate gives way to a real dispense.
        stale = [fid for rid in dispensed for fid in estimated_of.get(rid, ())]
        for i in range(0, len(stale), 500):
            w.conn.exec_driver_sql(
                f"DELETE FROM fills WHERE id IN ({', '.join(str(int(x)) for x in stale[i : i + 500])})"
            )
        w.insert(
            "fills",
            (("prescription_id", "int4"), ("source_id", "text"), *FILL_COLUMNS, *DIGEST),
            new,
        )
        out.fills = len(new) + w.flush("fills", FILL_COLUMNS)
    advance(len(batch.fills))

    out.conditions = _simple(
        w, out, patient_of, in_pharmacy, "conditions", CONDITION_COLUMNS,
        {k: (c.patient, c.source_id, (c.code, c.display)) for k, c in batch.conditions.items()},
    )  # fmt: skip
    out.immunizations = _simple(
        w, out, patient_of, in_pharmacy, "immunizations", IMMUNIZATION_COLUMNS,
        {k: (i.patient, i.source_id, (i.vaccine, i.given_on)) for k, i in batch.immunizations.items()},
    )  # fmt: skip
    if IMPORT_SCOPE in mine:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {IMPORT_SCOPE}")
    return out


IMPORT_SCOPE = "import_scope"


def _patients_named(batch: Batch) -> set[str]:
    """The MRNs of every patient a record of the batch belongs to."""
    named = set(batch.patients) | set(batch.phones)
    named.update(rx.patient for rx in batch.prescriptions.values())
    # A fill's patient is its prescription's: looked up once per prescription (a million fills
    # name about a fifth as many).
    for key in {f.prescription for f in batch.fills.values()}:
        rx = batch.prescriptions.get(key)
        named.add(rx.patient if rx else key.split("|", 1)[0])
    named.update(c.patient for c in batch.conditions.values())
    named.update(i.patient for i in batch.immunizations.values())
    return named


def _scope(w: _Writer, pharmacy_id: int, named: set[str]) -> str:
    """Which of the pharmacy's patients' rows are read back to compare, as an SQL condition on
    `patients`: only the rows of the patients this batch names (a temporary table of their MRNs,
    in the import's transaction), so a small file costs as little as it is, whatever the size of
    the pharmacy; or, when the batch names at least half of the pharmacy's patients (a first
    import, a whole export), all of them — the same rows give the same answers, and neither the
    table nor the join is paid for."""
    mine = f"pharmacy_id = {int(pharmacy_id)}"
    ((stored,),) = w.rows(f"SELECT count(*) FROM patients WHERE {mine}")
    if 2 * len(named) >= stored:
        return mine
    w.conn.exec_driver_sql(
        f"CREATE TEMP TABLE IF NOT EXISTS {IMPORT_SCOPE} (mrn VARCHAR(64) PRIMARY KEY)"
    )
    w.conn.exec_driver_sql(f"DELETE FROM {IMPORT_SCOPE}")
    insert_rows(w.conn, IMPORT_SCOPE, (("mrn", "text"),), [(m,) for m in named])
    return f"{mine} AND mrn IN (SELECT mrn FROM {IMPORT_SCOPE})"


def _simple(
    w: _Writer,
    out: StoreResult,
    patient_of: Callable[[str, str, str], int | None],
    in_pharmacy: str,
    name: str,
    columns: tuple[tuple[str, str], ...],
    records: dict[str, tuple[str, str, tuple[Any, ...]]],
) -> int:
    """Upsert rows keyed (patient, source id) with a few value columns."""
    if not records:
        return 0
    have = {
        (pid, source): (rid, tuple(values))
        for rid, pid, source, *values in w.rows(
            f"SELECT id, patient_id, source_id, {_names(columns)} FROM {name} "
            f"WHERE source_id IS NOT NULL AND {in_pharmacy}"
        )
    }
    new, changed = [], []
    for key, (mrn, source, raw) in records.items():
        pid = patient_of(name, key, mrn)
        if pid is None:
            continue
        values = tuple(raw)
        found = have.get((pid, source))
        if found is None:
            new.append((pid, source, *values))
        elif not w.same(name, found[1], values):
            changed.append((found[0], values))
        else:
            continue
        out.changed_patients.add(pid)
    w.insert(name, (("patient_id", "int4"), ("source_id", "text"), *columns), new)
    w.update(name, columns, changed)
    return len(new) + len(changed)


def _names(columns: Sequence[tuple[str, str]]) -> str:
    return ", ".join(name for name, _ in columns)


# Where each table's dates are among the columns an import writes (SQLite gives them back as text).
_DATES = {
    name: tuple(i for i, (_, kind) in enumerate(columns) if kind == "date")
    for name, columns in (
        ("patients", PATIENT_COLUMNS),
        ("phones", PHONE_COLUMNS),
        ("prescriptions", RX_COLUMNS),
        ("fills", FILL_COLUMNS),
        ("conditions", CONDITION_COLUMNS),
        ("immunizations", IMMUNIZATION_COLUMNS),
    )
}


def _no_line(_key: str) -> int | None:
    return None


def _sqlite_form(value: Any) -> Any:
    """A value as SQLAlchemy writes it to SQLite: a date as its ISO text, a boolean as 0/1."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _as_is(value: Any) -> Any:
    return value


class _Writer:
    """Set-based writes of a batch's values, and stored rows compared with them.

    A record's values stay as Python gives them (dates, booleans, floats): a new row is written so
    (binary COPY by its column's type; on SQLite orjson writes a date as its ISO text and a
    boolean as true/false, which json_extract stores as 1/0, the forms SQLAlchemy writes), a
    changed row's values are put in the stored form for its UPDATE (`update`), and a stored row
    is brought to the record's form only when the two are compared (`same`): a first import of a
    million fills converts nothing."""

    def __init__(self, conn: Connection, digests: StoredLines | None = None) -> None:
        self.conn = conn
        self.sqlite = conn.dialect.name == "sqlite"
        self.digests = digests
        self._changed: dict[str, list[tuple[int, tuple[Any, ...]]]] = defaultdict(list)
        self._relined: dict[str, list[tuple[int, tuple[Any, ...]]]] = defaultdict(list)

    def lines(self, table_name: str) -> Callable[[str], int | None]:
        """For a record's key, the digest of the CSV line it was read from, if any."""
        d = self.digests
        if d is None:
            return _no_line
        if isinstance(d, LineDigests):  # one table's: its dict's own lookup, a million times
            return d.of.get if d.table == table_name else _no_line
        return partial(d.line_of, table_name)

    def same(self, table_name: str, stored: tuple[Any, ...], values: tuple[Any, ...]) -> bool:
        """A stored row's values (as the driver gives them back) against a record's. SQLite's
        booleans come back as 0/1, equal to False/True already; its dates as ISO text."""
        if stored == values:
            return True
        dates = _DATES.get(table_name, ()) if self.sqlite else ()
        if not dates:
            return False
        as_read = list(stored)
        for i in dates:
            if isinstance(as_read[i], str):
                try:
                    as_read[i] = date.fromisoformat(as_read[i])
                except ValueError:
                    return False
        return tuple(as_read) == values

    def sort(
        self,
        table_name: str,
        rid: int,
        stored: tuple[Any, ...],
        stored_line: int | None,
        values: tuple[Any, ...],
        line: int | None,
    ) -> bool:
        """An existing row against its record: True (and kept for `flush`) when its values
        changed; a row whose values stand but whose line is new only takes the line's digest."""
        d = self.digests
        if (
            stored_line is not None
            and d is not None
            and stored_line != line
            and d.was_passed(table_name, stored_line)
        ):
            raise DuplicateLine(table_name)
        if not self.same(table_name, stored, values):
            self._changed[table_name].append((rid, (*values, line)))
            return True
        if line is not None and line != stored_line:
            self._relined[table_name].append((rid, (line,)))
        return False

    def flush(self, table_name: str, columns: Sequence[tuple[str, str]]) -> int:
        """Write the changes `sort` kept for `table_name`; how many rows changed."""
        changed = self._changed.pop(table_name, [])
        self.update(table_name, (*columns, *DIGEST), changed)
        self.update(table_name, DIGEST, self._relined.pop(table_name, []))
        return len(changed)

    def rows(self, sql: str) -> list[Any]:
        cursor = self.conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def insert(
        self, name: str, columns: Sequence[tuple[str, str]], rows: list[tuple[Any, ...]]
    ) -> None:
        insert_rows(self.conn, name, columns, rows)

    def update(
        self,
        name: str,
        columns: Sequence[tuple[str, str]],
        changed: list[tuple[int, tuple[Any, ...]]],
    ) -> None:
        if not changed:
            return
        t = table(name, column("id"), *(column(c) for c, _ in columns))
        statement = (
            update(t)
            .where(t.c.id == bindparam("_id"))
            .values({c: bindparam(f"v_{c}") for c, _ in columns})
        )
        params = []
        stored_form = _sqlite_form if self.sqlite else _as_is
        for rid, values in changed:
            row: dict[str, Any] = {
                f"v_{c}": stored_form(v) for (c, _), v in zip(columns, values, strict=True)
            }
            row["_id"] = rid
            params.append(row)
        for i in range(0, len(params), 5000):
            self.conn.execute(statement, params[i : i + 5000])


def unresolved_errors(
    result: StoreResult, origins: Mapping[tuple[str, str], tuple[str, int]]
) -> list[ImportRowError]:
    """A reference the database could not match, as the CSV line that made it."""
    out = []
    for kind, key, why in result.unresolved:
        file, line = origins.get((kind, key), ("(import)", 0))
        field = {"fills": "rx_id"}.get(kind, "mrn") if "prescription" in why else "mrn"
        out.append(ImportRowError(file, line, field, why))
    return out


def stored_digests(conn: Connection, pharmacy_id: int, table_name: str) -> set[int]:
    """The line digests of a pharmacy's rows of `table_name` (queues.imports.digests). On a
    site whose every patient is the pharmacy's, the whole table's, without the join from its
    rows to the pharmacy's patients (the same rows): reading a million fills' digests took half
    as long without it (SQLite, 100,000 patients: 0.37 s against 0.73 s)."""
    w = _Writer(conn)
    mine = f"pharmacy_id = {int(pharmacy_id)}"
    others = f"EXISTS (SELECT 1 FROM patients WHERE pharmacy_id <> {int(pharmacy_id)})"
    ((shared,),) = w.rows(f"SELECT {others}")
    # Without the join, the read itself checks (in its one snapshot) that no other pharmacy's
    # patient came meanwhile: if one did, it reads nothing and every line is read again.
    where = f" AND NOT {others}"
    if shared:
        of_patients = f"patient_id IN (SELECT id FROM patients WHERE {mine})"
        where = (
            " AND "
            + {
                "patients": mine,
                "phones": of_patients,
                "prescriptions": of_patients,
                "fills": f"prescription_id IN (SELECT id FROM prescriptions WHERE {of_patients})",
            }[table_name]
        )
    found = f"FROM {table_name} WHERE source_digest IS NOT NULL{where}"
    if not w.sqlite:
        # One value of 8 bytes a digest (int8send, big-endian), read into an array at C speed:
        # psycopg made a row of each (1,000,000 digests: 0.28 s of this process's CPU against
        # 0.44 s, the server's time alike).
        ((packed,),) = w.rows(f"SELECT string_agg(int8send(source_digest), ''::bytea) {found}")
        return _digest_set(bytes(packed or b""))
    # SQLite has no int8send: 16 hex digits a digest (printf of the integer's 64 bits, so a
    # negative one too), joined in SQLite's own code and read back as one text, with no row
    # object a digest (1,000,000 fills, load ~1.5: 0.47 s of CPU against 0.55 s for the rows
    # into a set). A range of ids at a time, so that no text comes near SQLite's longest
    # (SQLITE_MAX_LENGTH, 10^9 bytes by default).
    ((top,),) = w.rows(f"SELECT max(id) FROM {table_name}")
    hexes = [
        text
        for low in range(0, int(top or 0) + 1, _DIGESTS_A_READ)
        for (text,) in w.rows(
            f"SELECT group_concat(printf('%016x', source_digest), '') {found} "
            f"AND id >= {low} AND id < {low + _DIGESTS_A_READ}"
        )
        if text
    ]
    return _digest_set(bytes.fromhex("".join(hexes)))


# Ids a read of digests covers on SQLite: 16 bytes of text each at most, 256 MB a read.
_DIGESTS_A_READ = 1 << 24


def _digest_set(packed: bytes) -> set[int]:
    """Digests of 8 bytes each, big-endian, one after the other, as a set."""
    digests = array("q", packed)
    if sys.byteorder == "little":
        digests.byteswap()
    return set(digests)
