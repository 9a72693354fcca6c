"""The campaign rules. `DEFAULT_RULES` is the set a queue build runs unless told otherwise."""

from __future__ import annotations

from queues.building.rules import adherence, clinical, medication
from queues.building.rules.base import Rule

DEFAULT_RULES: tuple[Rule, ...] = (
    medication.refill_reminder,
    medication.pre_sync_check,
    medication.post_dispense,
    medication.med_sync_enrollment,
    adherence.adherence,
    clinical.vaccines,
    clinical.diabetes_education,
    clinical.smoking_cessation,
)


def default_rules() -> tuple[Rule, ...]:
    return DEFAULT_RULES
