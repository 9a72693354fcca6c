"""Which database errors the domain reports as "cannot reach the database" (queues.store.db): only a
database that cannot answer; a statement it refuses stays the error it is, so a bug is not
shown to an agent as an outage."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError, ProgrammingError

from queues.errors import DatabaseUnavailable
from queues.store.db import make_engine, reading, session_factory, transaction, upgrade


def test_a_statement_the_database_refuses_is_not_reported_as_an_outage(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    sessions = session_factory(engine)
    for unit in (transaction, reading):
        with pytest.raises((OperationalError, ProgrammingError)) as caught, unit(sessions) as s:
            s.execute(text("SELECT no_such_column FROM queue_entries"))
        assert not isinstance(caught.value, DatabaseUnavailable)
    engine.dispose()
