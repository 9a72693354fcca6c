"""An agent's shift as frozen data: the patient claimed, and the offer the workspace draws."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from queues.views.patient import PatientContext


@dataclass(frozen=True)
class Claim:
    patient_id: int
    lease_token: str
    claimed_at: datetime
    lease_expires_at: datetime
    resumed: bool = False  # the agent already held this patient (restarted console)


@dataclass(frozen=True)
class Offer:
    """A claimed patient and everything the workspace and the script panel draw for them."""

    claim: Claim
    patient: PatientContext
    # The numbers that may be dialed right now (window, best time, flags), best first.
    callable_numbers: tuple[str, ...] = ()
