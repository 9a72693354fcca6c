"""The priority score: which patient an agent should call first, from parts kept for "why".

Parts (stored with each task): days to run-out, PDC gap and whether 0.80 is still reachable,
program weight, attempts so far, a callback that is due, the pharmacy's priority.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CALLBACK_BONUS = 100.0  # a promised callback comes ahead of other work
ATTEMPT_PENALTY = 5.0  # each recent attempt lowers the patient a little, spreading the effort
PHARMACY_STEP = 5.0
BUNDLE_BONUS = 2.0  # per extra subject: one call that does several things is worth more


def urgency(parts: Mapping[str, Any]) -> float:
    """0–60: how much it matters that this subject is handled today."""
    if "pdc_gap" in parts:
        # Closest to 0.80 by year end first: `share_needed` is the part of the days left in the
        # year that must still be covered. Out of reach ranks lower, never dropped.
        raw = parts.get("share_needed")
        share = float(parts["pdc_gap"] if raw is None else raw)
        if parts.get("reachable", True):
            return 30.0 + 30.0 * (1.0 - min(1.0, share))
        return 10.0 + 10.0 / max(share, 1.0)
    if "days_to_run_out" in parts:  # out of medication soonest first; overdue is most urgent
        return max(0.0, min(60.0, 40.0 - 4.0 * float(parts["days_to_run_out"])))
    if "days_to_sync" in parts:
        return max(0.0, 40.0 - 5.0 * float(parts["days_to_sync"]))
    if parts.get("new_start"):
        return 30.0
    return 10.0


def score_of(parts: Mapping[str, Any]) -> float:
    return score_from(
        urgency(parts),
        parts.get("program_weight", 1.0),
        parts.get("pharmacy_priority", 0),
        parts.get("attempts", 0),
        parts.get("callback_due"),
    )


def score_from(
    urgency: float, program_weight: float, pharmacy_priority: int, attempts: int, callback_due: Any
) -> float:
    """`score_of` from its parts, for a build that has them at hand (it scores every due task)."""
    score = urgency * float(program_weight)
    score += PHARMACY_STEP * float(pharmacy_priority)
    score -= ATTEMPT_PENALTY * float(attempts)
    if callback_due:
        score += CALLBACK_BONUS
    return score


def patient_score(task_scores: list[float]) -> float:
    """One call for all of a patient's subjects: the best subject, plus a little per extra one."""
    return max(task_scores) + BUNDLE_BONUS * (len(task_scores) - 1)


def explain(parts: Mapping[str, Any]) -> str:
    """The parts in words, for the console's "why this patient"."""
    words = []
    if "days_to_run_out" in parts:
        d = int(parts["days_to_run_out"])
        words.append(f"runs out {'in ' + str(d) + ' d' if d >= 0 else str(-d) + ' d ago'}")
    if "pdc_gap" in parts:
        words.append(
            f"PDC gap {float(parts['pdc_gap']):.2f}"
            + (
                f", needs {parts['days_needed']} of {parts['days_open']} days left"
                if parts.get("reachable", True) and "days_needed" in parts
                else ""
            )
            + ("" if parts.get("reachable", True) else " (0.80 out of reach)")
        )
    if "days_to_sync" in parts:
        words.append(f"sync in {parts['days_to_sync']} d")
    if parts.get("new_start"):
        words.append("new start")
    words.append(f"weight {float(parts.get('program_weight', 1.0)):g}")
    if parts.get("attempts"):
        words.append(f"{parts['attempts']} attempt(s) so far")
    if parts.get("callback_due"):
        words.append("callback due")
    if parts.get("pharmacy_priority"):
        words.append(f"pharmacy priority {parts['pharmacy_priority']}")
    words.append(f"score {float(parts.get('score', 0)):.1f}")
    return " · ".join(words)
