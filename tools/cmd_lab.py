"""`hwkit lab`: placeholder until the lab module lands (being written now)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("lab", help="the QEMU hardware lab")
    p.set_defaults(func=lambda args: 2)
