"""Many new rows at once through the driver: binary COPY on PostgreSQL, one INSERT … SELECT over a
JSON array on SQLite. The queue build writes its tasks and queue entries with it, an import its
patients, prescriptions and fills."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection
from sqlalchemy.exc import DBAPIError

# SQLite: rows per statement (one JSON text each; a million fills is a few hundred MB of it).
SQLITE_ROWS = 200_000


def insert_rows(
    conn: Connection,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[tuple[Any, ...]],
    *,
    or_ignore: bool = False,
    alone: bool = False,
) -> None:
    """`rows` into table `name`, values already in the form each column stores (dates as ISO text
    and booleans as 0/1 on SQLite, JSON as text, naive UTC times); `columns` are (name, the
    PostgreSQL type a binary COPY sends it as). `or_ignore`: on SQLite a row whose key is taken
    is left out (INSERT OR IGNORE); on PostgreSQL it must not be asked for. `alone`: SQLite, no
    other thread of the process works meanwhile, so an executemany is the faster way (below)."""
    if not rows:
        return
    names = ", ".join(n for n, _ in columns)
    if conn.dialect.name == "postgresql":
        if or_ignore:
            raise ValueError("or_ignore is for SQLite: COPY cannot leave rows out")
        statement = f"COPY {name} ({names}) FROM STDIN (FORMAT BINARY)"
        dbapi_error = conn.dialect.loaded_dbapi.Error
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            # Binary: the server parses no text (about a twentieth of its work on new tasks).
            with cursor.copy(statement) as copy:
                copy.set_types([kind for _, kind in columns])
                for row in rows:
                    copy.write_row(row)
        except dbapi_error as error:  # as SQLAlchemy raises it for every other statement
            raise DBAPIError.instance(statement, None, error, dbapi_error) from error
        finally:
            cursor.close()
        return
    verb = "INSERT OR IGNORE" if or_ignore else "INSERT"
    if alone:  # 468,383 tasks in steps of 5,000: 3.5-3.8 s, against 5.6-5.9 s through JSON
        marks = ", ".join("?" for _ in columns)
        conn.exec_driver_sql(f"{verb} INTO {name} ({names}) VALUES ({marks})", list(rows))
        return
    # SQLite unpacks and inserts a statement's rows in one step, without the GIL (an executemany
    # takes it back for every row, so on the build's writer thread it would wait on the rules'
    # thread for each). The values come back out of JSON as they went in.
    values = ", ".join(f"json_extract(value, '$[{i}]')" for i in range(len(columns)))
    for i in range(0, len(rows), SQLITE_ROWS):
        conn.exec_driver_sql(
            f"{verb} INTO {name} ({names}) SELECT {values} FROM json_each(?)",
            (orjson.dumps(list(rows[i : i + SQLITE_ROWS])).decode(),),
        )
