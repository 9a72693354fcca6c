"""`outreach audit verify [--json]`, `outreach audit export --from --to` and `outreach audit purge
[--dry-run]`: the audit log's hash chains checked end to end, its rows for an auditor, and the rows
past the retention period removed (admins only, signed in)."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in
from queues.errors import OutreachError

ADMINS = "An admin's command, audited as them. " + SIGN_IN_HELP


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    audit = sub.add_parser("audit", help="the audit log: verify its chain, export it")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    verify = audit_sub.add_parser(
        "verify",
        parents=[common],
        help="check the audit log's hash chains; exit 1 naming the first row that was tampered with",
        description="Recompute every audit row's hash in chain order, chain by chain (PostgreSQL "
        "keeps 32 chains, a connection's rows in one of them; SQLite one). Names the first row "
        "that was edited, deleted, inserted out of order or added outside the chains, and exits "
        "1; exits 0 when every chain is intact. Prints each chain's head (seq and hash) and, with "
        "several, one digest of them all: keep them elsewhere to check later that nothing before "
        "them was rewritten. " + ADMINS,
    )
    verify.add_argument("--json", action="store_true", help="one JSON object on the last line")
    add_sign_in_arguments(verify)
    verify.set_defaults(func=cmd_verify)
    export = audit_sub.add_parser(
        "export",
        parents=[common],
        help="the audit rows between two times, as CSV or JSON lines",
        description="Write the audit rows with FROM <= at < TO (UTC unless the time says), in "
        "chain order, with their chain, place and hashes. The export itself is audited. " + ADMINS,
    )
    export.add_argument("--from", dest="start", required=True, metavar="TIME", help="ISO time")
    export.add_argument("--to", dest="end", required=True, metavar="TIME", help="ISO time")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--output", metavar="FILE", help="write here (0600) instead of stdout")
    add_sign_in_arguments(export)
    export.set_defaults(func=cmd_export)
    purge = audit_sub.add_parser(
        "purge",
        parents=[common],
        help="remove audit rows older than [audit].retention_years (at least 6); --dry-run counts",
        description="Remove the oldest audit rows, those older than [audit].retention_years "
        "(default 6, never less: 45 CFR 164.316(b)(2)), and move the chain's base past them so "
        "`audit verify` still passes. Only a run from the start of the chain goes: a younger "
        "row keeps every row after it. A chain that does not verify is never purged. The purge "
        "is itself a row of the chain. Export the rows first if they must be kept elsewhere. "
        + ADMINS,
    )
    purge.add_argument("--dry-run", action="store_true", help="say what would go; change nothing")
    purge.add_argument("--json", action="store_true", help="one JSON object on the last line")
    add_sign_in_arguments(purge)
    purge.set_defaults(func=cmd_purge)


def cmd_verify(args: argparse.Namespace) -> int:
    from console.cli.core import services_for
    from queues.audit import record, verify_chain
    from queues.store.db import reading, transaction

    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="verify the audit log")
        with reading(store.sessions) as session:
            report = verify_chain(session)
        with transaction(store.sessions) as session:
            record(
                session,
                "audit_verified",
                user_id=user.id,
                detail={"intact": report.intact, "rows": report.rows, "digest": report.digest},
            )
    finally:
        store.close()
    chains = len(report.heads)
    if report.problem is None:
        print(f"audit chain intact: {report.rows:,} rows in {chains} chain(s)")
    else:
        print(f"audit chain BROKEN: {report.problem.message}")
    for head in report.heads:
        if head.seq or chains == 1:  # a chain nobody has written to has no head to keep
            chain = f" (chain {head.chain})" if chains > 1 else ""
            print(f"head: seq {head.seq} hash {head.hash}{chain}")
    if chains > 1:
        print(f"heads digest: {report.digest}")
    if args.json:
        print(json.dumps(report.as_json(), sort_keys=True))
    return 0 if report.intact else 1


def cmd_purge(args: argparse.Namespace) -> int:
    from console.cli.core import services_for
    from queues.audit import purge
    from queues.store.db import transaction

    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="purge the audit log")
        years = store.settings.audit.retention_years
        with transaction(store.sessions) as session:
            result = purge(session, retention_years=years, user_id=user.id, dry_run=args.dry_run)
    finally:
        store.close()
    verb = "would remove" if result.dry_run else "removed"
    print(
        f"retention {years} years: rows before {result.cutoff:%Y-%m-%d %H:%M} UTC may go; "
        f"{verb} {result.rows:,} rows"
    )
    for cut in result.chains:
        kept = (
            f"the oldest kept is seq {cut.first_kept_seq}"
            if cut.first_kept_seq
            else "every row was past the retention"
        )
        name = f"chain {cut.chain}" if len(result.chains) > 1 else "the chain"
        print(f"{name} starts after seq {cut.base_seq} ({kept}; {cut.rows:,} rows go)")
    if result.dry_run:
        print("dry run: nothing was changed")
    if args.json:
        print(json.dumps({**result.as_json(), "retention_years": years}, sort_keys=True))
    return 0


COLUMNS = (
    "chain",
    "seq",
    "id",
    "at",
    "user_id",
    "action",
    "patient_id",
    "detail",
    "prev_hash",
    "hash",
)


def cmd_export(args: argparse.Namespace) -> int:
    from console.cli.core import parse_time_arg, services_for
    from queues.audit import export_rows, record
    from queues.store.db import reading, transaction
    from queues.timeutil import as_utc

    start = as_utc(parse_time_arg(args.start, "--from"))
    end = as_utc(parse_time_arg(args.end, "--to"))
    if end <= start:
        raise OutreachError("--to: must be after --from")
    store = services_for(args)
    try:
        user = sign_in(args, store, "admin", doing="export the audit log")
        out: TextIO
        if args.output:
            path = Path(args.output)
            try:
                out = path.open("x", encoding="utf-8", newline="")  # never over another file
            except FileExistsError:
                raise OutreachError(f"--output: {path} exists; nothing was written") from None
            except OSError as exc:
                raise OutreachError(f"--output: cannot write {path}: {exc.strerror}") from None
            path.chmod(0o600)
        else:
            out = sys.stdout
        with reading(store.sessions) as session:
            rows = _write(out, export_rows(session, start, end), args.format)
        if out is not sys.stdout:
            out.close()
        with transaction(store.sessions) as session:
            record(
                session,
                "audit_exported",
                user_id=user.id,
                detail={"from": start.isoformat(), "to": end.isoformat(), "rows": rows},
            )
    finally:
        store.close()
    if args.output:
        print(f"wrote {rows:,} audit rows to {args.output}", file=sys.stderr)
    return 0


def _write(out: TextIO, rows: Any, fmt: str) -> int:
    count = 0
    if fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow(
                [json.dumps(row[c], sort_keys=True) if c == "detail" else row[c] for c in COLUMNS]
            )
            count += 1
    else:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
            count += 1
    return count
