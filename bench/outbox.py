"""Outbox delivery: N follow-up actions delivered to a real HTTP receiver on 127.0.0.1, against a
floor of the same N signed POSTs sent by a bare httpx loop with no database, in the same run.

    .venv/bin/python bench/outbox.py [--actions 10000] [--backend sqlite|postgres] [--json]

The receiver is the tests' (tests/outbox_receiver.py): a stdlib HTTP/1.1 server on a thread that
checks every signature and applies each idempotency key once. Each phase gets a fresh receiver.

- floor: for each action, its body (built beforehand, exactly as the outbox builds it), the HMAC
  signature and one `httpx.Client.post` on a kept-alive connection, with the deliverer's headers.
- deliver: `queues.outbox.delivery.Deliverer.deliver_due` as `outreach outbox deliver` runs it,
  one deliverer: batches of up to `BATCH` actions, each a claim (one short transaction that leases
  the rows and builds their bodies), the signed POSTs one after another, and one transaction
  recording what became of them (batches of 1, 2, 4, … while every POST is delivered).

Latency per action: the floor's, one POST; the deliverer's, from the previous action's end to this
one's — an action ends with its POST, a batch's last with the batch's record committed — so a
batch's first action carries its claim and its last the record (the gaps add up to the run).
The claim and the record are timed per batch, the POST per action. Both must end with
every action received once with a good signature (`received_once`, `bad_signatures`).
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _common import emit_json, fmt, log, percentile, print_table, ratio, scratch_database
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from queues.outbox.claims import Claimed
from queues.outbox.delivery import BATCH, Deliverer, Tally, Verdict
from queues.outbox.payload import SIGNATURE_HEADER, action_body, signature
from queues.outbox.settings import OutboxSettings
from queues.store.db import make_engine, session_factory, upgrade
from queues.store.models import FollowUpAction, Patient, Pharmacy, Prescription
from tests.outbox_receiver import KEY, Receiver, running_receiver, seed_actions

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)


@contextlib.contextmanager
def fast_receiver() -> Iterator[Receiver]:
    """The tests' receiver, with TCP_NODELAY on its connections. It answers in two writes
    (headers, then body); with Nagle's algorithm the body waits for the client's delayed ACK,
    ~40 ms a request on Linux loopback, a receiver's quirk that drowned what is measured (both
    phases took 44 ms p50 with it). Set before the first connection: each one reads it."""
    with running_receiver() as found:
        found.server.RequestHandlerClass.disable_nagle_algorithm = True  # type: ignore[attr-defined]
        yield found


def bodies(sessions: sessionmaker[Session]) -> list[tuple[str, bytes]]:
    """(idempotency key, body) of every action, built as the outbox builds them."""
    with sessions() as s:
        rows = s.execute(
            select(
                FollowUpAction.idempotency_key,
                FollowUpAction.kind,
                FollowUpAction.detail,
                FollowUpAction.created_at,
                Pharmacy.code,
                Patient.mrn,
                Prescription.rxnorm,
                Prescription.drug_name,
            )
            .join(Pharmacy, Pharmacy.id == FollowUpAction.pharmacy_id)
            .join(Patient, Patient.id == FollowUpAction.patient_id)
            .outerjoin(Prescription, Prescription.id == FollowUpAction.prescription_id)
            .order_by(FollowUpAction.id)
        ).all()
    return [
        (
            r.idempotency_key,
            action_body(
                kind=r.kind,
                key=r.idempotency_key,
                pharmacy=r.code,
                mrn=r.mrn,
                rxnorm=r.rxnorm,
                drug_name=r.drug_name,
                detail=dict(r.detail or {}),
                created_at=r.created_at,
            ),
        )
        for r in rows
    ]


def floor(
    settings: OutboxSettings, work: list[tuple[str, bytes]]
) -> tuple[float, list[float], Receiver]:
    """The bare loop: sign and POST each body; seconds in all and each POST's."""
    key = KEY.encode()
    latencies: list[float] = []
    with (
        fast_receiver() as receiver,
        httpx.Client(
            timeout=httpx.Timeout(
                settings.timeout_seconds, connect=settings.connect_timeout_seconds
            ),
            follow_redirects=False,
            headers={"User-Agent": "outreach-console-outbox/1"},
        ) as client,
    ):
        started = time.perf_counter()
        for idempotency_key, body in work:
            t0 = time.perf_counter()
            response = client.post(
                receiver.url,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "Idempotency-Key": idempotency_key,
                    SIGNATURE_HEADER: signature(key, body),
                },
            )
            if response.status_code != 201:
                raise SystemExit(f"floor: the receiver answered {response.status_code}")
            latencies.append(time.perf_counter() - t0)
        seconds = time.perf_counter() - started
    return seconds, latencies, receiver


class TimedDeliverer(Deliverer):
    """The product's deliverer, timing its parts: each POST (its client's `post`, wrapped), each
    batch's record (`_record`) and each batch's claim (from the previous batch's record, or the
    pass's start, to its first POST: the claim transaction and what surrounds it). Nothing else
    is changed."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.started = 0.0
        # When each action was done: its POST's end; a batch's last, its record's commit.
        self.marks: list[float] = []
        self.posts: list[float] = []
        self.claims: list[float] = []  # per batch
        self.records: list[float] = []  # per batch
        self.batch_sizes: list[int] = []
        post = self._client.post

        def timed_post(*a: Any, **k: Any) -> httpx.Response:
            t0 = time.perf_counter()
            try:
                return post(*a, **k)
            finally:
                end = time.perf_counter()
                self.posts.append(end - t0)
                self.marks.append(end)

        self._client.post = timed_post  # type: ignore[method-assign]

    def _send_batch(
        self,
        batch: list[Claimed],
        usable: dict[int, str],
        tally: Tally,
        stop: threading.Event | None,
    ) -> None:
        self.claims.append(time.perf_counter() - (self.marks[-1] if self.marks else self.started))
        self.batch_sizes.append(len(batch))
        super()._send_batch(batch, usable, tally, stop)

    def _record(
        self, results: list[tuple[Claimed, Verdict]], untried: list[Claimed], tally: Tally
    ) -> None:
        t0 = time.perf_counter()
        super()._record(results, untried, tally)
        end = time.perf_counter()
        self.records.append(end - t0)
        if results:
            self.marks[-1] = end


@dataclass
class Delivered:
    seconds: float
    latencies: list[float]  # each action's, sorted
    parts: dict[str, list[float]]  # post: each action's; claim, record: each batch's; sorted
    claim_tenths: tuple[float, float]  # the claim's median over the first and the last tenth
    batch_sizes: list[int]
    receiver: Receiver
    delivered: int


def deliver(sessions: sessionmaker[Session], settings: OutboxSettings) -> Delivered:
    with fast_receiver() as receiver:
        with sessions.begin() as s:  # the seeded pharmacy's endpoint: this phase's receiver
            pharmacy = s.scalars(select(Pharmacy)).one()
            pharmacy.endpoint_url = receiver.url
        deliverer = TimedDeliverer(sessions, settings, KEY.encode(), now=lambda: NOW)
        try:
            started = deliverer.started = time.perf_counter()
            tally = deliverer.deliver_due()
            seconds = time.perf_counter() - started
        finally:
            deliverer.close()
    previous = [started, *deliverer.marks[:-1]]
    latencies = [end - begin for begin, end in zip(previous, deliverer.marks, strict=True)]
    claims = deliverer.claims
    parts = {"claim": claims, "post": deliverer.posts, "record": deliverer.records}
    tenth = max(1, len(claims) // 10)
    return Delivered(
        seconds,
        sorted(latencies),
        {k: sorted(v) for k, v in parts.items()},
        (percentile(sorted(claims[:tenth]), 50), percentile(sorted(claims[-tenth:]), 50)),
        deliverer.batch_sizes,
        receiver,
        tally.delivered,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actions", type=int, default=10_000, metavar="N")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--database", metavar="URL", help="PostgreSQL server (postgres backend)")
    parser.add_argument("--json", action="store_true", help="last line: one JSON object")
    args = parser.parse_args()
    if args.actions < 1:
        parser.error("--actions: give 1 or more")
    server = None
    if args.backend == "postgres":
        from _common import server_url

        server = server_url(args)
    settings = OutboxSettings()
    with scratch_database(args.backend, server) as url:
        engine = make_engine(url)
        try:
            upgrade(engine)
            sessions = session_factory(engine)
            log(f"seeding {args.actions:,} actions ({args.backend})")
            seed_actions(sessions, "http://127.0.0.1:9/unused", args.actions, code="BN1")
            work = bodies(sessions)
            log("floor: a bare httpx loop")
            floor_s, floor_lat, floor_rx = floor(settings, work)
            log("deliver: the outbox's deliverer")
            run = deliver(sessions, settings)
        finally:
            engine.dispose()
    n = args.actions
    floor_lat.sort()
    deliver_s, deliver_lat, deliver_rx, delivered = (
        run.seconds,
        run.latencies,
        run.receiver,
        run.delivered,
    )
    ms = 1000.0

    def figures(seconds: float, lat: list[float]) -> tuple[float, float, float, float]:
        return (n / seconds, percentile(lat, 50) * ms, percentile(lat, 99) * ms, lat[-1] * ms)

    f_rate, f_p50, f_p99, f_max = figures(floor_s, floor_lat)
    d_rate, d_p50, d_p99, d_max = figures(deliver_s, deliver_lat)
    checks = {
        "received_once": len(deliver_rx.delivered_once) == n
        and all(c == 1 for c in deliver_rx.requests.values())
        and len(floor_rx.delivered_once) == n,
        "bad_signatures": len(deliver_rx.bad_signatures) + len(floor_rx.bad_signatures),
    }
    print_table(
        f"Outbox delivery: {n:,} actions to a receiver on 127.0.0.1 ({args.backend}, one deliverer)",
        ["phase", "actions/s", "p50 ms", "p99 ms", "max ms", "seconds"],
        [
            ["floor (bare httpx loop)", fmt(f_rate, 0), fmt(f_p50, 2), fmt(f_p99, 2), fmt(f_max, 2), fmt(floor_s, 2)],
            ["outbox deliver", fmt(d_rate, 0), fmt(d_p50, 2), fmt(d_p99, 2), fmt(d_max, 2), fmt(deliver_s, 2)],
        ],
    )  # fmt: skip
    print_table(
        f"Where the time goes (ms): {len(run.batch_sizes):,} batches of up to {BATCH} "
        f"(mean {sum(run.batch_sizes) / max(1, len(run.batch_sizes)):.1f})",
        ["part", "p50", "p99", "mean"],
        [
            [
                {"claim": "claim a batch (lease + bodies, a transaction)",
                 "post": "signed POST (each action)",
                 "record": "record a batch delivered (a transaction)"}[name],
                fmt(percentile(values, 50) * ms, 2),
                fmt(percentile(values, 99) * ms, 2),
                fmt(sum(values) / len(values) * ms, 2),
            ]
            for name, values in run.parts.items()
        ],
    )  # fmt: skip
    first, last = (t * ms for t in run.claim_tenths)
    print(
        f"claim p50 over the first tenth of the batches {fmt(first, 2)} ms, the last tenth "
        f"{fmt(last, 2)} ms"
    )
    print(
        f"deliver vs floor: throughput {fmt(ratio(d_rate, f_rate), 3)}x, p50 "
        f"{fmt(ratio(d_p50, f_p50), 2)}x, p99 {fmt(ratio(d_p99, f_p99), 2)}x; delivered "
        f"{delivered:,}, each received once: {checks['received_once']}, bad signatures: "
        f"{checks['bad_signatures']}"
    )
    if args.json:
        emit_json(
            {
                "backend": args.backend,
                "actions": n,
                "actions_per_s": round(d_rate, 1),
                "p50_ms": round(d_p50, 3),
                "p99_ms": round(d_p99, 3),
                "max_ms": round(d_max, 3),
                "seconds": round(deliver_s, 3),
                "floor_actions_per_s": round(f_rate, 1),
                "floor_p50_ms": round(f_p50, 3),
                "floor_p99_ms": round(f_p99, 3),
                "floor_max_ms": round(f_max, 3),
                "floor_seconds": round(floor_s, 3),
                "ratio_vs_floor": ratio(d_rate, f_rate),
                "p50_ratio_vs_floor": ratio(d_p50, f_p50),
                "p99_ratio_vs_floor": ratio(d_p99, f_p99),
                "delivered": delivered,
                **{
                    f"{name}_{q}_ms": round(percentile(values, pct) * ms, 3)
                    for name, values in run.parts.items()
                    for q, pct in (("p50", 50), ("p99", 99))
                },
                "batch": BATCH,
                "batches": len(run.batch_sizes),
                "claim_first_tenth_p50_ms": round(first, 3),
                "claim_last_tenth_p50_ms": round(last, 3),
                "received_once": checks["received_once"],
                "bad_signatures": checks["bad_signatures"],
            }
        )
    ok = checks["received_once"] and not checks["bad_signatures"] and delivered == n
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
