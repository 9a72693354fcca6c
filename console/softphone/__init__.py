"""The softphone: a small SIP user agent (RFC 3261 over UDP, G.711 RTP, RFC 4733 DTMF) that the
console owns as one thread. See phone.Softphone; console/softphone/README.md says why it is not
pyVoIP. It imports nothing of queues, Textual or the rest of console (an import-linter contract):
the calling rules reach it as a DialPermit."""

import logging

from console.softphone.account import SipAccount, SipTimers
from console.softphone.events import (
    CallEvent,
    CallState,
    DtmfEvent,
    EndReason,
    PhoneEvent,
    PhoneNotice,
    RegistrationEvent,
)
from console.softphone.permit import DialPermit
from console.softphone.phone import Softphone, SoftphoneError

# Warnings go to the app's log file; with no handler configured they must not reach stderr
# through logging's last-resort handler (that would draw over the TUI).
logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CallEvent",
    "CallState",
    "DialPermit",
    "DtmfEvent",
    "EndReason",
    "PhoneEvent",
    "PhoneNotice",
    "RegistrationEvent",
    "SipAccount",
    "SipTimers",
    "Softphone",
    "SoftphoneError",
]
