"""Names for PCI numbers: class codes, capability IDs, and vendor/device names.

Class and capability names follow the PCI Code and ID Assignment Specification (rev
1.16); vendor and device names come from the system's ``pci.ids`` (pciutils/hwdata)
when it is installed, so hwkit shows the same names ``lspci`` does and ships no copy
of that database. Lookups never raise: an unknown number gives None.
"""

from __future__ import annotations

import functools
from pathlib import Path

# Code and ID Assignment spec §1: base class codes.
CLASS_NAMES: dict[int, str] = {
    0x00: "Unclassified device",
    0x01: "Mass storage controller",
    0x02: "Network controller",
    0x03: "Display controller",
    0x04: "Multimedia controller",
    0x05: "Memory controller",
    0x06: "Bridge",
    0x07: "Communication controller",
    0x08: "Generic system peripheral",
    0x09: "Input device controller",
    0x0A: "Docking station",
    0x0B: "Processor",
    0x0C: "Serial bus controller",
    0x0D: "Wireless controller",
    0x0E: "Intelligent controller",
    0x0F: "Satellite communications controller",
    0x10: "Encryption controller",
    0x11: "Signal processing controller",
    0x12: "Processing accelerators",
    0x13: "Non-Essential Instrumentation",
    0x40: "Coprocessor",
    0xFF: "Unassigned class",
}

SUBCLASS_NAMES: dict[tuple[int, int], str] = {
    (0x00, 0x01): "VGA compatible unclassified device",
    (0x01, 0x00): "SCSI storage controller",
    (0x01, 0x01): "IDE interface",
    (0x01, 0x04): "RAID bus controller",
    (0x01, 0x05): "ATA controller",
    (0x01, 0x06): "SATA controller",
    (0x01, 0x07): "Serial Attached SCSI controller",
    (0x01, 0x08): "Non-Volatile memory controller",
    (0x01, 0x80): "Mass storage controller",
    (0x02, 0x00): "Ethernet controller",
    (0x02, 0x80): "Network controller",
    (0x03, 0x00): "VGA compatible controller",
    (0x03, 0x02): "3D controller",
    (0x03, 0x80): "Display controller",
    (0x04, 0x01): "Multimedia audio controller",
    (0x04, 0x03): "Audio device",
    (0x05, 0x00): "RAM memory",
    (0x06, 0x00): "Host bridge",
    (0x06, 0x01): "ISA bridge",
    (0x06, 0x04): "PCI bridge",
    (0x06, 0x80): "Bridge",
    (0x07, 0x00): "Serial controller",
    (0x07, 0x80): "Communication controller",
    (0x08, 0x06): "IOMMU",
    (0x08, 0x80): "System peripheral",
    (0x0C, 0x03): "USB controller",
    (0x0C, 0x05): "SMBus",
    (0x0C, 0x80): "Serial bus controller",
    (0x12, 0x00): "Processing accelerators",
}

PROG_IF_NAMES: dict[tuple[int, int, int], str] = {
    (0x01, 0x06, 0x01): "AHCI 1.0",
    (0x01, 0x08, 0x02): "NVM Express",
    (0x07, 0x00, 0x02): "16550",
    (0x0C, 0x03, 0x00): "UHCI",
    (0x0C, 0x03, 0x10): "OHCI",
    (0x0C, 0x03, 0x20): "EHCI",
    (0x0C, 0x03, 0x30): "XHCI",
    (0x06, 0x04, 0x01): "Subtractive decode",
}

# Code and ID Assignment spec §2: capability IDs.
CAPABILITY_NAMES: dict[int, str] = {
    0x01: "Power Management",
    0x02: "AGP",
    0x03: "Vital Product Data",
    0x04: "Slot Identification",
    0x05: "MSI",
    0x06: "CompactPCI Hot Swap",
    0x07: "PCI-X",
    0x08: "HyperTransport",
    0x09: "Vendor Specific",
    0x0A: "Debug port",
    0x0B: "CompactPCI Central Resource Control",
    0x0C: "PCI Hot-Plug",
    0x0D: "Subsystem Vendor ID",
    0x0E: "AGP 8x",
    0x0F: "Secure Device",
    0x10: "PCI Express",
    0x11: "MSI-X",
    0x12: "SATA Data/Index Configuration",
    0x13: "Advanced Features",
    0x14: "Enhanced Allocation",
    0x15: "Flattening Portal Bridge",
}

# Code and ID Assignment spec §3: extended capability IDs.
EXTENDED_CAPABILITY_NAMES: dict[int, str] = {
    0x0001: "Advanced Error Reporting",
    0x0002: "Virtual Channel",
    0x0003: "Device Serial Number",
    0x0004: "Power Budgeting",
    0x0005: "Root Complex Link Declaration",
    0x0006: "Root Complex Internal Link Control",
    0x0007: "Root Complex Event Collector Endpoint Association",
    0x0008: "Multi-Function Virtual Channel",
    0x0009: "Virtual Channel (MFVC present)",
    0x000A: "Root Complex Register Block Header",
    0x000B: "Vendor Specific Extended",
    0x000C: "Configuration Access Correlation",
    0x000D: "Access Control Services",
    0x000E: "Alternative Routing-ID Interpretation",
    0x000F: "Address Translation Services",
    0x0010: "Single Root I/O Virtualization",
    0x0011: "Multi-Root I/O Virtualization",
    0x0012: "Multicast",
    0x0013: "Page Request Interface",
    0x0014: "Reserved for AMD",
    0x0015: "Resizable BAR",
    0x0016: "Dynamic Power Allocation",
    0x0017: "TPH Requester",
    0x0018: "Latency Tolerance Reporting",
    0x0019: "Secondary PCI Express",
    0x001A: "Protocol Multiplexing",
    0x001B: "Process Address Space ID",
    0x001C: "LN Requester",
    0x001D: "Downstream Port Containment",
    0x001E: "L1 PM Substates",
    0x001F: "Precision Time Measurement",
    0x0020: "PCI Express over M-PHY",
    0x0021: "FRS Queueing",
    0x0022: "Readiness Time Reporting",
    0x0023: "Designated Vendor-Specific",
    0x0024: "VF Resizable BAR",
    0x0025: "Data Link Feature",
    0x0026: "Physical Layer 16.0 GT/s",
    0x0027: "Lane Margining at the Receiver",
    0x0028: "Hierarchy ID",
    0x0029: "Native PCIe Enclosure Management",
    0x002A: "Physical Layer 32.0 GT/s",
    0x002B: "Alternate Protocol",
    0x002C: "System Firmware Intermediary",
    0x002D: "Shadow Functions",
    0x002E: "Data Object Exchange",
    0x002F: "Device 3",
    0x0030: "Integrity and Data Encryption",
    0x0031: "Physical Layer 64.0 GT/s",
    0x0032: "Flit Logging",
    0x0033: "Flit Performance Measurement",
    0x0034: "Flit Error Injection",
}


def class_name(class_code: int) -> str:
    """The most specific name for a 24-bit class code (``0x010802`` -> NVM Express...).

    Falls back from subclass to base class to ``Class XXXX``; never raises.
    """
    base, sub, prog = (class_code >> 16) & 0xFF, (class_code >> 8) & 0xFF, class_code & 0xFF
    name = SUBCLASS_NAMES.get((base, sub)) or CLASS_NAMES.get(base) or f"Class {base:02x}{sub:02x}"
    prog_name = PROG_IF_NAMES.get((base, sub, prog))
    return f"{name} ({prog_name})" if prog_name else name


def capability_name(cap_id: int) -> str:
    """The name of a (conventional) capability ID, or ``Unknown (0xNN)``."""
    return CAPABILITY_NAMES.get(cap_id, f"Unknown (0x{cap_id:02x})")


def extended_capability_name(cap_id: int) -> str:
    """The name of an extended capability ID, or ``Unknown (0xNNNN)``."""
    return EXTENDED_CAPABILITY_NAMES.get(cap_id, f"Unknown (0x{cap_id:04x})")


PCI_IDS_PATHS = (
    Path("/usr/share/misc/pci.ids"),
    Path("/usr/share/hwdata/pci.ids"),
    Path("/usr/share/pci.ids"),
)


@functools.lru_cache(maxsize=1)
def _pci_ids() -> dict[int, tuple[str, dict[int, str], dict[tuple[int, int, int], str]]]:
    """Load the system pci.ids into {vendor: (name, {device: name}, {(dev, sv, sd): name})}."""
    table: dict[int, tuple[str, dict[int, str], dict[tuple[int, int, int], str]]] = {}
    path = next((p for p in PCI_IDS_PATHS if p.is_file()), None)
    if path is None:
        return table
    vendor = device = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("C "):
            break  # the class section follows the vendors
        try:
            if not line.startswith("\t"):
                vendor, device = int(line[:4], 16), None
                table[vendor] = (line[6:].strip(), {}, {})
            elif not line.startswith("\t\t") and vendor is not None:
                device = int(line[1:5], 16)
                table[vendor][1][device] = line[7:].strip()
            elif vendor is not None and device is not None:
                sv, sd = int(line[2:6], 16), int(line[7:11], 16)
                table[vendor][2][(device, sv, sd)] = line[13:].strip()
        except ValueError:
            continue
    return table


def vendor_name(vendor_id: int) -> str | None:
    """The vendor's name from pci.ids, or None (unknown or no pci.ids installed)."""
    entry = _pci_ids().get(vendor_id)
    return entry[0] if entry else None


def device_name(vendor_id: int, device_id: int) -> str | None:
    """The device's name from pci.ids, or None."""
    entry = _pci_ids().get(vendor_id)
    return entry[1].get(device_id) if entry else None


def subsystem_name(vendor_id: int, device_id: int, sub_vendor: int, sub_device: int) -> str | None:
    """The subsystem's name from pci.ids, falling back to the subsystem's device name."""
    entry = _pci_ids().get(vendor_id)
    name = entry[2].get((device_id, sub_vendor, sub_device)) if entry else None
    return name or device_name(sub_vendor, sub_device)
