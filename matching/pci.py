"""PCI matching: IOPCIFamily's match strings against config registers 0x00, 0x2C and 0x08.

Each key's value is a string, a space-separated list of ``0xVALUE[&0xMASK]`` entries
(the ``0x`` is optional, as ``strtoul(..., 16)`` allows; spaces around ``&`` are
allowed; write ``&amp;`` in XML). An entry matches when
``(value & mask) == (register & mask)``; entries of one key are ORed, keys are ANDed:

================== ============================= ==============
key                register                      default mask
================== ============================= ==============
IOPCIPrimaryMatch  0x00 = device << 16 | vendor  0xffffffff
IOPCISecondaryMatch 0x2C = subsystem << 16 | subvendor 0xffffffff
IOPCIMatch         0x00, and if no entry fits, 0x2C 0xffffffff
IOPCIClassMatch    0x08 = class-code << 8 | revision 0xffffff00
================== ============================= ==============

A PCI nub carries ``vendor-id``, ``device-id``, ``subsystem-vendor-id``,
``subsystem-id``, ``class-code`` (24 bits) and ``revision-id``; the registers are built
from them so that masks behave exactly as on config space. Unlike IOPCIFamily, which
stops reading a malformed string at the first bad character, hwkit rejects the
personality at load. PCI matching adds no family score (as on x86 Macs, where only
IOProbeScore orders PCI drivers).

``IONameMatch`` also works on PCI nubs: their names include ``pciVVVV,DDDD``,
``pciSSSS,ssss`` (subsystem) and ``pciclass,CCCCCC``, as Apple's PCI nubs'
``compatible`` property does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hwkit.matching.context import Failure, MatchContext, Test

PCI_DEVICE = "IOPCIDevice"

#: key -> (registers tried in order, default mask)
KEYS: dict[str, tuple[tuple[int, ...], int]] = {
    "IOPCIMatch": ((0x00, 0x2C), 0xFFFFFFFF),
    "IOPCIPrimaryMatch": ((0x00,), 0xFFFFFFFF),
    "IOPCISecondaryMatch": ((0x2C,), 0xFFFFFFFF),
    "IOPCIClassMatch": ((0x08,), 0xFFFFFF00),
}

#: What each register holds, for explanations.
REGISTER_NAMES = {0x00: "device|vendor", 0x2C: "subsystem|subvendor", 0x08: "class|revision"}

#: Nub properties, their widths in bits, and the register each goes into.
NUB_FIELDS = {
    "vendor-id": 16,
    "device-id": 16,
    "subsystem-vendor-id": 16,
    "subsystem-id": 16,
    "class-code": 24,
    "revision-id": 8,
}

_HEX = r"(?:0[xX])?([0-9a-fA-F]{1,8})"
_ENTRY = re.compile(rf"{_HEX}(?:\s*&\s*{_HEX})?")


@dataclass(frozen=True)
class Entry:
    """One ``value&mask`` entry."""

    value: int
    mask: int

    def fits(self, register: int) -> bool:
        """True when the register agrees with the value on the mask's bits."""
        return (self.value & self.mask) == (register & self.mask)

    def __str__(self) -> str:
        return f"{self.value:#010x}&{self.mask:#010x}"


def parse_match_string(text: str, default_mask: int) -> list[Entry]:
    """Parse ``"0x11e81234 0x10008086&0x0000ffff"`` into entries.

    Raises:
        ValueError: the string is empty or has something that is not an entry; the
            message quotes the offending text.
    """
    entries: list[Entry] = []
    position = 0
    text = text.strip()
    if not text:
        raise ValueError("is an empty match string")
    while position < len(text):
        found = _ENTRY.match(text, position)
        end = found.end() if found else position
        if found is None or (end < len(text) and not text[end].isspace()):
            bad = text[position:].split()[0]
            raise ValueError(f"has {bad!r}, which is not 0xVALUE or 0xVALUE&0xMASK (hex, 32-bit)")
        mask = int(found.group(2), 16) if found.group(2) else default_mask
        entries.append(Entry(int(found.group(1), 16), mask))
        position = end
        while position < len(text) and text[position].isspace():
            position += 1
    return entries


def config_registers(ctx: MatchContext) -> dict[int, int] | str:
    """Registers 0x00, 0x2C and 0x08 built from the nub's properties.

    Returns the missing or malformed property's description instead when the nub
    lacks one, so the failure can name it.
    """
    fields: dict[str, int] = {}
    for name, bits in NUB_FIELDS.items():
        value = ctx.props.get(name)
        if value is None:
            return f"no {name}"
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << bits:
            return f"{name} {value!r} (not a {bits}-bit integer)"
        fields[name] = value
    return {
        0x00: fields["device-id"] << 16 | fields["vendor-id"],
        0x2C: fields["subsystem-id"] << 16 | fields["subsystem-vendor-id"],
        0x08: fields["class-code"] << 8 | fields["revision-id"],
    }


@dataclass
class PciKey:
    """One compiled PCI key: the registers it reads and its entries."""

    key: str
    registers: tuple[int, ...]
    entries: list[Entry]

    def test(self, ctx: MatchContext) -> Failure | None:
        """Pass when an entry fits one of the key's registers (tried in order)."""
        registers = ctx.derived("pci-config", config_registers)
        wanted = " or ".join(str(e) for e in self.entries)
        if isinstance(registers, str):
            return Failure(self.key, wanted, registers)
        for reg in self.registers:
            if any(entry.fits(registers[reg]) for entry in self.entries):
                return None
        got = ", ".join(
            f"config {reg:#04x} ({REGISTER_NAMES[reg]}) = {registers[reg]:#010x}"
            for reg in self.registers
        )
        return Failure(self.key, wanted, got)

    def index_keys(self) -> frozenset[tuple[str, int]] | None:
        """Vendor (or base class) index keys, or None when a mask hides those bits."""
        if self.key == "IOPCIClassMatch":
            if all(e.mask & 0xFF000000 == 0xFF000000 for e in self.entries):
                return frozenset(("pci-class", e.value >> 24) for e in self.entries)
            return None
        if all(e.mask & 0xFFFF == 0xFFFF for e in self.entries):
            return frozenset(("pci-vendor", e.value & 0xFFFF) for e in self.entries)
        return None


def is_pci_key(key: str) -> bool:
    """True for the IOPCI*Match keys."""
    return key in KEYS


def compile_pci(
    provider: str, table: Mapping[str, Any], errors: list[tuple[str, str]]
) -> tuple[list[PciKey], list[Test]]:
    """Validate and compile the PCI keys of `table`; append (key, message) errors."""
    compiled: list[PciKey] = []
    for key, (registers, default_mask) in KEYS.items():
        if key not in table:
            continue
        value = table[key]
        if provider != PCI_DEVICE:
            errors.append((key, f"is a PCI matching key but IOProviderClass is {provider!r}"))
        elif not isinstance(value, str):
            errors.append((key, f"must be a <string> of 0xVALUE[&0xMASK] entries, not {value!r}"))
        else:
            try:
                compiled.append(PciKey(key, registers, parse_match_string(value, default_mask)))
            except ValueError as exc:
                errors.append((key, str(exc)))
    return compiled, [k.test for k in compiled]


def pci_index_keys(keys: list[PciKey]) -> frozenset[tuple[str, int]]:
    """Index by the first ID key whose masks keep the vendor bits, else by base class."""
    for key in sorted(keys, key=lambda k: list(KEYS).index(k.key)):
        found = key.index_keys()
        if found is not None:
            return found
    return frozenset()


def nub_index_keys(props: Mapping[str, Any]) -> set[tuple[str, int]]:
    """The index keys a PCI nub can be found under."""
    keys = set()
    for name in ("vendor-id", "subsystem-vendor-id"):
        if isinstance(props.get(name), int):
            keys.add(("pci-vendor", props[name]))
    if isinstance(props.get("class-code"), int):
        keys.add(("pci-class", props["class-code"] >> 16))
    return keys


def pci_names(ctx: MatchContext) -> list[str]:
    """``pciVVVV,DDDD``, ``pciSSSS,ssss`` and ``pciclass,CCCCCC`` for IONameMatch."""
    p = ctx.props
    names = []
    for a, b in (("vendor-id", "device-id"), ("subsystem-vendor-id", "subsystem-id")):
        if isinstance(p.get(a), int) and isinstance(p.get(b), int):
            names.append(f"pci{p[a]:x},{p[b]:x}")
    if isinstance(p.get("class-code"), int):
        names.append(f"pciclass,{p['class-code']:06x}")
    return names
