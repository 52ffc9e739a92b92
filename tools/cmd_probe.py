"""`hwkit probe`: what the machine's USB devices, PCI functions and serial ports are.

    hwkit probe [usb|pci|serial] [ADDRESS] [--json] [--brief]
    hwkit probe pci --dump FILE [ADDRESS]      # a saved lspci -x/-xxx/-xxxx dump
    hwkit probe pci --save-dump FILE           # write one, for a bug report
    hwkit probe [BUS] --nubs FILE              # the nubs matching would see, as JSON
    hwkit probe [BUS] --match                  # and which personality each would get

Nothing is opened: everything comes from sysfs (and /dev/serial). Unprivileged runs
see only the first 64 bytes of PCI config space, and say so.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

from hwkit.errors import BadArgument, NotFoundError
from hwkit.pci import discovery as pci
from hwkit.pci import report as pci_report
from hwkit.pci.config import DumpedFunction, format_lspci_dump, load_dump, parse_config_space
from hwkit.serial import discovery as serial
from hwkit.serial import report as serial_report
from hwkit.usb import discovery as usb
from hwkit.usb import report as usb_report

BUSES = ("usb", "pci", "serial")


def _split_target(args: argparse.Namespace) -> tuple[list[str], str | None]:
    """The buses to show and the address, from ``[BUS] [ADDRESS]`` in either order."""
    bus, address = args.bus, args.address
    if bus is not None and bus not in BUSES:
        if address is not None:
            raise BadArgument(f"unknown bus {bus!r}: expected one of {', '.join(BUSES)}")
        bus, address = None, bus
    if address is not None and bus is None:
        prefix = address.split(":", 1)[0]
        if prefix not in BUSES:
            raise BadArgument(
                f"cannot tell the bus of {address!r}: addresses start with usb:, pci: or "
                "serial: (usb:0627:0001, pci:0000:00:03.0, serial:/dev/ttyUSB0)"
            )
        bus = prefix
    if args.dump or args.save_dump:
        if bus not in (None, "pci"):
            raise BadArgument("--dump and --save-dump are for PCI config space: use `probe pci`")
        bus = "pci"
    return ([bus] if bus else list(BUSES)), address


# --- gathering ----------------------------------------------------------------------------


def _usb_devices(args: argparse.Namespace, address: str | None) -> list[usb.USBDeviceInfo]:
    if address is None:
        return usb.list_devices(args.sysfs)
    return usb.find_devices(address, args.sysfs)


def _pci_views(args: argparse.Namespace, address: str | None) -> list[pci_report.FunctionView]:
    if args.dump:
        return _dump_views(Path(args.dump), address)
    functions = pci.list_functions(args.sysfs)
    selected = functions
    if address is not None:
        selected = [pci.find_function(address, args.sysfs)]
    return [
        pci_report.FunctionView(
            fn.bdf, fn.parse(), fn, pci.vfio_readiness(fn, functions, args.sysfs, args.dev)
        )
        for fn in selected
    ]


def _dump_views(path: Path, address: str | None) -> list[pci_report.FunctionView]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise NotFoundError(f"cannot read the dump {path}: {exc.strerror or exc}") from exc
    views = [
        pci_report.FunctionView(
            fn.bdf or "0000:00:00.0", parse_config_space(fn.data), None, None, fn.description
        )
        for fn in load_dump(raw)
    ]
    if address is not None:
        bdf = pci.parse_address(address)
        views = [v for v in views if v.bdf == bdf]
        if not views:
            raise NotFoundError(f"no function {bdf} in the dump {path}")
    return views


def _serial_ports(args: argparse.Namespace, address: str | None) -> list[serial.SerialPort]:
    if address is None:
        return serial.list_ports(args.sysfs, args.dev)
    return [serial.find_port(address, args.sysfs, args.dev)]


# --- nubs -----------------------------------------------------------------------------------


class _Nubs:
    """A nubs list under construction; each nub is remembered by a key for its children."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.index: dict[str, int] = {}

    def add(self, key: str, name: str, cls: str, props: dict, parent: str | None) -> None:
        """Append a nub whose parent is the nub added under key ``parent`` (if any)."""
        self.index[key] = len(self.items)
        parent_index = self.index.get(parent) if parent is not None else None
        self.items.append({"name": name, "class": cls, "properties": props, "parent": parent_index})


def _parents_first(functions: list[pci.PCIFunction]) -> list[pci.PCIFunction]:
    by_bdf = {fn.bdf: fn for fn in functions}
    ordered: dict[str, pci.PCIFunction] = {}

    def visit(fn: pci.PCIFunction) -> None:
        if fn.bdf in ordered:
            return
        if fn.parent in by_bdf and fn.parent != fn.bdf:
            visit(by_bdf[fn.parent])
        ordered[fn.bdf] = fn

    for fn in functions:
        visit(fn)
    return list(ordered.values())


def build_nubs(
    functions: list[pci.PCIFunction],
    devices: list[usb.USBDeviceInfo],
    ports: list[serial.SerialPort],
) -> list[dict[str, Any]]:
    """The nubs a family would publish, as ``{"name", "class", "properties", "parent"}``.

    Parents come before their children: PCI functions (a bridge parents the functions
    behind it), then USB devices (a root hub's parent is its host controller's PCI
    function, other devices hang off their hub) each followed by its interfaces, then
    serial ports (under their USB interface or PCI function when those are listed).
    """
    nubs = _Nubs()
    for fn in _parents_first(functions):
        nubs.add(fn.bdf, fn.bdf, "IOPCIDevice", pci.nub_properties(fn), fn.parent)
    for dev in devices:
        if dev.name.startswith("usb"):  # a root hub, below its host controller
            parent = Path(os.path.realpath(dev.sysfs_path)).parent.name
        else:
            parent = "usb:" + (
                dev.name.rsplit(".", 1)[0] if "." in dev.name else f"usb{dev.busnum}"
            )
        nubs.add(f"usb:{dev.name}", dev.name, "IOUSBHostDevice", usb.device_properties(dev), parent)
        for intf in dev.interfaces:
            props = usb.interface_properties(dev, intf)
            key = f"{dev.address}:{intf.bInterfaceNumber}"
            nubs.add(key, intf.name, "IOUSBHostInterface", props, f"usb:{dev.name}")
    for port in ports:
        parent = None
        if port.usb_address is not None:
            parent = f"{port.usb_address}:{port.usb_interface}"
        elif port.pci_address is not None:
            parent = port.pci_address.removeprefix("pci:")
        props = serial.nub_properties(port)
        nubs.add(port.address, port.name, "IOSerialStreamSync", props, parent)
    return nubs.items


def match_summaries(
    nubs: list[dict[str, Any]], personalities: list[str] | None = None, verbose: int = 0
) -> dict[str, str]:
    """Nub name -> one line saying which personality wins it, with what score.

    The passive match of ``hwkit match`` on ``personalities`` (default: the usual
    search path); no driver's ``probe()`` runs; ``hwkit probe --nubs F`` + ``hwkit match --explain
    --nubs F`` says why.
    """
    # Imported here: probing works on a machine where matching cannot load.
    from hwkit.matching.catalogue import Catalogue
    from hwkit.matching.explain import format_summary
    from hwkit.matching.matcher import match_nub
    from hwkit.matching.nubs import build_nubs as registry_from_nubs

    if not verbose:
        logging.getLogger("hwkit.matching").setLevel(logging.ERROR)
    catalogue = Catalogue.load(personalities)
    registry, entries = registry_from_nubs(nubs, "hwkit probe")
    return {
        entry.name: format_summary(match_nub(catalogue, entry, registry=registry, explain=True))
        for entry in entries
    }


def _add_matches(result: dict[str, list[Any]], matches: dict[str, str]) -> None:
    """Put each nub's match line into the JSON object describing it."""
    for item in result.get("pci", []):
        item["match"] = matches.get(item["bdf"])
    for item in result.get("usb", []):
        item["match"] = matches.get(item["sysfs_name"])
        for intf in item["interfaces"]:
            intf["match"] = matches.get(intf["name"])
    for item in result.get("serial", []):
        item["match"] = matches.get(item["name"])


# --- output ---------------------------------------------------------------------------------


def _unprivileged_note(views: list[pci_report.FunctionView]) -> str | None:
    partial = [
        v for v in views if v.function and v.function.config and not v.function.config_complete
    ]
    if not partial:
        return None
    return (
        f"running unprivileged: {len(partial)} PCI function(s) show only the first 64 bytes "
        "of config space (no capabilities); run as root to see everything"
    )


def _write_nubs(target: str, nubs: list[dict[str, Any]]) -> int:
    text = json.dumps(nubs, indent=2) + "\n"
    if target == "-":
        sys.stdout.write(text)
    else:
        Path(target).write_text(text)
        print(f"wrote {len(nubs)} nub(s) to {target}", file=sys.stderr)
    return 0


def _save_dump(target: str, views: list[pci_report.FunctionView]) -> int:
    dumped = [DumpedFunction(v.bdf, v.description or "", v.space.data) for v in views if v.space]
    Path(target).write_text(format_lspci_dump(dumped))
    print(f"wrote {len(dumped)} function(s) to {target}", file=sys.stderr)
    return 0


def _text(
    args: argparse.Namespace,
    buses: list[str],
    found: tuple[list, list, list],
    matches: dict[str, str],
) -> list[str]:
    devices, views, ports = found
    lines: list[str] = []
    if "usb" in buses:
        lines.append(
            f"USB: {len(devices)} device(s)" if devices else "USB: no devices (no USB bus?)"
        )
        for dev in devices:
            lines += usb_report.format_device(dev, verbose=not args.brief)
    if "pci" in buses:
        lines.append(f"PCI: {len(views)} function(s)" + (f" from {args.dump}" if args.dump else ""))
        note = _unprivileged_note(views)
        if note:
            lines.append(f"Note: {note}")
        for view in views:
            text = pci_report.format_function(view, said_unprivileged=bool(note))
            if args.brief:  # one line, with the driver as lspci -k would add it
                driver = view.function.driver if view.function is not None else None
                text = [text[0] + (f" [driver: {driver}]" if driver else "")]
            lines += text
    if "serial" in buses:
        lines.append(f"Serial: {len(ports)} port(s)")
        for port in ports:
            lines += serial_report.format_port(port)
    if matches:
        lines.append("Matching (passive; hwkit match --explain says why):")
        lines += [f"  {line}" for line in matches.values()]
    return lines


def run(args: argparse.Namespace) -> int:
    """Probe what ``args`` asks for and print it (or write nubs / a dump); exit 0.

    Raises:
        BadArgument: an address or option that does not fit.
        NotFoundError: no device at the address, or an unreadable dump.
        DescriptorError: a malformed dump.
    """
    buses, address = _split_target(args)
    devices = _usb_devices(args, address) if "usb" in buses else []
    views = _pci_views(args, address) if "pci" in buses else []
    ports = _serial_ports(args, address) if "serial" in buses else []
    if args.save_dump:
        return _save_dump(args.save_dump, views)
    # A dump's functions become nubs too, so matching can be tried on a bug report's dump.
    functions = [
        v.function or pci.function_from_config(v.bdf, v.space.data) for v in views if v.space
    ]
    if args.nubs:
        return _write_nubs(args.nubs, build_nubs(functions, devices, ports))
    matches = {}
    if args.match:
        nubs = build_nubs(functions, devices, ports)
        matches = match_summaries(nubs, args.personalities, args.verbose)
    if not args.json:
        print("\n".join(_text(args, buses, (devices, views, ports), matches)))
        return 0
    result: dict[str, list[Any]] = {}
    if "usb" in buses:
        result["usb"] = [usb_report.device_to_json(d) for d in devices]
    if "pci" in buses:
        result["pci"] = [pci_report.function_to_json(v) for v in views]
    if "serial" in buses:
        result["serial"] = [serial_report.port_to_json(p) for p in ports]
    if matches:
        _add_matches(result, matches)
    print(json.dumps(result[buses[0]] if len(buses) == 1 else result, indent=2))
    return 0


def register(sub: Any) -> None:
    """Add ``probe`` to the ``hwkit`` sub-commands (see tools/cli.py)."""
    p = sub.add_parser(
        "probe",
        help="show USB descriptors, PCI config space and serial ports (as lsusb -v / lspci -vvv)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("bus", nargs="?", metavar="BUS", help="usb, pci or serial (default: all)")
    p.add_argument(
        "address",
        nargs="?",
        metavar="ADDRESS",
        help="one device: usb:VVVV:PPPP, usb:BUS-PORT.PATH, pci:0000:00:03.0, serial:/dev/ttyUSB0",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--brief", action="store_true", help="one line or so per device")
    p.add_argument(
        "--dump", metavar="FILE", help="read PCI config space from a saved lspci -x dump"
    )
    p.add_argument("--save-dump", metavar="FILE", help="write PCI config space as lspci -xxxx does")
    p.add_argument("--nubs", metavar="FILE", help="write the nubs as JSON ('-' for stdout)")
    p.add_argument(
        "--match", action="store_true", help="say which personality each device would get"
    )
    p.add_argument(
        "--personalities",
        action="extend",
        nargs="+",
        metavar="DIR",
        help="with --match: personality folders or files (replace the default search path)",
    )
    p.add_argument("--sysfs", type=Path, default=Path("/sys"), help=argparse.SUPPRESS)
    p.add_argument("--dev", type=Path, default=Path("/dev"), help=argparse.SUPPRESS)
    p.set_defaults(func=run)
