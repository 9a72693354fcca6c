"""The softphone: a small SIP user agent (RFC 3261 over UDP, G.711 RTP, RFC 4733 DTMF) that the
console owns as one thread. See phone.Softphone; console/softphone/README.md says why it is not
pyVoIP."""

from console.softphone.account import SipAccount, SipTimers, account_from_settings
from console.softphone.events import (
    CallEvent,
    CallState,
    EndReason,
    PhoneEvent,
    PhoneNotice,
    RegistrationEvent,
)
from console.softphone.phone import Softphone, SoftphoneError

__all__ = [
    "CallEvent",
    "CallState",
    "EndReason",
    "PhoneEvent",
    "PhoneNotice",
    "RegistrationEvent",
    "SipAccount",
    "SipTimers",
    "Softphone",
    "SoftphoneError",
    "account_from_settings",
]
