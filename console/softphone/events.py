"""What the softphone tells the app: call states, why a call ended, registration changes."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CallState(StrEnum):
    DIALING = "dialing"  # INVITE sent, nothing heard yet (or 100 Trying)
    RINGING = "ringing"  # 180/183: the far end is alerting
    CONNECTED = "connected"  # also sent again when a call on hold is resumed (`hold` == "")
    ON_HOLD = "on_hold"  # connected, and one side holds the call (`hold` says which)
    ENDED = "ended"


class EndReason(StrEnum):
    COMPLETED = "completed"  # connected, and we hung up
    REMOTE_HANGUP = "remote_hangup"  # connected, and the far end hung up
    BUSY = "busy"  # 486, 600
    DECLINED = "declined"  # 603
    NO_ANSWER = "no_answer"  # rang until our dial timeout (CANCEL)
    UNAVAILABLE = "unavailable"  # 480: phone off or unreachable; 408 from a proxy or registrar
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
    if status in (480, 408):  # 408: a proxy's or registrar's timeout, not the patient's
        return EndReason.UNAVAILABLE
    if status == 487:
        return EndReason.NO_ANSWER
    return EndReason.FAILED


# Final statuses that mean the line, not the patient: the trunk or proxy failed (408, 5xx), it
# refused us (401/403/407: the account, registration down), or it could not carry the call
# (3xx not followed, 488/606 no common media, 420/421 extension, 423/429/494).
_TECHNICAL_STATUSES = {401, 402, 403, 405, 406, 407, 408, 413, 414, 415, 416, 420, 421, 423}
_TECHNICAL_STATUSES |= {428, 429, 488, 494, 606}


def is_technical(reason: EndReason, status: int | None) -> bool:
    """True when the call never reached the patient's phone through no doing of the patient's:
    no route, a network error, no response at all, or a 5xx/408/auth refusal from the trunk. Such
    a call is a line failure (`line_failed`), never a patient outcome."""
    if reason in (EndReason.NETWORK_ERROR, EndReason.TIMEOUT):
        return True
    if status is None:
        return reason == EndReason.FAILED  # the softphone itself could not place it
    if 300 <= status < 400 or 500 <= status < 600:
        return True
    return status in _TECHNICAL_STATUSES


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
    # -- since issue 21; every field has a default, so older readers see nothing change --------
    # On ENDED: the call never reached the patient's phone (see is_technical): a line failure.
    technical: bool = False
    hold: str = ""  # "remote" (the far end holds us), "local" (the agent holds), "" not held
    early_media: bool = False  # RINGING: the far end sent 183 with SDP and we play its audio
    rtp_sent: int = 0  # RTP packets sent, received, and lost (RFC 3550 A.3, from sequence gaps)
    rtp_received: int = 0
    rtp_lost: int = 0
    rtcp_sent: int = 0  # RTCP reports (SR/RR) sent and received on RTP port + 1
    rtcp_received: int = 0
    transport: str = ""  # "udp", "tcp" or "tls": how SIP went
    srtp: bool = False  # media encrypted (SDES-keyed SRTP, RFC 4568)
    auth_ms: float | None = None  # a 401/407 received → the INVITE with credentials sent

    @property
    def line_failed(self) -> bool:
        """Ended as a technical failure of the line (the issue's `line_failed` attempt)."""
        return self.state == CallState.ENDED and self.technical

    @property
    def suggested_disposition(self) -> str | None:
        if self.technical:
            return None  # not a patient outcome: recorded as a line failure, not dispositioned
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
