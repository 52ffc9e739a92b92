"""`hwkit`: the command-line front end.

Each sub-command lives in its own module under `hwkit.tools` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a callable that
takes the parsed namespace and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from hwkit.errors import HwkitError

# Sub-command modules, in the order `hwkit --help` lists them.
COMMANDS = [
    "hwkit.tools.cmd_probe",
    "hwkit.tools.cmd_lab",
    "hwkit.tools.cmd_match",
    "hwkit.tools.cmd_personalities",
    "hwkit.tools.cmd_bench",
    "hwkit.tools.cmd_ioreg",
    "hwkit.tools.cmd_call",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hwkit",
        description="User-space device drivers for Linux in Python, on the I/O Kit model.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args) or 0)
    except HwkitError as exc:
        print(f"hwkit {args.command}: {exc}", file=sys.stderr)
        return getattr(exc, "exit_status", 1)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
