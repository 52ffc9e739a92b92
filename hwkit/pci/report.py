"""PCI functions as text (in the manner of ``lspci -vvv``) and as JSON for ``hwkit probe``.

A function is described from what is known about it: its sysfs record
(:class:`hwkit.pci.discovery.PCIFunction`, absent for a saved dump), its parsed config
space (absent when nothing could be read) and its VFIO readiness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hwkit.pci.capabilities import CapId, PortType
from hwkit.pci.config import (
    Bar,
    Capability,
    Command,
    ConfigSpace,
    ExpansionRom,
    Status,
    decode_expansion_rom,
)
from hwkit.pci.discovery import PCIFunction, VfioReadiness
from hwkit.pci.names import class_name, device_name, subsystem_name, vendor_name

UNPRIVILEGED_NOTE = (
    "only the first {read} of {size} bytes of config space are readable unprivileged: "
    "capabilities are not shown (run as root for everything)"
)


@dataclass(frozen=True)
class FunctionView:
    """Everything known about one function, from sysfs or from a dump."""

    bdf: str
    space: ConfigSpace | None
    function: PCIFunction | None = None
    readiness: VfioReadiness | None = None
    description: str | None = None  # the header line of a dump

    @property
    def expansion_rom(self) -> ExpansionRom | None:
        """The expansion ROM, sized from sysfs ``resource`` (line 6) where known."""
        if self.space is None:
            return None
        resources = self.function.resources if self.function else ()
        size = resources[6].size if len(resources) > 6 else None
        return decode_expansion_rom(self.space.header, size)

    @property
    def notes(self) -> list[str]:
        """What the reader should know about how complete this view is."""
        fn, notes = self.function, []
        if fn is not None and fn.config_error:
            notes.append(fn.config_error)
        elif fn is not None and fn.config and not fn.config_complete:
            notes.append(UNPRIVILEGED_NOTE.format(read=len(fn.config), size=fn.config_size))
        elif fn is None and self.space is not None and not self.space.capabilities_readable:
            notes.append("the dump holds only the 64-byte header: no capabilities")
        if self.space is not None:
            notes.extend(self.space.problems)
        return notes


def _ids(view: FunctionView) -> dict[str, int | None]:
    fn, space = view.function, view.space
    if fn is not None:
        return {
            "vendor_id": fn.vendor_id,
            "device_id": fn.device_id,
            "class_code": fn.class_code,
            "revision": fn.revision,
            "subsystem_vendor_id": fn.subsystem_vendor_id,
            "subsystem_id": fn.subsystem_id,
        }
    assert space is not None
    h = space.header
    return {
        "vendor_id": h.vendor_id,
        "device_id": h.device_id,
        "class_code": h.class_code,
        "revision": h.revision_id,
        "subsystem_vendor_id": h.subsystem_vendor_id,
        "subsystem_id": h.subsystem_id,
    }


def bar_to_json(bar: Bar) -> dict[str, Any]:
    """One BAR for JSON."""
    return {
        "index": bar.index,
        "address": bar.address,
        "size": bar.size,
        "kind": bar.kind,
        "is_64bit": bar.is_64bit,
        "prefetchable": bar.prefetchable,
    }


def capability_to_json(cap: Capability) -> dict[str, Any]:
    """One capability for JSON: id, offset, name, decoded fields (and version/error)."""
    out: dict[str, Any] = {"id": cap.id, "offset": cap.offset, "name": cap.name}
    if cap.version is not None:
        out["version"] = cap.version
    out["fields"] = cap.fields
    if cap.error:
        out["error"] = cap.error
    return out


def function_to_json(view: FunctionView) -> dict[str, Any]:
    """One function for ``hwkit probe pci --json`` (the schema issue 5 fixes)."""
    ids = _ids(view)
    fn, space = view.function, view.space
    out: dict[str, Any] = {"bdf": view.bdf, "address": f"pci:{view.bdf}", **ids}
    out.update(
        vendor_name=vendor_name(ids["vendor_id"] or 0),
        device_name=device_name(ids["vendor_id"] or 0, ids["device_id"] or 0),
        class_name=class_name(ids["class_code"] or 0),
        driver=fn.driver if fn else None,
        driver_override=fn.driver_override if fn else None,
        iommu_group=fn.iommu_group if fn else None,
        iommu_group_members=list(fn.iommu_group_members) if fn else [],
        parent=fn.parent if fn else None,
        config_bytes_read=len(space.data) if space else 0,
        config_size=fn.config_size if fn else (len(space.data) if space else 0),
        bars=[bar_to_json(b) for b in space.bars] if space else [],
        expansion_rom=(
            {"address": rom.address, "size": rom.size, "enabled": rom.enabled}
            if (rom := view.expansion_rom)
            else None
        ),
        capabilities=[capability_to_json(c) for c in space.capabilities] if space else [],
        extended_capabilities=(
            [capability_to_json(c) for c in space.extended_capabilities] if space else []
        ),
    )
    if space is not None:
        h = space.header
        out.update(
            command=int(h.command),
            status=int(h.status),
            header_type=h.header_type,
            interrupt_pin=h.interrupt_pin,
            interrupt_line=h.interrupt_line,
        )
    if view.readiness is not None:
        r = view.readiness
        out["vfio"] = {
            "ready": r.ready,
            "group_viable": r.group_viable,
            "reasons": list(r.reasons),
            "commands": list(r.commands),
        }
    out["notes"] = view.notes
    return out


# --- text -------------------------------------------------------------------------------


def _size(size: int) -> str:
    for unit, shift in (("G", 30), ("M", 20), ("K", 10)):
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift}{unit}"
    return str(size)


def _pm(flags: int, names: list[tuple[int, str]]) -> str:
    return " ".join(f"{name}{'+' if flags & bit else '-'}" for bit, name in names)


_COMMAND = [
    (Command.IO_SPACE, "I/O"),
    (Command.MEMORY_SPACE, "Mem"),
    (Command.BUS_MASTER, "BusMaster"),
    (Command.SPECIAL_CYCLES, "SpecCycle"),
    (Command.MEMORY_WRITE_AND_INVALIDATE, "MemWINV"),
    (Command.VGA_PALETTE_SNOOP, "VGASnoop"),
    (Command.PARITY_ERROR_RESPONSE, "ParErr"),
    (Command.IDSEL_STEPPING, "Stepping"),
    (Command.SERR_ENABLE, "SERR"),
    (Command.FAST_BACK_TO_BACK, "FastB2B"),
    (Command.INTERRUPT_DISABLE, "DisINTx"),
]
_STATUS = [
    (Status.CAPABILITIES_LIST, "Cap"),
    (Status.CAPABLE_66MHZ, "66MHz"),
    (Status.UDF_SUPPORTED, "UDF"),
    (Status.FAST_BACK_TO_BACK_CAPABLE, "FastB2B"),
    (Status.MASTER_DATA_PARITY_ERROR, "ParErr"),
]
_STATUS_ERRORS = [
    (Status.SIGNALED_TARGET_ABORT, ">TAbort"),
    (Status.RECEIVED_TARGET_ABORT, "<TAbort"),
    (Status.RECEIVED_MASTER_ABORT, "<MAbort"),
    (Status.SIGNALED_SYSTEM_ERROR, ">SERR"),
    (Status.DETECTED_PARITY_ERROR, "<PERR"),
    (Status.INTERRUPT_STATUS, "INTx"),
]


def _bar_line(bar: Bar) -> str:
    size = f" [size={_size(bar.size)}]" if bar.size else ""
    if bar.kind == "io":
        return f"Region {bar.index}: I/O ports at {bar.address:04x}{size}"
    width = "64-bit" if bar.is_64bit else "32-bit"
    pf = "prefetchable" if bar.prefetchable else "non-prefetchable"
    return f"Region {bar.index}: Memory at {bar.address:x} ({width}, {pf}){size}"


def _flag(value: bool) -> str:
    return "+" if value else "-"


def _cap_summary(cap: Capability) -> list[str]:
    """lspci's one-line title and detail lines for the capabilities it knows best."""
    f = cap.fields
    if cap.error or not f:
        return [cap.name]
    if cap.id == CapId.MSI_X:
        return [
            f"MSI-X: Enable{_flag(f['enabled'])} Count={f['table_size']} "
            f"Masked{_flag(f['function_mask'])}",
            f"\tVector table: BAR={f['table_bir']} offset={f['table_offset']:08x}",
            f"\tPBA: BAR={f['pba_bir']} offset={f['pba_offset']:08x}",
        ]
    if cap.id == CapId.MSI:
        return [
            f"MSI: Enable{_flag(f['enabled'])} Count={f['multiple_message_enable']}/"
            f"{f['multiple_message_capable']} Maskable{_flag(f['per_vector_masking'])} "
            f"64bit{_flag(f['is_64bit'])}",
            f"\tAddress: {f['address']:016x}  Data: {f['data']:04x}",
        ]
    if cap.id == CapId.VENDOR_SPECIFIC and "virtio_cfg_type_name" in f:
        extra = (
            f" multiplier={f['notify_off_multiplier']:08x}" if "notify_off_multiplier" in f else ""
        )
        return [
            f"Vendor Specific Information: VirtIO: {f['virtio_cfg_type_name']}",
            f"\tBAR={f['bar']} offset={f['offset']:08x} size={f['bar_length']:08x}{extra}",
        ]
    if cap.id == CapId.POWER_MANAGEMENT:
        return [f"Power Management version {f['version']}", *_generic(f)]
    if cap.id == CapId.PCI_EXPRESS:
        title = f"Express (v{f['version']}) {f['device_port_type_name']}"
        if f["device_port_type"] in (PortType.ROOT_PORT, PortType.DOWNSTREAM_PORT):
            title += f" (Slot{_flag(f['slot_implemented'])})"
        return [f"{title}, MSI {f['interrupt_message_number']:02x}", *_generic(f)]
    return [cap.name, *_generic(f)]


def _generic(fields: dict[str, Any], depth: int = 1) -> list[str]:
    lines = []
    for key, value in fields.items():
        if isinstance(value, dict):
            lines.append("\t" * depth + f"{key}:")
            lines.extend(_generic(value, depth + 1))
        else:
            if isinstance(value, bool):
                text = _flag(value)
            elif isinstance(value, int) and value > 9:
                text = f"0x{value:x}"
            else:
                text = str(value)
            lines.append("\t" * depth + f"{key}: {text}")
    return lines


def _header_lines(view: FunctionView) -> list[str]:
    ids = _ids(view)
    vid, did, cls = ids["vendor_id"] or 0, ids["device_id"] or 0, ids["class_code"] or 0
    vendor = vendor_name(vid) or f"Vendor {vid:04x}"
    device = device_name(vid, did) or f"Device {did:04x}"
    lines = [
        f"{view.bdf} {class_name(cls)} [{cls >> 8:04x}]: {vendor} {device} [{vid:04x}:{did:04x}] "
        f"(rev {ids['revision'] or 0:02x}) (prog-if {cls & 0xFF:02x})"
    ]
    sv, sd = ids["subsystem_vendor_id"], ids["subsystem_id"]
    if sv:
        name = subsystem_name(vid, did, sv, sd or 0) or f"Device {sd or 0:04x}"
        lines.append(
            f"\tSubsystem: {vendor_name(sv) or f'Vendor {sv:04x}'} {name} [{sv:04x}:{sd:04x}]"
        )
    return lines


def _register_lines(view: FunctionView, h: Any) -> list[str]:
    """Control, Status, latency, interrupt and (for a bridge) its buses and windows."""
    status = _pm(h.status, _STATUS) + f" DEVSEL={h.devsel_timing} " + _pm(h.status, _STATUS_ERRORS)
    lines = [f"\tControl: {_pm(h.command, _COMMAND)}", f"\tStatus: {status}"]
    if h.command & Command.BUS_MASTER:
        cache = f", Cache Line Size: {h.cache_line_size * 4} bytes" if h.cache_line_size else ""
        lines.append(f"\tLatency: {h.latency_timer}{cache}")
    if h.interrupt_pin:
        fn = view.function
        irq = fn.irq if fn and fn.irq is not None else h.interrupt_line
        lines.append(f"\tInterrupt: pin {chr(ord('A') + h.interrupt_pin - 1)} routed to IRQ {irq}")
    if h.secondary_bus is not None:
        lines.append(
            f"\tBus: primary={h.primary_bus:02x}, secondary={h.secondary_bus:02x}, "
            f"subordinate={h.subordinate_bus:02x}"
        )
        for label, window in (
            ("I/O", h.io_window),
            ("Memory", h.memory_window),
            ("Prefetchable memory", h.prefetchable_window),
        ):
            text = f"{window[0]:x}-{window[1]:x}" if window else "[disabled]"
            lines.append(f"\t{label} behind bridge: {text}")
    return lines


def _space_lines(view: FunctionView, space: ConfigSpace) -> list[str]:
    """Registers, BARs, expansion ROM and both capability lists."""
    lines = _register_lines(view, space.header)
    lines.extend(f"\t{_bar_line(b)}" for b in space.bars)
    if rom := view.expansion_rom:
        state = "" if rom.enabled else " [disabled]"
        size = f" [size={_size(rom.size)}]" if rom.size else ""
        lines.append(f"\tExpansion ROM at {rom.address:08x}{state}{size}")
    for cap in space.capabilities:
        first, *rest = _cap_summary(cap)
        lines.append(f"\tCapabilities: [{cap.offset:02x}] {first}")
        lines.extend(f"\t{line}" for line in rest)
        if cap.error:
            lines.append(f"\t\t! {cap.error}")
    for cap in space.extended_capabilities:
        lines.append(f"\tCapabilities: [{cap.offset:03x} v{cap.version}] {cap.name}")
        lines.extend(f"\t{line}" for line in _generic(cap.fields))
    return lines


def _system_lines(view: FunctionView) -> list[str]:
    """What sysfs adds: driver, override, IOMMU group, and the VFIO verdict."""
    lines, fn, r = [], view.function, view.readiness
    if fn is not None:
        lines.append(f"\tKernel driver in use: {fn.driver}" if fn.driver else "\tNo kernel driver")
        if fn.driver_override:
            lines.append(f"\tdriver_override: {fn.driver_override}")
        if fn.iommu_group is None:
            lines.append("\tIOMMU group: none")
        else:
            members = ", ".join(fn.iommu_group_members)
            lines.append(f"\tIOMMU group: {fn.iommu_group} (members: {members})")
    if r is not None:
        lines.append("\tVFIO: ready" if r.ready else "\tVFIO: not ready")
        lines.extend(f"\t\t- {reason}" for reason in r.reasons)
        if r.commands:
            lines.append("\t\tto bind it to vfio-pci (as root):")
            lines.extend(f"\t\t  {cmd}" for cmd in r.commands)
    return lines


def format_function(view: FunctionView, said_unprivileged: bool = False) -> list[str]:
    """Lines describing one function, ``lspci -vvv``-style plus hwkit's VFIO view.

    ``said_unprivileged``: the caller already said, once for all functions, that an
    unprivileged read shows only 64 bytes; the function's own note is left out.
    """
    lines = _header_lines(view)
    if view.space is not None:
        lines += _space_lines(view, view.space)
    lines += _system_lines(view)
    for note in view.notes:
        if not (said_unprivileged and note.startswith("only the first")):
            lines.append(f"\tNote: {note}")
    return lines
