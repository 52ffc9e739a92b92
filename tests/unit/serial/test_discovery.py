"""Tests of hwkit.serial.discovery against fake sysfs and /dev trees."""

from __future__ import annotations

import os

import pytest

from hwkit.errors import BadArgument, NotFoundError
from hwkit.serial import discovery

from ..usb.fakesys import add_acm_gadget, add_ftdi

BY_ID = "usb-FTDI_FT232R_USB_UART_A50285BI-if00-port0"


def _platform_uart(root, name, uart_type):
    port = root / f"devices/pnp0/00:0{name[-1]}/00:0{name[-1]}:0/00:0{name[-1]}:0.0"
    port.mkdir(parents=True)
    drv = root / "bus/serial-base/drivers/port"
    drv.mkdir(parents=True, exist_ok=True)
    (port / "driver").symlink_to(os.path.relpath(drv, port))
    serial = root / "bus/pnp/drivers/serial"
    serial.mkdir(parents=True, exist_ok=True)
    (port.parent.parent / "driver").symlink_to(os.path.relpath(serial, port.parent.parent))
    tty = port / "tty" / name
    tty.mkdir(parents=True)
    (tty / "type").write_text(f"{uart_type}\n")
    (tty / "device").symlink_to(os.path.relpath(port, tty))
    (root / "class/tty").mkdir(parents=True, exist_ok=True)
    (root / "class/tty" / name).symlink_to(os.path.relpath(tty, root / "class/tty"))


def _virtual(root, name):
    tty = root / "devices/virtual/tty" / name
    tty.mkdir(parents=True)
    (root / "class/tty").mkdir(parents=True, exist_ok=True)
    (root / "class/tty" / name).symlink_to(os.path.relpath(tty, root / "class/tty"))


@pytest.fixture
def trees(tmp_path):
    sysfs, dev = tmp_path / "sys", tmp_path / "dev"
    add_ftdi(sysfs, "1-2")
    add_acm_gadget(sysfs, "3-1.4")
    _platform_uart(sysfs, "ttyS0", 4)
    _platform_uart(sysfs, "ttyS1", 0)
    for name in ("tty0", "ttyGS0", "ptmx"):
        _virtual(sysfs, name)
    by_id = dev / "serial/by-id"
    by_id.mkdir(parents=True)
    (by_id / BY_ID).symlink_to("../../ttyUSB0")
    return sysfs, dev


def test_lists_only_ports_with_hardware(trees):
    ports = discovery.list_ports(*trees)
    assert [p.name for p in ports] == ["ttyACM0", "ttyGS0", "ttyS0", "ttyUSB0"]
    assert [p.kind for p in ports] == ["usb", "gadget", "platform", "usb"]


def test_ftdi_usb_fields_and_by_id(trees):
    port = discovery.find_port("serial:/dev/ttyUSB0", *trees)
    assert (port.usb_vid, port.usb_pid, port.usb_serial) == (0x0403, 0x6001, "A50285BI")
    assert (port.usb_interface, port.usb_address, port.driver) == (0, "usb:1-2", "ftdi_sio")
    assert port.by_id == (str(trees[1] / "serial/by-id" / BY_ID),)
    assert port.address == "serial:/dev/ttyUSB0"


def test_acm_interface_number(trees):
    port = discovery.find_port("serial:ttyACM0", *trees)
    assert (port.usb_vid, port.usb_pid, port.usb_interface) == (0x1D6B, 0x0104, 1)
    assert port.usb_address == "usb:3-1.4" and port.driver == "cdc_acm"


def test_platform_uart_driver_skips_serial_base(trees):
    port = discovery.find_port("serial:/dev/ttyS0", *trees)
    assert (port.port_type, port.driver, port.usb_vid) == (4, "serial", None)


def test_by_id_address_resolves(trees):
    port = discovery.find_port(f"serial:/dev/serial/by-id/{BY_ID}", *trees)
    assert port.name == "ttyUSB0"


def test_errors(trees):
    with pytest.raises(BadArgument, match="not a serial address"):
        discovery.parse_address("/dev/ttyUSB0")
    with pytest.raises(NotFoundError, match=r"no serial port ttyS1 .*serial:/dev/ttyACM0"):
        discovery.find_port("serial:/dev/ttyS1", *trees)
    with pytest.raises(NotFoundError, match="no such serial link"):
        discovery.find_port("serial:/dev/serial/by-id/nothing", *trees)


def test_nub_properties(trees):
    props = discovery.nub_properties(discovery.find_port("serial:/dev/ttyUSB0", *trees))
    assert props["IOTTYDevice"] == "ttyUSB0" and props["IOTTYBaseName"] == "ttyUSB"
    assert props["IOTTYSuffix"] == "0" and props["IOCalloutDevice"] == "/dev/ttyUSB0"
    assert (props["idVendor"], props["idProduct"], props["bInterfaceNumber"]) == (0x403, 0x6001, 0)
    assert props["USB Serial Number"] == "A50285BI"


def test_no_tty_class(tmp_path):
    assert discovery.list_ports(tmp_path, tmp_path) == []
