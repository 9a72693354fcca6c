"""The patients a scoped queue build reads and writes (queues.building.build: a supervisor's control
touches only the patients with work in one campaign), as a temporary table the build's reads join:
any number of ids, one plan per read. It lives in the build's transaction; a rollback removes it."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Connection, Integer, column, select, table, text

from queues.store.bulk import insert_rows

SCOPE = table("build_scope", column("patient_id", Integer))
IN_SCOPE = "IN (SELECT patient_id FROM build_scope)"  # for the driver-level reads


def in_scope(patient_id: ColumnElement[int]) -> ColumnElement[bool]:
    """`patient_id` is one of build_scope's (for Core and ORM queries)."""
    return patient_id.in_(select(SCOPE.c.patient_id))


def set_scope(conn: Connection, patients: Collection[int]) -> None:
    """Fill build_scope with `patients`, in the caller's transaction (dropped by drop_scope)."""
    conn.execute(
        text("CREATE TEMP TABLE IF NOT EXISTS build_scope (patient_id INTEGER PRIMARY KEY)")
    )
    conn.execute(text("DELETE FROM build_scope"))
    # In bulk (COPY on PostgreSQL): after a first import every patient is in scope, and an
    # executemany of 100,000 ids took seconds.
    insert_rows(conn, "build_scope", (("patient_id", "int4"),), [(pid,) for pid in set(patients)])


def drop_scope(conn: Connection) -> None:
    conn.execute(text("DROP TABLE IF EXISTS build_scope"))
