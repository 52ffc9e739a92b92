"""USB devices as text (in the manner of ``lsusb -v``) and as JSON for ``hwkit probe``.

Both views are built from :class:`hwkit.usb.discovery.USBDeviceInfo` and keep the
descriptor fields under their USB spec names; JSON numbers stay numbers (bytes become
hex strings).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hwkit.usb import descriptors as d
from hwkit.usb.discovery import USBDeviceInfo, USBInterfaceInfo
from hwkit.usb.names import (
    CDC_SUBTYPE_NAMES,
    SYNC_TYPE_NAMES,
    TRANSFER_TYPE_NAMES,
    USAGE_TYPE_NAMES,
    class_name,
    protocol_name,
    subclass_name,
)

# Fields that hold the children of a descriptor, not a value of its own.
_CHILDREN = {"interfaces", "associations", "endpoints", "extra", "companion", "capabilities"}


def descriptor_to_json(desc: Any) -> Any:
    """A descriptor dataclass as a JSON-ready dict (``type`` names its class)."""
    if dataclasses.is_dataclass(desc) and not isinstance(desc, type):
        out: dict[str, Any] = {"type": type(desc).__name__}
        for f in dataclasses.fields(desc):
            out[f.name] = descriptor_to_json(getattr(desc, f.name))
        return out
    if isinstance(desc, bytes):
        return desc.hex()
    if isinstance(desc, tuple | list):
        return [descriptor_to_json(x) for x in desc]
    return desc


def _speed_number(speed: str | None) -> float | int | None:
    try:
        value = float(speed or "")
    except ValueError:
        return None
    return int(value) if value.is_integer() else value


def _interface_info(dev: USBDeviceInfo, number: int) -> USBInterfaceInfo | None:
    return next((i for i in dev.interfaces if i.bInterfaceNumber == number), None)


def device_to_json(dev: USBDeviceInfo) -> dict[str, Any]:
    """One device for ``hwkit probe usb --json``: location, strings, descriptors.

    Interfaces of the active configuration also carry the kernel ``driver`` bound to
    them and their ``ttys``.
    """
    configs = []
    for config in dev.configurations:
        cj = descriptor_to_json(config)
        if config.bConfigurationValue == dev.bConfigurationValue:
            for ij in cj["interfaces"]:
                info = _interface_info(dev, ij["bInterfaceNumber"])
                ij["driver"] = info.driver if info else None
                ij["ttys"] = list(info.ttys) if info else []
        configs.append(cj)
    return {
        "address": dev.address,
        "id_address": dev.id_address,
        "sysfs_name": dev.name,
        "busnum": dev.busnum,
        "devnum": dev.devnum,
        "devpath": dev.devpath,
        "port_numbers": list(dev.port_numbers),
        "location_id": dev.location_id,
        "speed_mbps": _speed_number(dev.speed),
        "speed_name": dev.speed_name,
        "idVendor": dev.idVendor,
        "idProduct": dev.idProduct,
        "manufacturer": dev.manufacturer,
        "product": dev.product,
        "serial": dev.serial,
        "configuration": dev.configuration,
        "driver": dev.driver,
        "bConfigurationValue": dev.bConfigurationValue,
        "device": descriptor_to_json(dev.device) if dev.device else None,
        "configurations": configs,
        "interfaces": [dataclasses.asdict(i) | {"ttys": list(i.ttys)} for i in dev.interfaces],
        "error": dev.error,
    }


# --- text -------------------------------------------------------------------------------


def _bcd(value: int) -> str:
    return f"{value >> 8:x}.{value & 0xFF:02x}"


def _class_text(cls: int, sub: int | None = None, proto: int | None = None) -> str:
    if proto is not None and sub is not None:
        return protocol_name(cls, sub, proto) or ""
    if sub is not None:
        return subclass_name(cls, sub) or ""
    return class_name(cls) or ""


class _Writer:
    """Collects ``lsusb -v``-style lines: ``name  value  comment`` at an indent."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def title(self, indent: int, text: str) -> None:
        """A heading or free-text line."""
        self.lines.append(" " * indent + text)

    def field(self, indent: int, name: str, value: str, comment: str = "") -> None:
        """A ``name  value  comment`` line, values right-aligned as lsusb does."""
        line = f"{' ' * indent}{name:<20}{value:>7}"
        self.lines.append(f"{line} {comment}".rstrip())


def _format_value(name: str, value: Any) -> str:
    if name.startswith("bcd"):
        return _bcd(value)
    if name.startswith(("id", "bm")) or name in ("bEndpointAddress", "wMaxPacketSize"):
        return f"0x{value:04x}" if name.startswith(("id", "w")) else f"0x{value:02x}"
    if isinstance(value, bytes):
        return value.hex(" ")
    return str(value)


def _write_fields(w: _Writer, indent: int, desc: Any, strings: dict[str, str]) -> None:
    for f in dataclasses.fields(desc):
        if f.name in _CHILDREN:
            continue
        value = getattr(desc, f.name)
        if value is None or isinstance(value, tuple):
            continue  # absent, or a list the caller writes itself
        comment = strings.get(f.name, "")
        if f.name.endswith(("Class", "SubClass", "Protocol")):
            comment = comment or _class_comment(desc, f.name)
        w.field(indent, f.name, _format_value(f.name, value), comment)


def _class_comment(desc: Any, name: str) -> str:
    prefix = name.removesuffix("Class").removesuffix("Sub").removesuffix("Protocol")
    cls = getattr(desc, f"{prefix}Class", None)
    sub = getattr(desc, f"{prefix}SubClass", None)
    proto = getattr(desc, f"{prefix}Protocol", None)
    if cls is None:
        return ""
    if name.endswith("SubClass"):
        return _class_text(cls, sub)
    if name.endswith("Protocol"):
        return _class_text(cls, sub, proto)
    return _class_text(cls)


def _write_endpoint(w: _Writer, ep: d.EndpointDescriptor, ss: bool) -> None:
    w.title(6, "Endpoint Descriptor:")
    _write_fields(w, 8, ep, {"bEndpointAddress": f"EP {ep.number} {'IN' if ep.is_in else 'OUT'}"})
    w.title(10, f"Transfer Type            {TRANSFER_TYPE_NAMES[ep.transfer_type]}")
    w.title(10, f"Synch Type               {SYNC_TYPE_NAMES[ep.sync_type]}")
    w.title(10, f"Usage Type               {USAGE_TYPE_NAMES[ep.usage_type]}")
    w.title(8, f"max packet: {ep.transactions_per_microframe}x {ep.max_packet_size} bytes")
    if ep.companion is not None:
        w.title(8, "SuperSpeed Endpoint Companion Descriptor:")
        _write_fields(w, 10, ep.companion, {})
    for extra in ep.extra:
        _write_extra(w, 8, extra)


def _write_extra(w: _Writer, indent: int, extra: Any) -> None:
    if isinstance(extra, d.HIDDescriptor):
        w.title(indent, "HID Device Descriptor:")
        _write_fields(w, indent + 2, extra, {})
        for dtype, length in extra.descriptors:
            kind = "Report" if dtype == 0x22 else f"0x{dtype:02x}"
            w.title(indent + 4, f"{kind} Descriptor: (length is {length})")
    elif hasattr(extra, "bDescriptorSubtype"):
        name = CDC_SUBTYPE_NAMES.get(extra.bDescriptorSubtype, "Unknown")
        w.title(indent, f"CDC {name}:")
        _write_fields(w, indent + 2, extra, {})
        for n in getattr(extra, "bSubordinateInterface", ()):
            w.field(indent + 2, "bSubordinateInterface", str(n))
    else:
        w.title(indent, f"Unknown descriptor (type 0x{extra.bDescriptorType:02x}):")
        w.title(indent + 2, extra.data.hex(" "))


def _write_interface(
    w: _Writer, intf: d.InterfaceDescriptor, info: USBInterfaceInfo | None, ss: bool
) -> None:
    w.title(4, "Interface Descriptor:")
    strings = {"iInterface": info.interface} if info and info.interface else {}
    _write_fields(w, 6, intf, strings)
    if info is not None:
        w.title(6, f"Driver: {info.driver or '(none bound)'} [{info.name}]")
        for tty in info.ttys:
            w.title(6, f"tty: /dev/{tty} (serial:/dev/{tty})")
    for extra in intf.extra:
        _write_extra(w, 6, extra)
    for ep in intf.endpoints:
        _write_endpoint(w, ep, ss)


def _write_configuration(w: _Writer, dev: USBDeviceInfo, config: d.ConfigurationDescriptor) -> None:
    active = config.bConfigurationValue == dev.bConfigurationValue
    ss = (dev.device is not None and dev.device.bcdUSB >= 0x300) and _speed_number(dev.speed) in (
        5000,
        10000,
        20000,
    )
    w.title(2, f"Configuration Descriptor:{' (active)' if active else ''}")
    _write_fields(w, 4, config, {"iConfiguration": dev.configuration or ""} if active else {})
    w.title(6, "Self Powered" if config.self_powered else "(Bus Powered)")
    if config.remote_wakeup:
        w.title(6, "Remote Wakeup")
    w.title(4, f"MaxPower {config.bMaxPower * (8 if ss else 2):>14}mA")
    for iad in config.associations:
        w.title(4, "Interface Association:")
        _write_fields(w, 6, iad, {})
    for extra in config.extra:
        _write_extra(w, 4, extra)
    for intf in config.interfaces:
        info = _interface_info(dev, intf.bInterfaceNumber) if active else None
        if info is not None and info.bAlternateSetting != intf.bAlternateSetting:
            info = None  # sysfs describes the alternate setting in use only
        _write_interface(w, intf, info, ss)


def format_device(dev: USBDeviceInfo, verbose: bool = True) -> list[str]:
    """Lines describing one device; ``verbose`` adds every descriptor (``lsusb -v``)."""
    w = _Writer()
    names = " ".join(x for x in (dev.manufacturer, dev.product) if x)
    speed = f"{dev.speed_name or 'unknown speed'} ({dev.speed or '?'} Mb/s)"
    w.title(
        0,
        f"Bus {dev.busnum:03d} Device {dev.devnum:03d}: ID {dev.idVendor:04x}:"
        f"{dev.idProduct:04x} {names}".rstrip()
        + f"  [{dev.address}, {speed}]",
    )
    if dev.error:
        w.title(2, f"! {dev.error}")
    if not verbose or dev.device is None:
        for info in dev.interfaces:
            w.title(
                2,
                f"Interface {info.bInterfaceNumber}: class {info.bInterfaceClass:02x}/"
                f"{info.bInterfaceSubClass:02x}/{info.bInterfaceProtocol:02x} "
                f"({class_name(info.bInterfaceClass) or '?'}), driver {info.driver or '-'}",
            )
        return w.lines
    w.title(0, "Device Descriptor:")
    strings = {
        "idVendor": dev.manufacturer or "",
        "idProduct": dev.product or "",
        "iManufacturer": dev.manufacturer or "",
        "iProduct": dev.product or "",
        "iSerialNumber": dev.serial or "",
    }
    _write_fields(w, 2, dev.device, strings)
    for config in dev.configurations:
        _write_configuration(w, dev, config)
    return w.lines
