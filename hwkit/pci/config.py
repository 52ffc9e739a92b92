"""PCI configuration space, parsed from bytes: header, BARs, capability chains, dumps.

Pure functions over the bytes of a function's config space, whichever way they were
read: the sysfs ``config`` file (64 bytes unprivileged, 256 or 4096 as root), VFIO's
config region, or a saved ``lspci -x``/``-xxx``/``-xxxx`` dump (:func:`parse_lspci_dump`).
Register offsets and bits are declared with the PCI Local Bus 3.0 and PCI Express Base
names; capability decoders live in :mod:`hwkit.pci.capabilities`.

A capability pointer that loops or leaves config space raises
:class:`hwkit.errors.DescriptorError` from the walkers (or, with ``strict=False`` in
:func:`parse_config_space`, becomes a line in ``problems``); walking never hangs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import IntEnum, IntFlag
from typing import Any

from hwkit.errors import DescriptorError
from hwkit.pci import capabilities as caps
from hwkit.pci.names import capability_name, extended_capability_name

CONFIG_HEADER_SIZE = 64
CONFIG_SPACE_SIZE = 256
EXTENDED_CONFIG_SPACE_SIZE = 4096
MAX_CAPABILITIES = 48  # as the kernel's PCI_FIND_CAP_TTL: no list is longer


class Reg(IntEnum):
    """Offsets of the header registers common to every layout (PCI 3.0 §6.1)."""

    VENDOR_ID = 0x00
    DEVICE_ID = 0x02
    COMMAND = 0x04
    STATUS = 0x06
    REVISION_ID = 0x08
    CLASS_CODE = 0x09  # 3 bytes: programming interface, subclass, base class
    CACHE_LINE_SIZE = 0x0C
    LATENCY_TIMER = 0x0D
    HEADER_TYPE = 0x0E
    BIST = 0x0F
    BAR0 = 0x10
    CAPABILITIES_POINTER = 0x34
    INTERRUPT_LINE = 0x3C
    INTERRUPT_PIN = 0x3D


class Type0(IntEnum):
    """Type 0 (endpoint) header registers (PCI 3.0 §6.1)."""

    CARDBUS_CIS_POINTER = 0x28
    SUBSYSTEM_VENDOR_ID = 0x2C
    SUBSYSTEM_ID = 0x2E
    EXPANSION_ROM_BASE = 0x30
    MIN_GNT = 0x3E
    MAX_LAT = 0x3F


class Type1(IntEnum):
    """Type 1 (PCI-to-PCI bridge) header registers (PCI-to-PCI Bridge 1.2 §3.2)."""

    PRIMARY_BUS = 0x18
    SECONDARY_BUS = 0x19
    SUBORDINATE_BUS = 0x1A
    SECONDARY_LATENCY_TIMER = 0x1B
    IO_BASE = 0x1C
    IO_LIMIT = 0x1D
    SECONDARY_STATUS = 0x1E
    MEMORY_BASE = 0x20
    MEMORY_LIMIT = 0x22
    PREFETCHABLE_BASE = 0x24
    PREFETCHABLE_LIMIT = 0x26
    PREFETCHABLE_BASE_UPPER = 0x28
    PREFETCHABLE_LIMIT_UPPER = 0x2C
    IO_BASE_UPPER = 0x30
    IO_LIMIT_UPPER = 0x32
    EXPANSION_ROM_BASE = 0x38
    BRIDGE_CONTROL = 0x3E


class Command(IntFlag):
    """COMMAND register bits (PCI 3.0 §6.2.2)."""

    IO_SPACE = 1 << 0
    MEMORY_SPACE = 1 << 1
    BUS_MASTER = 1 << 2
    SPECIAL_CYCLES = 1 << 3
    MEMORY_WRITE_AND_INVALIDATE = 1 << 4
    VGA_PALETTE_SNOOP = 1 << 5
    PARITY_ERROR_RESPONSE = 1 << 6
    IDSEL_STEPPING = 1 << 7
    SERR_ENABLE = 1 << 8
    FAST_BACK_TO_BACK = 1 << 9
    INTERRUPT_DISABLE = 1 << 10


class Status(IntFlag):
    """STATUS register bits (PCI 3.0 §6.2.3; bits 10..9 are DEVSEL timing)."""

    IMMEDIATE_READINESS = 1 << 0
    INTERRUPT_STATUS = 1 << 3
    CAPABILITIES_LIST = 1 << 4
    CAPABLE_66MHZ = 1 << 5
    UDF_SUPPORTED = 1 << 6
    FAST_BACK_TO_BACK_CAPABLE = 1 << 7
    MASTER_DATA_PARITY_ERROR = 1 << 8
    SIGNALED_TARGET_ABORT = 1 << 11
    RECEIVED_TARGET_ABORT = 1 << 12
    RECEIVED_MASTER_ABORT = 1 << 13
    SIGNALED_SYSTEM_ERROR = 1 << 14
    DETECTED_PARITY_ERROR = 1 << 15


DEVSEL_TIMING = {0: "fast", 1: "medium", 2: "slow", 3: "reserved"}


class BarBits(IntFlag):
    """Low bits of a Base Address Register (PCI 3.0 §6.2.5.1)."""

    IO_SPACE = 1 << 0
    MEMORY_TYPE_64 = 0b10 << 1
    MEMORY_TYPE_BELOW_1M = 0b01 << 1
    PREFETCHABLE = 1 << 3


class HeaderLayout(IntEnum):
    """HEADER_TYPE bits 6..0; bit 7 is multi-function."""

    ENDPOINT = 0
    PCI_BRIDGE = 1
    CARDBUS_BRIDGE = 2


def _u(data: bytes, offset: int, size: int, what: str = "register") -> int:
    """Read a little-endian register of ``size`` bytes at ``offset``.

    Raises:
        DescriptorError: the register lies beyond the bytes that were read.
    """
    if offset < 0 or offset + size > len(data):
        raise DescriptorError(
            f"{what} at offset 0x{offset:03x} lies beyond the {len(data)} bytes of config "
            "space read",
            offset,
        )
    return int.from_bytes(data[offset : offset + size], "little")


@dataclass(frozen=True)
class Header:
    """The registers every header layout has, and the layout-specific ones.

    Fields of the other layout are None (``subsystem_vendor_id`` on a bridge,
    ``secondary_bus`` on an endpoint).
    """

    vendor_id: int
    device_id: int
    command: Command
    status: Status
    revision_id: int
    class_code: int
    cache_line_size: int
    latency_timer: int
    header_type: int
    bist: int
    capabilities_pointer: int
    interrupt_line: int
    interrupt_pin: int
    subsystem_vendor_id: int | None = None
    subsystem_id: int | None = None
    expansion_rom_base: int | None = None
    min_gnt: int | None = None
    max_lat: int | None = None
    primary_bus: int | None = None
    secondary_bus: int | None = None
    subordinate_bus: int | None = None
    secondary_status: int | None = None
    bridge_control: int | None = None
    io_window: tuple[int, int] | None = None
    memory_window: tuple[int, int] | None = None
    prefetchable_window: tuple[int, int] | None = None

    @property
    def layout(self) -> int:
        """HEADER_TYPE bits 6..0 (see :class:`HeaderLayout`)."""
        return self.header_type & 0x7F

    @property
    def multifunction(self) -> bool:
        """HEADER_TYPE bit 7."""
        return bool(self.header_type & 0x80)

    @property
    def devsel_timing(self) -> str:
        """STATUS bits 10..9 by name."""
        return DEVSEL_TIMING[(self.status >> 9) & 3]


def _window(base: int, limit: int) -> tuple[int, int] | None:
    return (base, limit) if limit >= base else None


def _bridge_windows(data: bytes) -> dict[str, Any]:
    """The I/O, memory and prefetchable windows of a type 1 header (bridge 1.2 §3.2.5)."""
    io_base, io_limit = _u(data, Type1.IO_BASE, 1), _u(data, Type1.IO_LIMIT, 1)
    io_lo, io_hi = (io_base & 0xF0) << 8, ((io_limit & 0xF0) << 8) | 0xFFF
    if io_base & 0x0F == 1:  # 32-bit I/O addressing
        io_lo |= _u(data, Type1.IO_BASE_UPPER, 2) << 16
        io_hi |= _u(data, Type1.IO_LIMIT_UPPER, 2) << 16
    mem_lo = (_u(data, Type1.MEMORY_BASE, 2) & 0xFFF0) << 16
    mem_hi = ((_u(data, Type1.MEMORY_LIMIT, 2) & 0xFFF0) << 16) | 0xFFFFF
    pf_base, pf_limit = _u(data, Type1.PREFETCHABLE_BASE, 2), _u(data, Type1.PREFETCHABLE_LIMIT, 2)
    pf_lo, pf_hi = (pf_base & 0xFFF0) << 16, ((pf_limit & 0xFFF0) << 16) | 0xFFFFF
    if pf_base & 0x0F == 1:  # 64-bit prefetchable
        pf_lo |= _u(data, Type1.PREFETCHABLE_BASE_UPPER, 4) << 32
        pf_hi |= _u(data, Type1.PREFETCHABLE_LIMIT_UPPER, 4) << 32
    return {
        "io_window": _window(io_lo, io_hi),
        "memory_window": _window(mem_lo, mem_hi),
        "prefetchable_window": _window(pf_lo, pf_hi),
    }


def parse_header(data: bytes) -> Header:
    """Parse the 64-byte header at the start of ``data``.

    Raises:
        DescriptorError: fewer than 64 bytes.
    """
    if len(data) < CONFIG_HEADER_SIZE:
        raise DescriptorError(
            f"config space truncated: {len(data)} bytes, the header alone is 64", len(data)
        )
    header_type = data[Reg.HEADER_TYPE]
    common: dict[str, Any] = dict(
        vendor_id=_u(data, Reg.VENDOR_ID, 2),
        device_id=_u(data, Reg.DEVICE_ID, 2),
        command=Command(_u(data, Reg.COMMAND, 2)),
        status=Status(_u(data, Reg.STATUS, 2)),
        revision_id=data[Reg.REVISION_ID],
        class_code=_u(data, Reg.CLASS_CODE, 3),
        cache_line_size=data[Reg.CACHE_LINE_SIZE],
        latency_timer=data[Reg.LATENCY_TIMER],
        header_type=header_type,
        bist=data[Reg.BIST],
        capabilities_pointer=data[Reg.CAPABILITIES_POINTER],
        interrupt_line=data[Reg.INTERRUPT_LINE],
        interrupt_pin=data[Reg.INTERRUPT_PIN],
    )
    layout = header_type & 0x7F
    if layout == HeaderLayout.ENDPOINT:
        common.update(
            subsystem_vendor_id=_u(data, Type0.SUBSYSTEM_VENDOR_ID, 2),
            subsystem_id=_u(data, Type0.SUBSYSTEM_ID, 2),
            expansion_rom_base=_u(data, Type0.EXPANSION_ROM_BASE, 4),
            min_gnt=data[Type0.MIN_GNT],
            max_lat=data[Type0.MAX_LAT],
        )
    elif layout == HeaderLayout.PCI_BRIDGE:
        common.update(
            primary_bus=data[Type1.PRIMARY_BUS],
            secondary_bus=data[Type1.SECONDARY_BUS],
            subordinate_bus=data[Type1.SUBORDINATE_BUS],
            secondary_status=_u(data, Type1.SECONDARY_STATUS, 2),
            bridge_control=_u(data, Type1.BRIDGE_CONTROL, 2),
            expansion_rom_base=_u(data, Type1.EXPANSION_ROM_BASE, 4),
            **_bridge_windows(data),
        )
    elif layout == HeaderLayout.CARDBUS_BRIDGE:
        common["capabilities_pointer"] = data[0x14]
    return Header(**common)


# --- BARs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    """One Base Address Register (a 64-bit BAR takes two slots, listed once)."""

    index: int
    kind: str  # "memory" or "io"
    address: int
    size: int | None  # None when neither a sizing mask nor sysfs said
    is_64bit: bool
    prefetchable: bool
    raw: int

    @property
    def offset(self) -> int:
        """The BAR register's offset in config space."""
        return Reg.BAR0 + 4 * self.index


def bar_size_from_mask(mask: int, mask_upper: int | None = None) -> int:
    """The size a BAR decodes, from what it reads back after writing all ones.

    ``mask`` is the low register's read-back (its type bits included), ``mask_upper``
    the upper register's for a 64-bit memory BAR. Returns 0 for an unimplemented BAR
    (read-back 0). An I/O BAR whose upper 16 bits read 0 decodes 16 address bits.
    """
    if mask & BarBits.IO_SPACE:
        bits = mask & ~0x3 & 0xFFFFFFFF
        if bits and not bits & 0xFFFF0000:
            bits |= 0xFFFF0000
        return (~bits + 1) & 0xFFFFFFFF if bits else 0
    bits = mask & ~0xF & 0xFFFFFFFF
    width = 32
    if mask_upper is not None:
        bits |= (mask_upper & 0xFFFFFFFF) << 32
        width = 64
    return (~bits + 1) & ((1 << width) - 1) if bits else 0


def bar_count(header_type: int) -> int:
    """How many BAR registers a header layout has: 6, 2 for a bridge, 1 for CardBus."""
    return {0: 6, 1: 2, 2: 1}.get(header_type & 0x7F, 0)


def sizes_from_masks(data: bytes, masks: Sequence[int]) -> list[int | None]:
    """BAR sizes from the read-backs of a sizing probe (all ones written to each BAR).

    ``data`` is the config space before the probe (it says which BARs are I/O or
    64-bit), ``masks`` the value each BAR register read back, slot by slot. The upper
    slot of a 64-bit BAR gets None; the result feeds :func:`decode_bars`.

    Raises:
        DescriptorError: fewer than 64 bytes of config space.
    """
    header = parse_header(data)
    sizes: list[int | None] = []
    count = min(bar_count(header.header_type), len(masks))
    index = 0
    while index < count:
        raw = _u(data, Reg.BAR0 + 4 * index, 4)
        is_64 = not raw & BarBits.IO_SPACE and (raw >> 1) & 0x3 == 0b10 and index + 1 < count
        if is_64:
            sizes += [bar_size_from_mask(masks[index], masks[index + 1]), None]
            index += 2
        else:
            sizes.append(bar_size_from_mask(masks[index]))
            index += 1
    return sizes


@dataclass(frozen=True)
class ExpansionRom:
    """The Expansion ROM BAR (0x30, 0x38 on a bridge): address, size, enable bit."""

    address: int
    size: int | None
    enabled: bool


def decode_expansion_rom(header: Header, size: int | None = None) -> ExpansionRom | None:
    """The function's expansion ROM, or None when it has none (register 0, no size)."""
    base = header.expansion_rom_base
    if base is None or (not base and not size):
        return None
    return ExpansionRom(base & ~0x7FF & 0xFFFFFFFF, size or None, bool(base & 1))


def decode_bars(data: bytes, sizes: Sequence[int | None] | None = None) -> tuple[Bar, ...]:
    """The implemented BARs of the function whose config space is ``data``.

    ``sizes`` gives each BAR slot's size where known (from sysfs ``resource`` or a
    sizing mask; index i is BAR i). A BAR is listed when its register is non-zero or
    its size is known and non-zero; the upper half of a 64-bit BAR is not listed.

    Raises:
        DescriptorError: fewer than 64 bytes, or a 64-bit BAR in the last slot.
    """
    header = parse_header(data)
    count = bar_count(header.header_type)
    bars = []
    index = 0
    while index < count:
        raw = _u(data, Reg.BAR0 + 4 * index, 4)
        size = sizes[index] if sizes is not None and index < len(sizes) else None
        if raw & BarBits.IO_SPACE:
            bar = Bar(index, "io", raw & ~0x3, size, False, False, raw)
            step = 1
        else:
            is_64 = (raw >> 1) & 0x3 == 0b10
            if is_64 and index + 1 >= count:
                raise DescriptorError(
                    f"BAR{index} at offset 0x{Reg.BAR0 + 4 * index:02x} is 64-bit but is the "
                    "last BAR slot",
                    Reg.BAR0 + 4 * index,
                )
            address = raw & ~0xF
            if is_64:
                address |= _u(data, Reg.BAR0 + 4 * index + 4, 4) << 32
            bar = Bar(index, "memory", address, size, is_64, bool(raw & 0x8), raw)
            step = 2 if is_64 else 1
        if raw or size:
            bars.append(bar)
        index += step
    return tuple(bars)


# --- capability chains ------------------------------------------------------------------


@dataclass(frozen=True)
class Capability:
    """One capability: ``fields`` holds what :mod:`hwkit.pci.capabilities` decoded.

    ``version`` is set for extended capabilities; ``error`` says why a capability
    could not be decoded (its registers run past the bytes that were read).
    """

    id: int
    offset: int
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    version: int | None = None
    error: str | None = None


def iter_capability_offsets(data: bytes) -> Iterator[tuple[int, int]]:
    """Yield ``(offset, id)`` along the capability list that starts at 0x34.

    Stops quietly at the end of ``data`` only if the list starts beyond it (a 64-byte
    unprivileged read); a list that is empty or absent (STATUS bit 4 clear) yields
    nothing.

    Raises:
        DescriptorError: a pointer below 0x40 or past 0xFC, a pointer into bytes that
            were not read, or a loop.
    """
    header = parse_header(data)
    if not header.status & Status.CAPABILITIES_LIST:
        return
    where, ptr = (
        (0x14, data[0x14]) if header.layout == HeaderLayout.CARDBUS_BRIDGE else (0x34, data[0x34])
    )
    ptr &= 0xFC
    seen: set[int] = set()
    while ptr:
        if ptr < CONFIG_HEADER_SIZE:
            raise DescriptorError(
                f"capability pointer at offset 0x{where:02x} is 0x{ptr:02x}, inside the "
                "64-byte header",
                where,
            )
        if ptr + 2 > len(data):
            raise DescriptorError(
                f"capability pointer at offset 0x{where:02x} is 0x{ptr:02x}, beyond the "
                f"{len(data)} bytes of config space read",
                where,
            )
        if ptr in seen or len(seen) >= MAX_CAPABILITIES:
            raise DescriptorError(
                f"capability list loops: the pointer at offset 0x{where:02x} goes back to "
                f"0x{ptr:02x}",
                where,
            )
        seen.add(ptr)
        yield ptr, data[ptr]
        where, ptr = ptr + 1, data[ptr + 1] & 0xFC


def iter_extended_capability_offsets(data: bytes) -> Iterator[tuple[int, int, int]]:
    """Yield ``(offset, id, version)`` along the extended capability list at 0x100.

    Yields nothing if fewer than 0x104 bytes were read or the first header is 0 or
    all ones (no extended capabilities, or not a PCI Express function).

    Raises:
        DescriptorError: a next pointer below 0x100 or past the bytes read, or a loop.
    """
    ptr, where = 0x100, None
    seen: set[int] = set()
    while ptr:
        if ptr < CONFIG_SPACE_SIZE or ptr + 4 > len(data):
            if where is None:
                return
            raise DescriptorError(
                f"extended capability at offset 0x{where:03x} points to 0x{ptr:03x}, outside "
                f"0x100..0x{len(data) - 4:03x}",
                where,
            )
        if ptr in seen:
            raise DescriptorError(
                f"extended capability list loops: offset 0x{where:03x} points back to 0x{ptr:03x}",
                where,
            )
        seen.add(ptr)
        value = _u(data, ptr, 4)
        if value in (0, 0xFFFFFFFF):
            if where is None:
                return
            raise DescriptorError(
                f"extended capability at offset 0x{where:03x} points to 0x{ptr:03x}, which "
                f"holds 0x{value:08x}, not a capability header",
                where,
            )
        yield ptr, value & 0xFFFF, (value >> 16) & 0xF
        where, ptr = ptr, (value >> 20) & 0xFFC


def _decode(
    kind: str, decoder: Any, data: bytes, offset: int, header: Header
) -> tuple[dict, str | None]:
    try:
        return decoder(data, offset, header), None
    except DescriptorError as exc:
        return {}, f"{kind} at 0x{offset:03x} cannot be decoded: {exc}"


def find_capability(data: bytes, cap_id: int) -> int | None:
    """The offset of the first capability with ``cap_id``, or None.

    Raises:
        DescriptorError: the list is malformed before it is found.
    """
    return next((off for off, cid in iter_capability_offsets(data) if cid == cap_id), None)


def find_extended_capability(data: bytes, cap_id: int) -> int | None:
    """The offset of the first extended capability with ``cap_id``, or None.

    Raises:
        DescriptorError: the list is malformed before it is found.
    """
    return next(
        (off for off, cid, _ in iter_extended_capability_offsets(data) if cid == cap_id), None
    )


# --- the whole config space -------------------------------------------------------------


@dataclass(frozen=True)
class ConfigSpace:
    """A parsed config space: header, BARs, both capability lists, and what went wrong.

    ``problems`` holds the errors met with ``strict=False``: the parse stops at a bad
    pointer but keeps everything found before it.
    """

    data: bytes
    header: Header
    bars: tuple[Bar, ...]
    capabilities: tuple[Capability, ...]
    extended_capabilities: tuple[Capability, ...]
    problems: tuple[str, ...] = ()

    @property
    def is_pcie(self) -> bool:
        """True when the function has a PCI Express capability."""
        return any(c.id == caps.CapId.PCI_EXPRESS for c in self.capabilities)

    @property
    def capabilities_readable(self) -> bool:
        """False when only the 64-byte header was read (an unprivileged sysfs read)."""
        return len(self.data) > CONFIG_HEADER_SIZE

    def capability(self, cap_id: int) -> Capability | None:
        """The first capability with ``cap_id``, or None."""
        return next((c for c in self.capabilities if c.id == cap_id), None)

    def extended_capability(self, cap_id: int) -> Capability | None:
        """The first extended capability with ``cap_id``, or None."""
        return next((c for c in self.extended_capabilities if c.id == cap_id), None)


def _walk(data: bytes, header: Header, problems: list[str], strict: bool) -> tuple[list, list]:
    std: list[Capability] = []
    ext: list[Capability] = []
    try:
        if len(data) > CONFIG_HEADER_SIZE:
            for off, cid in iter_capability_offsets(data):
                fields, err = _decode("capability", caps.decoder(cid), data, off, header)
                std.append(Capability(cid, off, capability_name(cid), fields, error=err))
        if any(c.id == caps.CapId.PCI_EXPRESS for c in std):
            for off, cid, ver in iter_extended_capability_offsets(data):
                dec = caps.extended_decoder(cid)
                fields, err = _decode("extended capability", dec, data, off, header)
                name = extended_capability_name(cid)
                ext.append(Capability(cid, off, name, fields, version=ver, error=err))
    except DescriptorError as exc:
        if strict:
            raise
        problems.append(str(exc))
    problems.extend(c.error for c in std + ext if c.error)
    return std, ext


def parse_config_space(
    data: bytes, sizes: Sequence[int | None] | None = None, *, strict: bool = False
) -> ConfigSpace:
    """Parse everything in ``data`` (64, 256 or 4096 bytes of config space).

    ``sizes`` are the BAR sizes where known (see :func:`decode_bars`). Capabilities
    are walked only if more than the header was read; extended ones only for a PCI
    Express function with more than 256 bytes read.

    Raises:
        DescriptorError: fewer than 64 bytes; with ``strict``, also a malformed
            capability list or BAR layout.
    """
    data = bytes(data)
    header = parse_header(data)
    problems: list[str] = []
    if header.vendor_id == 0xFFFF:
        problems.append("vendor ID reads 0xffff: the function is absent or gone")
    try:
        bars = decode_bars(data, sizes)
    except DescriptorError as exc:
        if strict:
            raise
        bars = ()
        problems.append(str(exc))
    std, ext = _walk(data, header, problems, strict)
    return ConfigSpace(data, header, bars, tuple(std), tuple(ext), tuple(problems))


# --- saved dumps ------------------------------------------------------------------------

_DEVICE_LINE = re.compile(
    r"^(?P<bdf>(?:[0-9a-fA-F]{4,}:)?[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])\s+(?P<desc>.*)$"
)
_HEX_LINE = re.compile(r"^(?P<off>[0-9a-fA-F]{2,3}):(?P<bytes>(?: [0-9a-fA-F]{2}){1,16})\s*$")


@dataclass(frozen=True)
class DumpedFunction:
    """One function of a saved dump: its BDF (with domain), the header text, the bytes."""

    bdf: str | None
    description: str
    data: bytes


def normalize_bdf(text: str) -> str:
    """``00:03.0`` -> ``0000:00:03.0``; a BDF that has its domain is kept."""
    return text.lower() if text.count(":") == 2 else f"0000:{text.lower()}"


def parse_lspci_dump(text: str) -> list[DumpedFunction]:
    """Read the functions of an ``lspci -x`` / ``-xxx`` / ``-xxxx`` output.

    Each function starts with its ``00:03.0 Class: ...`` line; the hex lines
    (``40: 09 50 10 01 ...``) follow, possibly after ``-v`` detail lines, which are
    ignored. Offsets must follow each other without gaps.

    Raises:
        DescriptorError: a hex line before any device line, a gap or repeat in the
            offsets (named with its line number), or a device with no hex lines.
    """
    functions: list[DumpedFunction] = []
    current: tuple[str, str] | None = None
    chunks: bytearray = bytearray()

    def close(lineno: int) -> None:
        if current is None:
            return
        if not chunks:
            raise DescriptorError(
                f"line {lineno}: {current[0]} has no config-space hex lines (use lspci -x)"
            )
        functions.append(DumpedFunction(normalize_bdf(current[0]), current[1], bytes(chunks)))

    for lineno, line in enumerate(text.splitlines(), 1):
        if m := _HEX_LINE.match(line):
            if current is None:
                raise DescriptorError(f"line {lineno}: hex bytes before any device line")
            offset = int(m["off"], 16)
            if offset != len(chunks):
                raise DescriptorError(
                    f"line {lineno}: offset 0x{offset:02x} where 0x{len(chunks):02x} was expected",
                    offset,
                )
            chunks += bytes.fromhex(m["bytes"])
        elif m := _DEVICE_LINE.match(line):
            close(lineno)
            current, chunks = (m["bdf"], m["desc"]), bytearray()
    close(len(text.splitlines()) + 1)
    return functions


def load_dump(raw: bytes) -> list[DumpedFunction]:
    """Read a saved config space: lspci text, or the binary a sysfs ``config`` read gives.

    Raises:
        DescriptorError: lspci text that is malformed, or a binary under 64 bytes.
    """
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        text = None
    if text is not None and any(_HEX_LINE.match(line) for line in text.splitlines()):
        return parse_lspci_dump(text)
    if len(raw) < CONFIG_HEADER_SIZE:
        raise DescriptorError(
            f"neither lspci -x text nor a binary config space ({len(raw)} bytes, at least 64 "
            "needed)"
        )
    return [DumpedFunction(None, "binary config space", bytes(raw))]


def format_lspci_dump(functions: Sequence[DumpedFunction]) -> str:
    """Write functions in the ``lspci -xxx``/``-xxxx`` text format (16 bytes a line).

    :func:`parse_lspci_dump` reads it back; bug reports can carry it.
    """
    out = []
    for fn in functions:
        out.append(f"{fn.bdf or '0000:00:00.0'} {fn.description}")
        for off in range(0, len(fn.data), 16):
            chunk = " ".join(f"{b:02x}" for b in fn.data[off : off + 16])
            out.append(f"{off:02x}: {chunk}")  # as lspci: "f0:", then "100:"
        out.append("")
    return "\n".join(out)
