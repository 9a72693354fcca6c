"""A command that reads pharmacies' work refuses a database without any, and says how to fill it
(after `./dev demo` every command opens the demo's database: the demo writes where the default
URL points)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from queues.errors import OutreachError

if TYPE_CHECKING:
    from console.services.store import Store


class NoPharmacies(OutreachError):
    pass


def require_pharmacies(store: Store) -> None:
    from sqlalchemy import func, select

    from queues.store.db import reading
    from queues.store.models import Pharmacy

    with reading(store.sessions) as session:
        found = session.scalar(select(func.count()).select_from(Pharmacy)) or 0
    if not found:
        url = store.engine.url.render_as_string(hide_password=True)
        raise NoPharmacies(
            f"the database {url} holds no pharmacies: run `outreach demo --seed-only` for the "
            "demo (it writes to this database), load your pharmacies' data, or point "
            "--database (or OUTREACH_DATABASE_URL) at the database that holds them"
        )
