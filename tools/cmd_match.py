"""`hwkit match`: match nubs described in a JSON file against the personality catalogue.

No hardware and no driver code is involved: the personalities are read and checked,
the nubs are built from the file (``hwkit probe`` writes such files from live
devices), and each nub is matched passively. ``--explain`` says, for every nub, which
personality won each match category, every candidate's score, and for each loser the
first key that failed with the two values compared.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from hwkit.matching.catalogue import Catalogue
from hwkit.matching.explain import (
    PASSIVE_NOTE,
    format_nub,
    format_rejections,
    format_summary,
    report_json,
)
from hwkit.matching.matcher import match_nub
from hwkit.matching.nubs import load_nubs


def quiet_loader(args: argparse.Namespace) -> None:
    """The command prints rejected files itself: keep the loader's warnings for -v."""
    if not getattr(args, "verbose", 0):
        logging.getLogger("hwkit.matching").setLevel(logging.ERROR)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``match`` sub-command."""
    p = sub.add_parser(
        "match",
        help="match nubs from a JSON file against the personalities (no hardware needed)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--nubs", required=True, metavar="FILE", help="nubs JSON file")
    p.add_argument(
        "--personalities",
        action="extend",
        nargs="+",
        metavar="DIR",
        help="personality folders or files (replace the default search path)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--explain", action="store_true", help="explain every candidate")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Match and print; exit 0 (problems in personality files are reported, not fatal)."""
    quiet_loader(args)
    catalogue = Catalogue.load(args.personalities)
    registry, nubs = load_nubs(args.nubs)
    results = [match_nub(catalogue, nub, registry=registry, explain=True) for nub in nubs]
    if args.json:
        json.dump(report_json(results, catalogue.rejected), sys.stdout, indent=2)
        print()
        return 0
    for line in format_rejections(catalogue.rejected):
        print(f"skipped: {line}", file=sys.stderr)
    if args.explain:
        print(
            f"{len(catalogue.personalities)} personalities from {len(catalogue.files())} files;"
            f" {len(nubs)} nubs from {args.nubs}.\n{PASSIVE_NOTE}\n"
        )
        print("\n\n".join(format_nub(r, i, len(results)) for i, r in enumerate(results, 1)))
    else:
        for result in results:
            print(format_summary(result))
    return 0
