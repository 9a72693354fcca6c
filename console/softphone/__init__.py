"""The softphone: a small SIP user agent (RFC 3261 over UDP, G.711 RTP, RFC 4733 DTMF) that the
console owns as one thread. See phone.Softphone; console/softphone/README.md says why it is not
pyVoIP. It imports nothing of queues, Textual or the rest of console (an import-linter contract):
the calling rules reach it as a DialPermit."""

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from console.softphone.account import SipAccount, SipTimers
    from console.softphone.errors import SoftphoneError
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
    from console.softphone.phone import Softphone

# Each name is imported from its module on first use: a console in manual-dial mode (no [sip]
# server) catches SoftphoneError and draws the events' states, but never loads the SIP stack
# (phone, call, transport, RTP, SDP, digest, audio: ~0.7 MiB a console would hold all shift).
_MODULE_OF = {
    "SipAccount": "account",
    "SipTimers": "account",
    "SoftphoneError": "errors",
    "CallEvent": "events",
    "CallState": "events",
    "DtmfEvent": "events",
    "EndReason": "events",
    "PhoneEvent": "events",
    "PhoneNotice": "events",
    "RegistrationEvent": "events",
    "DialPermit": "permit",
    "Softphone": "phone",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


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
