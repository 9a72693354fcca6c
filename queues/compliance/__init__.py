"""Who may be called, when: calling windows (federal, state, pharmacy, holidays, best time), do-not-
call and wrong-number flags, consent and frequency caps. Rules and sources: `COMPLIANCE.md`."""

from queues.compliance.adhoc import ad_hoc_verdict
from queues.compliance.check import PatientFacts, PharmacyHours, PhoneFacts, evaluate
from queues.compliance.limits import Limits, pharmacy_limits, site_limits
from queues.compliance.patient import admission, check_at_dial, patient_verdict
from queues.compliance.verdict import Reason, Verdict, is_window_code

__all__ = [
    "Limits",
    "PatientFacts",
    "PharmacyHours",
    "PhoneFacts",
    "Reason",
    "Verdict",
    "ad_hoc_verdict",
    "admission",
    "check_at_dial",
    "evaluate",
    "is_window_code",
    "patient_verdict",
    "pharmacy_limits",
    "site_limits",
]
