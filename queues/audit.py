"""The append-only audit trail (45 CFR 164.312(b)): who viewed, changed or exported what, when."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from queues.store.models import AuditEvent
from queues.timeutil import utcnow


def record(
    session: Session,
    action: str,
    *,
    user_id: int | None,
    patient_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Add an audit event to the caller's transaction (identifiers only, never health data)."""
    session.add(
        AuditEvent(
            at=utcnow(), user_id=user_id, action=action, patient_id=patient_id, detail=detail or {}
        )
    )
