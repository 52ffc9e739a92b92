"""Names for the numbers in USB descriptors: classes, subclasses, protocols, endpoints.

The tables follow the USB-IF's class code list (usb.org "Defined Class Codes") and the
class specifications (HID 1.11, Mass Storage overview 1.4, CDC 1.2, Hub in USB 2.0
ch. 11). They are small on purpose: the common codes a driver writer meets, with
``None`` for the rest, so a caller prints the number instead of guessing. Lookups
never raise.
"""

from __future__ import annotations

from enum import IntEnum

# usb.org "Defined Class Codes": base class -> name.
CLASS_NAMES: dict[int, str] = {
    0x00: "(Defined at Interface level)",
    0x01: "Audio",
    0x02: "Communications",
    0x03: "Human Interface Device",
    0x05: "Physical Interface Device",
    0x06: "Imaging",
    0x07: "Printer",
    0x08: "Mass Storage",
    0x09: "Hub",
    0x0A: "CDC Data",
    0x0B: "Chip/SmartCard",
    0x0D: "Content Security",
    0x0E: "Video",
    0x0F: "Personal Healthcare",
    0x10: "Audio/Video Devices",
    0x11: "Billboard",
    0x12: "USB Type-C Bridge",
    0x13: "USB Bulk Display Protocol",
    0x14: "MCTP over USB",
    0x3C: "I3C",
    0xDC: "Diagnostic",
    0xE0: "Wireless",
    0xEF: "Miscellaneous Device",
    0xFE: "Application Specific Interface",
    0xFF: "Vendor Specific Class",
}

# (class, subclass) -> name.
SUBCLASS_NAMES: dict[tuple[int, int], str] = {
    (0x01, 0x01): "Control Device",
    (0x01, 0x02): "Streaming",
    (0x01, 0x03): "MIDI Streaming",
    (0x02, 0x01): "Direct Line",
    (0x02, 0x02): "Abstract (modem)",
    (0x02, 0x03): "Telephone",
    (0x02, 0x04): "Multi-Channel",
    (0x02, 0x05): "CAPI Control",
    (0x02, 0x06): "Ethernet Networking",
    (0x02, 0x07): "ATM Networking",
    (0x02, 0x08): "Wireless Handset Control",
    (0x02, 0x09): "Device Management",
    (0x02, 0x0A): "Mobile Direct Line",
    (0x02, 0x0B): "OBEX",
    (0x02, 0x0C): "Ethernet Emulation",
    (0x02, 0x0D): "Network Control Model",
    (0x02, 0x0E): "Mobile Broadband Interface Model",
    (0x03, 0x00): "No Subclass",
    (0x03, 0x01): "Boot Interface Subclass",
    (0x08, 0x01): "RBC (typically Flash)",
    (0x08, 0x02): "SFF-8020i, MMC-2 (ATAPI)",
    (0x08, 0x03): "QIC-157",
    (0x08, 0x04): "Floppy (UFI)",
    (0x08, 0x05): "SFF-8070i",
    (0x08, 0x06): "SCSI",
    (0x09, 0x00): "Unused",
    (0x0E, 0x01): "Video Control",
    (0x0E, 0x02): "Video Streaming",
    (0x0E, 0x03): "Video Interface Collection",
    (0xE0, 0x01): "Radio Frequency",
    (0xEF, 0x02): "Common Class",
    (0xFE, 0x01): "Device Firmware Update",
    (0xFE, 0x02): "IRDA Bridge",
    (0xFE, 0x03): "Test and Measurement",
    (0xFF, 0xFF): "Vendor Specific Subclass",
}

# (class, subclass, protocol) -> name.
PROTOCOL_NAMES: dict[tuple[int, int, int], str] = {
    (0x02, 0x02, 0x00): "None",
    (0x02, 0x02, 0x01): "AT-commands (v.25ter)",
    (0x02, 0x02, 0xFF): "Vendor Specific (MSFT RNDIS?)",
    (0x03, 0x00, 0x00): "None",
    (0x03, 0x01, 0x01): "Keyboard",
    (0x03, 0x01, 0x02): "Mouse",
    (0x08, 0x06, 0x00): "Control/Bulk/Interrupt",
    (0x08, 0x06, 0x01): "Control/Bulk",
    (0x08, 0x06, 0x50): "Bulk-Only",
    (0x08, 0x06, 0x62): "UAS",
    (0x08, 0x04, 0x00): "Control/Bulk/Interrupt",
    (0x09, 0x00, 0x00): "Full speed (or root) hub",
    (0x09, 0x00, 0x01): "Single TT",
    (0x09, 0x00, 0x02): "TT per port",
    (0x09, 0x00, 0x03): "SuperSpeed hub",
    (0xE0, 0x01, 0x01): "Bluetooth",
    (0xE0, 0x01, 0x03): "RNDIS",
    (0xEF, 0x02, 0x01): "Interface Association",
    (0xFE, 0x01, 0x01): "Runtime",
    (0xFE, 0x01, 0x02): "DFU mode",
    (0xFF, 0xFF, 0xFF): "Vendor Specific Protocol",
}


class TransferType(IntEnum):
    """Endpoint bmAttributes bits 1..0 (USB 2.0 table 9-13)."""

    CONTROL = 0
    ISOCHRONOUS = 1
    BULK = 2
    INTERRUPT = 3


TRANSFER_TYPE_NAMES = {0: "Control", 1: "Isochronous", 2: "Bulk", 3: "Interrupt"}
SYNC_TYPE_NAMES = {0: "None", 1: "Asynchronous", 2: "Adaptive", 3: "Synchronous"}
USAGE_TYPE_NAMES = {0: "Data", 1: "Feedback", 2: "Implicit feedback Data", 3: "Reserved"}

# sysfs `speed` (Mb/s as the kernel prints it) -> the name the USB specs use.
SPEED_NAMES = {
    "1.5": "Low Speed",
    "12": "Full Speed",
    "480": "High Speed",
    "53.3-480": "Wireless",
    "5000": "SuperSpeed",
    "10000": "SuperSpeed+ Gen 2x1",
    "20000": "SuperSpeed+ Gen 2x2",
}

# CDC 1.2 table 13: functional descriptor subtypes.
CDC_SUBTYPE_NAMES: dict[int, str] = {
    0x00: "Header",
    0x01: "Call Management",
    0x02: "Abstract Control Management",
    0x03: "Direct Line Management",
    0x04: "Telephone Ringer",
    0x05: "Telephone Call and Line State Reporting",
    0x06: "Union",
    0x07: "Country Selection",
    0x08: "Telephone Operational Modes",
    0x09: "USB Terminal",
    0x0A: "Network Channel Terminal",
    0x0B: "Protocol Unit",
    0x0C: "Extension Unit",
    0x0D: "Multi-Channel Management",
    0x0E: "CAPI Control Management",
    0x0F: "Ethernet Networking",
    0x10: "ATM Networking",
    0x11: "Wireless Handset Control Model",
    0x12: "Mobile Direct Line Model",
    0x13: "MDLM Detail",
    0x14: "Device Management Model",
    0x15: "OBEX",
    0x16: "Command Set",
    0x17: "Command Set Detail",
    0x18: "Telephone Control Model",
    0x19: "OBEX Service Identifier",
    0x1A: "NCM",
    0x1B: "MBIM",
    0x1C: "MBIM Extended",
}

# USB 3.2 table 9-14: BOS device capability types.
DEVICE_CAPABILITY_NAMES: dict[int, str] = {
    0x01: "Wireless USB",
    0x02: "USB 2.0 Extension",
    0x03: "SuperSpeed USB",
    0x04: "Container ID",
    0x05: "Platform",
    0x06: "Power Delivery",
    0x07: "Battery Info",
    0x08: "PD Consumer Port",
    0x09: "PD Provider Port",
    0x0A: "SuperSpeedPlus",
    0x0B: "Precision Time Measurement",
    0x0C: "Wireless USB Ext",
    0x0D: "Billboard",
    0x0E: "Authentication",
    0x0F: "Billboard Ex",
    0x10: "Configuration Summary",
    0x11: "FWStatus",
}


def class_name(cls: int) -> str | None:
    """The name of a base class code, or None when the table does not know it."""
    return CLASS_NAMES.get(cls)


def subclass_name(cls: int, subclass: int) -> str | None:
    """The name of a subclass within its base class, or None."""
    return SUBCLASS_NAMES.get((cls, subclass))


def protocol_name(cls: int, subclass: int, protocol: int) -> str | None:
    """The name of a protocol within its class and subclass, or None."""
    return PROTOCOL_NAMES.get((cls, subclass, protocol))
