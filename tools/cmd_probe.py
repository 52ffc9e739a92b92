"""`hwkit probe`: placeholder until the probe module lands (being written now)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("probe", help="dump USB descriptors, PCI config space and serial ports")
    p.set_defaults(func=lambda args: 2)
