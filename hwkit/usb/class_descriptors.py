"""Class-specific descriptors hwkit decodes: HID (HID 1.11 §6.2.1) and CDC functional
descriptors (CDC 1.2 §5.2.3, PSTN 1.2 §5.3, ECM 1.2 §5.4, NCM 1.0 §5.2.1).

They appear inside an interface's part of a configuration descriptor;
:func:`hwkit.usb.descriptors.parse_configuration` dispatches to these parsers by the
interface's class, and keeps every other class-specific descriptor raw.

Raises :class:`hwkit.errors.DescriptorError` for malformed input, naming the offset.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import Any

from hwkit.errors import DescriptorError
from hwkit.usb._wire import check_header, unpack
from hwkit.usb.names import CDC_SUBTYPE_NAMES

# USB base classes whose class-specific descriptors hwkit decodes.
CLASS_HID = 0x03
CLASS_CDC = 0x02


@dataclass(frozen=True)
class HIDDescriptor:
    """HID 1.11 §6.2.1: 6 bytes plus (bDescriptorType, wDescriptorLength) per class desc."""

    FORMAT = "<BBHBB"

    bLength: int
    bDescriptorType: int
    bcdHID: int
    bCountryCode: int
    bNumDescriptors: int
    descriptors: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class CDCFunctionalDescriptor:
    """CDC 1.2 §5.2.3: a functional descriptor hwkit has no layout for (raw payload)."""

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    data: bytes

    @property
    def subtype_name(self) -> str:
        """The CDC name of bDescriptorSubtype."""
        return CDC_SUBTYPE_NAMES.get(self.bDescriptorSubtype, "Unknown")


@dataclass(frozen=True)
class CDCHeaderDescriptor:
    """CDC 1.2 §5.2.3.1 table 15."""

    FORMAT = "<BBBH"

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    bcdCDC: int


@dataclass(frozen=True)
class CDCCallManagementDescriptor:
    """CDC PSTN 1.2 §5.3.1 table 3."""

    FORMAT = "<BBBBB"

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    bmCapabilities: int
    bDataInterface: int


@dataclass(frozen=True)
class CDCACMDescriptor:
    """CDC PSTN 1.2 §5.3.2 table 4 (Abstract Control Management)."""

    FORMAT = "<BBBB"

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    bmCapabilities: int


@dataclass(frozen=True)
class CDCUnionDescriptor:
    """CDC 1.2 §5.2.3.2 table 16: the control interface and its subordinates."""

    FORMAT = "<BBBB"

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    bControlInterface: int
    bSubordinateInterface: tuple[int, ...] = ()


@dataclass(frozen=True)
class CDCEthernetDescriptor:
    """CDC ECM 1.2 §5.4 table 3 (Ethernet Networking functional descriptor)."""

    FORMAT = "<BBBBIHHB"

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    iMACAddress: int
    bmEthernetStatistics: int
    wMaxSegmentSize: int
    wNumberMCFilters: int
    bNumberPowerFilters: int


@dataclass(frozen=True)
class CDCNCMDescriptor:
    """CDC NCM 1.0 §5.2.1 table 5-2."""

    FORMAT = "<BBBHB"

    bFunctionLength: int
    bDescriptorType: int
    bDescriptorSubtype: int
    bcdNcmVersion: int
    bmNetworkCapabilities: int


_CDC_LAYOUTS: dict[int, Any] = {
    0x00: CDCHeaderDescriptor,
    0x01: CDCCallManagementDescriptor,
    0x02: CDCACMDescriptor,
    0x06: CDCUnionDescriptor,
    0x0F: CDCEthernetDescriptor,
    0x1A: CDCNCMDescriptor,
}


def parse_hid(data: bytes, offset: int = 0) -> HIDDescriptor:
    """Parse a HID descriptor (type 0x21) at ``offset``.

    Raises:
        DescriptorError: malformed, or bNumDescriptors does not fit in bLength.
    """
    hid = unpack(HIDDescriptor, HIDDescriptor.FORMAT, data, offset, "HID descriptor", 0x21)
    if 6 + 3 * hid.bNumDescriptors > hid.bLength:
        raise DescriptorError(
            f"HID descriptor at offset {offset}: bNumDescriptors {hid.bNumDescriptors} needs "
            f"{6 + 3 * hid.bNumDescriptors} bytes, bLength is {hid.bLength}",
            offset,
        )
    pairs = tuple(
        struct.unpack_from("<BH", data, offset + 6 + 3 * i) for i in range(hid.bNumDescriptors)
    )
    return dataclasses.replace(hid, descriptors=pairs)


def parse_cdc_functional(data: bytes, offset: int = 0) -> Any:
    """Parse a CDC functional descriptor (CS_INTERFACE, 0x24) at ``offset``.

    Subtypes with a known layout (Header, Call Management, ACM, Union, Ethernet, NCM)
    become their own dataclass; the rest a :class:`CDCFunctionalDescriptor` with the
    raw payload.

    Raises:
        DescriptorError: malformed, or too short for its subtype.
    """
    length = check_header(data, offset, "CDC functional descriptor", 0x24, 3)
    subtype = data[offset + 2]
    layout = _CDC_LAYOUTS.get(subtype)
    what = f"CDC {CDC_SUBTYPE_NAMES.get(subtype, 'functional')} descriptor"
    if layout is None:
        return CDCFunctionalDescriptor(
            length, 0x24, subtype, bytes(data[offset + 3 : offset + length])
        )
    desc = unpack(layout, layout.FORMAT, data, offset, what, 0x24)
    if layout is CDCUnionDescriptor:
        subordinates = tuple(data[offset + 4 : offset + length])
        desc = dataclasses.replace(desc, bSubordinateInterface=subordinates)
    return desc
