"""`hwkit-daemon`: the matching daemon (see :mod:`hwkit.daemon`)."""

from __future__ import annotations

import sys

from hwkit.daemon import main

if __name__ == "__main__":
    sys.exit(main())

__all__ = ["main"]
