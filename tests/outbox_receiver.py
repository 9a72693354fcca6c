"""A pharmacy's endpoint for outbox tests: a real HTTP server on 127.0.0.1 (stdlib, a thread).

It checks every signature, counts requests by idempotency key, and applies each key once (a
repeat gets 409, as a receiver that dedupes answers). A key's `plan` scripts its first answers:
"500", "408", "422", "429:SECONDS" (Retry-After), "hang" (no answer until the test ends),
"drop" (closes the connection without answering), "hold" (applies it, then waits for `release`:
the test kills the sender meanwhile). Also seeds a database with actions to deliver.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from queues.store.db import transaction
from queues.store.models import (
    Attempt,
    FollowUpAction,
    Patient,
    Pharmacy,
    Prescription,
    User,
)

KEY = "test-outbox-key-not-a-secret"
CREATED = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)
# What a receiver might echo back in an error body: it must never reach the database or a log.
ECHOED = "Pat Alvarez 1955-04-01 +12145551000"


class Receiver:
    def __init__(self) -> None:
        self.plan: dict[str, list[str]] = {}
        self.requests: Counter[str] = Counter()
        self.applied: Counter[str] = Counter()  # requests that reached the store step
        self.acted: Counter[str] = Counter()  # ...and were acted on (the first of each key)
        self.bodies: dict[str, dict[str, Any]] = {}
        self.bad_signatures: list[str] = []
        self.in_flight: Counter[str] = Counter()
        self.overlaps: list[str] = []  # keys sent twice at the same time
        self.release = threading.Event()  # ends "hang" and "hold"
        self.holding = threading.Event()  # a "hold" request is in
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                receiver.handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/outreach/actions"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length", "0")))
        key = h.headers.get("Idempotency-Key", "")
        expected = "sha256=" + hmac.new(KEY.encode(), body, hashlib.sha256).hexdigest()
        with self._lock:
            if not hmac.compare_digest(h.headers.get("X-Outreach-Signature", ""), expected):
                self.bad_signatures.append(key)
            self.requests[key] += 1
            self.in_flight[key] += 1
            if self.in_flight[key] > 1:
                self.overlaps.append(key)
            steps = self.plan.get(key, [])
            step = steps.pop(0) if steps else "store"
        try:
            self._answer(h, key, body, step)
        finally:
            with self._lock:
                self.in_flight[key] -= 1

    def _answer(self, h: BaseHTTPRequestHandler, key: str, body: bytes, step: str) -> None:
        if step == "hang":
            self.release.wait(60)
            h.close_connection = True
            return
        if step == "drop":
            h.close_connection = True
            h.connection.shutdown(socket.SHUT_RDWR)
            return
        if step == "hold":
            self._apply(key, body)
            self.holding.set()
            self.release.wait(60)
            step = "store"
        if step == "store":
            fresh = self._apply(key, body)
            self._reply(h, 201 if fresh else 409, b'{"ok": true}')
            return
        code, _, retry_after = step.partition(":")
        headers = {"Retry-After": retry_after} if retry_after else {}
        self._reply(h, int(code), json.dumps({"error": ECHOED}).encode(), headers)

    def _apply(self, key: str, body: bytes) -> bool:
        with self._lock:
            fresh = key not in self.bodies
            self.applied[key] += 1
            if fresh:
                self.acted[key] += 1
                self.bodies[key] = json.loads(body)
            return fresh

    @staticmethod
    def _reply(
        h: BaseHTTPRequestHandler, code: int, body: bytes, headers: dict[str, str] | None = None
    ) -> None:
        try:
            h.send_response(code)
            for name, value in (headers or {}).items():
                h.send_header(name, value)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
        except OSError:  # the sender is gone (killed): nothing to answer
            pass

    @property
    def delivered_once(self) -> set[str]:
        """Keys the receiver acted on: the first request applied it, any other got 409."""
        return set(self.bodies)


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    receiver._thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        receiver.server.shutdown()
        receiver.server.server_close()


def seed_actions(
    sessions: sessionmaker[Session], endpoint: str | None, n: int, code: str = "TX1"
) -> list[str]:
    """A pharmacy with `endpoint`, n patients with one call each and one follow-up action per
    call (every other one about a prescription); the actions' idempotency keys, in id order."""
    keys: list[str] = []
    with transaction(sessions) as s:
        pharmacy = Pharmacy(
            code=code,
            name=f"{code} Pharmacy",
            caller_id="+12145550100",
            callback_number="+12145550101",
            timezone="America/Chicago",
            state="TX",
            opens_at=time(8),
            closes_at=time(20),
            endpoint_url=endpoint,
        )
        agent = User(
            username=f"agent-{code.lower()}-{uuid.uuid4().hex[:6]}",
            display_name="Agent",
            role="agent",
            password_hash="x",
        )
        s.add_all([pharmacy, agent])
        s.flush()
        for i in range(n):
            patient = Patient(
                pharmacy_id=pharmacy.id,
                mrn=f"{code}-M{i:04d}",
                first_name="Pat",
                last_name=f"Alvarez{i}",
                birth_date=date(1955, 4, 1),
                language="en",
                zip_code="75201",
                state="TX",
            )
            s.add(patient)
            s.flush()
            rx = None
            if i % 2 == 0:
                rx = Prescription(
                    patient_id=patient.id,
                    drug_name="Lisinopril 10 mg tablet",
                    ingredient="lisinopril",
                    rxnorm="314076",
                )
                s.add(rx)
                s.flush()
            attempt = Attempt(
                uid=str(uuid.uuid4()),
                patient_id=patient.id,
                user_id=agent.id,
                started_at=CREATED,
                ended_at=CREATED,
                recorded_at=CREATED,
                disposition="completed",
            )
            s.add(attempt)
            s.flush()
            key = f"{attempt.uid}:0"
            s.add(
                FollowUpAction(
                    idempotency_key=key,
                    attempt_id=attempt.id,
                    patient_id=patient.id,
                    pharmacy_id=pharmacy.id,
                    kind="refill_request" if rx else "pharmacist_escalation",
                    prescription_id=rx.id if rx else None,
                    detail={"flow": "refill_reminder", "step": "ask"},
                    created_at=CREATED,
                )
            )
            keys.append(key)
    return keys
