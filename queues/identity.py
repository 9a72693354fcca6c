"""Which database this is, and whether a wrap-up draft kept on local disk belongs to it.

Row ids say nothing across databases: patient 7 of the demo and patient 7 of a site are different
people. The database's own id (a uuid4 made by migration 0021, kept by a restored backup) names
the folder a console keeps its drafts in (console/drafts.py), so a draft is only reopened and
saved on the database it was typed against.

Drafts written before that (one folder per user name, no database named) are matched by what this
database recorded: `claimed_here` says whether this user claimed this patient here shortly before
the draft was last written. Only then is the draft this database's to save.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from queues.audit import record
from queues.errors import OutreachError
from queues.store.models import AuditEvent, DatabaseIdentity
from queues.timeutil import as_utc

# A wrap-up is typed within a shift of its claim: a claim longer ago than this before the draft's
# last write is not taken as that draft's.
LEGACY_CLAIM_WINDOW = timedelta(hours=12)
# The claim's audit time and the file's time are both this computer's wall clock; a little room
# for the clock stepping between the two.
LEGACY_CLOCK_SLACK = timedelta(minutes=5)
# A wrap-up's call starts (its `started_at`: the dial, or the claim when none was made) within this
# of its claim. The draft's own time, which a later write of the file (a form reopened days later,
# a copy that does not keep file times) does not move; narrower than LEGACY_CLAIM_WINDOW.
LEGACY_CALL_WINDOW = timedelta(hours=1)


class NoDatabaseIdentity(OutreachError):
    def __init__(self) -> None:
        super().__init__(
            "this database has no identity row (table database_identity): run "
            "`outreach db upgrade` on it"
        )


def database_id(session: Session) -> str:
    """This database's id (a uuid4 as text); NoDatabaseIdentity when the row is missing."""
    found = session.scalar(select(DatabaseIdentity.database_id).where(DatabaseIdentity.id == 1))
    if not found:
        raise NoDatabaseIdentity()
    return found


def give_new_id(session: Session, *, by_user_id: int) -> tuple[str, str]:
    """Give this database a new id, audited as `by_user_id`: for a copy made to be a database of
    its own (a training copy of a site), which a copy otherwise shares with its original. Returns
    (old, new). Drafts kept under the old id stay the original's: none is reopened on the copy."""
    old = database_id(session)
    new = str(uuid.uuid4())
    session.execute(
        update(DatabaseIdentity).where(DatabaseIdentity.id == 1).values(database_id=new)
    )
    record(session, "database_new_id", user_id=by_user_id, detail={"old": old, "new": new})
    return old, new


def claimed_here(
    session: Session,
    *,
    user_id: int,
    patient_id: int,
    written_at: datetime,
    started_at: datetime | None = None,
) -> bool:
    """Whether this database holds a claim of `patient_id` by `user_id` from at most
    LEGACY_CLAIM_WINDOW before `written_at` (a draft file's last write, wall clock), or from at
    most LEGACY_CALL_WINDOW before `started_at` (the draft's call start): the evidence that a draft
    written before drafts were kept per database was typed against this one. Claims are audited
    on the wall clock (never a practice clock), as the file's time is; a practice clock's
    `started_at` (the demo) matches no claim but by chance, as a file's time may."""

    def near(at: datetime, window: timedelta) -> ColumnElement[bool]:
        return and_(AuditEvent.at >= at - window, AuditEvent.at <= at + LEGACY_CLOCK_SLACK)

    written = as_utc(written_at)
    when = near(written, LEGACY_CLAIM_WINDOW)
    if started_at is not None:
        when = or_(when, near(as_utc(started_at), LEGACY_CALL_WINDOW))
    found = session.scalar(
        select(AuditEvent.id)
        .where(
            AuditEvent.patient_id == patient_id,
            when,
            AuditEvent.action == "claim",
            AuditEvent.user_id == user_id,
        )
        .limit(1)
    )
    return found is not None
