"""``hwkit bench matching``: per-nub matching time, indexed catalogue against a linear scan.

The catalogue's index is what keeps matching cheap as the number of installed drivers
grows: a nub only meets the personalities of its provider class and of its vendor
(or device class). This benchmark builds synthetic catalogues of 100, 1,000 and 10,000
personalities shaped like real ones (a fixed set of USB interface and PCI class
drivers, then vendor drivers: USB device and interface personalities by vendor and
product, PCI drivers by ID list and sometimes subsystem), and 1,000 random USB device,
USB interface and PCI nubs from the same vendor space. Every nub is
matched with the index and with a plain scan of the whole catalogue, in the same run,
and the two must agree on every winner.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hwkit.matching.catalogue import Catalogue
from hwkit.matching.matcher import match_nub
from hwkit.matching.personality import parse_personalities

from hwkit.errors import HwkitError
from hwkit.registry import Registry
from hwkit.service import Nub

VENDORS = 4000
USB_CLASSES = (0x02, 0x03, 0x07, 0x08, 0x09, 0x0A, 0x0E, 0xE0, 0xEF)
PCI_CLASSES = (0x010802, 0x010601, 0x020000, 0x028000, 0x030000, 0x040300, 0x0C0330)


def _usb_device(rng: random.Random) -> dict[str, Any]:
    return {"IOProviderClass": "IOUSBHostDevice", "idVendor": rng.randrange(VENDORS),
            "idProduct": rng.randrange(64)}  # fmt: skip


def _usb_interface(rng: random.Random) -> dict[str, Any]:
    return {"IOProviderClass": "IOUSBHostInterface", "idVendor": rng.randrange(VENDORS),
            "idProduct": rng.randrange(64), "bConfigurationValue": 1,
            "bInterfaceNumber": rng.randrange(3)}  # fmt: skip


def _pci_ids(rng: random.Random) -> dict[str, Any]:
    vendor = 0x1000 + rng.randrange(VENDORS)
    ids = " ".join(f"{rng.randrange(256) << 16 | vendor:#010x}" for _ in range(rng.randint(1, 3)))
    table: dict[str, Any] = {"IOProviderClass": "IOPCIDevice", "IOPCIPrimaryMatch": ids}
    if rng.random() < 0.2:
        table["IOPCISecondaryMatch"] = f"{vendor:#010x}&0x0000ffff"
        table["IOProbeScore"] = 100
    return table


VENDOR_SHAPES = ((_usb_device, 0.4), (_usb_interface, 0.2), (_pci_ids, 0.4))


def class_tables() -> list[dict[str, Any]]:
    """One class driver per USB interface class/subclass and per PCI class.

    Their number does not grow with the catalogue: there are only so many device
    classes, and a real catalogue grows by vendor drivers.
    """
    usb = [{"IOProviderClass": "IOUSBHostInterface", "bInterfaceClass": c, "bInterfaceSubClass": s}
           for c in USB_CLASSES for s in range(2)]  # fmt: skip
    pci = [{"IOProviderClass": "IOPCIDevice", "IOPCIClassMatch": f"{c << 8:#010x}&0xffffff00",
            "IOProbeScore": -100} for c in PCI_CLASSES]  # fmt: skip
    return usb + pci


def synthetic_catalogue(size: int, rng: random.Random) -> Catalogue:
    """`size` valid personalities: the class drivers, then vendor drivers."""
    makers = [m for m, _ in VENDOR_SHAPES]
    weights = [w for _, w in VENDOR_SHAPES]
    bodies = class_tables()[:size]
    bodies += [rng.choices(makers, weights)[0](rng) for _ in range(size - len(bodies))]
    tables = {f"P{i}": {"IOClass": "bench.Driver", **body} for i, body in enumerate(bodies)}
    personalities, problems = parse_personalities({"IOKitPersonalities": tables}, "bench")
    if problems:
        raise HwkitError(f"benchmark catalogue is invalid: {problems[0]}")
    catalogue = Catalogue([])
    catalogue.add(personalities)
    return catalogue


def synthetic_nubs(count: int, rng: random.Random) -> list[Nub]:
    """`count` USB device, USB interface and PCI nubs, attached in one registry."""
    registry = Registry()
    nubs: list[Nub] = []
    for _ in range(count):
        vendor, product = rng.randrange(VENDORS), rng.randrange(64)
        kind = rng.random()
        if kind < 0.3:
            nub = Nub("IOUSBHostDevice", "dev", {"idVendor": vendor, "idProduct": product,
                      "bcdDevice": 0x100, "bDeviceClass": 0, "bDeviceSubClass": 0})  # fmt: skip
        elif kind < 0.6:
            nub = Nub("IOUSBHostInterface", "if", {
                "idVendor": vendor, "idProduct": product, "bcdDevice": 0x100,
                "bConfigurationValue": 1, "bInterfaceNumber": rng.randrange(3),
                "bInterfaceClass": rng.choice((*USB_CLASSES, 0xFF)), "bInterfaceSubClass": 0,
                "bInterfaceProtocol": 0,
            })  # fmt: skip
        else:
            nub = Nub("IOPCIDevice", "fn", {
                "vendor-id": 0x1000 + vendor, "device-id": rng.randrange(256),
                "subsystem-vendor-id": 0x1000 + vendor, "subsystem-id": 1,
                "class-code": rng.choice(PCI_CLASSES), "revision-id": 1,
            })  # fmt: skip
        nub.attach(registry.root)
        nubs.append(nub)
    return nubs


@dataclass
class BenchRow:
    """One catalogue size: microseconds per nub, indexed and linear, and agreement."""

    size: int
    indexed_us: float
    linear_us: float
    linear_nubs: int
    matched_nubs: int


def _time_per_nub(catalogue: Catalogue, nubs: Sequence[Nub], linear: bool) -> tuple[float, list]:
    winners = []
    start = time.perf_counter()
    for nub in nubs:
        winners.append(match_nub(catalogue, nub, linear=linear).winners)
    elapsed = time.perf_counter() - start
    return elapsed / len(nubs) * 1e6, winners


def run(
    sizes: Sequence[int] = (100, 1000, 10000),
    nub_count: int = 1000,
    linear_count: int | None = None,
    seed: int = 1,
) -> list[BenchRow]:
    """Time matching for each catalogue size; raise if index and scan ever disagree.

    Args:
        linear_count: how many of the nubs the linear scan times (default: all).

    Raises:
        HwkitError: the indexed and the linear match chose different winners.
    """
    rng = random.Random(seed)
    nubs = synthetic_nubs(nub_count, rng)
    linear_nubs = nubs[: linear_count or nub_count]
    rows = []
    for size in sizes:
        catalogue = synthetic_catalogue(size, random.Random(seed + size))
        _time_per_nub(catalogue, nubs[:100], linear=False)  # warm caches before timing
        indexed_us, indexed = _time_per_nub(catalogue, nubs, linear=False)
        linear_us, linear = _time_per_nub(catalogue, linear_nubs, linear=True)
        for nub, a, b in zip(linear_nubs, indexed, linear, strict=False):
            if {k: c.personality.name for k, c in a.items()} != {
                k: c.personality.name for k, c in b.items()
            }:
                raise HwkitError(f"index and linear scan disagree on {nub!r}: {a} != {b}")
        matched = sum(1 for w in indexed if w)
        rows.append(BenchRow(size, indexed_us, linear_us, len(linear_nubs), matched))
    return rows


def format_rows(rows: Sequence[BenchRow], nub_count: int) -> str:
    """The report: a table, the flatness ratio and the 1 ms goal."""
    lines = [
        f"hwkit bench matching: {nub_count} nubs (USB devices, USB interfaces, PCI functions)",
        "",
        "  personalities   indexed us/nub   linear us/nub   linear/indexed   nubs matched",
    ]
    for r in rows:
        lines.append(
            f"  {r.size:>13}   {r.indexed_us:>14.1f}   {r.linear_us:>13.1f}"
            f"   {r.linear_us / r.indexed_us:>14.1f}   {r.matched_nubs:>12}"
        )
    first, last = rows[0], rows[-1]
    growth = last.size / first.size
    lines += [
        "",
        f"  indexed time grows {last.indexed_us / first.indexed_us:.2f}x while the catalogue"
        f" grows {growth:.0f}x (linear: {last.linear_us / first.linear_us:.1f}x)",
        f"  goal < 1000 us/nub at {last.size} personalities: "
        + ("met" if last.indexed_us < 1000 else "NOT met")
        + f" ({last.indexed_us:.1f} us)",
    ]
    if last.linear_nubs != nub_count:
        lines.append(f"  (linear scan timed on the first {last.linear_nubs} nubs)")
    return "\n".join(lines)


def register_bench(sub: argparse._SubParsersAction) -> None:
    """Add ``matching`` to ``hwkit bench``."""
    p = sub.add_parser("matching", help="matching time per nub: indexed vs linear catalogue")
    p.add_argument("--nubs", type=int, default=1000, help="nubs to match (default 1000)")
    p.add_argument(
        "--sizes", type=int, nargs="+", default=[100, 1000, 10000], help="catalogue sizes"
    )
    p.add_argument("--linear-nubs", type=int, help="time the linear scan on fewer nubs")
    p.add_argument("--seed", type=int, default=1)
    p.set_defaults(func=_main)


def _main(args: argparse.Namespace) -> int:
    if args.nubs < 1 or any(s < 1 for s in args.sizes):
        raise HwkitError("--nubs and --sizes must be positive")
    rows = run(args.sizes, args.nubs, args.linear_nubs, args.seed)
    print(format_rows(rows, args.nubs))
    return 0
