"""An agent's shift as use cases: what the workspace's workers call, off the event loop.

Each method is one short transaction (blocking: screens call it from a thread worker) and returns
frozen data. Nothing here touches Textual; the same calls are exercised by tests without a UI.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from console.services.store import Store
from console.softphone.permit import DialPermit
from queues.claims import claiming
from queues.compliance import patient_verdict
from queues.context import load_patient_context
from queues.errors import LeaseLost, NotAllowed, WrapUpPending
from queues.floor import agents, controls
from queues.identity import claimed_here
from queues.outcomes import disposition_options, record_outcome, stored
from queues.store.db import reading, transaction
from queues.views.outcome import CallbackTimes, DispositionOption, Outcome, Recorded
from queues.views.patient import PatientContext
from queues.views.shift import Offer
from queues.views.user import PauseOption, SignedInUser

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# A dial permit lasts until the number's calling window closes, but never longer than this: the
# call goes out within a second of the check, and a stale permit must not sit around.
PERMIT_SECONDS = 60.0


@dataclass(frozen=True)
class ReferenceData:
    """The lists the wrap-up and the pause dialog offer."""

    dispositions: tuple[DispositionOption, ...]
    pauses: tuple[PauseOption, ...]


@dataclass(frozen=True)
class SupervisorWord:
    """What a supervisor did to this console since the last poll."""

    log_out: bool  # asked this agent to sign out
    released: bool  # released (or let expire) the patient this agent holds
    lease_token: str | None = None  # the claim `released` is about (None: holding nobody)


def permit_seconds(now: datetime, open_until: datetime | None) -> float:
    """How long a permit from a check at `now` (the domain's clock, maybe a practice clock) may
    last, in seconds of time.monotonic()."""
    if open_until is None:
        return PERMIT_SECONDS
    return max(0.0, min((open_until - now).total_seconds(), PERMIT_SECONDS))


class AgentShift:
    """One signed-in agent's shift. Holds the offer in hand: at most one patient at a time."""

    def __init__(self, store: Store, user: SignedInUser) -> None:
        self._store = store
        self.user = user
        self.offer: Offer | None = None
        # The claim whose wrap-up is being stored (or was, last): from the moment `record` starts,
        # its lease going away is the save's own doing, not a supervisor's or the clock's.
        self._recording: str | None = None

    @property
    def now(self) -> datetime:
        return self._store.clock.now()

    def reference_data(self) -> ReferenceData:
        with reading(self._store.sessions) as session:
            return ReferenceData(disposition_options(session), agents.pause_options(session))

    def next_patient(self) -> Offer | None:
        """Claim the best next patient and load everything the workspace draws (an audited view):
        one transaction for the claim, the context, its calling verdict and the agent's state
        (one commit; a failure anywhere undoes the claim too). None when nobody is callable
        (the agent is then marked ready)."""
        store, now = self._store, self.now
        if self.offer is not None:
            raise WrapUpPending()
        with transaction(store.sessions) as session:
            claim = store.claimer.next_in(
                session,
                user_id=self.user.id,
                pharmacy_ids=self.user.pharmacy_ids,
                now=now,
                lease_seconds=store.settings.queue.lease_seconds,
            )
            if claim is None:
                agents.set_state(session, self.user.id, "ready", now)
                return None
            patient = load_patient_context(
                session,
                claim.patient_id,
                user_id=self.user.id,
                pharmacy_ids=self.user.pharmacy_ids,
                today=now.date(),
            )
            verdict = patient_verdict(session, claim.patient_id, now, store.settings.queue)
            agents.set_state(session, self.user.id, "previewing", now)
        self.offer = Offer(claim, patient, verdict.numbers)
        return self.offer

    def why_empty(self) -> str:
        """Why nobody is callable for this agent right now, in numbers, and when that changes."""
        from queues.floor.stats import due_breakdown

        with reading(self._store.sessions) as session:
            breakdown = due_breakdown(
                session,
                self.now,
                pharmacy_ids=self.user.pharmacy_ids,
                user_id=self.user.id,
                settings=self._store.settings.queue,
            )
        return breakdown.summary()

    def dial_permit(self, offer: Offer, number: str) -> DialPermit:
        """The calling window, do-not-call and caps checked again, now (the agent may have read a
        while): raises NotCallable with the reason, or returns the softphone's permit to dial
        `number` with the pharmacy's caller ID until the window closes. The one check per dial."""
        store = self._store
        # The same instant in the domain's clock and in the softphone's (monotonic) one.
        now, mono = store.clock.now(), time.monotonic()
        with reading(store.sessions) as session:
            verdict = claiming.check_at_dial(
                session, offer.claim.patient_id, number, now, store.settings.queue
            )
        pharmacy = offer.patient.pharmacy
        expires_at = mono + permit_seconds(now, verdict.open_until)
        return DialPermit(number, pharmacy.caller_id, pharmacy.name, expires_at)

    def callback_times(self, patient_id: int, count: int = 5) -> CallbackTimes:
        """The next open times for a callback to this patient, in their time (the wrap-up's
        picker); the save checks the chosen time again (queues.outcomes)."""
        from queues.compliance.callbacks import calling_windows

        with reading(self._store.sessions) as session:
            windows = calling_windows(session, patient_id, self._store.settings.queue)
        return CallbackTimes(windows.zone, windows.slots(self.now, count))

    def holding(self, lease_token: str) -> bool:
        """Whether this shift still holds that claim with nothing stored for it yet: False from
        the moment its wrap-up's save starts (the screen's word may still lag behind)."""
        offer = self.offer
        return (
            offer is not None
            and offer.claim.lease_token == lease_token
            and self._recording != lease_token
        )

    def heartbeat(self) -> datetime | None:
        """Keep the lease alive while the agent works; LeaseLost propagates to the screen (not
        when the lease went because this shift's own save stored the call meanwhile)."""
        offer = self.offer
        if offer is None or not self.holding(offer.claim.lease_token):
            return None
        try:
            with transaction(self._store.sessions) as session:
                return claiming.renew_lease(
                    session,
                    offer.claim.patient_id,
                    offer.claim.lease_token,
                    self.now,
                    self._store.settings.queue.lease_seconds,
                )
        except LeaseLost:
            if self.holding(offer.claim.lease_token):
                raise
            return None  # the wrap-up was saved while the beat ran: nothing was lost

    def set_state(self, state: str, pause_code: str | None = None) -> None:
        with transaction(self._store.sessions) as session:
            agents.set_state(session, self.user.id, state, self.now, pause_code)

    def record(self, outcome: Outcome) -> Recorded:
        """Store the wrap-up; on success the agent is free for the next patient. NotAllowed, and
        nothing stored, for a wrap-up of another user id (a draft left by another account)."""
        self._own(outcome)
        before, self._recording = self._recording, outcome.lease_token
        try:
            with transaction(self._store.sessions) as session:
                recorded = record_outcome(session, outcome, self.now, self._store.settings.queue)
                agents.set_state(session, self.user.id, "ready", self.now)
        except BaseException:
            self._recording = before  # not stored: the claim is still this shift's to lose
            raise
        self.offer = None
        return recorded

    def already_stored(self, draft: Outcome) -> bool:
        """Whether a wrap-up draft's attempt is in the database already (the console stopped
        between the save and removing the draft): the draft is then answered."""
        with reading(self._store.sessions) as session:
            return stored(session, draft.uid)

    def still_holds(self, draft: Outcome) -> bool:
        """Whether a wrap-up draft's claim is still this console's to resume (Ready gives the
        patient back, and the workspace reopens the draft); if not, the draft is saved late."""
        with reading(self._store.sessions) as session:
            return controls.lease_still_held(session, draft.patient_id, draft.lease_token)

    def typed_here(self, draft: Outcome, written_at: datetime) -> bool:
        """Whether a draft from before drafts were kept per database (no database named) was
        typed against this database: it is this agent's (`user_id`), and this database holds
        their claim of its patient shortly before the file was last written (`written_at`, wall
        clock) or before the draft's call started (`queues.identity.claimed_here`). Only then may
        it be reopened and saved here (console/drafts.py)."""
        if draft.user_id != self.user.id:
            return False
        with reading(self._store.sessions) as session:
            return claimed_here(
                session,
                user_id=self.user.id,
                patient_id=draft.patient_id,
                written_at=written_at,
                started_at=draft.started_at,
            )

    def _own(self, outcome: Outcome) -> None:
        if outcome.user_id != self.user.id:
            raise NotAllowed(
                f"This wrap-up was typed under another account (user id {outcome.user_id}), "
                "not yours: it is not saved."
            )

    def late_wrap_up(self, draft: Outcome) -> PatientContext:
        """The patient of a wrap-up draft whose claim is gone (a console killed, the lease run out
        or released meanwhile): what the wrap-up shows while it is saved late (an audited view).
        NotAllowed for a draft of another user id: it is never opened, nor saved, here."""
        self._own(draft)
        now = self.now
        with transaction(self._store.sessions) as session:
            return load_patient_context(
                session,
                draft.patient_id,
                user_id=self.user.id,
                pharmacy_ids=self.user.pharmacy_ids,
                today=now.date(),
            )

    def supervisor_check(self) -> SupervisorWord:
        """Polled by the workspace: has a supervisor asked this session to sign out, has the
        patient this agent holds been released from under them. A lease that went because this
        shift's own save stored the call (while the poll read) is not a release: under load the
        poll and the save overlap, and the workspace opened a second wrap-up for a call already
        stored (bench/next_patient.py's saves that "timed out")."""
        offer = self.offer
        with reading(self._store.sessions) as session:
            logout = controls.logout_requested(session, self.user.id, EPOCH)
            released = offer is not None and not controls.lease_still_held(
                session, offer.claim.patient_id, offer.claim.lease_token
            )
        if offer is None:
            return SupervisorWord(logout, False)
        # Read after the lease: a save that cleared it had marked its claim before it began.
        released = released and self.holding(offer.claim.lease_token)
        return SupervisorWord(logout, released, offer.claim.lease_token)

    def forget(self) -> None:
        """The claim is gone (a supervisor released it, or it expired and another agent has the
        patient): stop holding it here; nothing is written."""
        self.offer = None

    def sign_out(self) -> None:
        if self.offer is not None:
            raise WrapUpPending()
        with transaction(self._store.sessions) as session:
            agents.set_state(session, self.user.id, "offline", self.now)
            controls.logout_done(session, self.user.id)
