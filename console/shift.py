"""An agent's shift as plain calls on the domain: what the workspace's workers run off the UI thread.

Each method is one short transaction. Nothing here touches Textual, so the screens stay thin and
the same calls are exercised by tests without a UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from console.services import Services
from queues import context, outcomes
from queues.auth import SignedInUser, authenticate
from queues.claims import claiming
from queues.compliance import patient_verdict
from queues.errors import WrapUpPending
from queues.floor import agents, controls
from queues.store.db import reading, transaction

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Offer:
    """A claimed patient and what the agent needs to work them."""

    claim: claiming.Claim
    patient: context.PatientContext
    # The numbers that may be dialed right now (window, best time, flags), best first.
    callable_numbers: tuple[str, ...] = ()


def sign_in(services: Services, username: str, password: str) -> SignedInUser:
    with transaction(services.sessions) as session:
        user = authenticate(session, username, password)
        # A request from before this sign-in is stale: the agent had left already. Clearing it
        # here (not comparing times) keeps two consoles with different practice clocks honest.
        controls.logout_done(session, user.id)
        return user


def reference_data(
    services: Services,
) -> tuple[tuple[outcomes.DispositionOption, ...], tuple[agents.PauseOption, ...]]:
    with reading(services.sessions) as session:
        return outcomes.disposition_options(session), agents.pause_options(session)


class Shift:
    def __init__(self, services: Services, user: SignedInUser) -> None:
        self.services = services
        self.user = user
        self.offer: Offer | None = None

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    def next_patient(self) -> Offer | None:
        """Claim the best next patient and load their context (an audited view)."""
        now = self.now
        if self.offer is not None:
            raise WrapUpPending()
        claim = self.services.claimer.next(
            user_id=self.user.id,
            pharmacy_ids=self.user.pharmacy_ids,
            now=now,
            lease_seconds=self.services.settings.queue.lease_seconds,
        )
        if claim is None:
            with transaction(self.services.sessions) as session:
                agents.set_state(session, self.user.id, "ready", now)
            return None
        # A second, short transaction: the claim is committed (row lock released) first.
        with transaction(self.services.sessions) as session:
            patient = context.load_patient_context(
                session,
                claim.patient_id,
                user_id=self.user.id,
                pharmacy_ids=self.user.pharmacy_ids,
                today=now.date(),
            )
            verdict = patient_verdict(session, claim.patient_id, now, self.services.settings.queue)
            agents.set_state(session, self.user.id, "previewing", now)
        self.offer = Offer(claim, patient, verdict.numbers)
        return self.offer

    def why_empty(self) -> str:
        """Why nobody is callable for this agent right now, in numbers, and when that changes."""
        from queues.floor.stats import due_breakdown

        with reading(self.services.sessions) as session:
            breakdown = due_breakdown(
                session,
                self.now,
                pharmacy_ids=self.user.pharmacy_ids,
                user_id=self.user.id,
                settings=self.services.settings.queue,
            )
        return breakdown.summary()

    def heartbeat(self) -> datetime | None:
        """Keep the lease alive while the agent works; LeaseLost propagates to the screen."""
        if self.offer is None:
            return None
        with transaction(self.services.sessions) as session:
            return claiming.renew_lease(
                session,
                self.offer.claim.patient_id,
                self.offer.claim.lease_token,
                self.now,
                self.services.settings.queue.lease_seconds,
            )

    def set_state(self, state: str, pause_code: str | None = None) -> None:
        with transaction(self.services.sessions) as session:
            agents.set_state(session, self.user.id, state, self.now, pause_code)

    def record(self, outcome: outcomes.Outcome) -> outcomes.Recorded:
        """Store the wrap-up; on success the agent is free for the next patient."""
        with transaction(self.services.sessions) as session:
            recorded = outcomes.record_outcome(
                session, outcome, self.now, self.services.settings.queue
            )
            agents.set_state(session, self.user.id, "ready", self.now)
        self.offer = None
        return recorded

    def supervisor_check(self) -> tuple[bool, bool]:
        """Polled by the workspace: (has a supervisor asked this session to sign out, has the
        patient this agent holds been released from under them)."""
        offer = self.offer
        with reading(self.services.sessions) as session:
            logout = controls.logout_requested(session, self.user.id, EPOCH)
            released = offer is not None and not controls.lease_still_held(
                session, offer.claim.patient_id, offer.claim.lease_token
            )
        return logout, released

    def forget(self) -> None:
        """The claim is gone (a supervisor released it, or it expired and another agent has the
        patient): stop holding it here; nothing is written."""
        self.offer = None

    def sign_out(self) -> None:
        if self.offer is not None:
            raise WrapUpPending()
        self.set_state("offline")
        with transaction(self.services.sessions) as session:
            controls.logout_done(session, self.user.id)
