"""`outreach …`: one entry point; each command group lives in its own module and registers itself.

Every command accepts `--database URL` (overrides OUTREACH_DATABASE_URL and config.toml) and
`--config FILE` (overrides OUTREACH_CONFIG).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

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


class _Parser(argparse.ArgumentParser):
    """argparse, with a mistake on the command line said in one line (no usage block); every
    subcommand's parser is one too (add_subparsers makes its parsers of the parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--database", metavar="URL", help="database URL (overrides config and env)")
    common.add_argument("--config", metavar="FILE", help="config file (default: ./config.toml)")
    parser = _Parser(
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
    # A file or argument name that is not UTF-8 (Python keeps its bytes as surrogates) is
    # printed escaped, as stderr already does, instead of failing the command at its output.
    reconfigure = getattr(sys.stdout, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="backslashreplace")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        rc: int = args.func(args)
    except OutreachError as exc:
        print(f"outreach: {exc}", file=sys.stderr)
        status: int = getattr(exc, "exit_status", 1)  # 2: a usage error (core.NoDatabase)
        return status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`outreach queue stats | head -3`): nothing more to say, and no
        # traceback. Output goes to the null device so the exit's flush cannot fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except Exception as exc:  # a bug: one line for the person, where it happened for the log
        beyond = _beyond_the_database(exc)
        if beyond is not None:
            print(f"outreach: {beyond}; refused", file=sys.stderr)
            return 1
        if isinstance(exc, OSError) and exc.filename is not None:  # a path it was given
            name = str(exc.filename)
            name = name if len(name) <= 120 else name[:60] + "…" + name[-59:]
            print(f"outreach: {name}: {exc.strerror or type(exc).__name__}", file=sys.stderr)
            return 1
        return _internal_error(exc)
    return rc


def _beyond_the_database(exc: Exception) -> str | None:
    """A command's argument past what the database stores, said plainly (the commands check
    their own arguments first; this is for what one forgot): a number past PostgreSQL's 32-bit
    INTEGER (SQLSTATE 22003) or SQLite's 64 bits (its driver's OverflowError), a text longer than
    its PostgreSQL column (22001; SQLite keeps any length)."""
    orig = getattr(exc, "orig", None)
    state = getattr(orig, "sqlstate", None)
    frames = traceback.extract_tb(exc.__traceback__)
    if state == "22003" or (
        isinstance(exc, OverflowError) and bool(frames) and "sqlalchemy" in frames[-1].filename
    ):
        return (
            "a number given is too large for the database (an id, a count or a priority: whole "
            f"numbers up to {2**31 - 1})"
        )
    if state == "22001":  # "value too long for type character varying(200)": no value in it
        return f"a text given is longer than the database keeps ({str(orig).splitlines()[0]})"
    if isinstance(exc, OverflowError):  # "date value out of range": a time past year 9999
        return f"a date or number given is out of range ({exc})"
    return None


def _internal_error(exc: Exception) -> int:
    """What a person sees when a command fails in a way nobody foresaw: one line, no traceback.
    The log gets the frames (file, line, code) and the exception's type, never its message: a
    message may carry the values it was given (a name, a birth date)."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}" if frames else "?"
    logging.getLogger("outreach.cli").error(
        "internal error %s at %s\n%s",
        type(exc).__name__,
        where,
        "".join(traceback.format_list(frames)),
    )
    print(
        f"outreach: internal error ({type(exc).__name__} at {where}); the command stopped "
        "there. Please report it: the log says where it happened.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
