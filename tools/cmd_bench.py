"""`hwkit bench`: benchmarks, one sub-command per subsystem.

Each module listed in BENCHES exposes ``register_bench(subparsers)``, which adds its
sub-command (``hwkit bench matching``...) and sets ``func``.
"""

from __future__ import annotations

import argparse
import importlib

BENCHES = [
    "hwkit.matching.bench",
    "hwkit.pci.bench",
    "hwkit.ipcbench",
]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``bench`` sub-command and every benchmark under it."""
    p = sub.add_parser("bench", help="benchmarks (matching, ...)")
    benches = p.add_subparsers(dest="bench", metavar="BENCH")
    benches.required = True
    for name in BENCHES:
        importlib.import_module(name).register_bench(benches)
