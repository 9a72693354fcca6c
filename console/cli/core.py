"""The foundation commands: demo, console, db upgrade, users add, queue stats."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from console.cli.signin import (
    SIGN_IN_HELP,
    add_sign_in_arguments,
    cli_source,
    sign_in,
    wants_sign_in,
)
from console.config import settings_from_args, setup_logging
from queues.errors import OutreachError
from queues.views.user import ROLES, SignedInUser

if TYPE_CHECKING:  # the domain and the database load when a command runs, not to print --help
    from sqlalchemy.orm import Session

    from console.services.store import Store

# The demo writes where every other command reads by default ([database].url, else this), so
# after `./dev demo` a report, `serve` or `queue stats` without --database sees the demo.
DEMO_URL = "sqlite:///var/outreach.db"
DEMO_MAX_PATIENTS = 1_000_000


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    demo = sub.add_parser(
        "demo",
        parents=[common],
        help="build the demo database (synthetic data) and open the console",
        description="Build a demo database with synthetic pharmacies, patients, fill histories "
        f"and three months of past calls in the configured database (default {DEMO_URL}, the "
        "one every command opens), then open the console. A database that already holds the "
        "demo is kept as it is unless --reset; one holding real pharmacies is refused.",
    )
    demo.add_argument("--seed-only", action="store_true", help="build the data, do not open the UI")
    demo.add_argument(
        "--patients", type=int, default=500, metavar="N", help="patients (default 500)"
    )
    demo.add_argument("--seed", type=int, default=7, metavar="S", help="random seed (default 7)")
    demo.add_argument(
        "--now", metavar="TIME", help="practice clock start, ISO time (default: next weekday 10:00)"
    )
    demo.add_argument("--reset", action="store_true", help="throw away an existing demo database")
    demo.set_defaults(func=cmd_demo)

    console = sub.add_parser("console", parents=[common], help="open the console")
    console.set_defaults(func=cmd_console)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser("upgrade", parents=[common], help="run the migrations to the newest")
    up.set_defaults(func=cmd_db_upgrade)
    new_id = db_sub.add_parser(
        "new-id",
        parents=[common],
        help="give a copy of a database an id of its own (an admin's command)",
        description="A database's id names the folder consoles keep their unsaved wrap-ups "
        "in, and a copy (pg_dump, CREATE DATABASE ... TEMPLATE, a copied SQLite file) keeps "
        "its original's. Run this on a copy made to be a database of its own, such as a "
        "training copy of a site, so no draft typed on one is reopened or saved on the other. "
        "Never on the original: its agents' unsaved wrap-ups, kept under the old id, would no "
        "longer reopen. Audited as the admin. " + SIGN_IN_HELP,
    )
    new_id.add_argument(
        "--yes", action="store_true", help="this database is a copy: give it a new id"
    )
    add_sign_in_arguments(new_id)
    new_id.set_defaults(func=cmd_db_new_id)

    users = sub.add_parser("users", help="manage users")
    users_sub = users.add_subparsers(dest="users_command", metavar="ACTION", required=True)
    add = users_sub.add_parser(
        "add",
        parents=[common],
        help="add a user (an admin's command; the site's first admin needs no sign-in)",
        description="Add a user: an admin's command, audited as that admin. On a database "
        "without any user, its first admin (--role admin) is added without a sign-in. The new "
        "user's password is asked twice on a terminal, read from standard input (first line) "
        "otherwise. Agents and supervisors work for the pharmacies given; an admin acts on "
        "every pharmacy (--pharmacy optional). " + SIGN_IN_HELP,
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=ROLES)
    add.add_argument("--pharmacy", nargs="+", metavar="CODE", default=[])
    add.add_argument("--display-name", help="name shown in the console (default: NAME)")
    add_sign_in_arguments(add)
    add.set_defaults(func=cmd_users_add)
    users.users_sub = users_sub  # `users totp` (console/cli/users.py) joins the same command

    queue = sub.add_parser("queue", help="outreach queues")
    queue_sub = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    stats = queue_sub.add_parser(
        "stats",
        parents=[common],
        help="counts of patients, tasks, attempts",
        description="Counts over every pharmacy (no patient is named): no sign-in needed.",
    )
    stats.add_argument("--json", action="store_true", help="one JSON object on the last line")
    stats.set_defaults(func=cmd_queue_stats)
    build = queue_sub.add_parser(
        "build",
        parents=[common],
        help="run the campaign rules and bring the queues up to date (idempotent)",
        description="Bring the tasks and queue entries in line with the campaign rules "
        "(idempotent; it prints counts only). With a user named (--user or OUTREACH_USER) it "
        "runs as that supervisor or admin, for their pharmacies' patients (an admin: every "
        "pharmacy), audited as them. With none it is the site's scheduled rebuild of every "
        "pharmacy, as `db upgrade` is its maintenance: run it from cron or a timer, at least "
        "daily. " + SIGN_IN_HELP,
    )
    build.add_argument("--now", metavar="TIME", help="build as of this ISO time (default: now)")
    add_sign_in_arguments(build)
    build.set_defaults(func=cmd_queue_build)
    # Other groups add their actions (`queue build`, `queue explain`) to the same `queue` command.
    queue.queue_sub = queue_sub


class NoDatabase(OutreachError):
    """An SQLite file that is not there, named to a command that only reads or changes a
    database (a mistyped --database would otherwise become a new, empty one)."""

    exit_status = 2


MAKES_A_DATABASE = "outreach demo or outreach db upgrade makes one"


def require_database(url: str) -> None:
    """Refuse (NoDatabase) an SQLite URL whose file does not exist, before anything is created;
    any other URL (PostgreSQL, an in-memory SQLite, a malformed one: open_store reports it) is
    left to the opening."""
    from pathlib import Path

    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        return
    name = parsed.database
    if parsed.get_backend_name() != "sqlite" or not name or name == ":memory:":
        return
    if name.startswith("file:") or parsed.query.get("mode") == "memory":
        return  # an SQLite URI filename: SQLite itself says what it lacks
    path = Path(name)
    if not path.exists():
        raise NoDatabase(f"no database at {path.absolute()} ({MAKES_A_DATABASE})")


def services_for(
    args: argparse.Namespace, *, default_url: str | None = None, creates: bool = False
) -> Store:
    """The database as the command line uses it (a command runs one use case and exits).
    `creates`: the command makes the database when there is none (`db upgrade`); any other
    refuses an SQLite file that does not exist (NoDatabase)."""
    settings = settings_from_args(args.config, args.database or None)
    if default_url and not args.database and settings.database.url == "sqlite:///var/outreach.db":
        from dataclasses import replace

        from console.config import DatabaseSettings

        settings = replace(settings, database=DatabaseSettings(url=default_url))
    if not creates:
        require_database(settings.database.url)
    setup_logging(settings)
    from console.services.store import open_store

    return open_store(settings)


def cmd_demo(args: argparse.Namespace) -> int:
    from demo.history import HISTORY_DAYS
    from demo.world import DemoAlreadyThere, parse_practice_time, seed_demo

    if not 1 <= args.patients <= DEMO_MAX_PATIENTS:
        # The demo is for trying the console; past a million it would run for hours, not fail.
        raise OutreachError(f"--patients: give 1 to {DEMO_MAX_PATIENTS:,}")
    settings = settings_from_args(args.config, args.database or None)
    setup_logging(settings)
    from console.services.store import open_store

    services = open_store(settings)
    try:
        start = parse_practice_time(args.now) if args.now else None
        try:
            summary = seed_demo(
                services.sessions,
                patients=args.patients,
                seed=args.seed,
                now=start,
                reset=args.reset,
                history_days=HISTORY_DAYS,
            )
            print(summary.describe())
        except DemoAlreadyThere as kept:
            print(kept)
    finally:
        services.close()
    if args.seed_only:
        return 0
    return _run_app(open_store(settings))


def cmd_console(args: argparse.Namespace) -> int:
    from console.serve.ticket import served_user

    store = services_for(args)
    # Started by `outreach serve` for a signed-in browser: its ticket signs the user in.
    return _run_app(store, served_user(store))


def _run_app(store: Store, served: tuple[SignedInUser, str] | None = None) -> NoReturn:
    from console.app import OutreachApp
    from console.cli.ending import end_console_process
    from console.services.container import Services

    services = Services(store)
    if served is not None:
        services.accounts.source = served[1]  # the browser's address, for the lock's re-checks
    app = OutreachApp(services, served[0] if served else None)
    try:
        app.run()
    finally:
        services.close()
    # The drafts on disk, then out without the interpreter's teardown (most of quitting's time).
    end_console_process(app.return_code or 0)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    services = services_for(args, creates=True)  # open_store makes it, or upgrades it
    from queues.identity import database_id

    with services.sessions() as session:
        here = database_id(session)
    print(f"database is at the newest schema: {services.engine.url.render_as_string()}")
    # Consoles keep their unsaved wrap-ups for this database under this id (console/drafts.py).
    print(f"database id {here} (consoles keep its wrap-up drafts in <[ui].drafts_path>/{here}/)")
    services.close()
    return 0


def cmd_db_new_id(args: argparse.Namespace) -> int:
    from queues.identity import give_new_id
    from queues.store.db import transaction

    services = services_for(args)
    try:
        where = services.engine.url.render_as_string()
        if not args.yes:
            raise OutreachError(
                f"{where} keeps its id unless you add --yes: give a new id only to a copy made "
                "to be a database of its own (on the original, its agents' unsaved wrap-ups "
                "would no longer reopen); nothing was changed"
            )
        by = sign_in(args, services, "admin", doing="give a database a new id")
        with transaction(services.sessions) as session:
            old, new = give_new_id(session, by_user_id=by.id)
    finally:
        services.close()
    print(f"database id {old} -> {new}: {where}")
    print(f"consoles keep its wrap-up drafts in <[ui].drafts_path>/{new}/ from now on")
    # (console/drafts.py) A console that reached it at this address under the old id tells its
    # agents at sign-in of their drafts kept under that id; none is reopened here.
    print(
        f"drafts kept under {old} stay there, never reopened here; a console that signed in "
        "to this database at this address before tells its agents at sign-in how many"
    )
    return 0


def _read_password(name: str) -> str:
    if sys.stdin.isatty():
        first = getpass.getpass(f"New password for {name}: ")
        second = getpass.getpass(f"{name}'s password again: ")
        if first != second:
            raise OutreachError("the two passwords differ; nothing was saved")
        return first
    line = sys.stdin.readline()
    return line.rstrip("\r\n")


def cmd_users_add(args: argparse.Namespace) -> int:
    from queues.access import check_may_add_user, no_users_yet
    from queues.auth import add_user
    from queues.store.db import reading, transaction

    if args.role != "admin" and not args.pharmacy:
        raise OutreachError(f"--pharmacy: {args.role}s work for at least one pharmacy; give CODE")
    services = services_for(args)
    try:
        with reading(services.sessions) as session:
            first = no_users_yet(session)
        by = None if first else sign_in(args, services, "admin", doing="add users")
        password = _read_password(args.name)
        with transaction(services.sessions) as session:
            check_may_add_user(session, by, args.role)
            user = add_user(
                session, args.name, password, args.role, args.pharmacy, args.display_name, by=by
            )
    finally:
        services.close()
    where = ", ".join(user.pharmacy_codes) or "every pharmacy"
    if user.role == "admin":
        where = "every pharmacy"
    print(f"added {user.role} {user.username} for {where}")
    return 0


def cmd_queue_stats(args: argparse.Namespace) -> int:
    from console.cli.empty import require_pharmacies
    from queues.floor.stats import queue_stats
    from queues.store.db import reading

    services = services_for(args)
    try:
        require_pharmacies(services)
        with reading(services.sessions) as session:
            stats = queue_stats(session, services.clock.now(), services.settings.queue)
    finally:
        services.close()
    rows = stats.rows()
    # Fixed widths from the longest label and count: a group's phrase ("  waiting for …") can
    # be longer than any fixed column, and every count still ends in the same column.
    label_width = max(len(label) for label, _ in rows)
    value_width = max(len(f"{value:,}") for _, value in rows)
    for label, value in rows:
        print(f"{label:<{label_width}}  {value:>{value_width},}")
    if stats.due is not None:
        print(stats.due.summary())
    if args.json:
        print(json.dumps(stats.as_json(), sort_keys=True))
    return 0


def cmd_queue_build(args: argparse.Namespace) -> int:
    from queues.access import acting_scope, patients_in_scope
    from queues.audit import record
    from queues.building.build import build_queues
    from queues.building.stepwise import build_queues_in_steps
    from queues.store.db import reading, transaction

    at = parse_time_arg(args.now, "--now") if args.now else None
    services = services_for(args)
    try:
        now = at or services.clock.now()
        user = (
            sign_in(args, services, "supervisor", "admin", doing="build the queues")
            if wants_sign_in(args)
            else None
        )
        codes: tuple[str, ...] | None = None
        patients: list[int] | None = None
        if user is not None:
            with reading(services.sessions) as session:
                scope = acting_scope(session, user)
                every = scope.role == "admin" or len(scope.pharmacy_ids) == _pharmacies(session)
                patients = None if every else patients_in_scope(session, scope)
            codes = None if every else scope.pharmacy_codes
        if codes is None:
            # Read outside the write lock, written in short steps: agents keep claiming meanwhile.
            result = build_queues_in_steps(
                services.sessions, now, services.settings.queue, build=services.settings.build
            )
        else:
            with transaction(services.sessions) as session:  # their pharmacies' patients only
                result = build_queues(session, now, services.settings.queue, patients=patients)
        with transaction(services.sessions) as session:
            record(
                session,
                "queue_built",
                user_id=user.id if user else None,
                detail={
                    "pharmacies": list(codes) if codes is not None else "all",
                    "source": cli_source(),
                    "as_of": now.isoformat(),
                    "open_tasks": result.open_tasks,
                    **({} if user else {"unattended": True}),
                },
            )
    finally:
        services.close()
    print(result.describe())
    return 0


def _pharmacies(session: Session) -> int:
    from sqlalchemy import func, select

    from queues.store.models import Pharmacy

    return session.scalar(select(func.count()).select_from(Pharmacy)) or 0


def parse_time_arg(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise OutreachError(
            f"{what}: {value!r} is not an ISO time like 2026-12-02T10:00-06:00"
        ) from None
    if not 1900 <= parsed.year <= 9000:
        # Calling windows add days and zones to it: a year at either end of datetime's range
        # overflows there, far from the flag that carried it.
        raise OutreachError(f"{what}: {value!r}: give a time between the years 1900 and 9000")
    return parsed
