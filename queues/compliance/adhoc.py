"""The verdict for an ad-hoc patient (`outreach compliance check`): a ZIP, a number, a state."""

from __future__ import annotations

from datetime import datetime

from queues.compliance.check import PatientFacts, PhoneFacts, evaluate
from queues.compliance.limits import site_limits
from queues.compliance.states import US_STATES
from queues.compliance.verdict import Verdict
from queues.compliance.zones import valid_number
from queues.errors import OutreachError
from queues.settings import QueueSettings


def ad_hoc_verdict(
    zip_code: str,
    phone: str,
    at: datetime,
    *,
    state: str | None = None,
    settings: QueueSettings | None = None,
) -> Verdict:
    """Raises OutreachError naming the argument that is wrong."""
    if at.tzinfo is None:
        raise OutreachError("--at: give a time with its offset, like 2026-12-02T10:00-06:00")
    if not (len(zip_code) in (5, 10) and zip_code[:5].isdigit()):
        raise OutreachError(f"--zip: {zip_code!r} is not a US ZIP code (5 digits)")
    if not phone.startswith("+") or not valid_number(phone):
        raise OutreachError(f"--phone: {phone!r} is not a valid number in E.164 (+12145550100)")
    if state is not None and state.upper() not in US_STATES:
        raise OutreachError(f"--state: {state!r} is not a US state code (two letters)")
    facts = PatientFacts(
        zip_code=zip_code, state=state.upper() if state else None, phones=(PhoneFacts(phone),)
    )
    return evaluate(facts, site_limits(settings or QueueSettings()), at)
