"""The body a pharmacy receives for one action, and its signature.

Minimum necessary (45 CFR 164.502(b)): what the pharmacy needs to act and to match its own
records — the kind, the idempotency key, the pharmacy's code, the patient's MRN, the prescription
(RxNorm and name) where there is one, the call's detail, when it was recorded. No name, birth
date, phone or address: the pharmacy has them under the MRN.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from typing import Any

from queues.timeutil import as_utc

SIGNATURE_HEADER = "X-Outreach-Signature"


def action_body(
    *,
    kind: str,
    key: str,
    pharmacy: str,
    mrn: str,
    rxnorm: str | None,
    drug_name: str | None,
    detail: dict[str, Any],
    created_at: datetime,
) -> bytes:
    """The JSON body, as bytes: what is signed is exactly what is sent."""
    document: dict[str, Any] = {
        "kind": kind,
        "idempotency_key": key,
        "pharmacy": pharmacy,
        "patient_mrn": mrn,
        "detail": detail,
        "created_at": as_utc(created_at).isoformat().replace("+00:00", "Z"),
    }
    if drug_name is not None:
        document["prescription"] = {"rxnorm": rxnorm, "name": drug_name}
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def signature(key: bytes, body: bytes) -> str:
    """`sha256=<hex HMAC-SHA256 of the raw body>`, what the receiver recomputes to trust it."""
    return "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
