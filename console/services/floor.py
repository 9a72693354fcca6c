"""The supervisor's floor as use cases: the monitor's snapshot, the controls, the program report.

Built per signed-in supervisor (every control is checked against their pharmacies and audited by
the domain). The pharmacies are queues.access's rule, as on the command line: a supervisor's own,
an admin's every pharmacy (assigned or not), as they stand when the floor opens. Blocking: the floor screen calls it from thread workers. Returns frozen data and, for
a control, the sentence to show.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from console.services.store import Store
from queues.access import acting_scope
from queues.errors import NotAllowed, OutreachError
from queues.floor import controls, sign_ins
from queues.floor.monitor import FloorMonitor, floor_zone
from queues.store.db import reading, transaction
from queues.store.models import QueueEntry, User, UserPharmacy
from queues.timeutil import utcnow
from queues.views.floor import AlertLimits, FloorSnapshot, QueueRow
from queues.views.user import SignedInUser


@dataclass(frozen=True)
class Report:
    """A program report made for download or saving: bytes, a file name, a media type."""

    content: bytes
    filename: str
    media_type: str


class Floor:
    def __init__(self, store: Store, user: SignedInUser) -> None:
        if not user.is_supervisor:  # invariant 6: only supervisors see the monitor
            raise NotAllowed("only supervisors can open the floor monitor")
        self._store = store
        with reading(store.sessions) as session:
            # The user as they act here: an admin's pharmacies are every pharmacy.
            self.user = acting_scope(session, user)
        self.zone = "UTC"  # the floor's time zone, known after the first refresh
        # The screen recounts in its own worker; the monitor never does it inside a refresh.
        limits = store.settings.floor
        self._monitor = FloorMonitor(
            self.user.pharmacy_ids,
            store.settings.queue.callback_grace_minutes,
            recount_every=None,
            limits=AlertLimits(
                wrap_up_minutes=limits.wrap_up_alert_minutes,
                pause_minutes=limits.pause_alert_minutes,
                oldest_due_days=limits.oldest_due_alert_days,
                line_failures=limits.line_failure_alert,
                undelivered_minutes=limits.undelivered_alert_minutes,
            ),
        )

    @property
    def is_practice(self) -> bool:
        return self._store.clock.is_practice

    def today(self) -> date:
        from zoneinfo import ZoneInfo

        return self._store.clock.now().astimezone(ZoneInfo(self.zone)).date()

    def snapshot(self) -> FloorSnapshot:
        """What moves every couple of seconds: agents, held patients, callbacks, today's calls,
        with the campaign depths of the last recount. Not thread-safe: one refresh at a time."""
        with reading(self._store.sessions) as session:
            if self.zone == "UTC":
                self.zone = floor_zone(session, self.user.pharmacy_ids)
            return self._monitor.refresh(session, self._store.clock.now(), zone=self.zone)

    def recount(self) -> None:
        """Count every campaign's depth again (one grouped pass over the open tasks: slow)."""
        with reading(self._store.sessions) as session:
            self._monitor.recount(session, self._store.clock.now())

    # -- controls: each returns what was done, in words; OutreachError says why not ------------
    def set_campaign_active(self, row: QueueRow, active: bool) -> str:
        with transaction(self._store.sessions) as session:
            controls.set_campaign_active(
                session,
                self.user,
                row.campaign_id,
                active,
                self._store.clock.now(),
                self._store.settings.queue,
            )
        return "resumed" if active else "paused"

    def set_campaign_weight(self, row: QueueRow, weight: float) -> str:
        with transaction(self._store.sessions) as session:
            controls.set_campaign_weight(
                session,
                self.user,
                row.campaign_id,
                weight,
                self._store.clock.now(),
                self._store.settings.queue,
            )
        return f"weight {weight:g}"

    def release_patient_of(self, agent_id: int, name: str) -> str:
        """Put the patient the agent holds back in the queue."""
        now = self._store.clock.now()
        with transaction(self._store.sessions) as session:
            patient_id = session.scalar(
                select(QueueEntry.patient_id).where(
                    QueueEntry.holder_id == agent_id, QueueEntry.lease_expires_at > now
                )
            )
            if patient_id is None:
                raise OutreachError(f"{name} holds no patient")
            controls.release_lease(session, self.user, patient_id, now)
        return f"{name}'s patient is back in the queue"

    def log_out_agent(self, agent_id: int, name: str) -> str:
        with transaction(self._store.sessions) as session:
            controls.request_logout(session, self.user, agent_id, self._store.clock.now())
        return (
            f"{name}'s console will sign out after their current wrap-up "
            "(a locked one at its next check, its patient back in the queue)"
        )

    def unlock_account(self, username: str) -> str:
        """Unlock an account locked after failed sign-ins (an agent of the supervisor's
        pharmacies; an admin: anyone's), audited; on the wall clock, as lockouts are."""
        with transaction(self._store.sessions) as session:
            return sign_ins.unlock_account(session, self.user, username, utcnow())

    def do_not_call(self, what: str) -> str:
        """A phone number or a patient's MRN (CODE:MRN) to do-not-call."""
        with transaction(self._store.sessions) as session:
            return controls.add_do_not_call_for(session, self.user, what, self._store.clock.now())

    def reassign_callback(self, callback_id: int, to: str) -> str:
        """Give a callback to an agent of the supervisor's pharmacies (by user name), or 'anyone'."""
        with transaction(self._store.sessions) as session:
            to_id = None
            if to.lower() != "anyone":
                to_id = session.scalar(
                    select(User.id)
                    .join(UserPharmacy, UserPharmacy.user_id == User.id)
                    .where(
                        User.username == to,
                        UserPharmacy.pharmacy_id.in_(self.user.pharmacy_ids),
                    )
                )
                if to_id is None:
                    raise OutreachError(f"no agent {to!r} works for your pharmacies")
            controls.reassign_callback(session, self.user, callback_id, to_id)
        return f"callback #{callback_id} → {to}"

    def report(self, pharmacy: str, first: date, last: date, fmt: str) -> Report:
        """The program report for a pharmacy code (or 'all') and period, audited as an export."""
        from queues.reports.build import Requester
        from queues.reports.export import export_report

        with transaction(self._store.sessions) as session:
            made = export_report(
                session,
                Requester.of(self.user),
                pharmacy,
                first,
                last,
                fmt.lower(),
                self._store.clock.now(),
                paper=self._store.settings.report.paper,
            )
        return Report(made.content, made.filename, made.media_type)
