"""What a call's wrap-up holds: frozen data recorded by `queues.outcomes`."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

NOTES_MAX = 4000
CALL_RESULTS = ("connected", "no_answer", "busy", "not_dialed", "failed")
# The disposition (and its effect) the console records by itself when the line failed: the call
# never reached the patient's phone. It spends none of their caps or attempts (migration 0012).
LINE_FAILED = "line_failed"


# Each disposition in words, as the seeded reference table labels it (migrations 0002 and 0012; a
# test holds the two together): for what names one before the table is read, such as the
# script's suggestion or the softphone bar. Never show a code itself.
DISPOSITION_WORDS = {
    "completed": "Reached – call completed",
    "callback_requested": "Reached – asked for a callback",
    "transferred_pharmacist": "Reached – transferred to pharmacist",
    "refused": "Reached – declined to talk",
    "do_not_call": "Asked not to be called",
    "voicemail": "Left voicemail",
    "no_answer": "No answer",
    "busy": "Busy",
    "wrong_number": "Wrong number",
    "deceased": "Patient deceased",
    LINE_FAILED: "Line failed (nothing reached the patient)",
}


def disposition_words(code: str) -> str:
    return DISPOSITION_WORDS.get(code, code.replace("_", " ").capitalize())


@dataclass(frozen=True)
class DispositionOption:
    code: str
    label: str
    effect: str
    reached: bool
    requires_callback: bool


@dataclass(frozen=True)
class CallbackTimes:
    """The next times a callback may be set for a patient, in their own time zone (`zone`)."""

    zone: str
    slots: tuple[datetime, ...]


@dataclass(frozen=True)
class Outcome:
    """What the agent entered in wrap-up, plus the call's facts."""

    uid: str
    patient_id: int
    lease_token: str
    user_id: int
    disposition: str
    started_at: datetime
    ended_at: datetime
    phone_number: str | None = None
    call_result: str | None = None
    connected_at: datetime | None = None
    notes: str = ""
    callback_at: datetime | None = None
    callback_mine: bool = True
    dial_mode: str = "manual"
    sip_status: int | None = None
    script_id: str | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    actions: tuple[ActionRequest, ...] = ()


@dataclass(frozen=True)
class ActionRequest:
    """A follow-up the call produced (from the script or the agent), stored in the outbox."""

    kind: str
    prescription_id: int | None = None
    detail: dict[str, Any] = field(default_factory=dict)


ACTION_KINDS = (
    "refill_request",
    # A prescription with no refills left: the pharmacy asks the prescriber for a new one.
    "renewal_request",
    "pharmacist_escalation",
    "med_sync_enrollment",
    "vaccine_interest",
    "callback",
    "do_not_call",
    "wrong_number",
    "prescriber_followup",
)


@dataclass(frozen=True)
class Recorded:
    attempt_id: int
    patient_closed: bool
    next_available_at: datetime | None
    duplicate: bool = False
    late: bool = False  # stored after the claim was gone (queues.outcomes)
