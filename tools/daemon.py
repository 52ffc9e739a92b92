"""`hwkit-daemon`: the matching daemon (built in a later issue)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print(
        "hwkit-daemon: the matching daemon is not part of this release yet "
        "(tracked as the daemon issue); use `hwkit lab run` and `hwkit probe` meanwhile",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
