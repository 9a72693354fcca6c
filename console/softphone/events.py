"""What the softphone tells the app: call states, why a call ended, registration changes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallState(StrEnum):
    DIALING = "dialing"  # INVITE sent, nothing heard yet (or 100 Trying)
    RINGING = "ringing"  # 180/183: the far end is alerting
    CONNECTED = "connected"
    ENDED = "ended"


class EndReason(StrEnum):
    COMPLETED = "completed"  # connected, and we hung up
    REMOTE_HANGUP = "remote_hangup"  # connected, and the far end hung up
    BUSY = "busy"  # 486, 600
    DECLINED = "declined"  # 603
    NO_ANSWER = "no_answer"  # rang until our dial timeout (CANCEL), or 408 from the network
    UNAVAILABLE = "unavailable"  # 480: phone off or unreachable
    NOT_FOUND = "not_found"  # 404, 484, 604, 410: invalid number
    FAILED = "failed"  # any other final response (503 carrier failure, 488, auth refused…)
    TIMEOUT = "timeout"  # the far end never answered the INVITE at all
    NETWORK_ERROR = "network_error"  # could not reach the server (ICMP unreachable, no route, DNS)
    CANCELLED = "cancelled"  # the agent hung up before an answer
    BLOCKED = "blocked"  # the calling-window / do-not-call check refused just before the INVITE


REASON_TEXT = {
    EndReason.COMPLETED: "Call completed",
    EndReason.REMOTE_HANGUP: "The patient hung up",
    EndReason.BUSY: "Busy",
    EndReason.DECLINED: "Declined by the patient",
    EndReason.NO_ANSWER: "No answer",
    EndReason.UNAVAILABLE: "Phone unavailable",
    EndReason.NOT_FOUND: "Invalid number (not found)",
    EndReason.FAILED: "Call failed",
    EndReason.TIMEOUT: "No response from the network",
    EndReason.NETWORK_ERROR: "Network error",
    EndReason.CANCELLED: "Hung up before an answer",
    EndReason.BLOCKED: "Not called",
}

# The disposition wrap-up pre-selects (the agent can change it). Reasons missing here pre-select
# nothing: a connected call's outcome comes from the script.
SUGGESTED_DISPOSITION = {
    EndReason.BUSY: "busy",
    EndReason.DECLINED: "refused",
    EndReason.NOT_FOUND: "wrong_number",
    EndReason.NO_ANSWER: "no_answer",
    EndReason.CANCELLED: "no_answer",
    EndReason.UNAVAILABLE: "no_answer",
}

# queues.outcomes.CALL_RESULTS for the attempt record.
CALL_RESULT = {
    EndReason.COMPLETED: "connected",
    EndReason.REMOTE_HANGUP: "connected",
    EndReason.BUSY: "busy",
    EndReason.NO_ANSWER: "no_answer",
    EndReason.CANCELLED: "no_answer",
    EndReason.UNAVAILABLE: "no_answer",
    EndReason.BLOCKED: "not_dialed",
}

# What `outreach call test` reports: the fixed list.
CLI_RESULTS = (
    "completed",
    "remote_hangup",
    "busy",
    "declined",
    "no_answer",
    "unavailable",
    "not_found",
    "failed",
    "timeout",
)


def reason_for_status(status: int) -> EndReason:
    """The end reason a final non-2xx response to our INVITE means (RFC 3261 §21)."""
    if status in (486, 600):
        return EndReason.BUSY
    if status == 603:
        return EndReason.DECLINED
    if status in (404, 410, 484, 604):
        return EndReason.NOT_FOUND
    if status == 480:
        return EndReason.UNAVAILABLE
    if status in (408, 487):
        return EndReason.NO_ANSWER
    return EndReason.FAILED


def cli_result(reason: EndReason) -> str:
    return reason.value if reason.value in CLI_RESULTS else "failed"


@dataclass(frozen=True)
class CallEvent:
    """A call changed state. `call` is the handle `Softphone.dial` returned."""

    call: str
    state: CallState
    at: float  # time.time()
    reason: EndReason | None = None
    sip_status: int | None = None  # the final status, when there was one
    detail: str = ""  # a sentence for the agent (reason phrase, what went wrong)
    setup_ms: float | None = None  # first INVITE sent → 200 OK received
    hangup_ms: float | None = None  # BYE sent → its final response
    connected_at: float | None = None
    dtmf_sent: str = ""
    dtmf_received: str = ""  # telephone-events heard from the far end (an echo, an IVR)
    audio: str = ""  # "on", or why audio is off

    @property
    def suggested_disposition(self) -> str | None:
        return SUGGESTED_DISPOSITION.get(self.reason) if self.reason else None

    @property
    def call_result(self) -> str:
        return CALL_RESULT.get(self.reason, "failed") if self.reason else "failed"


@dataclass(frozen=True)
class RegistrationEvent:
    registered: bool
    at: float
    detail: str = ""
    sip_status: int | None = None


@dataclass(frozen=True)
class DtmfEvent:
    """A key went out (`sent` grew) or a telephone-event came in (`received` grew)."""

    call: str
    sent: str
    received: str
    at: float


@dataclass(frozen=True)
class PhoneNotice:
    """Something the agent should read that is not a state change (DTMF refused, audio off)."""

    text: str
    at: float


PhoneEvent = CallEvent | RegistrationEvent | PhoneNotice | DtmfEvent
