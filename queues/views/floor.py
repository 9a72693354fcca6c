"""The supervisor's floor as frozen rows (built by `queues.floor.monitor`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

STUCK_LEASE_MINUTES = 20
LONG_WRAP_UP_MINUTES = 3  # AlertLimits' default; [floor].wrap_up_alert_minutes sets it
CALLBACK_LIST_LIMIT = 50


@dataclass(frozen=True)
class QueueRow:
    """One campaign's work at one pharmacy, in tasks. now + later + held == open_tasks."""

    pharmacy_id: int
    pharmacy: str
    campaign_id: int
    campaign: str
    active: bool
    weight: float
    open_tasks: int
    callable_now: int
    callable_later: int
    next_at: datetime | None  # when the first of the later ones becomes callable
    held: int  # with an agent
    blocked: tuple[tuple[str, int], ...]  # why the later ones wait: (reason, tasks), most first
    oldest_due: date | None  # the earliest run-out/due date among the open tasks
    oldest_created: datetime | None
    paused_tasks: int  # closed by a pause; they come back on resume
    shared: bool = False  # one campaign for every pharmacy: only an admin may change it

    @property
    def key(self) -> str:
        return f"{self.pharmacy_id}:{self.campaign_id}"


@dataclass(frozen=True)
class PharmacyRow:
    """A pharmacy's queue in patients, fresh at every refresh (the total from the last recount)."""

    pharmacy_id: int
    code: str
    name: str
    patients: int
    callable_now: int
    callable_later: int
    next_at: datetime | None
    held: int
    blocked: tuple[tuple[str, int], ...]  # (reason code, patients), most first
    callbacks_due: int
    callbacks_overdue: int


@dataclass(frozen=True)
class AgentRow:
    user_id: int
    name: str
    state: str
    pause_code: str | None
    since: datetime | None
    calls_today: int
    reached_today: int  # patients reached
    avg_handle_s: float | None
    avg_wrap_up_s: float | None
    holding_since: datetime | None
    holding_patient_id: int | None
    logout_requested: bool

    def lease_stuck(self, now: datetime) -> bool:
        """A patient held far too long. (A long wrap-up or pause is an alert, against the
        configured [floor] limits: `FloorAlerts.long_wrap_up`, `long_pause`.)"""
        return bool(
            self.holding_since and now - self.holding_since > timedelta(minutes=STUCK_LEASE_MINUTES)
        )


@dataclass(frozen=True)
class CallbackRow:
    callback_id: int
    pharmacy: str
    patient_id: int
    due_at: datetime
    owner_id: int | None
    owner: str | None
    overdue: bool


@dataclass(frozen=True)
class OutcomeSummary:
    by_disposition: tuple[tuple[str, str, int], ...]  # (code, label, attempts), most first
    by_hour: tuple[tuple[int, int], ...]  # (local hour, attempts)
    attempts: int
    patients_called: int
    patients_reached: int
    refill_requests: int
    med_sync_enrollments: int
    escalations: int
    callbacks_due: int
    callbacks_overdue: int

    @property
    def reach_rate(self) -> float:
        """Patients reached of patients called today."""
        return self.patients_reached / self.patients_called if self.patients_called else 0.0


@dataclass(frozen=True)
class AlertLimits:
    """When the floor marks something ([floor] in config.toml)."""

    wrap_up_minutes: int = LONG_WRAP_UP_MINUTES
    pause_minutes: int = 20
    oldest_due_days: int = 3
    line_failures: int = 3
    undelivered_minutes: int = 30


@dataclass(frozen=True)
class FloorAlerts:
    """What a supervisor must act on now."""

    long_wrap_up: tuple[tuple[int, str, int], ...] = ()  # (agent id, name, minutes)
    long_pause: tuple[tuple[int, str, int], ...] = ()
    overdue_campaigns: tuple[tuple[str, str, int], ...] = ()  # (pharmacy, campaign, days late)
    line_failures: int = 0  # today's calls that never reached a phone
    last_sip_status: int | None = None
    line_failure_limit: int = 3
    undelivered: int = 0  # follow-ups not delivered past the limit (pending, retrying, dead…)
    dead: int = 0  # follow-ups the outbox gave up on

    @property
    def count(self) -> int:
        return (
            len(self.long_wrap_up)
            + len(self.long_pause)
            + len(self.overdue_campaigns)
            + (self.line_failures >= self.line_failure_limit > 0)
            + (self.undelivered > 0)
        )


@dataclass(frozen=True)
class FloorSnapshot:
    at: datetime
    zone: str
    counted_at: datetime  # when the campaign depths were counted
    pharmacies: tuple[PharmacyRow, ...]
    queues: tuple[QueueRow, ...]
    agents: tuple[AgentRow, ...]
    callbacks: tuple[CallbackRow, ...]
    outcomes: OutcomeSummary
    alerts: FloorAlerts = FloorAlerts()
