"""`outreach …`: one entry point; each command group lives in its own module and registers itself.

Every command accepts `--database URL` (overrides OUTREACH_DATABASE_URL and config.toml) and
`--config FILE` (overrides OUTREACH_CONFIG).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from queues.errors import OutreachError

from . import core

# Each module has `register(subparsers, common)`; a command sets `func(args) -> int`.
GROUPS: list[Callable[..., None]] = [core.register]


def _optional_groups() -> None:
    """Groups other parts of the product add (`outreach scripts`, `outreach call`, …)."""
    import importlib

    for name in (
        "queue_rules",
        "pdc",
        "compliance",
        "scripts",
        "call",
        "supervisor",
        "reports",
        "outbox",
        "imports",
        "pharmacy",
        "campaigns",
        "audit",
        "users",
    ):
        try:
            module = importlib.import_module(f"console.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"console.cli.{name}":
                raise
            continue
        GROUPS.append(module.register)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL", help="database URL (overrides config and env)")
    common.add_argument("--config", metavar="FILE", help="config file (default: ./config.toml)")
    parser = argparse.ArgumentParser(
        prog="outreach",
        description="Outreach Console: proactive pharmacy outreach calls for BPO agents.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    if len(GROUPS) == 1:
        _optional_groups()
    for register in GROUPS:
        register(sub, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from console.config import private_files

    private_files()  # the database, log, drafts and reports it writes: 0600 in 0700 folders
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except OutreachError as exc:
        print(f"outreach: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`outreach queue stats | head -3`): nothing more to say, and no
        # traceback. Output goes to the null device so the exit's flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    return rc


if __name__ == "__main__":
    sys.exit(main())
