"""The Binary device Object Store (USB 3.2 §9.6.2) and its device capabilities.

A device reports USB 2.0 LPM, SuperSpeed and SuperSpeedPlus support, its container ID
and platform capabilities (WebUSB, Microsoft OS 2.0) here; it is read with its own
GET_DESCRIPTOR (type 0x0F), so it is not in the sysfs ``descriptors`` file.

Raises :class:`hwkit.errors.DescriptorError` for malformed input, naming the offset.
"""

from __future__ import annotations

import dataclasses
import struct
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from hwkit.errors import DescriptorError
from hwkit.usb._wire import check_header, iter_descriptors, total_end, unpack
from hwkit.usb.names import DEVICE_CAPABILITY_NAMES


class DeviceCapabilityType(IntEnum):
    """bDevCapabilityType values of the BOS capabilities hwkit decodes (USB 3.2 t. 9-14)."""

    USB20_EXTENSION = 0x02
    SUPERSPEED_USB = 0x03
    CONTAINER_ID = 0x04
    PLATFORM = 0x05
    SUPERSPEED_PLUS = 0x0A


@dataclass(frozen=True)
class DeviceCapability:
    """A BOS device capability hwkit does not decode (payload after the 3-byte header)."""

    bLength: int
    bDescriptorType: int
    bDevCapabilityType: int
    data: bytes

    @property
    def name(self) -> str:
        """The USB 3.2 table 9-14 name of bDevCapabilityType."""
        return DEVICE_CAPABILITY_NAMES.get(self.bDevCapabilityType, "Unknown")


@dataclass(frozen=True)
class USB20ExtensionCapability:
    """USB 3.2 §9.6.2.1: bmAttributes bit 1 = LPM supported."""

    FORMAT = "<BBBI"

    bLength: int
    bDescriptorType: int
    bDevCapabilityType: int
    bmAttributes: int


@dataclass(frozen=True)
class SuperSpeedUSBCapability:
    """USB 3.2 §9.6.2.2."""

    FORMAT = "<BBBBHBBH"

    bLength: int
    bDescriptorType: int
    bDevCapabilityType: int
    bmAttributes: int
    wSpeedsSupported: int
    bFunctionalitySupport: int
    bU1DevExitLat: int
    wU2DevExitLat: int


@dataclass(frozen=True)
class ContainerIDCapability:
    """USB 3.2 §9.6.2.3: a UUID shared by every bus interface of one device."""

    FORMAT = "<BBBB16s"

    bLength: int
    bDescriptorType: int
    bDevCapabilityType: int
    bReserved: int
    ContainerID: bytes

    @property
    def uuid(self) -> uuid.UUID:
        """ContainerID as a UUID (stored little-endian, as Microsoft's GUIDs are)."""
        return uuid.UUID(bytes_le=self.ContainerID)


@dataclass(frozen=True)
class PlatformCapability:
    """USB 3.2 §9.6.2.4: a platform UUID (e.g. WebUSB, MS OS 2.0) and its data."""

    FORMAT = "<BBBB16s"

    bLength: int
    bDescriptorType: int
    bDevCapabilityType: int
    bReserved: int
    PlatformCapabilityUUID: bytes
    CapabilityData: bytes = b""

    @property
    def uuid(self) -> uuid.UUID:
        """PlatformCapabilityUUID as a UUID (little-endian fields)."""
        return uuid.UUID(bytes_le=self.PlatformCapabilityUUID)


@dataclass(frozen=True)
class SuperSpeedPlusCapability:
    """USB 3.2 §9.6.2.5: the sublink speed attributes the device supports."""

    FORMAT = "<BBBBIHH"

    bLength: int
    bDescriptorType: int
    bDevCapabilityType: int
    bReserved: int
    bmAttributes: int
    wFunctionalitySupport: int
    wReserved: int
    bmSublinkSpeedAttr: tuple[int, ...] = ()


@dataclass(frozen=True)
class BOSDescriptor:
    """USB 3.2 §9.6.2: Binary device Object Store, 5 bytes then the capabilities."""

    FORMAT = "<BBHB"

    bLength: int
    bDescriptorType: int
    wTotalLength: int
    bNumDeviceCaps: int
    capabilities: tuple[Any, ...] = ()


_CAPABILITY_LAYOUTS: dict[int, Any] = {
    DeviceCapabilityType.USB20_EXTENSION: USB20ExtensionCapability,
    DeviceCapabilityType.SUPERSPEED_USB: SuperSpeedUSBCapability,
    DeviceCapabilityType.CONTAINER_ID: ContainerIDCapability,
    DeviceCapabilityType.PLATFORM: PlatformCapability,
    DeviceCapabilityType.SUPERSPEED_PLUS: SuperSpeedPlusCapability,
}


def parse_device_capability(data: bytes, offset: int = 0) -> Any:
    """Parse one BOS device capability descriptor (type 0x10) at ``offset``.

    Raises:
        DescriptorError: malformed, or too short for its bDevCapabilityType.
    """
    length = check_header(data, offset, "device capability descriptor", 0x10, 3)
    ctype = data[offset + 2]
    layout = _CAPABILITY_LAYOUTS.get(ctype)
    if layout is None:
        return DeviceCapability(length, 0x10, ctype, bytes(data[offset + 3 : offset + length]))
    name = DEVICE_CAPABILITY_NAMES[ctype]
    cap = unpack(layout, layout.FORMAT, data, offset, f"{name} capability", 0x10)
    fixed = struct.calcsize(layout.FORMAT)
    if layout is PlatformCapability:
        cap = dataclasses.replace(cap, CapabilityData=bytes(data[offset + fixed : offset + length]))
    elif layout is SuperSpeedPlusCapability:
        count = (cap.bmAttributes & 0x1F) + 1  # SSAC: sublink speed attribute count - 1
        if fixed + 4 * count > length:
            raise DescriptorError(
                f"SuperSpeedPlus capability at offset {offset}: {count} sublink speed "
                f"attribute(s) need {fixed + 4 * count} bytes, bLength is {length}",
                offset,
            )
        attrs = struct.unpack_from(f"<{count}I", data, offset + fixed)
        cap = dataclasses.replace(cap, bmSublinkSpeedAttr=tuple(attrs))
    return cap


def parse_bos(data: bytes, offset: int = 0) -> BOSDescriptor:
    """Parse a BOS descriptor and the capabilities its wTotalLength covers.

    Raises:
        DescriptorError: malformed header or capability, wTotalLength past the end,
            or a descriptor inside that is not a device capability.
    """
    bos = unpack(BOSDescriptor, BOSDescriptor.FORMAT, data, offset, "BOS descriptor", 0x0F)
    end = total_end("BOS descriptor", bos, data, offset)
    caps = [
        parse_device_capability(data, pos)
        for pos, _, _ in iter_descriptors(data, offset + bos.bLength, end)
    ]
    return dataclasses.replace(bos, capabilities=tuple(caps))
