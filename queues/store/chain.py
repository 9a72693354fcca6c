"""The audit log's hash chain: how one row's hash is made from its fields and the hash before it.

Each audit row carries its place in the chain (`seq`), the hash of the row before it (`prev_hash`)
and its own hash: SHA-256 over a canonical serialization of its own fields and `prev_hash`. The
database seals every row as it is inserted (a trigger: migration 0015), so every writer — the ORM,
the claim's one statement, a hand-typed INSERT — is chained alike. PostgreSQL computes the hash in
PL/pgSQL; SQLite calls `chain_hash` below, registered on each connection (queues.store.db). The
verifier (queues.audit) recomputes it here, independently of anything stored in the database.

The standard library only: queues.store.db imports it on every SQLite connect.
"""

from __future__ import annotations

import hashlib

# The hash "before" the first row of the chain.
GENESIS = "0" * 64
# The SQL name of chain_hash (SQLite: a registered function; PostgreSQL: a PL/pgSQL function).
SQL_FUNCTION = "audit_chain_hash"


def _field(value: object) -> str:
    # Length-prefixed, so no value can run into the next: "N" for NULL, "5:claim" for "claim".
    if value is None:
        return "N"
    text = str(value)
    return f"{len(text)}:{text}"


def canonical(
    row_id: int,
    seq: int,
    at: str,
    user_id: int | None,
    action: str,
    patient_id: int | None,
    detail: str | None,
    prev_hash: str,
) -> str:
    """The row as the hash sees it: `at` as stored text ("2026-12-02 16:00:00.000000"), `detail`
    as its JSON text exactly as stored."""
    return "".join(
        _field(v) for v in (row_id, seq, at, user_id, action, patient_id, detail, prev_hash)
    )


def chain_hash(
    row_id: int,
    seq: int,
    at: str,
    user_id: int | None,
    action: str,
    patient_id: int | None,
    detail: str | None,
    prev_hash: str,
) -> str:
    """The row's hash, 64 hex digits."""
    data = canonical(row_id, seq, at, user_id, action, patient_id, detail, prev_hash)
    return hashlib.sha256(data.encode("utf-8")).hexdigest()
