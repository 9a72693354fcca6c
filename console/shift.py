"""An agent's shift as plain calls on the domain: what the workspace's workers run off the UI thread.

Each method is one short transaction. Nothing here touches Textual, so the screens stay thin and
the same calls are exercised by tests without a UI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from console.services import Services
from queues import agents, claiming, context, outcomes
from queues.auth import SignedInUser, authenticate
from queues.db import transaction
from queues.errors import WrapUpPending


@dataclass(frozen=True)
class Offer:
    """A claimed patient and what the agent needs to work them."""

    claim: claiming.Claim
    patient: context.PatientContext


def sign_in(services: Services, username: str, password: str) -> SignedInUser:
    with transaction(services.sessions) as session:
        return authenticate(session, username, password)


def reference_data(
    services: Services,
) -> tuple[tuple[outcomes.DispositionOption, ...], tuple[agents.PauseOption, ...]]:
    with services.sessions() as session:
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
        with transaction(self.services.sessions) as session:
            held = self.offer
            if held is not None:
                raise WrapUpPending()
            claim = claiming.claim_next(
                session,
                user_id=self.user.id,
                pharmacy_ids=self.user.pharmacy_ids,
                now=now,
                lease_seconds=self.services.settings.queue.lease_seconds,
            )
            if claim is None:
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
            agents.set_state(session, self.user.id, "previewing", now)
        self.offer = Offer(claim, patient)
        return self.offer

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

    def sign_out(self) -> None:
        if self.offer is not None:
            raise WrapUpPending()
        self.set_state("offline")
