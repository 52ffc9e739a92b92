"""Serial ports with real hardware behind them, found through sysfs and /dev/serial.

Every tty is in ``/sys/class/tty`` (Documentation/ABI/testing/sysfs-tty), but most are
virtual consoles and ptys. A port has hardware behind it when its directory has a
``device`` link; for the 8250 driver's ``ttyS*`` that link exists for every
pre-allocated port, so those count only when ``type`` (the UART type) is not 0
(PORT_UNKNOWN). USB adapters (``ttyUSB*`` from usb-serial drivers, ``ttyACM*`` from
cdc_acm) carry their USB device's IDs, serial number and interface, found by walking
up the device path; udev's ``/dev/serial/by-id`` and ``by-path`` links are listed too.
A USB gadget's own end (``ttyGS*``, from u_serial) has no ``device`` link yet is a
real port of the UDC, so it is listed as kind ``gadget``.

Address people type: ``serial:/dev/ttyUSB0`` (``serial:ttyUSB0`` and by-id paths work
too). ``sysfs_root`` and ``dev_root`` are injectable so tests build fake trees.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from hwkit.errors import BadArgument, NotFoundError

SYSFS_ROOT = Path("/sys")
DEV_ROOT = Path("/dev")

_SUFFIX = re.compile(r"^(?P<base>.*?)(?P<suffix>\d*)$")


@dataclass(frozen=True)
class SerialPort:
    """One tty with hardware behind it.

    ``kind`` is ``"usb"``, ``"gadget"``, ``"pci"`` or ``"platform"`` (legacy UARTs
    found by PNP/ACPI or the platform bus). The ``usb_*`` fields are set for USB
    adapters only; ``usb_address`` is the USB device's ``usb:BUS-PORT.PATH``.
    """

    name: str
    sysfs_path: Path
    kind: str
    driver: str | None = None
    port_type: int | None = None
    usb_vid: int | None = None
    usb_pid: int | None = None
    usb_serial: str | None = None
    usb_manufacturer: str | None = None
    usb_product: str | None = None
    usb_interface: int | None = None
    usb_interface_name: str | None = None
    usb_address: str | None = None
    pci_address: str | None = None
    by_id: tuple[str, ...] = ()
    by_path: tuple[str, ...] = ()

    @property
    def device_node(self) -> str:
        """``/dev/NAME``."""
        return f"/dev/{self.name}"

    @property
    def address(self) -> str:
        """``serial:/dev/NAME``."""
        return f"serial:{self.device_node}"


def _text(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


# serial-base (Linux 6.5+) puts "ctrl"/"port" devices between the tty and its UART.
_SERIAL_BASE_DRIVERS = {"port", "ctrl"}


def _driver(device: Path) -> str | None:
    """The driver of the hardware: the first ancestor bound to a non serial-base one."""
    for parent in (device, *device.parents):
        link = parent / "driver"
        if link.is_symlink():
            name = os.path.basename(os.readlink(link))
            if name not in _SERIAL_BASE_DRIVERS:
                return name
        if parent.name == "devices" or parent == parent.parent:
            break
    return None


def _links(dev_root: Path, folder: str) -> dict[str, list[str]]:
    """tty name -> the udev links in /dev/serial/<folder> that point to it."""
    out: dict[str, list[str]] = {}
    base = Path(dev_root) / "serial" / folder
    if not base.is_dir():
        return out
    for link in sorted(base.iterdir()):
        if link.is_symlink():
            out.setdefault(os.path.basename(os.readlink(link)), []).append(str(link))
    return out


def _usb_fields(device: Path) -> dict[str, object]:
    """The USB interface and device above ``device``, if it sits on USB."""
    fields: dict[str, object] = {}
    for parent in (device, *device.parents):
        if "usb_interface" not in fields and (parent / "bInterfaceNumber").is_file():
            number = _text(parent / "bInterfaceNumber")
            fields["usb_interface"] = int(number, 16) if number else None
            fields["usb_interface_name"] = _text(parent / "interface")
        if (parent / "idVendor").is_file():
            fields.update(
                usb_vid=int(_text(parent / "idVendor") or "0", 16),
                usb_pid=int(_text(parent / "idProduct") or "0", 16),
                usb_serial=_text(parent / "serial"),
                usb_manufacturer=_text(parent / "manufacturer"),
                usb_product=_text(parent / "product"),
                usb_address=f"usb:{_text(parent / 'busnum')}-{_text(parent / 'devpath') or '0'}",
            )
            return fields
        if parent.name.startswith("pci") or parent == parent.parent:
            break
    return {}


def _pci_address(device: Path) -> str | None:
    for parent in (device, *device.parents):
        if (parent / "vendor").is_file() and (parent / "config").exists():
            return f"pci:{parent.name}"
    return None


def read_port(
    tty_dir: Path, dev_root: Path = DEV_ROOT, links: dict | None = None
) -> SerialPort | None:
    """Read one ``/sys/class/tty/NAME``; None when no hardware is behind it."""
    name = tty_dir.name
    device_link = tty_dir / "device"
    if links is None:
        links = {"by-id": _links(dev_root, "by-id"), "by-path": _links(dev_root, "by-path")}
    common = {
        "by_id": tuple(links["by-id"].get(name, ())),
        "by_path": tuple(links["by-path"].get(name, ())),
    }
    if not device_link.exists():
        if name.startswith("ttyGS"):
            return SerialPort(name, tty_dir, "gadget", driver="g_serial", **common)
        return None
    port_type = None
    if name.startswith("ttyS"):
        text = _text(tty_dir / "type")
        port_type = int(text) if text and text.isdigit() else 0
        if port_type == 0:
            return None  # a pre-allocated 8250 slot with no UART behind it
    device = device_link.resolve()
    usb = _usb_fields(device)
    pci = None if usb else _pci_address(device)
    kind = "usb" if usb else "pci" if pci else "platform"
    return SerialPort(
        name,
        tty_dir,
        kind,
        driver=_driver(device),
        port_type=port_type,
        pci_address=pci,
        **usb,
        **common,
    )


def _sort_key(port: SerialPort) -> tuple[str, int]:
    m = _SUFFIX.match(port.name)
    assert m is not None
    return m["base"], int(m["suffix"] or -1)


def list_ports(sysfs_root: Path = SYSFS_ROOT, dev_root: Path = DEV_ROOT) -> list[SerialPort]:
    """Every tty with hardware behind it, sorted by name (ttyACM0 < ttyACM1 < ttyS0...)."""
    base = Path(sysfs_root) / "class/tty"
    if not base.is_dir():
        return []
    links = {"by-id": _links(dev_root, "by-id"), "by-path": _links(dev_root, "by-path")}
    ports = [read_port(entry, dev_root, links) for entry in base.iterdir()]
    return sorted((p for p in ports if p is not None), key=_sort_key)


def parse_address(address: str, dev_root: Path = DEV_ROOT) -> str:
    """The tty name an address names: ``serial:/dev/ttyUSB0``, ``serial:ttyUSB0``, or
    ``serial:/dev/serial/by-id/...`` (resolved through its link).

    Raises:
        BadArgument: not a ``serial:`` address.
        NotFoundError: a by-id/by-path link that does not exist.
    """
    if not address.startswith("serial:") or len(address) <= len("serial:"):
        raise BadArgument(
            f"not a serial address: {address!r} (expected serial:/dev/NAME such as "
            "serial:/dev/ttyUSB0)"
        )
    path = address[len("serial:") :]
    if path.startswith("/dev/serial/"):
        link = Path(dev_root) / path[len("/dev/") :]
        if not link.is_symlink():
            raise NotFoundError(f"no such serial link: {path}")
        return os.path.basename(os.readlink(link))
    return path.removeprefix("/dev/")


def find_port(address: str, sysfs_root: Path = SYSFS_ROOT, dev_root: Path = DEV_ROOT) -> SerialPort:
    """The port at ``address``.

    Raises:
        BadArgument: a malformed address.
        NotFoundError: no such tty, or no hardware behind it; the message lists ports.
    """
    name = parse_address(address, dev_root)
    for port in list_ports(sysfs_root, dev_root):
        if port.name == name:
            return port
    present = ", ".join(p.address for p in list_ports(sysfs_root, dev_root)) or "none"
    raise NotFoundError(f"no serial port {name} with hardware behind it; ports: {present}")


def nub_properties(port: SerialPort) -> dict[str, object]:
    """The properties of an ``IOSerialStreamSync`` nub, with I/O Kit's key names.

    Linux has no callout/dial-in split: both keys name the same node.
    """
    m = _SUFFIX.match(port.name)
    assert m is not None
    props: dict[str, object] = {
        "IOTTYDevice": port.name,
        "IOTTYBaseName": m["base"],
        "IOTTYSuffix": m["suffix"],
        "IOCalloutDevice": port.device_node,
        "IODialinDevice": port.device_node,
        "IOSerialBSDClientType": "IORS232SerialStream",
        "HWAddress": port.address,
        "HWPortKind": port.kind,
    }
    if port.driver:
        props["HWKernelDriver"] = port.driver
    if port.usb_vid is not None:
        props.update(idVendor=port.usb_vid, idProduct=port.usb_pid)
        if port.usb_serial is not None:
            props["USB Serial Number"] = port.usb_serial
        if port.usb_interface is not None:
            props["bInterfaceNumber"] = port.usb_interface
    return props
