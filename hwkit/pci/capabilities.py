"""Decoders of PCI capabilities and PCI Express extended capabilities.

Each decoder takes the config-space bytes, the capability's offset and the parsed
header, and returns a dict of JSON-ready fields named after the spec's register
fields (PCI Local Bus 3.0 ch. 6.7-6.8, PCI Bus Power Management 1.2, PCI Express Base
5.0 ch. 7, VirtIO 1.2 §4.1.4). Register offsets within each capability are declared
as tables; bits as IntFlag where a register is a set of flags.

Decoders raise :class:`hwkit.errors.DescriptorError` when a register lies beyond the
bytes that were read; :mod:`hwkit.pci.config` turns that into a per-capability error.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from typing import Any

from hwkit.errors import DescriptorError

Fields = dict[str, Any]
Decoder = Callable[[bytes, int, Any], Fields]


class CapId(IntEnum):
    """Capability IDs hwkit decodes (Code and ID Assignment spec §2)."""

    POWER_MANAGEMENT = 0x01
    MSI = 0x05
    VENDOR_SPECIFIC = 0x09
    PCI_EXPRESS = 0x10
    MSI_X = 0x11


class ExtCapId(IntEnum):
    """Extended capability IDs hwkit decodes (Code and ID Assignment spec §3)."""

    AER = 0x0001
    DSN = 0x0003
    VSEC = 0x000B
    ACS = 0x000D
    ARI = 0x000E
    ATS = 0x000F
    SRIOV = 0x0010
    REBAR = 0x0015
    LTR = 0x0018
    PASID = 0x001B
    DVSEC = 0x0023


def reg(data: bytes, offset: int, size: int) -> int:
    """A little-endian register of ``size`` bytes at ``offset``.

    Raises:
        DescriptorError: it lies beyond the bytes that were read.
    """
    if offset < 0 or offset + size > len(data):
        raise DescriptorError(
            f"register 0x{offset:03x}..0x{offset + size - 1:03x} lies beyond the {len(data)} "
            "bytes of config space read",
            offset,
        )
    return int.from_bytes(data[offset : offset + size], "little")


def bits(value: int, high: int, low: int) -> int:
    """``value[high:low]``, both ends included, as the specs write fields."""
    return (value >> low) & ((1 << (high - low + 1)) - 1)


def flag_names(flags: type[IntFlag], value: int) -> list[str]:
    """The names of the members of ``flags`` set in ``value``, lowest bit first."""
    return [m.name for m in flags if m.name and value & m.value]


@dataclass(frozen=True)
class Field:
    """One field of a register: ``value[high:low]``, converted (a lone bit: a bool)."""

    name: str
    high: int
    low: int | None = None
    convert: Callable[[int], Any] | None = None


def decode_fields(value: int, layout: Sequence[Field]) -> Fields:
    """A register value as a dict of its named fields, per ``layout``."""
    out: Fields = {}
    for f in layout:
        raw = bits(value, f.high, f.high if f.low is None else f.low)
        if f.convert is not None:
            out[f.name] = f.convert(raw)
        else:
            out[f.name] = bool(raw) if f.low is None else raw
    return out


# --- Power Management (PCI PM 1.2 §3.2) -------------------------------------------------


class PM(IntEnum):
    """Register offsets within the Power Management capability."""

    PMC = 0x02
    PMCSR = 0x04
    DATA = 0x07


AUX_CURRENT_MA = (0, 55, 100, 160, 220, 270, 320, 375)
PME_STATES = ("D0", "D1", "D2", "D3hot", "D3cold")


PMC = (
    Field("version", 2, 0),
    Field("pme_clock", 3),
    Field("dsi", 5),
    Field("aux_current_ma", 8, 6, AUX_CURRENT_MA.__getitem__),
    Field("d1_support", 9),
    Field("d2_support", 10),
    Field("pme_support", 15, 11, lambda v: [s for i, s in enumerate(PME_STATES) if v & 1 << i]),
)
PMCSR = (
    Field("power_state", 1, 0, lambda v: ("D0", "D1", "D2", "D3hot")[v]),
    Field("no_soft_reset", 3),
    Field("pme_enable", 8),
    Field("data_select", 12, 9),
    Field("data_scale", 14, 13),
    Field("pme_status", 15),
)


def decode_pm(data: bytes, off: int, header: Any) -> Fields:
    """Power Management: PMC (version, D1/D2, PME support) and PMCSR (power state)."""
    return decode_fields(reg(data, off + PM.PMC, 2), PMC) | decode_fields(
        reg(data, off + PM.PMCSR, 2), PMCSR
    )


# --- MSI (PCI 3.0 §6.8.1) and MSI-X (§6.8.2) --------------------------------------------


class MSI(IntEnum):
    """Register offsets within the MSI capability (the data register moves with 64-bit)."""

    MESSAGE_CONTROL = 0x02
    MESSAGE_ADDRESS = 0x04
    MESSAGE_UPPER_ADDRESS = 0x08


def decode_msi(data: bytes, off: int, header: Any) -> Fields:
    """MSI: enable, vectors capable/enabled, 64-bit, per-vector masking, address/data."""
    ctrl = reg(data, off + MSI.MESSAGE_CONTROL, 2)
    is_64, masking = bool(ctrl & 1 << 7), bool(ctrl & 1 << 8)
    address = reg(data, off + MSI.MESSAGE_ADDRESS, 4)
    if is_64:
        address |= reg(data, off + MSI.MESSAGE_UPPER_ADDRESS, 4) << 32
    data_off = off + (0x0C if is_64 else 0x08)
    fields: Fields = {
        "enabled": bool(ctrl & 1),
        "multiple_message_capable": 1 << bits(ctrl, 3, 1),
        "multiple_message_enable": 1 << bits(ctrl, 6, 4),
        "is_64bit": is_64,
        "per_vector_masking": masking,
        "address": address,
        "data": reg(data, data_off, 2),
    }
    if masking:
        fields["mask_bits"] = reg(data, data_off + 4, 4)
        fields["pending_bits"] = reg(data, data_off + 8, 4)
    return fields


class MSIX(IntEnum):
    """Register offsets within the MSI-X capability."""

    MESSAGE_CONTROL = 0x02
    TABLE = 0x04  # BIR in bits 2..0, offset in the rest
    PBA = 0x08


def decode_msix(data: bytes, off: int, header: Any) -> Fields:
    """MSI-X: table size, enable/function mask, table and PBA location (BIR + offset)."""
    ctrl = reg(data, off + MSIX.MESSAGE_CONTROL, 2)
    table, pba = reg(data, off + MSIX.TABLE, 4), reg(data, off + MSIX.PBA, 4)
    return {
        "enabled": bool(ctrl & 1 << 15),
        "function_mask": bool(ctrl & 1 << 14),
        "table_size": bits(ctrl, 10, 0) + 1,
        "table_bir": table & 0x7,
        "table_offset": table & ~0x7,
        "pba_bir": pba & 0x7,
        "pba_offset": pba & ~0x7,
    }


# --- Vendor specific, with VirtIO's layout (VirtIO 1.2 §4.1.4) --------------------------

VIRTIO_VENDOR_ID = 0x1AF4
VIRTIO_CFG_TYPES = {
    1: "CommonCfg",
    2: "Notify",
    3: "ISR",
    4: "DeviceCfg",
    5: "PCICfg",
    8: "SharedMemory",
    9: "Vendor",
}


class VirtioCap(IntEnum):
    """struct virtio_pci_cap offsets (VirtIO 1.2 §4.1.4)."""

    CAP_LEN = 0x02
    CFG_TYPE = 0x03
    BAR = 0x04
    ID = 0x05
    OFFSET = 0x08
    LENGTH = 0x0C
    NOTIFY_OFF_MULTIPLIER = 0x10


def decode_vendor_specific(data: bytes, off: int, header: Any) -> Fields:
    """Vendor specific: its length; for VirtIO functions, cfg_type, BAR, offset, length."""
    cap_len = reg(data, off + VirtioCap.CAP_LEN, 1)
    fields: Fields = {"length": cap_len}
    if header.vendor_id != VIRTIO_VENDOR_ID or cap_len < 16:
        fields["data"] = bytes(data[off + 3 : min(off + cap_len, len(data))]).hex()
        return fields
    cfg_type = reg(data, off + VirtioCap.CFG_TYPE, 1)
    fields.update(
        virtio_cfg_type=cfg_type,
        virtio_cfg_type_name=VIRTIO_CFG_TYPES.get(cfg_type, "Unknown"),
        bar=reg(data, off + VirtioCap.BAR, 1),
        id=reg(data, off + VirtioCap.ID, 1),
        offset=reg(data, off + VirtioCap.OFFSET, 4),
        bar_length=reg(data, off + VirtioCap.LENGTH, 4),
    )
    if cfg_type == 2 and cap_len >= 20:
        fields["notify_off_multiplier"] = reg(data, off + VirtioCap.NOTIFY_OFF_MULTIPLIER, 4)
    return fields


# --- PCI Express capability (PCIe 5.0 §7.5.3) -------------------------------------------


class PCIe(IntEnum):
    """Register offsets within the PCI Express capability structure."""

    CAPABILITIES = 0x02
    DEVICE_CAPABILITIES = 0x04
    DEVICE_CONTROL = 0x08
    DEVICE_STATUS = 0x0A
    LINK_CAPABILITIES = 0x0C
    LINK_CONTROL = 0x10
    LINK_STATUS = 0x12
    SLOT_CAPABILITIES = 0x14
    SLOT_CONTROL = 0x18
    SLOT_STATUS = 0x1A
    ROOT_CONTROL = 0x1C
    ROOT_CAPABILITIES = 0x1E
    ROOT_STATUS = 0x20
    DEVICE_CAPABILITIES_2 = 0x24
    DEVICE_CONTROL_2 = 0x28
    LINK_CAPABILITIES_2 = 0x2C
    LINK_CONTROL_2 = 0x30
    LINK_STATUS_2 = 0x32


class PortType(IntEnum):
    """Device/Port Type, PCI Express Capabilities register bits 7..4."""

    ENDPOINT = 0
    LEGACY_ENDPOINT = 1
    ROOT_PORT = 4
    UPSTREAM_PORT = 5
    DOWNSTREAM_PORT = 6
    PCIE_TO_PCI_BRIDGE = 7
    PCI_TO_PCIE_BRIDGE = 8
    RC_INTEGRATED_ENDPOINT = 9
    RC_EVENT_COLLECTOR = 10


PORT_TYPE_NAMES = {
    0: "Endpoint",
    1: "Legacy Endpoint",
    4: "Root Port",
    5: "Upstream Port",
    6: "Downstream Port",
    7: "PCI-Express to PCI/PCI-X Bridge",
    8: "PCI/PCI-X to PCI-Express Bridge",
    9: "Root Complex Integrated Endpoint",
    10: "Root Complex Event Collector",
}
LINK_SPEEDS = {1: "2.5GT/s", 2: "5GT/s", 3: "8GT/s", 4: "16GT/s", 5: "32GT/s", 6: "64GT/s"}
ASPM = {0: "not supported", 1: "L0s", 2: "L1", 3: "L0s L1"}
_NO_LINK = (PortType.RC_INTEGRATED_ENDPOINT, PortType.RC_EVENT_COLLECTOR)


def _speed(code: int) -> str:
    return LINK_SPEEDS.get(code, f"unknown ({code})")


def _bytes128(code: int) -> int:
    return 128 << code


# Register layouts of the PCI Express capability (PCIe 5.0 §7.5.3.3-7.5.3.11), field by
# field with the spec's names. A field is (name, high bit, low bit, conversion); a
# single bit (high == low) without a conversion reads as a bool.
DEVICE_CAPABILITIES = (
    Field("max_payload_size_supported", 2, 0, _bytes128),
    Field("phantom_functions", 4, 3),
    Field("extended_tag_field", 5),
    Field("l0s_acceptable_latency", 8, 6),
    Field("l1_acceptable_latency", 11, 9),
    Field("role_based_error_reporting", 15),
    Field("slot_power_limit_value", 25, 18),
    Field("slot_power_limit_scale", 27, 26),
    Field("function_level_reset", 28),
)
DEVICE_CONTROL = (
    Field("correctable_error_reporting", 0),
    Field("non_fatal_error_reporting", 1),
    Field("fatal_error_reporting", 2),
    Field("unsupported_request_reporting", 3),
    Field("relaxed_ordering", 4),
    Field("max_payload_size", 7, 5, _bytes128),
    Field("extended_tag", 8),
    Field("phantom_functions", 9),
    Field("aux_power_pm", 10),
    Field("no_snoop", 11),
    Field("max_read_request_size", 14, 12, _bytes128),
)
DEVICE_STATUS = (
    Field("correctable_error", 0),
    Field("non_fatal_error", 1),
    Field("fatal_error", 2),
    Field("unsupported_request", 3),
    Field("aux_power", 4),
    Field("transactions_pending", 5),
)
LINK_CAPABILITIES = (
    Field("max_link_speed", 3, 0, _speed),
    Field("max_link_width", 9, 4),
    Field("aspm_support", 11, 10, ASPM.__getitem__),
    Field("l0s_exit_latency", 14, 12),
    Field("l1_exit_latency", 17, 15),
    Field("clock_power_management", 18),
    Field("surprise_down_error_reporting", 19),
    Field("data_link_layer_link_active_reporting", 20),
    Field("link_bandwidth_notification", 21),
    Field("port_number", 31, 24),
)
LINK_CONTROL = (
    Field("aspm_control", 1, 0, lambda v: ASPM[v] if v else "disabled"),
    Field("read_completion_boundary", 3, 3, lambda v: 128 if v else 64),
    Field("link_disable", 4),
    Field("common_clock", 6),
    Field("extended_synch", 7),
    Field("clock_power_management", 8),
)
LINK_STATUS = (
    Field("current_link_speed", 3, 0, _speed),
    Field("negotiated_link_width", 9, 4),
    Field("link_training", 11),
    Field("slot_clock_configuration", 12),
    Field("data_link_layer_link_active", 13),
    Field("link_bandwidth_management_status", 14),
    Field("link_autonomous_bandwidth_status", 15),
)
SLOT_CAPABILITIES = (
    Field("attention_button", 0),
    Field("power_controller", 1),
    Field("mrl_sensor", 2),
    Field("attention_indicator", 3),
    Field("power_indicator", 4),
    Field("hot_plug_surprise", 5),
    Field("hot_plug_capable", 6),
    Field("physical_slot_number", 31, 19),
)
SLOT_STATUS = (
    Field("attention_button_pressed", 0),
    Field("presence_detect_changed", 3),
    Field("presence_detect_state", 6),
    Field("data_link_layer_state_changed", 8),
)

# (JSON key, register, width in bytes, layout) for each group of registers.
_DEVICE_REGISTERS = (
    ("device_capabilities", PCIe.DEVICE_CAPABILITIES, 4, DEVICE_CAPABILITIES),
    ("device_control", PCIe.DEVICE_CONTROL, 2, DEVICE_CONTROL),
    ("device_status", PCIe.DEVICE_STATUS, 2, DEVICE_STATUS),
)
_LINK_REGISTERS = (
    ("link_capabilities", PCIe.LINK_CAPABILITIES, 4, LINK_CAPABILITIES),
    ("link_control", PCIe.LINK_CONTROL, 2, LINK_CONTROL),
    ("link_status", PCIe.LINK_STATUS, 2, LINK_STATUS),
)
_SLOT_REGISTERS = (
    ("slot_capabilities", PCIe.SLOT_CAPABILITIES, 4, SLOT_CAPABILITIES),
    ("slot_status", PCIe.SLOT_STATUS, 2, SLOT_STATUS),
)


def _registers(data: bytes, off: int, table: tuple) -> Fields:
    return {key: decode_fields(reg(data, off + r, size), layout) for key, r, size, layout in table}


def decode_pcie(data: bytes, off: int, header: Any) -> Fields:
    """PCI Express: port type, device capabilities/control/status, link and slot."""
    caps = reg(data, off + PCIe.CAPABILITIES, 2)
    port_type = bits(caps, 7, 4)
    version = bits(caps, 3, 0)
    fields: Fields = {
        "version": version,
        "device_port_type": port_type,
        "device_port_type_name": PORT_TYPE_NAMES.get(port_type, f"Unknown ({port_type})"),
        "slot_implemented": bool(caps & 1 << 8),
        "interrupt_message_number": bits(caps, 13, 9),
    }
    fields.update(_registers(data, off, _DEVICE_REGISTERS))
    if port_type not in _NO_LINK:
        fields.update(_registers(data, off, _LINK_REGISTERS))
    if fields["slot_implemented"]:
        fields.update(_registers(data, off, _SLOT_REGISTERS))
    if version >= 2 and port_type not in _NO_LINK:
        vector = bits(reg(data, off + PCIe.LINK_CAPABILITIES_2, 4), 7, 1)
        fields["link_capabilities_2"] = {
            "supported_link_speeds": [LINK_SPEEDS[i + 1] for i in range(6) if vector & 1 << i]
        }
        target = bits(reg(data, off + PCIe.LINK_CONTROL_2, 2), 3, 0)
        fields["link_control_2"] = {"target_link_speed": _speed(target)}
    return fields


# --- extended capabilities (PCIe 5.0 §7.8, §7.9) ----------------------------------------


class UncorrectableError(IntFlag):
    """AER Uncorrectable Error Status/Mask/Severity bits (PCIe 5.0 §7.8.4.2)."""

    DATA_LINK_PROTOCOL = 1 << 4
    SURPRISE_DOWN = 1 << 5
    POISONED_TLP = 1 << 12
    FLOW_CONTROL_PROTOCOL = 1 << 13
    COMPLETION_TIMEOUT = 1 << 14
    COMPLETER_ABORT = 1 << 15
    UNEXPECTED_COMPLETION = 1 << 16
    RECEIVER_OVERFLOW = 1 << 17
    MALFORMED_TLP = 1 << 18
    ECRC = 1 << 19
    UNSUPPORTED_REQUEST = 1 << 20
    ACS_VIOLATION = 1 << 21
    UNCORRECTABLE_INTERNAL = 1 << 22
    MC_BLOCKED_TLP = 1 << 23
    ATOMICOP_EGRESS_BLOCKED = 1 << 24
    TLP_PREFIX_BLOCKED = 1 << 25
    POISONED_TLP_EGRESS_BLOCKED = 1 << 26


class CorrectableError(IntFlag):
    """AER Correctable Error Status/Mask bits (PCIe 5.0 §7.8.4.5)."""

    RECEIVER_ERROR = 1 << 0
    BAD_TLP = 1 << 6
    BAD_DLLP = 1 << 7
    REPLAY_NUM_ROLLOVER = 1 << 8
    REPLAY_TIMER_TIMEOUT = 1 << 12
    ADVISORY_NON_FATAL = 1 << 13
    CORRECTED_INTERNAL = 1 << 14
    HEADER_LOG_OVERFLOW = 1 << 15


class AER(IntEnum):
    """Register offsets within the AER capability."""

    UNCORRECTABLE_STATUS = 0x04
    UNCORRECTABLE_MASK = 0x08
    UNCORRECTABLE_SEVERITY = 0x0C
    CORRECTABLE_STATUS = 0x10
    CORRECTABLE_MASK = 0x14
    CAPABILITIES_AND_CONTROL = 0x18
    HEADER_LOG = 0x1C


def decode_aer(data: bytes, off: int, header: Any) -> Fields:
    """AER: status, mask and severity registers (values and set bits by name)."""
    fields: Fields = {}
    for name, register, flags in (
        ("uncorrectable_status", AER.UNCORRECTABLE_STATUS, UncorrectableError),
        ("uncorrectable_mask", AER.UNCORRECTABLE_MASK, UncorrectableError),
        ("uncorrectable_severity", AER.UNCORRECTABLE_SEVERITY, UncorrectableError),
        ("correctable_status", AER.CORRECTABLE_STATUS, CorrectableError),
        ("correctable_mask", AER.CORRECTABLE_MASK, CorrectableError),
    ):
        value = reg(data, off + register, 4)
        fields[name] = value
        fields[f"{name}_names"] = flag_names(flags, value)
    ctl = reg(data, off + AER.CAPABILITIES_AND_CONTROL, 4)
    fields.update(
        first_error_pointer=bits(ctl, 4, 0),
        ecrc_generation_capable=bool(ctl & 1 << 5),
        ecrc_generation_enable=bool(ctl & 1 << 6),
        ecrc_check_capable=bool(ctl & 1 << 7),
        ecrc_check_enable=bool(ctl & 1 << 8),
        header_log=[reg(data, off + AER.HEADER_LOG + 4 * i, 4) for i in range(4)],
    )
    return fields


def decode_dsn(data: bytes, off: int, header: Any) -> Fields:
    """Device Serial Number: the 64-bit EUI-64, also as lspci prints it."""
    serial = reg(data, off + 4, 4) | reg(data, off + 8, 4) << 32
    text = f"{serial:016x}"
    return {
        "serial_number": serial,
        "serial_number_text": "-".join(text[i : i + 2] for i in range(0, 16, 2)),
    }


class ACSFlags(IntFlag):
    """ACS Capability and Control bits (PCIe 5.0 §7.7.8.2-3)."""

    SOURCE_VALIDATION = 1 << 0
    TRANSLATION_BLOCKING = 1 << 1
    P2P_REQUEST_REDIRECT = 1 << 2
    P2P_COMPLETION_REDIRECT = 1 << 3
    UPSTREAM_FORWARDING = 1 << 4
    P2P_EGRESS_CONTROL = 1 << 5
    DIRECT_TRANSLATED_P2P = 1 << 6
    ENHANCED_CAPABILITY = 1 << 7


def decode_acs(data: bytes, off: int, header: Any) -> Fields:
    """ACS: which controls the function implements and which are enabled."""
    cap, ctl = reg(data, off + 4, 2), reg(data, off + 6, 2)
    return {
        "capability": cap & 0xFF,
        "capability_names": flag_names(ACSFlags, cap & 0xFF),
        "egress_control_vector_size": bits(cap, 15, 8),
        "control": ctl,
        "control_names": flag_names(ACSFlags, ctl & 0x7F),
    }


class SRIOV(IntEnum):
    """Register offsets within the SR-IOV capability (PCIe 5.0 §9.3.3)."""

    CAPABILITIES = 0x04
    CONTROL = 0x08
    STATUS = 0x0A
    INITIAL_VFS = 0x0C
    TOTAL_VFS = 0x0E
    NUM_VFS = 0x10
    FUNCTION_DEPENDENCY_LINK = 0x12
    FIRST_VF_OFFSET = 0x14
    VF_STRIDE = 0x16
    VF_DEVICE_ID = 0x1A
    SUPPORTED_PAGE_SIZES = 0x1C
    SYSTEM_PAGE_SIZE = 0x20
    VF_BAR0 = 0x24


def decode_sriov(data: bytes, off: int, header: Any) -> Fields:
    """SR-IOV: VF counts, routing offset/stride, VF device ID, page sizes, VF BARs."""
    ctl = reg(data, off + SRIOV.CONTROL, 2)
    return {
        "capabilities": reg(data, off + SRIOV.CAPABILITIES, 4),
        "vf_enable": bool(ctl & 1 << 0),
        "vf_memory_space_enable": bool(ctl & 1 << 3),
        "ari_capable_hierarchy": bool(ctl & 1 << 4),
        "initial_vfs": reg(data, off + SRIOV.INITIAL_VFS, 2),
        "total_vfs": reg(data, off + SRIOV.TOTAL_VFS, 2),
        "num_vfs": reg(data, off + SRIOV.NUM_VFS, 2),
        "function_dependency_link": reg(data, off + SRIOV.FUNCTION_DEPENDENCY_LINK, 1),
        "first_vf_offset": reg(data, off + SRIOV.FIRST_VF_OFFSET, 2),
        "vf_stride": reg(data, off + SRIOV.VF_STRIDE, 2),
        "vf_device_id": reg(data, off + SRIOV.VF_DEVICE_ID, 2),
        "supported_page_sizes": reg(data, off + SRIOV.SUPPORTED_PAGE_SIZES, 4),
        "system_page_size": reg(data, off + SRIOV.SYSTEM_PAGE_SIZE, 4),
        "vf_bars": [reg(data, off + SRIOV.VF_BAR0 + 4 * i, 4) for i in range(6)],
    }


def decode_ari(data: bytes, off: int, header: Any) -> Fields:
    """ARI: the next function number and function-group capabilities."""
    cap = reg(data, off + 4, 2)
    return {
        "mfvc_function_groups": bool(cap & 1),
        "acs_function_groups": bool(cap & 2),
        "next_function_number": bits(cap, 15, 8),
    }


def decode_ats(data: bytes, off: int, header: Any) -> Fields:
    """ATS: invalidate queue depth, page-aligned requests, STU and enable."""
    cap, ctl = reg(data, off + 4, 2), reg(data, off + 6, 2)
    return {
        "invalidate_queue_depth": bits(cap, 4, 0) or 32,
        "page_aligned_request": bool(cap & 1 << 5),
        "smallest_translation_unit": bits(ctl, 4, 0),
        "enable": bool(ctl & 1 << 15),
    }


def decode_vsec(data: bytes, off: int, header: Any) -> Fields:
    """Vendor-Specific Extended: VSEC ID, revision and length."""
    hdr = reg(data, off + 4, 4)
    return {"vsec_id": bits(hdr, 15, 0), "vsec_rev": bits(hdr, 19, 16), "vsec_length": hdr >> 20}


def decode_dvsec(data: bytes, off: int, header: Any) -> Fields:
    """Designated Vendor-Specific: the vendor, revision, length and DVSEC ID."""
    hdr = reg(data, off + 4, 4)
    return {
        "dvsec_vendor_id": bits(hdr, 15, 0),
        "dvsec_revision": bits(hdr, 19, 16),
        "dvsec_length": hdr >> 20,
        "dvsec_id": reg(data, off + 8, 2),
    }


def _latency_ns(value: int) -> int:
    return bits(value, 9, 0) * (32 ** min(bits(value, 12, 10), 5))


def decode_ltr(data: bytes, off: int, header: Any) -> Fields:
    """LTR: maximum snoop and no-snoop latencies in nanoseconds."""
    return {
        "max_snoop_latency_ns": _latency_ns(reg(data, off + 4, 2)),
        "max_no_snoop_latency_ns": _latency_ns(reg(data, off + 6, 2)),
    }


def decode_rebar(data: bytes, off: int, header: Any) -> Fields:
    """Resizable BAR: for each resizable BAR, its current and supported sizes."""
    count = max(1, bits(reg(data, off + 8, 4), 7, 5))
    bars = []
    for i in range(min(count, 6)):
        cap, ctl = reg(data, off + 4 + 8 * i, 4), reg(data, off + 8 + 8 * i, 4)
        bars.append(
            {
                "bar": bits(ctl, 2, 0),
                "current_size": 1 << (bits(ctl, 13, 8) + 20),
                "supported_sizes": [1 << (n + 20) for n in range(28) if cap & 1 << (n + 4)],
            }
        )
    return {"bars": bars}


def decode_pasid(data: bytes, off: int, header: Any) -> Fields:
    """PASID: execute/privileged support, max PASID width, enable."""
    cap, ctl = reg(data, off + 4, 2), reg(data, off + 6, 2)
    return {
        "execute_permission_supported": bool(cap & 1 << 1),
        "privileged_mode_supported": bool(cap & 1 << 2),
        "max_pasid_width": bits(cap, 12, 8),
        "enable": bool(ctl & 1),
    }


def _no_fields(data: bytes, off: int, header: Any) -> Fields:
    return {}


_DECODERS: dict[int, Decoder] = {
    CapId.POWER_MANAGEMENT: decode_pm,
    CapId.MSI: decode_msi,
    CapId.VENDOR_SPECIFIC: decode_vendor_specific,
    CapId.PCI_EXPRESS: decode_pcie,
    CapId.MSI_X: decode_msix,
}

_EXTENDED_DECODERS: dict[int, Decoder] = {
    ExtCapId.AER: decode_aer,
    ExtCapId.DSN: decode_dsn,
    ExtCapId.VSEC: decode_vsec,
    ExtCapId.ACS: decode_acs,
    ExtCapId.ARI: decode_ari,
    ExtCapId.ATS: decode_ats,
    ExtCapId.SRIOV: decode_sriov,
    ExtCapId.REBAR: decode_rebar,
    ExtCapId.LTR: decode_ltr,
    ExtCapId.PASID: decode_pasid,
    ExtCapId.DVSEC: decode_dvsec,
}


def decoder(cap_id: int) -> Decoder:
    """The decoder of a capability ID (one returning no fields if hwkit has none)."""
    return _DECODERS.get(cap_id, _no_fields)


def extended_decoder(cap_id: int) -> Decoder:
    """The decoder of an extended capability ID (no fields if hwkit has none)."""
    return _EXTENDED_DECODERS.get(cap_id, _no_fields)
