"""USB devices as sysfs shows them, without opening anything.

Linux lists every USB device under ``/sys/bus/usb/devices`` (Documentation/ABI/stable/
sysfs-bus-usb and testing/sysfs-bus-usb): a device is named ``BUS-PORT.PORT...``
(a root hub ``usbBUS``), each interface of its active configuration
``DEVICE:CONFIG.INTERFACE``. A device directory carries ``busnum``, ``devnum``,
``devpath``, ``speed``, the ID files, the optional strings ``manufacturer`` /
``product`` / ``serial``, and ``descriptors``: the device descriptor followed by every
configuration descriptor, world-readable, which is all ``hwkit probe`` needs to show a
device as ``lsusb -v`` would without opening it.

Addresses people type: ``usb:VVVV:PPPP`` (vendor:product, may match several devices)
and ``usb:BUS-PORT.PATH`` (one physical port, e.g. ``usb:1-1.2``; a root hub is
``usb:1-0``). Every function takes ``sysfs_root`` so tests build a fake tree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from hwkit.errors import BadArgument, DescriptorError, NotFoundError
from hwkit.usb.descriptors import (
    ConfigurationDescriptor,
    DeviceDescriptor,
    parse_device_and_configurations,
)
from hwkit.usb.names import SPEED_NAMES

SYSFS_ROOT = Path("/sys")

_DEVICE_NAME = re.compile(r"^(?:usb\d+|\d+-\d+(?:\.\d+)*)$")
_ID_ADDRESS = re.compile(r"^usb:([0-9a-fA-F]{4}):([0-9a-fA-F]{4})$")
_PORT_ADDRESS = re.compile(r"^usb:(\d+)-(\d+(?:\.\d+)*)$")


def _text(path: Path) -> str | None:
    """A sysfs attribute's text without its newline, or None if absent/unreadable."""
    try:
        return path.read_text(errors="replace").rstrip("\n")
    except OSError:
        return None


def _int(path: Path, base: int = 10) -> int | None:
    text = _text(path)
    try:
        return int(text.strip(), base) if text and text.strip() else None
    except ValueError:
        return None


def _driver(path: Path) -> str | None:
    link = path / "driver"
    return link.resolve().name if link.is_symlink() else None


@dataclass(frozen=True)
class USBInterfaceInfo:
    """One interface of a device's active configuration, as sysfs shows it."""

    name: str
    bInterfaceNumber: int
    bAlternateSetting: int
    bInterfaceClass: int
    bInterfaceSubClass: int
    bInterfaceProtocol: int
    bNumEndpoints: int
    interface: str | None = None  # the iInterface string the kernel read
    driver: str | None = None
    ttys: tuple[str, ...] = ()


@dataclass(frozen=True)
class USBDeviceInfo:
    """One USB device: where it is, its strings, and its parsed descriptors.

    ``device`` and ``configurations`` come from the sysfs ``descriptors`` file; when
    that is missing or malformed they are None/empty and ``error`` says why, while the
    ID fields (read from their own sysfs files) are still there.
    """

    name: str
    sysfs_path: Path
    busnum: int
    devnum: int
    devpath: str
    speed: str | None
    idVendor: int
    idProduct: int
    manufacturer: str | None = None
    product: str | None = None
    serial: str | None = None
    configuration: str | None = None  # the active configuration's iConfiguration string
    bConfigurationValue: int | None = None
    driver: str | None = None
    device: DeviceDescriptor | None = None
    configurations: tuple[ConfigurationDescriptor, ...] = ()
    interfaces: tuple[USBInterfaceInfo, ...] = ()
    error: str | None = None

    @property
    def port_numbers(self) -> tuple[int, ...]:
        """Port numbers from the root hub down; empty for a root hub."""
        return () if self.devpath in ("", "0") else tuple(int(p) for p in self.devpath.split("."))

    @property
    def address(self) -> str:
        """The port address, ``usb:BUS-PORT.PATH`` (``usb:BUS-0`` for a root hub)."""
        return f"usb:{self.busnum}-{self.devpath or '0'}"

    @property
    def id_address(self) -> str:
        """The ID address, ``usb:VVVV:PPPP``."""
        return f"usb:{self.idVendor:04x}:{self.idProduct:04x}"

    @property
    def location_id(self) -> int:
        """I/O Kit's locationID: bus in bits 31..24, one port per nibble below."""
        value = (self.busnum & 0xFF) << 24
        for level, port in enumerate(self.port_numbers[:6]):
            value |= (port & 0xF) << (20 - 4 * level)
        return value

    @property
    def speed_name(self) -> str | None:
        """The spec's name of the link speed (``High Speed``), or None if unknown."""
        return SPEED_NAMES.get(self.speed or "")

    @property
    def active_configuration(self) -> ConfigurationDescriptor | None:
        """The parsed descriptor of the active configuration, if any."""
        for config in self.configurations:
            if config.bConfigurationValue == self.bConfigurationValue:
                return config
        return None


def _ttys(intf: Path) -> tuple[str, ...]:
    """tty names below an interface: ``tty/ttyACM0`` and ``ttyUSB0/tty/ttyUSB0``."""
    found = {p.name for p in intf.glob("tty/*")} | {p.name for p in intf.glob("*/tty/*")}
    return tuple(sorted(found))


def read_interface(path: Path) -> USBInterfaceInfo:
    """Read one interface directory (``1-1:1.0``).

    Raises:
        NotFoundError: the directory has no bInterfaceNumber (not an interface).
    """
    number = _int(path / "bInterfaceNumber", 16)
    if number is None:
        raise NotFoundError(f"{path} is not a USB interface (no bInterfaceNumber)")
    return USBInterfaceInfo(
        name=path.name,
        bInterfaceNumber=number,
        bAlternateSetting=_int(path / "bAlternateSetting") or 0,  # sysfs prints "%2d"
        bInterfaceClass=_int(path / "bInterfaceClass", 16) or 0,
        bInterfaceSubClass=_int(path / "bInterfaceSubClass", 16) or 0,
        bInterfaceProtocol=_int(path / "bInterfaceProtocol", 16) or 0,
        bNumEndpoints=_int(path / "bNumEndpoints", 16) or 0,
        interface=_text(path / "interface"),
        driver=_driver(path),
        ttys=_ttys(path),
    )


def read_device(path: Path) -> USBDeviceInfo:
    """Read one USB device directory (``/sys/bus/usb/devices/1-1``).

    A missing or malformed ``descriptors`` file does not raise: the result carries
    the reason in ``error`` so a listing still shows the device.

    Raises:
        NotFoundError: the directory is not a USB device (no idVendor/busnum).
    """
    vid, pid = _int(path / "idVendor", 16), _int(path / "idProduct", 16)
    busnum, devnum = _int(path / "busnum"), _int(path / "devnum")
    if vid is None or pid is None or busnum is None:
        raise NotFoundError(f"{path} is not a USB device (no idVendor/idProduct/busnum)")
    device, configs, error = None, (), None
    try:
        raw = (path / "descriptors").read_bytes()
        device, configs = parse_device_and_configurations(raw)
    except OSError as exc:
        error = f"cannot read {path / 'descriptors'}: {exc.strerror or exc}"
    except DescriptorError as exc:
        error = f"malformed descriptors in {path / 'descriptors'}: {exc}"
    devpath = (_text(path / "devpath") or "0").strip()
    interfaces = []
    # Interfaces are named after the port path: a root hub "usb1" has "1-0:1.0".
    for child in sorted(path.glob(f"{busnum}-{devpath}:*")):
        try:
            interfaces.append(read_interface(child))
        except NotFoundError:
            continue
    interfaces.sort(key=lambda i: (i.bInterfaceNumber, i.bAlternateSetting))
    return USBDeviceInfo(
        name=path.name,
        sysfs_path=path,
        busnum=busnum,
        devnum=devnum or 0,
        devpath=devpath,
        speed=(_text(path / "speed") or "").strip() or None,
        idVendor=vid,
        idProduct=pid,
        manufacturer=_text(path / "manufacturer"),
        product=_text(path / "product"),
        serial=_text(path / "serial"),
        configuration=_text(path / "configuration") or None,
        bConfigurationValue=_int(path / "bConfigurationValue"),
        driver=_driver(path),
        device=device,
        configurations=configs,
        interfaces=tuple(interfaces),
        error=error,
    )


def _sort_key(dev: USBDeviceInfo) -> tuple[int, tuple[int, ...]]:
    return dev.busnum, dev.port_numbers


def list_devices(sysfs_root: Path = SYSFS_ROOT) -> list[USBDeviceInfo]:
    """Every USB device (root hubs included) sorted by bus and port path.

    Returns an empty list on a machine without a USB bus. Never raises for one odd
    device: directories that are not devices are skipped.
    """
    base = Path(sysfs_root) / "bus/usb/devices"
    if not base.is_dir():
        return []
    devices = []
    for entry in base.iterdir():
        if not _DEVICE_NAME.match(entry.name):
            continue
        try:
            devices.append(read_device(entry))
        except NotFoundError:
            continue
    return sorted(devices, key=_sort_key)


def parse_address(address: str) -> tuple[str, int, int | str]:
    """Split a USB address into ``("id", vid, pid)`` or ``("port", bus, devpath)``.

    Raises:
        BadArgument: neither ``usb:VVVV:PPPP`` nor ``usb:BUS-PORT.PATH``.
    """
    if m := _ID_ADDRESS.match(address):
        return "id", int(m[1], 16), int(m[2], 16)
    if m := _PORT_ADDRESS.match(address):
        return "port", int(m[1]), m[2]
    raise BadArgument(
        f"not a USB address: {address!r} (expected usb:VVVV:PPPP such as usb:0627:0001, "
        "or usb:BUS-PORT.PATH such as usb:1-1.2)"
    )


def find_devices(address: str, sysfs_root: Path = SYSFS_ROOT) -> list[USBDeviceInfo]:
    """The devices an address names (several for an ID address, one for a port).

    Raises:
        BadArgument: a malformed address.
        NotFoundError: no device has it; the message lists what is there.
    """
    kind, a, b = parse_address(address)
    devices = list_devices(sysfs_root)
    if kind == "id":
        found = [d for d in devices if (d.idVendor, d.idProduct) == (a, b)]
    else:
        found = [d for d in devices if (d.busnum, d.devpath) == (a, b)]
    if not found:
        present = ", ".join(f"{d.address} ({d.id_address})" for d in devices) or "none"
        raise NotFoundError(f"no USB device at {address}; devices present: {present}")
    return found


def device_properties(dev: USBDeviceInfo) -> dict[str, object]:
    """The properties of an ``IOUSBHostDevice`` nub: what USB matching reads.

    Keys are the descriptor fields' spec names plus I/O Kit's string keys
    (``USB Vendor Name``...), ``locationID``, and hwkit's ``HWAddress``.
    """
    props: dict[str, object] = {"idVendor": dev.idVendor, "idProduct": dev.idProduct}
    if dev.device is not None:
        d = dev.device
        props.update(
            bcdDevice=d.bcdDevice,
            bcdUSB=d.bcdUSB,
            bDeviceClass=d.bDeviceClass,
            bDeviceSubClass=d.bDeviceSubClass,
            bDeviceProtocol=d.bDeviceProtocol,
            bMaxPacketSize0=d.bMaxPacketSize0,
            bNumConfigurations=d.bNumConfigurations,
            iManufacturer=d.iManufacturer,
            iProduct=d.iProduct,
            iSerialNumber=d.iSerialNumber,
        )
    if dev.bConfigurationValue is not None:
        props["bConfigurationValue"] = dev.bConfigurationValue
    for key, value in (
        ("USB Vendor Name", dev.manufacturer),
        ("USB Product Name", dev.product),
        ("USB Serial Number", dev.serial),
    ):
        if value is not None:
            props[key] = value
    props.update(
        locationID=dev.location_id,
        **{"USB Address": dev.devnum, "USBSpeed": dev.speed or ""},
        HWAddress=dev.address,
    )
    return props


def interface_properties(dev: USBDeviceInfo, intf: USBInterfaceInfo) -> dict[str, object]:
    """The properties of an ``IOUSBHostInterface`` nub.

    Besides the interface's own fields it carries the device's idVendor, idProduct,
    bcdDevice and bConfigurationValue, which Apple's interface match keys combine, and
    ``HWKernelDriver`` when a kernel driver holds the interface.
    """
    props: dict[str, object] = {"idVendor": dev.idVendor, "idProduct": dev.idProduct}
    if dev.device is not None:
        props["bcdDevice"] = dev.device.bcdDevice
    if dev.bConfigurationValue is not None:
        props["bConfigurationValue"] = dev.bConfigurationValue
    props.update(
        bInterfaceNumber=intf.bInterfaceNumber,
        bAlternateSetting=intf.bAlternateSetting,
        bInterfaceClass=intf.bInterfaceClass,
        bInterfaceSubClass=intf.bInterfaceSubClass,
        bInterfaceProtocol=intf.bInterfaceProtocol,
        bNumEndpoints=intf.bNumEndpoints,
        locationID=dev.location_id,
        HWAddress=f"{dev.address}:{dev.bConfigurationValue or 0}.{intf.bInterfaceNumber}",
    )
    if intf.interface is not None:
        props["USB Interface Name"] = intf.interface
    if intf.driver is not None:
        props["HWKernelDriver"] = intf.driver  # matching leaves it alone unless told
    return props
