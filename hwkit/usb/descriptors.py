"""USB descriptors parsed from raw bytes, with the field names of the USB specification.

Everything here is a pure function of bytes, so the same code reads a device that is
open through libusb, the sysfs ``descriptors`` file of one that is not, and the test
vectors in the unit tests. Field names keep the spec's spelling (``idVendor``,
``bInterfaceClass``, ``wMaxPacketSize``), which is also what matching and
``hwkit probe --json`` use.

References: USB 2.0 ch. 9.6 (standard descriptors), USB 3.2 ch. 9.6.2 (BOS) and 9.6.7
(SuperSpeed endpoint companion), the IAD ECN, HID 1.11 §6.2.1 and CDC 1.2 §5.2.3.

The class-specific layouts (HID, CDC) live in :mod:`hwkit.usb.class_descriptors` and
the BOS in :mod:`hwkit.usb.bos`; both are re-exported here, so this module is the one
to import.

Malformed input (truncated, bLength 0 or running past the end, the wrong
bDescriptorType, too short for its type) raises :class:`hwkit.errors.DescriptorError`
naming the offset; no parser here lets an IndexError or struct.error escape.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from hwkit.errors import DescriptorError
from hwkit.usb._wire import check_header, iter_descriptors, total_end, unpack
from hwkit.usb.bos import (
    BOSDescriptor,
    ContainerIDCapability,
    DeviceCapability,
    DeviceCapabilityType,
    PlatformCapability,
    SuperSpeedPlusCapability,
    SuperSpeedUSBCapability,
    USB20ExtensionCapability,
    parse_bos,
    parse_device_capability,
)
from hwkit.usb.class_descriptors import (
    CLASS_CDC,
    CLASS_HID,
    CDCACMDescriptor,
    CDCCallManagementDescriptor,
    CDCEthernetDescriptor,
    CDCFunctionalDescriptor,
    CDCHeaderDescriptor,
    CDCNCMDescriptor,
    CDCUnionDescriptor,
    HIDDescriptor,
    parse_cdc_functional,
    parse_hid,
)

# Re-exported: the class-specific and BOS parsers are part of this module's API.
__all__ = [
    "BOSDescriptor",
    "CDCACMDescriptor",
    "CDCCallManagementDescriptor",
    "CDCEthernetDescriptor",
    "CDCFunctionalDescriptor",
    "CDCHeaderDescriptor",
    "CDCNCMDescriptor",
    "CDCUnionDescriptor",
    "ConfigurationDescriptor",
    "ContainerIDCapability",
    "DescriptorType",
    "DeviceCapability",
    "DeviceCapabilityType",
    "DeviceDescriptor",
    "DeviceQualifierDescriptor",
    "EndpointDescriptor",
    "HIDDescriptor",
    "InterfaceAssociationDescriptor",
    "InterfaceDescriptor",
    "LanguageIDDescriptor",
    "PlatformCapability",
    "StringDescriptor",
    "SuperSpeedEndpointCompanionDescriptor",
    "SuperSpeedPlusCapability",
    "SuperSpeedUSBCapability",
    "USB20ExtensionCapability",
    "UnknownDescriptor",
    "iter_descriptors",
    "parse_bos",
    "parse_cdc_functional",
    "parse_configuration",
    "parse_device",
    "parse_device_and_configurations",
    "parse_device_capability",
    "parse_device_qualifier",
    "parse_endpoint",
    "parse_hid",
    "parse_interface",
    "parse_interface_association",
    "parse_language_ids",
    "parse_ss_endpoint_companion",
    "parse_string",
]


class DescriptorType(IntEnum):
    """bDescriptorType values (USB 2.0 table 9-5, USB 3.2 table 9-6, class specs)."""

    DEVICE = 0x01
    CONFIGURATION = 0x02
    STRING = 0x03
    INTERFACE = 0x04
    ENDPOINT = 0x05
    DEVICE_QUALIFIER = 0x06
    OTHER_SPEED_CONFIGURATION = 0x07
    INTERFACE_POWER = 0x08
    OTG = 0x09
    DEBUG = 0x0A
    INTERFACE_ASSOCIATION = 0x0B
    BOS = 0x0F
    DEVICE_CAPABILITY = 0x10
    HID = 0x21
    HID_REPORT = 0x22
    HID_PHYSICAL = 0x23
    CS_INTERFACE = 0x24
    CS_ENDPOINT = 0x25
    SUPERSPEED_ENDPOINT_COMPANION = 0x30
    SUPERSPEEDPLUS_ISOCHRONOUS_ENDPOINT_COMPANION = 0x31


# --- standard descriptors -------------------------------------------------------------


@dataclass(frozen=True)
class UnknownDescriptor:
    """A descriptor hwkit does not decode, kept whole (header included in ``data``)."""

    bLength: int
    bDescriptorType: int
    data: bytes


@dataclass(frozen=True)
class DeviceDescriptor:
    """USB 2.0 §9.6.1, 18 bytes."""

    FORMAT = "<BBHBBBBHHHBBBB"

    bLength: int
    bDescriptorType: int
    bcdUSB: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bMaxPacketSize0: int
    idVendor: int
    idProduct: int
    bcdDevice: int
    iManufacturer: int
    iProduct: int
    iSerialNumber: int
    bNumConfigurations: int


@dataclass(frozen=True)
class DeviceQualifierDescriptor:
    """USB 2.0 §9.6.2, 10 bytes: how a high-speed device would look at the other speed."""

    FORMAT = "<BBHBBBBBB"

    bLength: int
    bDescriptorType: int
    bcdUSB: int
    bDeviceClass: int
    bDeviceSubClass: int
    bDeviceProtocol: int
    bMaxPacketSize0: int
    bNumConfigurations: int
    bReserved: int


@dataclass(frozen=True)
class SuperSpeedEndpointCompanionDescriptor:
    """USB 3.2 §9.6.7, 6 bytes, right after a SuperSpeed endpoint."""

    FORMAT = "<BBBBH"

    bLength: int
    bDescriptorType: int
    bMaxBurst: int
    bmAttributes: int
    wBytesPerInterval: int


@dataclass(frozen=True)
class EndpointDescriptor:
    """USB 2.0 §9.6.6, 7 bytes (9 for Audio 1.0 endpoints, with bRefresh/bSynchAddress)."""

    FORMAT = "<BBBBHB"

    bLength: int
    bDescriptorType: int
    bEndpointAddress: int
    bmAttributes: int
    wMaxPacketSize: int
    bInterval: int
    bRefresh: int | None = None
    bSynchAddress: int | None = None
    companion: SuperSpeedEndpointCompanionDescriptor | None = None
    extra: tuple[Any, ...] = ()

    @property
    def number(self) -> int:
        """The endpoint number, bEndpointAddress bits 3..0."""
        return self.bEndpointAddress & 0x0F

    @property
    def is_in(self) -> bool:
        """True for a device-to-host (IN) endpoint: bEndpointAddress bit 7."""
        return bool(self.bEndpointAddress & 0x80)

    @property
    def transfer_type(self) -> int:
        """bmAttributes bits 1..0: see :class:`hwkit.usb.names.TransferType`."""
        return self.bmAttributes & 0x03

    @property
    def sync_type(self) -> int:
        """bmAttributes bits 3..2 (isochronous only)."""
        return (self.bmAttributes >> 2) & 0x03

    @property
    def usage_type(self) -> int:
        """bmAttributes bits 5..4 (isochronous and, in USB 3, interrupt)."""
        return (self.bmAttributes >> 4) & 0x03

    @property
    def max_packet_size(self) -> int:
        """wMaxPacketSize bits 10..0: bytes per packet."""
        return self.wMaxPacketSize & 0x07FF

    @property
    def transactions_per_microframe(self) -> int:
        """1 + wMaxPacketSize bits 12..11 (high-bandwidth high-speed endpoints)."""
        return 1 + ((self.wMaxPacketSize >> 11) & 0x03)


@dataclass(frozen=True)
class InterfaceAssociationDescriptor:
    """Interface Association Descriptor ECN, 8 bytes: groups the interfaces of a function."""

    FORMAT = "<BBBBBBBB"

    bLength: int
    bDescriptorType: int
    bFirstInterface: int
    bInterfaceCount: int
    bFunctionClass: int
    bFunctionSubClass: int
    bFunctionProtocol: int
    iFunction: int


@dataclass(frozen=True)
class InterfaceDescriptor:
    """USB 2.0 §9.6.5, 9 bytes, with its endpoints and class-specific descriptors."""

    FORMAT = "<BBBBBBBBB"

    bLength: int
    bDescriptorType: int
    bInterfaceNumber: int
    bAlternateSetting: int
    bNumEndpoints: int
    bInterfaceClass: int
    bInterfaceSubClass: int
    bInterfaceProtocol: int
    iInterface: int
    endpoints: tuple[EndpointDescriptor, ...] = ()
    extra: tuple[Any, ...] = ()


@dataclass(frozen=True)
class ConfigurationDescriptor:
    """USB 2.0 §9.6.3, 9 bytes, with everything its wTotalLength covers.

    ``interfaces`` lists every interface descriptor in order, one per alternate
    setting; ``associations`` the IADs; ``extra`` what comes before the first
    interface that is neither (OTG, class descriptors at configuration level).
    """

    FORMAT = "<BBHBBBBB"

    bLength: int
    bDescriptorType: int
    wTotalLength: int
    bNumInterfaces: int
    bConfigurationValue: int
    iConfiguration: int
    bmAttributes: int
    bMaxPower: int
    interfaces: tuple[InterfaceDescriptor, ...] = ()
    associations: tuple[InterfaceAssociationDescriptor, ...] = ()
    extra: tuple[Any, ...] = ()

    @property
    def self_powered(self) -> bool:
        """bmAttributes bit 6."""
        return bool(self.bmAttributes & 0x40)

    @property
    def remote_wakeup(self) -> bool:
        """bmAttributes bit 5."""
        return bool(self.bmAttributes & 0x20)

    def interface(self, number: int, alternate: int = 0) -> InterfaceDescriptor:
        """The descriptor of interface ``number`` in alternate setting ``alternate``.

        Raises:
            DescriptorError: no such interface/alternate setting in this configuration.
        """
        for intf in self.interfaces:
            if intf.bInterfaceNumber == number and intf.bAlternateSetting == alternate:
                return intf
        raise DescriptorError(
            f"configuration {self.bConfigurationValue} has no interface {number} "
            f"alternate setting {alternate}"
        )


@dataclass(frozen=True)
class StringDescriptor:
    """USB 2.0 §9.6.7: a UTF-16LE string (any index but 0)."""

    bLength: int
    bDescriptorType: int
    string: str


@dataclass(frozen=True)
class LanguageIDDescriptor:
    """USB 2.0 §9.6.7: string index 0, the LANGIDs the device supports."""

    bLength: int
    bDescriptorType: int
    wLANGID: tuple[int, ...]


# --- top-level parsers ----------------------------------------------------------------


def parse_device(data: bytes, offset: int = 0) -> DeviceDescriptor:
    """Parse the 18-byte device descriptor at ``offset``.

    Raises:
        DescriptorError: malformed (see module docstring).
    """
    return unpack(DeviceDescriptor, DeviceDescriptor.FORMAT, data, offset, "device descriptor", 1)


def parse_device_qualifier(data: bytes, offset: int = 0) -> DeviceQualifierDescriptor:
    """Parse a device qualifier descriptor (type 6).

    Raises:
        DescriptorError: malformed.
    """
    return unpack(
        DeviceQualifierDescriptor,
        DeviceQualifierDescriptor.FORMAT,
        data,
        offset,
        "device qualifier descriptor",
        6,
    )


def parse_endpoint(data: bytes, offset: int = 0) -> EndpointDescriptor:
    """Parse an endpoint descriptor (type 5); 9-byte audio endpoints keep bRefresh.

    Raises:
        DescriptorError: malformed.
    """
    ep = unpack(
        EndpointDescriptor, EndpointDescriptor.FORMAT, data, offset, "endpoint descriptor", 5
    )
    if ep.bLength >= 9:
        ep = dataclasses.replace(ep, bRefresh=data[offset + 7], bSynchAddress=data[offset + 8])
    return ep


def parse_interface(data: bytes, offset: int = 0) -> InterfaceDescriptor:
    """Parse one interface descriptor (type 4), without what follows it.

    Raises:
        DescriptorError: malformed.
    """
    return unpack(
        InterfaceDescriptor, InterfaceDescriptor.FORMAT, data, offset, "interface descriptor", 4
    )


def parse_interface_association(data: bytes, offset: int = 0) -> InterfaceAssociationDescriptor:
    """Parse an interface association descriptor (type 0x0B).

    Raises:
        DescriptorError: malformed.
    """
    return unpack(
        InterfaceAssociationDescriptor,
        InterfaceAssociationDescriptor.FORMAT,
        data,
        offset,
        "interface association descriptor",
        0x0B,
    )


def parse_ss_endpoint_companion(
    data: bytes, offset: int = 0
) -> SuperSpeedEndpointCompanionDescriptor:
    """Parse a SuperSpeed endpoint companion descriptor (type 0x30).

    Raises:
        DescriptorError: malformed.
    """
    return unpack(
        SuperSpeedEndpointCompanionDescriptor,
        SuperSpeedEndpointCompanionDescriptor.FORMAT,
        data,
        offset,
        "SuperSpeed endpoint companion descriptor",
        0x30,
    )


def parse_string(data: bytes, offset: int = 0) -> StringDescriptor:
    """Parse a string descriptor (index > 0): UTF-16LE text after the header.

    Invalid UTF-16 (a lone surrogate) is shown with U+FFFD rather than raised: it is
    the device's mistake and the rest of the string is still worth seeing.

    Raises:
        DescriptorError: malformed, or an odd bLength (half a UTF-16 code unit).
    """
    length = check_header(data, offset, "string descriptor", 3, 2)
    if length % 2:
        raise DescriptorError(
            f"string descriptor at offset {offset}: bLength {length} is odd, UTF-16 needs "
            "2 bytes per code unit",
            offset,
        )
    text = bytes(data[offset + 2 : offset + length]).decode("utf-16-le", errors="replace")
    return StringDescriptor(length, 3, text)


def parse_language_ids(data: bytes, offset: int = 0) -> LanguageIDDescriptor:
    """Parse string descriptor 0: the list of supported LANGIDs (0x0409 = US English).

    Raises:
        DescriptorError: malformed, or an odd bLength.
    """
    length = check_header(data, offset, "language ID string descriptor", 3, 2)
    if length % 2:
        raise DescriptorError(
            f"language ID string descriptor at offset {offset}: bLength {length} is odd",
            offset,
        )
    ids = struct.unpack_from(f"<{(length - 2) // 2}H", data, offset + 2)
    return LanguageIDDescriptor(length, 3, tuple(ids))


def _raw(data: bytes, offset: int, length: int) -> UnknownDescriptor:
    return UnknownDescriptor(length, data[offset + 1], bytes(data[offset : offset + length]))


class _Builder:
    """Collects the flat descriptor stream of a configuration into the nested shape."""

    def __init__(self) -> None:
        self.interfaces: list[InterfaceDescriptor] = []
        self.associations: list[InterfaceAssociationDescriptor] = []
        self.extra: list[Any] = []
        self._intf: InterfaceDescriptor | None = None
        self._intf_extra: list[Any] = []
        self._endpoints: list[EndpointDescriptor] = []

    def close_interface(self) -> None:
        """Freeze the interface being collected, with its endpoints and extras."""
        if self._intf is not None:
            self.interfaces.append(
                dataclasses.replace(
                    self._intf, endpoints=tuple(self._endpoints), extra=tuple(self._intf_extra)
                )
            )
        self._intf, self._intf_extra, self._endpoints = None, [], []

    def add(self, data: bytes, offset: int, length: int) -> None:
        """Place the descriptor at ``offset`` under the interface/endpoint it follows."""
        dtype = data[offset + 1]
        if dtype == DescriptorType.INTERFACE:
            self.close_interface()
            self._intf = parse_interface(data, offset)
        elif dtype == DescriptorType.INTERFACE_ASSOCIATION:
            self.close_interface()
            self.associations.append(parse_interface_association(data, offset))
        elif self._intf is None:
            self.extra.append(_raw(data, offset, length))
        elif dtype == DescriptorType.ENDPOINT:
            self._endpoints.append(parse_endpoint(data, offset))
        elif dtype == DescriptorType.SUPERSPEED_ENDPOINT_COMPANION and self._endpoints:
            ep = self._endpoints[-1]
            companion = parse_ss_endpoint_companion(data, offset)
            self._endpoints[-1] = dataclasses.replace(ep, companion=companion)
        elif self._endpoints and not self._hid_descriptor(dtype):
            ep = self._endpoints[-1]
            extra = (*ep.extra, _raw(data, offset, length))
            self._endpoints[-1] = dataclasses.replace(ep, extra=extra)
        else:
            self._intf_extra.append(self._class_specific(data, offset, length))

    def _hid_descriptor(self, dtype: int) -> bool:
        # Some devices put the HID descriptor after the endpoints; it still belongs to
        # the interface (the kernel's usbhid looks for it in both places).
        return (
            dtype == DescriptorType.HID
            and self._intf is not None
            and self._intf.bInterfaceClass == CLASS_HID
        )

    def _class_specific(self, data: bytes, offset: int, length: int) -> Any:
        assert self._intf is not None
        dtype, cls = data[offset + 1], self._intf.bInterfaceClass
        if dtype == DescriptorType.HID and cls == CLASS_HID:
            return parse_hid(data, offset)
        if dtype == DescriptorType.CS_INTERFACE and cls == CLASS_CDC:
            return parse_cdc_functional(data, offset)
        return _raw(data, offset, length)


def parse_configuration(data: bytes, offset: int = 0) -> ConfigurationDescriptor:
    """Parse a configuration descriptor and everything its wTotalLength covers.

    Raises:
        DescriptorError: the header or any descriptor inside is malformed, or
            wTotalLength is shorter than the header or runs past the end of ``data``.
    """
    config = unpack(
        ConfigurationDescriptor,
        ConfigurationDescriptor.FORMAT,
        data,
        offset,
        "configuration descriptor",
        DescriptorType.CONFIGURATION,
    )
    end = total_end("configuration descriptor", config, data, offset)
    builder = _Builder()
    for pos, length, _ in iter_descriptors(data, offset + config.bLength, end):
        builder.add(data, pos, length)
    builder.close_interface()
    return dataclasses.replace(
        config,
        interfaces=tuple(builder.interfaces),
        associations=tuple(builder.associations),
        extra=tuple(builder.extra),
    )


def parse_device_and_configurations(
    data: bytes,
) -> tuple[DeviceDescriptor, tuple[ConfigurationDescriptor, ...]]:
    """Parse a device descriptor followed by whole configurations, back to back.

    This is the layout of the sysfs ``descriptors`` file of a USB device
    (Documentation/ABI/stable/sysfs-bus-usb): the 18-byte device descriptor, then
    each configuration descriptor with everything its wTotalLength covers.

    Raises:
        DescriptorError: any part is malformed.
    """
    device = parse_device(data, 0)
    configs = []
    offset = device.bLength
    while offset < len(data):
        config = parse_configuration(data, offset)
        configs.append(config)
        offset += config.wTotalLength
    return device, tuple(configs)
