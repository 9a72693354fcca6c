"""The audit log's hash chains: how one row's hash is made from its fields and the hash before it.

Each audit row carries its chain (`chain`), its place in that chain (`seq`), the hash of the row
before it there (`prev_hash`) and its own hash: SHA-256 over a canonical serialization of its own
fields and `prev_hash`. The database seals every row as it is inserted (a trigger: migration 0015),
so every writer — the ORM, the claim's one statement, a hand-typed INSERT — is chained alike.
PostgreSQL computes the hash in PL/pgSQL; SQLite calls `chain_hash` below, registered on each
connection (queues.store.db). The verifier (queues.audit) recomputes it here, independently of
anything stored in the database.

The log is several chains, each with its own head row (`audit_chain`, id = the chain): a seal
updates its chain's head, and on PostgreSQL that row lock is held to commit, so one head for every
writer made every audited action — every claim — wait for the one before it to commit. On
PostgreSQL a row goes to the chain of the connection that writes it (`chain_of_backend`: the
server process id modulo `POSTGRES_CHAINS`), so one console's rows stay in one chain and
concurrent consoles rarely share a head. SQLite lets one writer in at a time anyway: one chain.

The standard library only: queues.store.db imports it on every SQLite connect.
"""

from __future__ import annotations

import hashlib

# The hash "before" the first row of the chain.
GENESIS = "0" * 64
# The SQL name of chain_hash (SQLite: a registered function; PostgreSQL: a PL/pgSQL function).
SQL_FUNCTION = "audit_chain_hash"
# How many chains (head rows, audit_chain.id 1..N) the log has on each database (migration 0015).
POSTGRES_CHAINS = 32
SQLITE_CHAINS = 1


def chain_count(dialect: str) -> int:
    """The chains a database of this dialect ("postgresql", "sqlite") keeps: heads 1..N."""
    return POSTGRES_CHAINS if dialect == "postgresql" else SQLITE_CHAINS


def chain_of_backend(pid: int) -> int:
    """The chain a PostgreSQL connection's rows go to (the seal's `1 + pg_backend_pid() % N`)."""
    return 1 + pid % POSTGRES_CHAINS


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
