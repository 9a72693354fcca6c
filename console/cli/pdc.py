"""`outreach pdc`: the PQA proportion of days covered for a CSV of fills of one measure class."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date
from pathlib import Path
from typing import Any

from queues.adherence.pdc import pdc_for_class, read_fills_csv


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (use YYYY-MM-DD)") from None


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    pdc = sub.add_parser(
        "pdc",
        parents=[common],
        help="proportion of days covered (PQA) for a CSV of fills",
        description="PQA proportion of days covered for the fills of one measure class "
        "(columns drug,fill_date,days_supply; drug is the ingredient). The period runs from the "
        "first fill in it (index prescription start date) to --to; refills of the same drug "
        "before the supply ran out are shifted forward, different drugs are not, and supply past "
        "--to is cut. Fills dated before --from carry their supply into the period unless "
        "--no-carry-in.",
    )
    pdc.add_argument("--fills", required=True, type=Path, metavar="FILE.csv")
    pdc.add_argument("--from", dest="start", required=True, type=_iso_date, metavar="DATE")
    pdc.add_argument("--to", dest="end", required=True, type=_iso_date, metavar="DATE")
    pdc.add_argument(
        "--no-carry-in",
        action="store_true",
        help="leave out fills dated before --from (how the PQA measure is reported)",
    )
    pdc.add_argument("--json", action="store_true", help="one JSON object on the last line")
    pdc.set_defaults(func=cmd_pdc)


def cmd_pdc(args: argparse.Namespace) -> int:
    if args.end < args.start:
        print(f"outreach pdc: --to {args.end} is before --from {args.start}", file=sys.stderr)
        return 2
    fills = read_fills_csv(args.fills)
    result = pdc_for_class(fills, args.start, args.end, carry_in=not args.no_carry_in)
    if result.ipsd is None or result.pdc is None:
        print(
            f"No fill dated {args.start} to {args.end} in {args.fills}: no index prescription "
            "start date, so the patient is not in the measure for this period."
        )
    else:
        verdict = "adherent" if result.adherent else "below 0.80"
        print(f"{'index fill (IPSD)':<20}{result.ipsd}")
        print(f"{'period':<20}{result.ipsd} to {args.end}")
        print(f"{'days covered':<20}{result.covered_days} of {result.denominator_days}")
        print(f"{'PDC':<20}{result.pdc:.6f} ({verdict})")
    if args.json:
        print(
            json.dumps(
                {
                    "pdc": None if result.pdc is None else round(result.pdc, 6),
                    "covered_days": result.covered_days,
                    "denominator_days": result.denominator_days,
                    "adherent": result.adherent,
                    "ipsd": result.ipsd.isoformat() if result.ipsd else None,
                    "from": args.start.isoformat(),
                    "to": args.end.isoformat(),
                }
            )
        )
    return 0
