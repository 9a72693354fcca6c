"""`outreach import fhir|csv …`: a pharmacy's data in, all or nothing, then its changed patients'
queues rebuilt. A progress bar on the terminal (stderr) for anything longer than a second.
An admin's command, or a supervisor's for their own pharmacies: signed in, audited as them."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.cli.core import services_for
from console.cli.signin import SIGN_IN_HELP, add_sign_in_arguments, sign_in

if TYPE_CHECKING:
    from rich.progress import Progress as Bar
    from rich.progress import TaskID

    from queues.imports.run import ImportSummary

CSV_KINDS = ("patients", "prescriptions", "fills", "phones")
SKIP_HINT = "--skip-bad-rows stores the good rows and reports the rest"
WHO = (
    "Admins (any pharmacy) and supervisors (their own pharmacies); the import is audited as "
    "the signed-in user. " + SIGN_IN_HELP
)


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("import", help="load a pharmacy's patients, prescriptions and fills")
    actions = group.add_subparsers(dest="import_command", metavar="FORMAT", required=True)
    fhir = actions.add_parser(
        "fhir",
        parents=[common],
        help="FHIR R4: bundles, bulk NDJSON files or folders, or a server's base URL",
        description="Import FHIR R4 resources: a transaction or collection bundle, bulk-data "
        "NDJSON (a file or a folder of them), or a FHIR server's base URL (a bulk $export, or "
        "paged searches with fhir_bulk = false in [imports]). A bearer token or SMART Backend "
        "Services credentials come from the environment variables named in [imports]. Nothing is "
        "stored if any resource is invalid; a re-import changes nothing. " + WHO,
    )
    fhir.add_argument("source", metavar="PATH|URL")
    fhir.add_argument("--pharmacy", required=True, metavar="CODE")
    fhir.add_argument("--json", action="store_true", help="one JSON object on the last line")
    add_sign_in_arguments(fhir)
    fhir.set_defaults(func=cmd_import_fhir)
    csv = actions.add_parser(
        "csv",
        parents=[common],
        help="a CSV export: patients, prescriptions, fills or phones (columns in README)",
        description="Import one CSV file (UTF-8, with or without BOM; header row; columns in "
        "README.md, 'Importing data'). Errors are listed as file:line: field: why and nothing is "
        "stored, unless --skip-bad-rows (then the good rows are stored and the rest reported). "
        + WHO,
    )
    csv.add_argument("kind", choices=CSV_KINDS)
    csv.add_argument("file", type=Path)
    csv.add_argument("--pharmacy", required=True, metavar="CODE")
    csv.add_argument("--json", action="store_true", help="one JSON object on the last line")
    csv.add_argument(
        "--skip-bad-rows", action="store_true", help="store the good rows, report the bad ones"
    )
    add_sign_in_arguments(csv)
    csv.set_defaults(func=cmd_import_csv)


class TerminalProgress:
    """A rich progress bar on stderr, shown only once a step has run for a second."""

    def __init__(self) -> None:
        self._bar: Bar | None = None
        self._task: TaskID | None = None
        self._since = time.monotonic()
        self._what = ""
        self._total: int | None = None
        self._done = 0

    def start(self, what: str, total: int | None) -> None:
        self._what, self._total, self._done = what, total, 0
        if self._bar is not None and self._task is not None:
            # A task of its own for each step: update(total=None) keeps the step before's total
            # (a "0%" that never moves); a task made with no total is drawn as a pulsing bar.
            self._bar.remove_task(self._task)
            self._task = self._bar.add_task(what, total=total)
        self._tick()

    def advance(self, amount: int) -> None:
        self._done += amount
        self._tick()

    def _tick(self) -> None:
        if self._bar is None:
            if time.monotonic() - self._since < 1.0 or not sys.stderr.isatty():
                return
            from rich.console import Console
            from rich.progress import Progress as Bar

            self._bar = Bar(console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self._what, total=self._total)
        assert self._task is not None
        self._bar.update(self._task, completed=self._done)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


def _settings(store: Any) -> Any:
    from queues.imports.settings import ImportSettings

    return getattr(store.settings, "imports", None) or ImportSettings()


def _report(summary: ImportSummary, as_json: bool, *, resources: bool = True) -> int:
    for line in summary.lines(resources=resources):
        print(line)
    for r in summary.rejected[:50]:
        print(f"rejected: {r.source}: {r.reason}")
    if len(summary.rejected) > 50:
        print(f"rejected: … and {len(summary.rejected) - 50} more (all in --json)")
    if as_json:
        print(json.dumps(summary.as_json(), sort_keys=True))
    return 0


def cmd_import_fhir(args: argparse.Namespace) -> int:
    from queues.imports.run import import_fhir

    store = services_for(args)
    progress = TerminalProgress()
    try:
        user = sign_in(args, store, "supervisor", "admin", doing="import data")
        summary = import_fhir(
            store.sessions,
            args.source,
            args.pharmacy,
            store.clock.now(),
            store.settings.queue,
            _settings(store),
            progress,
            by=user,
        )
    finally:
        progress.stop()
        store.close()
    return _report(summary, args.json)


def cmd_import_csv(args: argparse.Namespace) -> int:
    from queues.imports.records import ImportFailed
    from queues.imports.run import import_csv

    store = services_for(args)
    progress = TerminalProgress()
    try:
        user = sign_in(args, store, "supervisor", "admin", doing="import data")
        summary = import_csv(
            store.sessions,
            args.kind,
            args.file,
            args.pharmacy,
            store.clock.now(),
            store.settings.queue,
            _settings(store),
            progress,
            skip_bad_rows=args.skip_bad_rows,
            by=user,
        )
    except ImportFailed as failed:
        if args.skip_bad_rows:
            raise
        # Only this command has the option: `import fhir` lists what it could not use instead.
        raise ImportFailed(failed.errors, hint=SKIP_HINT) from None
    finally:
        progress.stop()
        store.close()
    return _report(summary, args.json, resources=False)
