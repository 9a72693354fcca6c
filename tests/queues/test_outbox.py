"""The outbox's delivery against a real HTTP receiver on 127.0.0.1, on SQLite and PostgreSQL:
every action arrives exactly once in effect through 500s, 408, 429 with Retry-After, timeouts and
dropped connections; refusals are dead at once; two deliverers never send one action at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from queues.outbox import claims
from queues.outbox.delivery import Deliverer, endpoint_problem
from queues.outbox.settings import OutboxSettings
from queues.store.db import reading, transaction
from queues.store.models import FollowUpAction, Pharmacy
from tests.outbox_receiver import CREATED, ECHOED, KEY, Receiver, running_receiver, seed_actions

# Short timeouts: a "hang" costs 0.3 s of the receiver's silence, nothing else waits on a clock.
FAST = OutboxSettings(
    connect_timeout_seconds=2.0, timeout_seconds=0.3, max_tries=5, backoff_cap_seconds=30.0
)


@dataclass
class MovedClock:
    """The deliverer's clock, moved by the test: retries fall due without waiting for them."""

    at: datetime = CREATED

    def __call__(self) -> datetime:
        return self.at


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with running_receiver() as r:
        yield r


def deliverer(
    sessions: sessionmaker[Session], clock: MovedClock, settings: OutboxSettings = FAST
) -> Deliverer:
    return Deliverer(sessions, settings, KEY.encode(), now=clock)


def rows(sessions: sessionmaker[Session]) -> dict[str, FollowUpAction]:
    with reading(sessions) as s:
        return {a.idempotency_key: a for a in s.scalars(select(FollowUpAction))}


def advance_to_next_retry(sessions: sessionmaker[Session], clock: MovedClock) -> None:
    due = [a.next_attempt_at for a in rows(sessions).values() if a.next_attempt_at]
    clock.at = max([clock.at, *due]) + timedelta(milliseconds=1)


def test_every_action_arrives_once_in_effect_through_errors_timeouts_and_drops(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 8)
    receiver.plan = {
        keys[0]: ["500", "500"],
        keys[1]: ["429:7"],
        keys[2]: ["hang"],
        keys[3]: ["drop"],
        keys[4]: ["408"],
        keys[5]: ["503", "drop", "hang"],
    }
    clock = MovedClock()
    d = deliverer(sessions, clock)
    try:
        first = d.deliver_due()
        assert (first.delivered, first.retrying, first.dead) == (2, 6, 0)
        after = rows(sessions)
        assert after[keys[1]].next_attempt_at == clock.at + timedelta(seconds=7)  # Retry-After
        assert after[keys[1]].last_error == "HTTP 429 Too Many Requests"
        wait = (after[keys[0]].next_attempt_at - clock.at).total_seconds()  # type: ignore[operator]
        assert 1.0 <= wait <= 1.5  # the first retry after about a second
        assert after[keys[2]].last_error == "timed out (ReadTimeout)"
        assert after[keys[3]].last_error == "connection failed (RemoteProtocolError)"
        for _ in range(4):
            advance_to_next_retry(sessions, clock)
            d.deliver_due()
    finally:
        d.close()
    final = rows(sessions)
    assert {a.status for a in final.values()} == {"delivered"}
    assert final[keys[5]].tries == 4 and final[keys[6]].tries == 1
    assert receiver.delivered_once == set(keys)
    assert receiver.acted == dict.fromkeys(keys, 1)  # each acted on once
    assert receiver.bad_signatures == []


def test_a_repeat_the_receiver_knows_is_delivered(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 2)
    # Sent before by a deliverer that died before recording it: the receiver says 409.
    receiver.bodies[keys[1]] = {}
    d = deliverer(sessions, MovedClock())
    try:
        tally = d.deliver_due()
    finally:
        d.close()
    assert tally.delivered == 2
    assert receiver.requests[keys[1]] == 1 and receiver.acted[keys[1]] == 0
    assert rows(sessions)[keys[1]].status == "delivered"


def test_a_refusal_is_dead_at_once_with_its_status_never_the_receivers_words(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 2)
    receiver.plan = {keys[0]: ["422"], keys[1]: ["500"] * 10}
    clock = MovedClock()
    d = deliverer(sessions, clock, OutboxSettings(timeout_seconds=2.0, max_tries=3))
    try:
        for _ in range(4):
            d.deliver_due()
            advance_to_next_retry(sessions, clock)
    finally:
        d.close()
    refused, exhausted = rows(sessions)[keys[0]], rows(sessions)[keys[1]]
    assert (refused.status, refused.tries) == ("dead", 1)
    assert refused.last_error == "HTTP 422 Unprocessable Entity: refused by the pharmacy"
    assert (exhausted.status, exhausted.tries) == ("dead", 3)
    assert exhausted.last_error == "gave up after 3 tries: HTTP 500 Internal Server Error"
    assert receiver.requests[keys[1]] == 3
    for row in (refused, exhausted):
        assert "Alvarez" not in (row.last_error or "") and ECHOED not in (row.last_error or "")


def test_backoff_starts_near_a_second_doubles_and_stops_at_the_cap(
    sessions: sessionmaker[Session],
) -> None:
    d = Deliverer(sessions, OutboxSettings(backoff_cap_seconds=60.0), b"k")
    try:
        for tries, low in ((1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)):
            assert low <= d.backoff(tries) <= low + 0.5
        assert d.backoff(7) == d.backoff(40) == 60.0
    finally:
        d.close()


def test_the_body_is_the_minimum_necessary(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 2)
    d = deliverer(sessions, MovedClock())
    try:
        d.deliver_due()
    finally:
        d.close()
    with_rx, without = receiver.bodies[keys[0]], receiver.bodies[keys[1]]
    assert with_rx == {
        "kind": "refill_request",
        "idempotency_key": keys[0],
        "pharmacy": "TX1",
        "patient_mrn": "TX1-M0000",
        "prescription": {"rxnorm": "314076", "name": "Lisinopril 10 mg tablet"},
        "detail": {"flow": "refill_reminder", "step": "ask"},
        "created_at": "2026-12-02T16:00:00Z",
    }
    assert "prescription" not in without and without["kind"] == "pharmacist_escalation"


def test_two_deliverers_never_send_the_same_action(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 40)
    clock = MovedClock()
    start = threading.Barrier(2)
    delivered: list[int] = []

    def one() -> None:
        d = deliverer(sessions, clock)
        try:
            start.wait()
            delivered.append(d.deliver_due().delivered)
        finally:
            d.close()

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(delivered) == 40
    assert set(receiver.requests) == set(keys)
    assert max(receiver.requests.values()) == 1  # no action was sent twice, at once or after
    assert receiver.overlaps == []


def test_a_claim_left_by_a_killed_deliverer_runs_out_and_the_action_is_sent(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 2)
    clock = MovedClock()
    with transaction(sessions) as s:  # a deliverer claims the first action, then is killed
        pharmacy_id = s.scalars(select(Pharmacy.id)).one()
        taken = claims.claim_next(s, [pharmacy_id], clock.at, clock.at, FAST.claim_seconds)
    assert taken is not None and taken.key == keys[0]
    d = deliverer(sessions, clock)
    try:
        assert d.deliver_due().delivered == 1  # the other one only: the claim still holds
        assert d.seconds_to_next() == pytest.approx(FAST.claim_seconds)
        clock.at += timedelta(seconds=FAST.claim_seconds)
        assert d.deliver_due().delivered == 1
    finally:
        d.close()
    assert rows(sessions)[keys[0]].tries == 2  # the killed try counts
    assert receiver.delivered_once == set(keys)


def test_an_endpoint_that_is_not_https_is_refused_in_words_and_its_actions_wait(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    seed_actions(sessions, "http://pharmacy.example/outreach", 1, code="TX2")
    seed_actions(sessions, None, 1, code="TX3")  # no endpoint yet: waits, no complaint
    d = deliverer(sessions, MovedClock())
    try:
        tally = d.deliver_due()
    finally:
        d.close()
    assert tally.problems == {
        "TX2": "TX2's endpoint http://pharmacy.example/outreach is plain HTTP: actions carry "
        "patient identifiers and go over HTTPS only (plain HTTP is allowed to 127.0.0.1 alone, "
        "for tests and development); its actions wait"
    }
    assert {(a.status, a.tries) for a in rows(sessions).values()} == {("pending", 0)}
    assert endpoint_problem("https://pharmacy.example/outreach") is None
    assert endpoint_problem("http://127.0.0.1:8080/x") is None
    assert endpoint_problem("ftp://pharmacy.example/") == "is not an https:// URL"


def test_a_supervisor_change_while_sending_is_not_overwritten(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    keys = seed_actions(sessions, receiver.url, 1)
    clock = MovedClock()
    with transaction(sessions) as s:
        pharmacy_id = s.scalars(select(Pharmacy.id)).one()
        taken = claims.claim_next(s, [pharmacy_id], clock.at, clock.at, 60)
    assert taken is not None
    with transaction(sessions) as s:
        s.execute(update(FollowUpAction).values(status="discarded"))
    with transaction(sessions) as s:
        assert not claims.mark_delivered(s, taken, clock.at)
    assert rows(sessions)[keys[0]].status == "discarded"


def test_a_stopped_deliverer_gives_back_the_batch_it_did_not_try(
    engine: Engine, sessions: sessionmaker[Session], receiver: Receiver
) -> None:
    # Batches of 1, 2, then 4 (keys 3-6): the pharmacy holds the fifth's answer while the
    # deliverer is told to stop; the fifth is recorded, the sixth and seventh go back untried.
    keys = seed_actions(sessions, receiver.url, 10)
    receiver.plan = {keys[4]: ["hold"]}
    stop = threading.Event()
    d = deliverer(sessions, MovedClock())
    done: list[int] = []
    sender = threading.Thread(target=lambda: done.append(d.deliver_due(stop).delivered))
    try:
        sender.start()
        assert receiver.holding.wait(60), "the deliverer never reached the fifth action"
        stop.set()
        receiver.release.set()
        sender.join()
        after = rows(sessions)
        assert done == [5]
        assert {after[k].status for k in keys[:5]} == {"delivered"}
        assert {
            (a.status, a.tries, a.claimed_until, a.claim_token)
            for k, a in after.items()
            if k in keys[5:]
        } == {("pending", 0, None, None)}
        assert d.deliver_due().delivered == 5  # the next pass sends them, at once
    finally:
        d.close()
    assert receiver.requests == dict.fromkeys(keys, 1)


def test_a_row_its_deliverer_died_holding_is_claimed_alone(
    engine: Engine, sessions: sessionmaker[Session]
) -> None:
    keys = seed_actions(sessions, "http://127.0.0.1:9/unused", 5)
    at = MovedClock().at
    with transaction(sessions) as s:  # a deliverer claims two, then is killed
        pharmacy_id = s.scalars(select(Pharmacy.id)).one()
        held = claims.claim_batch(s, [pharmacy_id], at, at, 60, 2)
    assert [c.key for c in held] == keys[:2]
    at += timedelta(seconds=60)
    taken: list[list[tuple[str, int]]] = []
    for _ in range(3):
        with transaction(sessions) as s:
            batch = claims.claim_batch(s, [pharmacy_id], at, at, 60, 50)
        taken.append([(c.key, c.tries) for c in batch])
    # Each row the dead deliverer held comes back alone (a row that kills its deliverer counts
    # tries against itself only); the rest come together.
    assert taken == [[(keys[0], 2)], [(keys[1], 2)], [(k, 1) for k in keys[2:]]]


def test_the_claim_reads_only_what_is_left_to_send_oldest_first(engine: Engine) -> None:
    at = MovedClock().at
    pick = claims.pick_statement(engine.dialect.name, [1, 2], at, at, 50)
    compiled = pick.compile(engine, compile_kwargs={"render_postcompile": True})
    with engine.connect() as c:
        if engine.dialect.name == "sqlite":
            values = tuple(compiled.params[name] for name in compiled.positiontup or ())
            found = c.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}", values)
            plan = " ".join(str(row[3]) for row in found)
            assert plan == "SCAN follow_up_actions USING INDEX ix_follow_up_actions_undelivered"
        else:  # an empty table, which the planner would read whole: is the index usable in order
            c.exec_driver_sql("SET enable_seqscan = off")
            c.exec_driver_sql("SET enable_bitmapscan = off")
            found = c.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
            plan = " ".join(str(row[0]) for row in found)
            assert "Index Scan using ix_follow_up_actions_undelivered" in plan, plan
            assert "Sort" not in plan, plan
