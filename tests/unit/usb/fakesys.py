"""Build a fake sysfs USB tree in a temporary folder, laid out as the kernel does.

Devices live under ``devices/pci0000:00/<controller>/usbN/...`` with symlinks from
``bus/usb/devices``; interface attributes are derived from the active configuration's
descriptors so the tree stays self-consistent.
"""

from __future__ import annotations

import os
from pathlib import Path

from hwkit.usb.descriptors import parse_configuration

from . import vectors

CONTROLLER = "devices/pci0000:00/0000:00:04.0"


def _write(path: Path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)


def _link_driver(root: Path, dev: Path, bus: str, driver: str) -> None:
    target = root / "bus" / bus / "drivers" / driver
    target.mkdir(parents=True, exist_ok=True)
    (dev / "driver").symlink_to(os.path.relpath(target, dev))


def add_usb_device(
    root: Path,
    name: str,
    device: bytes,
    configs: list[bytes],
    *,
    devnum: int = 2,
    speed: str = "480",
    strings: dict[str, str] | None = None,
    drivers: dict[int, str] | None = None,
    ttys: dict[int, str] | None = None,
    active: int = 1,
) -> Path:
    """Add device ``name`` (``1-1.2`` or ``usb1``) and return its real directory.

    ``drivers`` maps interface numbers to bound driver names; ``ttys`` interface
    numbers to tty names (ttyUSB* as usb-serial ports, others as ttyACM-style).
    """
    busnum = int(name[3:]) if name.startswith("usb") else int(name.split("-")[0])
    devpath = "0" if name.startswith("usb") else name.split("-", 1)[1]
    parent = CONTROLLER if name.startswith("usb") else f"{CONTROLLER}/usb{busnum}"
    if "." in devpath:
        parent += "/" + name.rsplit(".", 1)[0]
    d = root / parent / name
    d.mkdir(parents=True, exist_ok=True)
    cfg = parse_configuration(configs[active - 1]) if configs else None
    vid, pid = int.from_bytes(device[8:10], "little"), int.from_bytes(device[10:12], "little")
    attrs = {
        "busnum": f"{busnum}\n",
        "devnum": f"{devnum}\n",
        "devpath": f"{devpath}\n",
        "speed": f"{speed}\n",
        "idVendor": f"{vid:04x}\n",
        "idProduct": f"{pid:04x}\n",
        "bcdDevice": f"{int.from_bytes(device[12:14], 'little'):04x}\n",
        "bDeviceClass": f"{device[4]:02x}\n",
        "bConfigurationValue": f"{active}\n" if cfg else "\n",
    }
    for key, text in attrs.items():
        _write(d / key, text)
    for key, text in (strings or {}).items():
        _write(d / key, text + "\n")
    _write(d / "descriptors", device + b"".join(configs))
    links = root / "bus/usb/devices"
    links.mkdir(parents=True, exist_ok=True)
    (links / name).symlink_to(os.path.relpath(d, links))
    _link_driver(root, d, "usb", "hub" if name.startswith("usb") else "usb")
    for intf in cfg.interfaces if cfg else ():
        if intf.bAlternateSetting:
            continue
        i = d / f"{busnum}-{devpath}:{active}.{intf.bInterfaceNumber}"  # usb1 -> 1-0:1.0
        for key, fmt in (
            ("bInterfaceNumber", "02x"),
            ("bInterfaceClass", "02x"),
            ("bInterfaceSubClass", "02x"),
            ("bInterfaceProtocol", "02x"),
            ("bNumEndpoints", "02x"),
        ):
            _write(i / key, f"{getattr(intf, key):{fmt}}\n")
        _write(i / "bAlternateSetting", f"{intf.bAlternateSetting:2d}\n")
        (links / i.name).symlink_to(os.path.relpath(i, links))
        if drivers and intf.bInterfaceNumber in drivers:
            _link_driver(root, i, "usb", drivers[intf.bInterfaceNumber])
        tty = (ttys or {}).get(intf.bInterfaceNumber)
        if tty:
            add_tty(root, i, tty)
    return d


def add_tty(root: Path, parent: Path, tty: str) -> Path:
    """Add tty ``tty`` below ``parent`` the way its driver does, plus /sys/class/tty."""
    if tty.startswith("ttyUSB"):
        port = parent / tty  # the usb-serial port device, then its tty
        port.mkdir(parents=True)
        _link_driver(root, port, "usb-serial", "ftdi_sio")
        device = port
    else:
        device = parent
    t = device / "tty" / tty
    t.mkdir(parents=True)
    _write(t / "dev", "188:0\n")
    (t / "device").symlink_to(os.path.relpath(device, t))
    cls = root / "class/tty"
    cls.mkdir(parents=True, exist_ok=True)
    (cls / tty).symlink_to(os.path.relpath(t, cls))
    return t


# The devices of the lab's usb profile, each in one call (names are sysfs names).


def add_root_hub(root: Path, bus: int = 1) -> Path:
    """An xHCI root hub, ``usbN``, under the controller at 0000:00:04.0."""
    return add_usb_device(
        root,
        f"usb{bus}",
        vectors.ROOT_HUB_DEVICE,
        [vectors.ROOT_HUB_CONFIG],
        devnum=1,
        strings={"product": "xHCI Host Controller"},
        drivers={0: "hub"},
    )


def add_keyboard(root: Path, name: str, devnum: int = 2) -> Path:
    """QEMU's usb-kbd, bound to usbhid."""
    return add_usb_device(
        root,
        name,
        vectors.KEYBOARD_DEVICE,
        [vectors.KEYBOARD_CONFIG],
        devnum=devnum,
        speed="12",
        strings={
            "manufacturer": "QEMU",
            "product": "QEMU USB Keyboard",
            "serial": "68284",
            "configuration": "HID Keyboard",
        },
        drivers={0: "usbhid"},
    )


def add_ftdi(root: Path, name: str, devnum: int = 3, tty: str = "ttyUSB0") -> Path:
    """An FT232R bound to ftdi_sio, with its tty."""
    strings = {"manufacturer": "FTDI", "product": "FT232R USB UART", "serial": "A50285BI"}
    return add_usb_device(
        root,
        name,
        vectors.FTDI_DEVICE,
        [vectors.FTDI_CONFIG],
        devnum=devnum,
        speed="12",
        strings=strings,
        drivers={0: "ftdi_sio"},
        ttys={0: tty},
    )


def add_acm_gadget(root: Path, name: str, devnum: int = 4, tty: str = "ttyACM0") -> Path:
    """The lab's SourceSink + CDC ACM composite gadget, ACM bound to cdc_acm."""
    return add_usb_device(
        root,
        name,
        vectors.ACM_COMPOSITE_DEVICE,
        [vectors.ACM_COMPOSITE_CONFIG],
        devnum=devnum,
        drivers={1: "cdc_acm", 2: "cdc_acm"},
        ttys={1: tty},
    )
