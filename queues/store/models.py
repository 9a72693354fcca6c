"""The outreach data model (SQLAlchemy 2). Every table is created by the Alembic history in
`queues/store/migrations`; nothing calls `create_all` outside tests of the migration itself."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeEngine

from queues.timeutil import UTCDateTime

# Stable constraint names so that one migration history works on SQLite (batch mode) and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def _key_text(length: int) -> TypeEngine[str]:
    """A key the code writes and matches, compared byte by byte on PostgreSQL (migration 0011):
    cheaper index upkeep than the language collation. SQLite compares bytes already."""
    return String(length).with_variant(String(length, collation="C"), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Pharmacy(Base):
    """A client of the BPO: a tenant with its own caller ID, zone and hours."""

    __tablename__ = "pharmacies"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    caller_id: Mapped[str] = mapped_column(String(20))  # E.164
    callback_number: Mapped[str] = mapped_column(String(20))  # what a voicemail gives out
    timezone: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(2))
    opens_at: Mapped[time] = mapped_column(Time)
    closes_at: Mapped[time] = mapped_column(Time)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    endpoint_url: Mapped[str | None] = mapped_column(String(500))
    # This pharmacy's tighter calling limits (queues.compliance.limits.PHARMACY_KEYS); None: site's.
    calling_limits: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))  # agent | supervisor | admin
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    pharmacies: Mapped[list[Pharmacy]] = relationship(secondary="user_pharmacies")
    # Sign-in (queues.auth, migration 0015): failures in a row, and the lockout they lead to.
    failed_sign_ins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_until: Mapped[datetime | None]
    # TOTP second factor (RFC 6238): the shared secret (base32), and the last time step used,
    # so that a code is good once.
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


class UserPharmacy(Base):
    __tablename__ = "user_pharmacies"
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    pharmacy_id: Mapped[int] = mapped_column(
        ForeignKey("pharmacies.id", ondelete="CASCADE"), primary_key=True
    )


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int] = mapped_column(ForeignKey("pharmacies.id"), index=True)
    mrn: Mapped[str] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    birth_date: Mapped[date] = mapped_column(Date)
    language: Mapped[str] = mapped_column(String(8), default="en")
    zip_code: Mapped[str] = mapped_column(String(10))
    state: Mapped[str] = mapped_column(String(2))
    caregiver_name: Mapped[str | None] = mapped_column(String(200))
    caregiver_relation: Mapped[str | None] = mapped_column(String(64))
    caregiver_phone: Mapped[str | None] = mapped_column(String(20))
    # A caregiver may hear health information only when the record says so (COMPLIANCE.md).
    caregiver_authorized: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    deceased: Mapped[bool] = mapped_column(Boolean, default=False)
    med_sync_enrolled: Mapped[bool] = mapped_column(Boolean, default=False)
    med_sync_day: Mapped[int | None] = mapped_column(Integer)
    tobacco_use: Mapped[bool] = mapped_column(Boolean, default=False)
    hospice: Mapped[bool] = mapped_column(Boolean, default=False)
    esrd: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consent to outreach calls: None unknown (health-care calls allowed), False refused.
    consent_to_call: Mapped[bool | None] = mapped_column(Boolean)
    gender: Mapped[str | None] = mapped_column(String(16))  # as the source says (migration 0013)
    # The digest of the CSV line it was last written from (0019, queues.imports.digests).
    source_digest: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (UniqueConstraint("pharmacy_id", "mrn", name="uq_patients_pharmacy_mrn"),)

    phones: Mapped[list[Phone]] = relationship(back_populates="patient", order_by="Phone.rank")


class Phone(Base):
    __tablename__ = "phones"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[str] = mapped_column(String(20))  # E.164
    kind: Mapped[str] = mapped_column(String(16))  # mobile | home | work
    rank: Mapped[int] = mapped_column(Integer, default=0)
    best_time: Mapped[str | None] = mapped_column(String(64))  # e.g. "afternoon", "after 17:00"
    wrong_number: Mapped[bool] = mapped_column(Boolean, default=False)
    do_not_call: Mapped[bool] = mapped_column(Boolean, default=False)
    # The digest of the CSV line it was last written from (0019, queues.imports.digests).
    source_digest: Mapped[int | None] = mapped_column(BigInteger)
    patient: Mapped[Patient] = relationship(back_populates="phones")


class Prescription(Base):
    __tablename__ = "prescriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    drug_name: Mapped[str] = mapped_column(String(200))
    ingredient: Mapped[str] = mapped_column(String(100))
    rxnorm: Mapped[str | None] = mapped_column(String(20))
    pqa_class: Mapped[str | None] = mapped_column(String(16))  # RASA | STATIN | DIABETES
    chronic: Mapped[bool] = mapped_column(Boolean, default=True)
    refills_left: Mapped[int] = mapped_column(Integer, default=0)
    prescriber: Mapped[str | None] = mapped_column(String(200))
    written_on: Mapped[date | None] = mapped_column(Date)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    source_id: Mapped[str | None] = mapped_column(String(64))  # the import's identifier (0013)
    # The digest of the CSV line it was last written from (0019, queues.imports.digests).
    source_digest: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("uq_prescriptions_source", "patient_id", "source_id", unique=True),)


class Fill(Base):
    """One dispense of a prescription."""

    __tablename__ = "fills"
    id: Mapped[int] = mapped_column(primary_key=True)
    prescription_id: Mapped[int] = mapped_column(
        ForeignKey("prescriptions.id", ondelete="CASCADE"), index=True
    )
    fill_date: Mapped[date] = mapped_column(Date)
    days_supply: Mapped[int] = mapped_column(Integer)
    quantity: Mapped[float] = mapped_column(Float, default=0)
    # Worked out by an import from the prescription, not dispensed as such (queues.imports).
    estimated: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    source_id: Mapped[str | None] = mapped_column(String(64))  # the import's identifier (0013)
    # The digest of the CSV line it was last written from (0019, queues.imports.digests).
    source_digest: Mapped[int | None] = mapped_column(BigInteger)
    __table_args__ = (Index("uq_fills_source", "prescription_id", "source_id", unique=True),)


class Condition(Base):
    __tablename__ = "conditions"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    code: Mapped[str] = mapped_column(String(32))  # SNOMED or ICD-10
    display: Mapped[str] = mapped_column(String(200))
    source_id: Mapped[str | None] = mapped_column(String(64))  # the import's identifier (0013)
    __table_args__ = (Index("uq_conditions_source", "patient_id", "source_id", unique=True),)


class Immunization(Base):
    __tablename__ = "immunizations"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), index=True
    )
    vaccine: Mapped[str] = mapped_column(String(32))  # zoster | pneumococcal | influenza | rsv ...
    given_on: Mapped[date] = mapped_column(Date)
    source_id: Mapped[str | None] = mapped_column(String(64))  # the import's identifier (0013)
    __table_args__ = (Index("uq_immunizations_source", "patient_id", "source_id", unique=True),)


class Campaign(Base):
    """One outreach program, for one pharmacy or (pharmacy_id NULL) all of them."""

    __tablename__ = "campaigns"
    id: Mapped[int] = mapped_column(primary_key=True)
    pharmacy_id: Mapped[int | None] = mapped_column(ForeignKey("pharmacies.id"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    script_id: Mapped[str] = mapped_column(String(64))
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    attempt_limit: Mapped[int] = mapped_column(Integer, default=3)
    active: Mapped[bool] = mapped_column(Boolean, default=True)


class Task(Base):
    """One reason to call one patient; a patient's open tasks are worked in one call."""

    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id", ondelete="CASCADE"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    prescription_id: Mapped[int | None] = mapped_column(ForeignKey("prescriptions.id"))
    subject: Mapped[str] = mapped_column(_key_text(64))  # dedupe key within a campaign
    reason: Mapped[str] = mapped_column(String(300))  # no drug names: shown before verification
    status: Mapped[str] = mapped_column(_key_text(16), default="open")  # open | done | closed
    due_on: Mapped[date | None] = mapped_column(Date)  # run-out date for refill work
    priority_parts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    closed_at: Mapped[datetime | None]
    closed_reason: Mapped[str | None] = mapped_column(String(64))
    # The call whose request this task's closing fill answered (a refill after a reminder).
    success_attempt_id: Mapped[int | None] = mapped_column(ForeignKey("attempts.id"))
    score: Mapped[float] = mapped_column(Float, default=0.0)
    __table_args__ = (
        UniqueConstraint("campaign_id", "patient_id", "subject", name="uq_tasks_campaign_subject"),
        Index("ix_tasks_patient_status", "patient_id", "status"),
    )


# The two halves of the open queue entries (migration 0008); queues.claims.claiming moves rows between
# them: a claim, a call's outcome or a pass-over takes a row out, the wake step puts it back once
# `available_at` has passed.
CLAIMABLE = "status = 'open' AND claimed_at IS NULL AND blocked_reason IS NULL"
WAITING_TO_WAKE = "status = 'open' AND (claimed_at IS NOT NULL OR blocked_reason IS NOT NULL)"
# The monitor's waiting index (migration 0022): open rows nobody holds. A claim takes its row out
# (one index entry deleted) instead of moving it to the lease's expiry, and a heartbeat leaves it
# alone; the few held rows (one per agent) are read through ix_queue_entries_holder.
NOT_HELD = "status = 'open' AND holder_id IS NULL"
# ix_queue_entries_holder keeps the held rows only (0022): nothing looks a row up by a NULL holder,
# so a claim adds one entry instead of also deleting the row's NULL one, and the held rows can be
# read as the whole index (SQLite cannot range an index on `IS NOT NULL` without STAT4).
HELD = "holder_id IS NOT NULL"


class QueueEntry(Base):
    """The patient-level claim: one row per patient with open work, carrying the lease.

    A row is claimable when it is open and `available_at` has passed; a lease sets
    `available_at` to its expiry, so a console killed mid-call gives the patient back by itself.
    """

    __tablename__ = "queue_entries"
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patients.id", ondelete="CASCADE"), primary_key=True
    )
    pharmacy_id: Mapped[int] = mapped_column(ForeignKey("pharmacies.id"))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | done
    # Lower sorts first. In the foundation: days since epoch of the earliest run-out date.
    sort_key: Mapped[float] = mapped_column(Float)
    available_at: Mapped[datetime]
    holder_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    lease_token: Mapped[str | None] = mapped_column(String(36))
    claimed_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    # A "mine" callback keeps the patient for its owner until this time, then anyone may call.
    reserved_for_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reserved_until: Mapped[datetime | None]
    # Why the last claim attempt passed this patient over (calling_window, daily_cap, …).
    blocked_reason: Mapped[str | None] = mapped_column(String(48))
    # The last full compliance check found the patient callable from `admitted_at` until
    # `admitted_until`, under the site limits named by `admitted_key` (queues.claims.admission);
    # triggers clear it when its facts change.
    admitted_at: Mapped[datetime | None]
    admitted_until: Mapped[datetime | None]
    admitted_key: Mapped[str | None] = mapped_column(String(16))
    __table_args__ = (
        # What a claim may take: open, not claimed since it was last woken, not passed over.
        # Held, just-called and passed-over rows wait in ix_queue_entries_wake instead, so the
        # head of the queue never walks past them (queues.claims.claiming).
        Index(
            "ix_queue_entries_claimable",
            "sort_key",
            "patient_id",
            postgresql_where=text(CLAIMABLE),
            sqlite_where=text(CLAIMABLE),
        ),
        Index(
            "ix_queue_entries_wake",
            "available_at",
            postgresql_where=text(WAITING_TO_WAKE),
            sqlite_where=text(WAITING_TO_WAKE),
        ),
        Index(
            "ix_queue_entries_holder",
            "holder_id",
            postgresql_where=text(HELD),
            sqlite_where=text(HELD),
        ),
        # The monitor's patients waiting (not callable now, nobody holding them) as an index
        # range scan; held ones come from ix_queue_entries_holder (queues.floor.monitor).
        Index(
            "ix_queue_entries_waiting",
            "available_at",
            "pharmacy_id",
            postgresql_include=["blocked_reason"],
            postgresql_where=text(NOT_HELD),
            sqlite_where=text(NOT_HELD),
        ),
    )


class DispositionCode(Base):
    """A logged outcome and what it does to the patient's work."""

    __tablename__ = "disposition_codes"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    # close | retry | callback | suppress_number | suppress_patient | line_failed (migration 0012)
    effect: Mapped[str] = mapped_column(String(24))
    reached: Mapped[bool] = mapped_column(Boolean, default=False)
    requires_callback: Mapped[bool] = mapped_column(Boolean, default=False)
    retry_after_minutes: Mapped[int | None] = mapped_column(Integer)
    sort_order: Mapped[int] = mapped_column(Integer, default=0)


class Attempt(Base):
    """One dial and its outcome. `uid` is made by the console so a retried save is stored once."""

    __tablename__ = "attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    uid: Mapped[str] = mapped_column(String(36), unique=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    phone_number: Mapped[str | None] = mapped_column(String(20))
    dial_mode: Mapped[str] = mapped_column(String(8), default="manual")  # manual | sip
    call_result: Mapped[str | None] = mapped_column(String(24))  # connected | no_answer | busy …
    sip_status: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime]
    connected_at: Mapped[datetime | None]
    ended_at: Mapped[datetime]
    disposition: Mapped[str] = mapped_column(ForeignKey("disposition_codes.code"))
    notes: Mapped[str] = mapped_column(Text, default="")
    script_id: Mapped[str | None] = mapped_column(String(64))
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    task_ids: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    recorded_at: Mapped[datetime | None]  # when the wrap-up was saved: wrap-up time = this − end
    # Saved after the claim was gone (it ran out, or a supervisor released the patient): still the
    # call it was (caps, reports), but it left the queue entry to whoever holds it now.
    late: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    __table_args__ = (Index("ix_attempts_started_at", "started_at"),)  # today's calls, by hour


class Callback(Base):
    __tablename__ = "callbacks"
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"))
    due_at: Mapped[datetime]
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # None: anyone
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | cancelled
    __table_args__ = (
        Index(
            "ix_callbacks_pending_due",
            "due_at",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )


class PauseCode(Base):
    __tablename__ = "pause_codes"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    label: Mapped[str] = mapped_column(String(100))
    paid: Mapped[bool] = mapped_column(Boolean, default=True)


class AgentState(Base):
    """Where each agent is right now, for the supervisor's floor view."""

    __tablename__ = "agent_states"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    # offline | ready | previewing | dialing | on_call | wrap_up | paused
    state: Mapped[str] = mapped_column(String(16))
    pause_code: Mapped[str | None] = mapped_column(ForeignKey("pause_codes.code"))
    since: Mapped[datetime]
    # Set by a supervisor's "log out"; the agent's console signs out at its next check.
    logout_requested_at: Mapped[datetime | None]
    # The console's last presence beat (queues.floor.agents.present): silent a lease, offline.
    last_seen_at: Mapped[datetime | None]


class AuditEvent(Base):
    """Append-only (database triggers refuse UPDATE and DELETE): who did what to which patient.

    The ids carry no foreign keys (migration 0010): an audit row outlives, and never locks, the
    user and patient it names."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    user_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[int | None]
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # The hash chains (migration 0015, queues/store/chain.py): set by the database's seal
    # trigger as the row is inserted, never by the writer.
    chain: Mapped[int | None] = mapped_column(SmallInteger)
    seq: Mapped[int | None] = mapped_column(BigInteger)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
    __table_args__ = (
        Index("ix_audit_events_patient_at", "patient_id", "at"),
        Index("uq_audit_events_chain_seq", "chain", "seq", unique=True),
    )


class SignInSource(Base):
    """Failed sign-ins in a row from one place (a console's host, the CLI, a browser's address):
    each one past the third waits longer before the next is checked (queues.auth)."""

    __tablename__ = "sign_in_sources"
    source: Mapped[str] = mapped_column(String(128), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer)
    last_failed_at: Mapped[datetime]


class ConsoleTicket(Base):
    """A one-time ticket that opens a served console already signed in (migration 0017): only
    its SHA-256 is kept, with the user, the browser's address and a short expiry; the console
    deletes the row as it signs in (queues.console_tickets)."""

    __tablename__ = "console_tickets"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime]


class AuditChain(Base):
    """An audit chain's head (one row per chain, id = the chain: 1..32 on PostgreSQL, 1 on
    SQLite): the last sealed row's place and hash, and where the kept chain starts (`base_*`:
    after a purge past the retention period, the last purged row)."""

    __tablename__ = "audit_chain"
    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    base_seq: Mapped[int] = mapped_column(BigInteger)
    base_hash: Mapped[str] = mapped_column(String(64))


class DatabaseIdentity(Base):
    """This database's own id (migration 0021): one row, a uuid4 made when the table was. The
    console keeps its local wrap-up drafts under it (console/drafts.py), so a draft is reopened
    and saved only on the database it was typed against; a restored backup keeps it."""

    __tablename__ = "database_identity"
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    database_id: Mapped[str] = mapped_column(String(36))
    created_at: Mapped[datetime]
    __table_args__ = (CheckConstraint("id = 1", name="one_row"),)


class DemoSetting(Base):
    """Key/values that only `outreach demo` writes (for instance the practice clock)."""

    __tablename__ = "demo_settings"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))


# Outbox rows still to send (pending or retrying; queues.outbox.states), as the partial index of
# migration 0020 and the deliverer's claim both write it.
UNDELIVERED_ACTIONS = "status IN ('pending', 'retrying')"


class FollowUpAction(Base):
    """What a call produced for the pharmacy (refill request, pharmacist escalation, med-sync
    enrollment, vaccine interest, …): an outbox row, delivered over HTTP with its idempotency key."""

    __tablename__ = "follow_up_actions"
    id: Mapped[int] = mapped_column(primary_key=True)
    # One key per (attempt, action): recording the same attempt twice cannot double an action.
    idempotency_key: Mapped[str] = mapped_column(String(80), unique=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("attempts.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    pharmacy_id: Mapped[int] = mapped_column(ForeignKey("pharmacies.id"))
    # refill_request | pharmacist_escalation | med_sync_enrollment | vaccine_interest |
    # callback | do_not_call | wrong_number | prescriber_followup
    kind: Mapped[str] = mapped_column(String(32))
    prescription_id: Mapped[int | None] = mapped_column(ForeignKey("prescriptions.id"))
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    # pending (never tried) | retrying (tried; next_attempt_at says when again) | delivered |
    # dead (gave up: a 4xx, or max tries) | discarded (a supervisor's choice). queues.outbox.
    status: Mapped[str] = mapped_column(String(16), default="pending")
    tries: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None]
    # A deliverer's claim: no other deliverer sends the row until it ends (migration 0014).
    claimed_until: Mapped[datetime | None]
    claim_token: Mapped[str | None] = mapped_column(String(32))
    delivered_at: Mapped[datetime | None]
    # Why the last try failed, in our words (status, error type): never a response body.
    last_error: Mapped[str | None] = mapped_column(String(300))
    __table_args__ = (
        Index("ix_follow_up_actions_pharmacy_created", "pharmacy_id", "created_at"),
        Index("ix_follow_up_actions_status_next", "status", "next_attempt_at"),
        # The deliverer's claim walks what is left to send in id order (migration 0020).
        Index(
            "ix_follow_up_actions_undelivered",
            "id",
            postgresql_where=text(UNDELIVERED_ACTIONS),
            sqlite_where=text(UNDELIVERED_ACTIONS),
        ),
    )
