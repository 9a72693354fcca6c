"""Sending actions: one signed POST per action, its answer judged, passes over what is due.

Each action goes to its pharmacy's `endpoint_url` over HTTPS (plain HTTP only to a loopback
address, for tests and development) with `Idempotency-Key` and `X-Outreach-Signature`. A 2xx is
delivered; a 409 is delivered too (the receiver has that key already); a 408, a 5xx, a timeout or
a dropped connection is tried again after an exponential backoff with jitter (tenacity's
`wait_exponential_jitter`: about a second first, doubling, capped by the config); a 429 waits as
long as its Retry-After says; any other 4xx (and a redirect) is dead at once, its status the reason.
After `max_tries` an action is dead. The retry schedule lives in the row, not in this process:
a deliverer that stops or dies loses nothing.

A pass claims due actions in batches, one transaction each, POSTs them one after another, oldest
first, on one kept-alive connection per endpoint (one `httpx.Client` for the deliverer's life),
and records their results in one more transaction: two commits per batch, not per action. A
pass's first batch is one action and each next one twice the last while every POST is delivered,
up to `BATCH`; any other answer brings it back to one. So a few actions, or an endpoint that
fails, cost what they did one by one, and a deliverer killed mid-batch has recorded all but its
last batch (what it sent of that one is sent again after the claim runs out: a repeat the
receiver knows by its key). A batch stops sending when asked to stop or when half its claim has
gone by (so no claim runs out while its row is still to be sent); rows not tried go back untried.

Blocking (httpx's client): the CLI runs it in its own process, the console in a thread.
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx
import tenacity
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.outbox import claims
from queues.outbox.claims import Claimed
from queues.outbox.payload import SIGNATURE_HEADER, signature
from queues.outbox.settings import OutboxSettings
from queues.store.db import reading, transaction
from queues.store.models import Pharmacy
from queues.timeutil import utcnow

log = logging.getLogger("queues.outbox")

RETRY_AFTER_LIMIT = 24 * 3600.0  # a receiver's Retry-After beyond a day is taken as a day
# Actions claimed (and recorded) per transaction. A commit costs ~7-8 ms on a loaded disk and a
# loopback POST ~1 ms, so 50 makes the commits a small part of an action; more would only hold
# more rows away from a second deliverer, and a killed deliverer's rows come back after its claim.
BATCH = 50


@dataclass(frozen=True)
class Verdict:
    """What became of one try: delivered, try again (after `retry_after` seconds when the receiver
    said), or dead. `reason` is ours (a status, an error's type), never the receiver's text."""

    result: str  # delivered | retry | dead
    reason: str = ""
    retry_after: float | None = None


def endpoint_problem(url: str) -> str | None:
    """Why actions cannot go to `url`, or None when they can."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return "is not a URL"
    if parts.scheme == "https" and host:
        return None
    if parts.scheme == "http" and host:
        try:
            if ipaddress.ip_address(host).is_loopback:
                return None  # tests and development on this machine
        except ValueError:
            pass
        return (
            "is plain HTTP: actions carry patient identifiers and go over HTTPS only "
            "(plain HTTP is allowed to 127.0.0.1 alone, for tests and development)"
        )
    return "is not an https:// URL"


def judge(response: httpx.Response, now: datetime) -> Verdict:
    """The verdict on a receiver's answer (its body is never read)."""
    code = response.status_code
    if 200 <= code < 300:
        return Verdict("delivered")
    if code == 409:
        return Verdict("delivered", "409: the pharmacy had it already")
    name = _status_name(code)
    if code == 429:
        return Verdict("retry", name, _retry_after(response.headers.get("Retry-After"), now))
    if code == 408 or code >= 500:
        return Verdict("retry", name)
    if 300 <= code < 400:
        return Verdict("dead", f"{name}: the endpoint redirects; set it to the final https URL")
    return Verdict("dead", f"{name}: refused by the pharmacy")


def _status_name(code: int) -> str:
    try:
        return f"HTTP {code} {HTTPStatus(code).phrase}"
    except ValueError:
        return f"HTTP {code}"


def _retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP-date, RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - now).total_seconds()
    return min(max(seconds, 0.0), RETRY_AFTER_LIMIT)


def send(client: httpx.Client, url: str, claimed: Claimed, key: bytes, now: datetime) -> Verdict:
    """POST one action; every failure of the network is a verdict, never an exception."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": claimed.key,
        SIGNATURE_HEADER: signature(key, claimed.body),
    }
    try:
        response = client.post(url, content=claimed.body, headers=headers)
    except httpx.TimeoutException as exc:
        return Verdict("retry", f"timed out ({type(exc).__name__})")
    except httpx.TransportError as exc:  # refused, reset, dropped mid-answer, TLS
        return Verdict("retry", f"connection failed ({type(exc).__name__})")
    return judge(response, now)


@dataclass
class Tally:
    """What one or more passes did."""

    delivered: int = 0
    retrying: int = 0
    dead: int = 0
    problems: dict[str, str] = field(default_factory=dict)  # pharmacy code -> why not sent

    def add(self, other: Tally) -> None:
        self.delivered += other.delivered
        self.retrying += other.retrying
        self.dead += other.dead
        self.problems.update(other.problems)


class Deliverer:
    """Delivers what is due, pass by pass; `run` keeps going until told to stop."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        settings: OutboxSettings,
        key: bytes,
        *,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessions = sessions
        self.settings = settings
        self._key = key
        self._now = now
        self._batch = 1  # how many the next claim takes (see _record)
        self._client = httpx.Client(
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            follow_redirects=False,
            headers={"User-Agent": "outreach-console-outbox/1"},
        )
        self._wait = tenacity.wait_exponential_jitter(
            multiplier=settings.first_retry_seconds,
            max=settings.backoff_cap_seconds,
            jitter=settings.first_retry_seconds / 2,
        )

    def close(self) -> None:
        self._client.close()

    def backoff(self, tries: int) -> float:
        """Seconds before the next try after `tries` failed ones (tenacity's exponential wait
        with jitter: ~1 s after the first, then doubling, never past the cap)."""
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = tries
        return float(self._wait(state))

    def endpoints(self) -> tuple[dict[int, str], dict[str, str]]:
        """Where each pharmacy's actions go, and why some pharmacies' cannot go anywhere now
        (a pharmacy with no endpoint is not a problem: its actions wait for one)."""
        with reading(self._sessions) as session:
            rows = session.execute(
                select(Pharmacy.id, Pharmacy.code, Pharmacy.endpoint_url).where(
                    Pharmacy.endpoint_url.is_not(None), Pharmacy.endpoint_url != ""
                )
            ).all()
        usable: dict[int, str] = {}
        problems: dict[str, str] = {}
        for pharmacy_id, code, url in rows:
            if not url:
                continue
            why = endpoint_problem(url)
            if why is None:
                usable[pharmacy_id] = url
            else:
                problems[code] = f"{code}'s endpoint {_shown(url)} {why}; its actions wait"
        return usable, problems

    def deliver_due(self, stop: threading.Event | None = None) -> Tally:
        """One pass: every action due now, each tried once (one retried in this pass waits for
        the next), a batch at a time. Stops between actions when `stop` is set."""
        usable, problems = self.endpoints()
        tally = Tally(problems=problems)
        ids = sorted(usable)
        started = self._now()
        self._batch = 1
        while stop is None or not stop.is_set():
            with transaction(self._sessions) as session:
                batch = claims.claim_batch(
                    session, ids, self._now(), started, self.settings.claim_seconds, self._batch
                )
            if not batch:
                break
            self._send_batch(batch, usable, tally, stop)
        return tally

    def _send_batch(
        self,
        batch: list[Claimed],
        usable: dict[int, str],
        tally: Tally,
        stop: threading.Event | None,
    ) -> None:
        """POST each claimed action in order, then record every result in one transaction (and
        give back, untried, those not sent: stopping, or half the claim gone)."""
        claimed_at = time.monotonic()
        sending_for = self.settings.claim_seconds / 2
        results: list[tuple[Claimed, Verdict]] = []
        untried: list[Claimed] = []
        for claimed in batch:
            late = time.monotonic() - claimed_at > sending_for
            if untried or late or (stop is not None and stop.is_set()):
                untried.append(claimed)
                continue
            verdict = send(
                self._client, usable[claimed.pharmacy_id], claimed, self._key, self._now()
            )
            results.append((claimed, verdict))
        self._record(results, untried, tally)

    def _record(
        self, results: list[tuple[Claimed, Verdict]], untried: list[Claimed], tally: Tally
    ) -> None:
        """A batch's results and its untried rows in one transaction: the delivered in one
        statement, each retry or death in its own (they differ in time and reason)."""
        now = self._now()
        kept: dict[int, bool] = {}
        with transaction(self._sessions) as session:
            delivered = [c for c, verdict in results if verdict.result == "delivered"]
            recorded = claims.mark_all_delivered(session, delivered, now)
            tally.delivered += len(recorded)
            kept.update((c.action_id, c.action_id in recorded) for c in delivered)
            for claimed, verdict in results:
                if verdict.result != "delivered":
                    kept[claimed.action_id] = self._record_one(
                        session, claimed, verdict, now, tally
                    )
            for claimed in untried:
                claims.release(session, claimed)
        for claimed, verdict in results:
            # Identifiers only: the action's id, never its patient or what it asks for.
            log.info(
                "outbox action %s try %s: %s%s%s",
                claimed.action_id,
                claimed.tries,
                verdict.result,
                f" ({verdict.reason})" if verdict.reason else "",
                ""
                if kept[claimed.action_id]
                else " — not recorded: the claim had run out or a supervisor changed it",
            )
        # The next batch: twice this one (up to BATCH) while the endpoint answers, one again
        # after a failure.
        if any(verdict.result != "delivered" for _, verdict in results) or untried:
            self._batch = 1
        else:
            self._batch = min(2 * self._batch, BATCH)

    def _record_one(
        self, session: Session, claimed: Claimed, verdict: Verdict, now: datetime, tally: Tally
    ) -> bool:
        if verdict.result == "delivered":
            kept = claims.mark_delivered(session, claimed, now)
            tally.delivered += kept
        elif verdict.result == "retry" and claimed.tries < self.settings.max_tries:
            wait = verdict.retry_after
            if wait is None:
                wait = self.backoff(claimed.tries)
            at = now + timedelta(seconds=wait)
            kept = claims.mark_retry(session, claimed, at, verdict.reason)
            tally.retrying += kept
        else:
            reason = verdict.reason
            if verdict.result == "retry":
                reason = f"gave up after {claimed.tries} tries: {reason}"
            kept = claims.mark_dead(session, claimed, reason)
            tally.dead += kept
        return kept

    def seconds_to_next(self) -> float | None:
        """Seconds until the next action can be claimed (0 when one is due), None when none is
        waiting for a usable endpoint."""
        usable, _ = self.endpoints()
        now = self._now()
        with reading(self._sessions) as session:
            at = claims.next_due(session, sorted(usable), now)
        if at is None:
            return None
        return max((at - now).total_seconds(), 0.0)

    def run(self, stop: threading.Event, on_pass: Callable[[Tally], None] | None = None) -> Tally:
        """Pass after pass until `stop` is set, waiting in between for the next action due (and
        at most `poll_seconds`, for new ones); returns what all passes did. Reads first: a claim
        (a write) is only tried when something is due."""
        total = Tally()
        poll = self.settings.poll_seconds
        while not stop.is_set():
            wait = self.seconds_to_next()
            if wait is None or wait > 0:
                stop.wait(poll if wait is None else min(max(wait, 0.01), poll))
                continue
            done = self.deliver_due(stop)
            total.add(done)
            if on_pass is not None:
                on_pass(done)
        return total

    def counts(self) -> dict[str, int]:
        """The outbox now: pending, retrying and dead actions, all pharmacies."""
        with reading(self._sessions) as session:
            return claims.counts(session)


def _shown(url: str) -> str:
    """A URL as it may be printed: scheme, host and path, never credentials or a query."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"
    except ValueError:
        return "(not a URL)"
