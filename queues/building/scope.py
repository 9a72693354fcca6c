"""The patients a scoped queue build reads and writes (queues.building.build: a supervisor's control
touches only the patients with work in one campaign), as a temporary table the build's reads join:
any number of ids, one plan per read. It lives in the build's transaction; a rollback removes it."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import ColumnElement, Connection, Integer, column, insert, select, table, text

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
    if patients:
        conn.execute(insert(SCOPE), [{"patient_id": pid} for pid in set(patients)])


def drop_scope(conn: Connection) -> None:
    conn.execute(text("DROP TABLE IF EXISTS build_scope"))
