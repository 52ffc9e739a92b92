"""USB family: discovery, nubs, descriptors, I/O over libusb.

Descriptors are parsed from bytes (:mod:`hwkit.usb.descriptors`, field names as in the
USB specification); devices are found through sysfs without opening them
(:mod:`hwkit.usb.discovery`). Addresses: ``usb:VVVV:PPPP`` and ``usb:BUS-PORT.PATH``.
"""

from hwkit.usb.descriptors import (
    BOSDescriptor,
    ConfigurationDescriptor,
    DescriptorType,
    DeviceDescriptor,
    EndpointDescriptor,
    InterfaceAssociationDescriptor,
    InterfaceDescriptor,
    parse_bos,
    parse_configuration,
    parse_device,
    parse_device_and_configurations,
    parse_language_ids,
    parse_string,
)
from hwkit.usb.discovery import (
    USBDeviceInfo,
    USBInterfaceInfo,
    find_devices,
    list_devices,
)
from hwkit.usb.names import TransferType

__all__ = [
    "BOSDescriptor",
    "ConfigurationDescriptor",
    "DescriptorType",
    "DeviceDescriptor",
    "EndpointDescriptor",
    "InterfaceAssociationDescriptor",
    "InterfaceDescriptor",
    "TransferType",
    "USBDeviceInfo",
    "USBInterfaceInfo",
    "find_devices",
    "list_devices",
    "parse_bos",
    "parse_configuration",
    "parse_device",
    "parse_device_and_configurations",
    "parse_language_ids",
    "parse_string",
]
