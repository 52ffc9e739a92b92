"""`hwkit personalities check PATH...`: validate personality files before installing them.

Each file (or every ``*.plist`` below a folder) is loaded exactly as the daemon loads
it. Problems are printed one per line as ``path: personality 'X': key 'Y': what is
wrong``; the exit status is 1 when any file is bad (or a path does not exist).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwkit.matching.catalogue import Catalogue
from hwkit.tools.cmd_match import quiet_loader


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``personalities`` sub-command and its ``check`` action."""
    p = sub.add_parser("personalities", help="work with personality (plist) files")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    check = actions.add_parser(
        "check",
        help="validate personality files; exit 1 if any is bad",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    check.add_argument("paths", nargs="+", metavar="PATH", help="plist files or folders")
    check.set_defaults(func=run_check)


def run_check(args: argparse.Namespace) -> int:
    """Load the paths, print problems and a summary line, return 1 on any problem."""
    quiet_loader(args)
    missing = [p for p in args.paths if not Path(p).exists()]
    for path in missing:
        print(f"{path}: no such file or folder", file=sys.stderr)
    catalogue = Catalogue.load([p for p in args.paths if p not in missing])
    for rejection in catalogue.rejected:
        print(rejection, file=sys.stderr)
    bad_files = {r.file for r in catalogue.rejected}
    total = len(catalogue.files())
    if total == 0:
        print("no personality files (*.plist) found in the given paths", file=sys.stderr)
    print(
        f"{len(catalogue.personalities)} personalities in {total - len(bad_files)} good files;"
        f" {len(bad_files)} bad files, {len(catalogue.rejected)} problems"
    )
    return 1 if bad_files or missing or total == 0 else 0
