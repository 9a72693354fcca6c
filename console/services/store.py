"""The database as the CLI and the services hold it: engine, sessions, clock and the console's
claimer, built once from the settings (no module globals). Screens never see it: they are handed
`Services`, which wraps a store."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from console.config import Settings
from queues.claims.fast_claimer import Claimer
from queues.clock import Clock, clock_for
from queues.store.db import make_engine, session_factory, upgrade


@dataclass(frozen=True)
class Store:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock
    claimer: Claimer  # the console's claims: one statement when the head was admitted ahead

    def close(self) -> None:
        self.claimer.close()
        self.engine.dispose()


def open_store(settings: Settings, *, migrate: bool = True, clock: Clock | None = None) -> Store:
    engine = make_engine(settings.database.url)
    if migrate:
        upgrade(engine)
    sessions = session_factory(engine)
    if clock is None:
        with sessions() as session:
            clock = clock_for(session)
    claimer = Claimer(engine, sessions, settings.queue)
    return Store(settings=settings, engine=engine, sessions=sessions, clock=clock, claimer=claimer)
