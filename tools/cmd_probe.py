"""`hwkit probe`: list the USB devices, PCI functions and serial ports sysfs shows.

Interim version: reads the ID files straight from sysfs. The full decoder (descriptors,
config space, capabilities, JSON) replaces it as the family parsers land.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _usb(root: Path) -> list[dict]:
    base = root / "bus/usb/devices"
    out = []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if ":" in d.name or not (d / "idVendor").exists():
            continue
        out.append(
            {
                "address": f"usb:{_read(d / 'idVendor')}:{_read(d / 'idProduct')}",
                "path": d.name,
                "product": _read(d / "product"),
            }
        )
    return out


def _pci(root: Path) -> list[dict]:
    base = root / "bus/pci/devices"
    out = []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        drv = d / "driver"
        out.append(
            {
                "bdf": d.name,
                "vendor_id": int(_read(d / "vendor") or "0", 16),
                "device_id": int(_read(d / "device") or "0", 16),
                "class_code": int(_read(d / "class") or "0", 16),
                "driver": os.path.basename(os.readlink(drv)) if drv.is_symlink() else None,
            }
        )
    return out


def _serial(root: Path) -> list[dict]:
    base = root / "class/tty"
    out = []
    for d in sorted(base.iterdir()) if base.is_dir() else []:
        if (d / "device").exists() and not (
            d.name.startswith("ttyS") and _read(d / "type") in ("", "0")
        ):
            out.append({"address": f"serial:/dev/{d.name}"})
    return out


def run(args: argparse.Namespace) -> int:
    root = Path("/sys")
    kinds = [args.bus] if args.bus else ["usb", "pci", "serial"]
    result = {k: {"usb": _usb, "pci": _pci, "serial": _serial}[k](root) for k in kinds}
    if args.json:
        print(json.dumps(result[args.bus] if args.bus else result, indent=2))
        return 0
    for kind, items in result.items():
        print(f"{kind}: {len(items)} device(s)")
        for item in items:
            print("  " + "  ".join(f"{k}={v}" for k, v in item.items()))
    return 0


def register(sub) -> None:
    p = sub.add_parser("probe", help="dump USB descriptors, PCI config space and serial ports")
    p.add_argument("bus", nargs="?", choices=["usb", "pci", "serial"])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)
