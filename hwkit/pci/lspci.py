"""Read ``lspci -vvv`` text and compare it with ``hwkit probe pci --json``, field by field.

lspci (pciutils) is the reference every PCI user trusts, so hwkit's parser is checked
against it on every machine and guest that has both: BAR addresses, sizes and types,
capability offsets and IDs, extended capability offsets and versions, MSI-X table
sizes and the bound driver. :func:`compare` lists every disagreement in words; an
empty list means the two agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from hwkit.pci.config import normalize_bdf

_DEVICE = re.compile(r"^((?:[0-9a-f]{4,}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) (.*)$")
_REGION = re.compile(
    r"^Region (?P<index>\d+): (?P<kind>Memory at|I/O ports at) (?P<address>\S+)"
    r"(?: \((?P<width>32|64)-bit, (?P<pf>non-prefetchable|prefetchable)\))?"
    r".*?(?:\[size=(?P<size>\d+)(?P<unit>[KMGT]?)\])?$"
)
_ROM = re.compile(
    r"^Expansion ROM at (?P<address>[0-9a-f]+).*?(?:\[size=(?P<size>\d+)(?P<unit>[KMGT]?)\])?$"
)
_CAP = re.compile(r"^Capabilities: \[(?P<offset>[0-9a-f]+)(?: v(?P<version>\d+))?\] (?P<title>.*)$")
_MSIX = re.compile(r"MSI-X: Enable[+-] Count=(\d+)")
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}

# lspci's capability titles (ls-caps.c, ls-ecaps.c) -> capability IDs.
CAPABILITY_TITLES = {
    "Power Management": 0x01,
    "AGP": 0x02,
    "Vital Product Data": 0x03,
    "Slot ID": 0x04,
    "MSI:": 0x05,
    "CompactPCI hot-swap": 0x06,
    "PCI-X": 0x07,
    "HyperTransport": 0x08,
    "Vendor Specific Information": 0x09,
    "Debug port": 0x0A,
    "CompactPCI central resource control": 0x0B,
    "Hot-plug capable": 0x0C,
    "Subsystem": 0x0D,
    "AGP3": 0x0E,
    "Secure device": 0x0F,
    "Express": 0x10,
    "MSI-X": 0x11,
    "SATA HBA": 0x12,
    "PCI Advanced Features": 0x13,
    "Enhanced Allocation": 0x14,
}
EXTENDED_TITLES = {
    "Advanced Error Reporting": 0x0001,
    "Virtual Channel": 0x0002,
    "Device Serial Number": 0x0003,
    "Power Budgeting": 0x0004,
    "Root Complex Link": 0x0005,
    "Vendor Specific Information: ID=": 0x000B,
    "Access Control Services": 0x000D,
    "Alternative Routing-ID Interpretation": 0x000E,
    "Address Translation Service": 0x000F,
    "Single Root I/O Virtualization": 0x0010,
    "Multicast": 0x0012,
    "Page Request Interface": 0x0013,
    "Physical Resizable BAR": 0x0015,
    "Latency Tolerance Reporting": 0x0018,
    "Secondary PCI Express": 0x0019,
    "Process Address Space ID": 0x001B,
    "Downstream Port Containment": 0x001D,
    "L1 PM Substates": 0x001E,
    "Precision Time Measurement": 0x001F,
    "Designated Vendor-Specific": 0x0023,
    "Data Link Feature": 0x0025,
    "Physical Layer 16.0 GT/s": 0x0026,
    "Lane Margining at the Receiver": 0x0027,
}


@dataclass
class LspciFunction:
    """What ``lspci -vvv`` says about one function."""

    bdf: str
    description: str
    bars: list[dict[str, Any]] = field(default_factory=list)
    capabilities: list[tuple[int, str]] = field(default_factory=list)
    extended_capabilities: list[tuple[int, int, str]] = field(default_factory=list)
    msix_count: int | None = None
    driver: str | None = None
    expansion_rom: dict[str, int | None] | None = None
    access_denied: bool = False


def _title_id(title: str, table: dict[str, int]) -> int | None:
    return next((cid for prefix, cid in table.items() if title.startswith(prefix)), None)


def _region(m: re.Match[str]) -> dict[str, Any]:
    address = m["address"]
    bar: dict[str, Any] = {
        "index": int(m["index"]),
        "kind": "io" if m["kind"].startswith("I/O") else "memory",
        "address": int(address, 16) if re.fullmatch(r"[0-9a-f]+", address) else None,
        "size": int(m["size"]) * _UNITS[m["unit"]] if m["size"] else None,
    }
    if m["width"]:
        bar["is_64bit"] = m["width"] == "64"
        bar["prefetchable"] = m["pf"] == "prefetchable"
    return bar


def parse_lspci_verbose(text: str) -> list[LspciFunction]:
    """Parse ``lspci -vvv`` (or ``-v``) output; unknown lines are skipped."""
    functions: list[LspciFunction] = []
    for raw in text.splitlines():
        line = raw.strip()
        if m := _DEVICE.match(raw):
            functions.append(LspciFunction(normalize_bdf(m[1]), m[2]))
            continue
        if not functions or not raw.startswith("\t"):
            continue
        fn = functions[-1]
        if m := _REGION.match(line):
            fn.bars.append(_region(m))
        elif m := _ROM.match(line):
            size = int(m["size"]) * _UNITS[m["unit"]] if m["size"] else None
            fn.expansion_rom = {"address": int(m["address"], 16), "size": size}
        elif line == "Capabilities: <access denied>":
            fn.access_denied = True
        elif m := _CAP.match(line):
            offset = int(m["offset"], 16)
            if m["version"] is not None:
                fn.extended_capabilities.append((offset, int(m["version"]), m["title"]))
            else:
                fn.capabilities.append((offset, m["title"]))
            if c := _MSIX.search(m["title"]):
                fn.msix_count = int(c[1])
        elif line.startswith("Kernel driver in use:"):
            fn.driver = line.split(":", 1)[1].strip()
    return functions


def _compare_bars(probe: dict[str, Any], ref: LspciFunction) -> list[str]:
    out = []
    bars = {b["index"]: b for b in probe["bars"]}
    for bar in ref.bars:
        mine = bars.pop(bar["index"], None)
        if mine is None:
            out.append(f"BAR{bar['index']}: lspci shows it, hwkit does not")
            continue
        for key, value in bar.items():
            if value is not None and mine.get(key) != value:
                out.append(f"BAR{bar['index']} {key}: hwkit {mine.get(key)!r}, lspci {value!r}")
    out.extend(f"BAR{index}: hwkit shows it, lspci does not" for index in bars)
    rom, ref_rom = probe.get("expansion_rom"), ref.expansion_rom
    if ref_rom is not None:
        for key, value in ref_rom.items():
            mine = rom.get(key) if rom else None
            if value is not None and mine != value:
                out.append(f"expansion ROM {key}: hwkit {mine!r}, lspci {value!r}")
    return out


def _compare_caps(probe: dict[str, Any], ref: LspciFunction) -> list[str]:
    out = []
    mine = [(c["offset"], c["id"]) for c in probe["capabilities"]]
    theirs = [(off, _title_id(title, CAPABILITY_TITLES)) for off, title in ref.capabilities]
    if [o for o, _ in mine] != [o for o, _ in theirs]:
        out.append(
            f"capability offsets: hwkit {[hex(o) for o, _ in mine]}, "
            f"lspci {[hex(o) for o, _ in theirs]}"
        )
    for (off, cid), (_, ref_id) in zip(mine, theirs, strict=False):
        if ref_id is not None and cid != ref_id:
            out.append(f"capability at 0x{off:02x}: hwkit id 0x{cid:02x}, lspci 0x{ref_id:02x}")
    mine_ext = [(c["offset"], c.get("version")) for c in probe["extended_capabilities"]]
    theirs_ext = [(off, ver) for off, ver, _ in ref.extended_capabilities]
    if mine_ext != theirs_ext:
        out.append(f"extended capabilities (offset, version): hwkit {mine_ext}, lspci {theirs_ext}")
    for c, (_, _, title) in zip(
        probe["extended_capabilities"], ref.extended_capabilities, strict=False
    ):
        ref_id = _title_id(title, EXTENDED_TITLES)
        if ref_id is not None and c["id"] != ref_id:
            out.append(
                f"extended capability at 0x{c['offset']:03x}: hwkit id {c['id']}, lspci {ref_id}"
            )
    msix = next((c for c in probe["capabilities"] if c["id"] == 0x11), None)
    count = msix["fields"].get("table_size") if msix else None
    if ref.msix_count is not None and count != ref.msix_count:
        out.append(f"MSI-X count: hwkit {count}, lspci {ref.msix_count}")
    return out


def compare(probe: dict[str, Any], ref: LspciFunction) -> list[str]:
    """Every disagreement between one function of ``probe pci --json`` and lspci's view.

    Capabilities are compared only when lspci could read them (root); the driver only
    when lspci names one.
    """
    out = [f"{ref.bdf}: {d}" for d in _compare_bars(probe, ref)]
    if not ref.access_denied:
        out += [f"{ref.bdf}: {d}" for d in _compare_caps(probe, ref)]
    if ref.driver is not None and probe.get("driver") != ref.driver:
        out.append(f"{ref.bdf}: driver: hwkit {probe.get('driver')!r}, lspci {ref.driver!r}")
    return out


def compare_all(probe: list[dict[str, Any]], text: str) -> list[str]:
    """Compare a whole ``probe pci --json`` list with a whole ``lspci -vvv`` output.

    Functions only one side lists are differences too.
    """
    mine = {f["bdf"]: f for f in probe}
    out = []
    for ref in parse_lspci_verbose(text):
        fn = mine.pop(ref.bdf, None)
        if fn is None:
            out.append(f"{ref.bdf}: lspci lists it, hwkit does not")
        else:
            out.extend(compare(fn, ref))
    out.extend(f"{bdf}: hwkit lists it, lspci does not" for bdf in mine)
    return out
