"""Tests of hwkit.usb.discovery against fake sysfs trees laid out as the kernel does."""

from __future__ import annotations

import pytest

from hwkit.errors import BadArgument, NotFoundError
from hwkit.usb import discovery

from .fakesys import add_acm_gadget, add_ftdi, add_keyboard, add_root_hub
from .vectors import KEYBOARD_DEVICE


@pytest.fixture
def sysfs(tmp_path):
    add_root_hub(tmp_path)
    add_keyboard(tmp_path, "1-1", devnum=2)
    add_ftdi(tmp_path, "1-2.3", devnum=5)
    add_acm_gadget(tmp_path, "1-2", devnum=3)
    return tmp_path


def test_list_devices_sorted_by_bus_and_port(sysfs):
    devices = discovery.list_devices(sysfs)
    assert [d.name for d in devices] == ["usb1", "1-1", "1-2", "1-2.3"]
    assert [d.address for d in devices] == ["usb:1-0", "usb:1-1", "usb:1-2", "usb:1-2.3"]


def test_keyboard_fields(sysfs):
    (kbd,) = discovery.find_devices("usb:0627:0001", sysfs)
    assert (kbd.busnum, kbd.devnum, kbd.devpath, kbd.speed) == (1, 2, "1", "12")
    assert kbd.speed_name == "Full Speed"
    assert (kbd.manufacturer, kbd.product, kbd.serial) == ("QEMU", "QEMU USB Keyboard", "68284")
    assert kbd.device is not None and kbd.device.idVendor == 0x0627
    assert kbd.active_configuration is kbd.configurations[0]
    (intf,) = kbd.interfaces
    assert (intf.name, intf.bInterfaceClass, intf.driver) == ("1-1:1.0", 3, "usbhid")
    assert kbd.driver == "usb" and kbd.error is None


def test_port_address_and_location_id(sysfs):
    (ftdi,) = discovery.find_devices("usb:1-2.3", sysfs)
    assert ftdi.id_address == "usb:0403:6001"
    assert ftdi.port_numbers == (2, 3)
    assert ftdi.location_id == 0x01230000
    assert ftdi.interfaces[0].ttys == ("ttyUSB0",)


def test_composite_interfaces_drivers_and_ttys(sysfs):
    (acm,) = discovery.find_devices("usb:1d6b:0104", sysfs)
    assert [(i.bInterfaceNumber, i.driver) for i in acm.interfaces] == [
        (0, None),
        (1, "cdc_acm"),
        (2, "cdc_acm"),
    ]
    assert acm.interfaces[1].ttys == ("ttyACM0",)


def test_root_hub(sysfs):
    (hub,) = discovery.find_devices("usb:1-0", sysfs)
    assert hub.name == "usb1" and hub.port_numbers == () and hub.location_id == 0x01000000
    assert hub.driver == "hub"
    (intf,) = hub.interfaces  # named after the port path, not "usb1"
    assert (intf.name, intf.bInterfaceClass, intf.driver) == ("1-0:1.0", 9, "hub")


def test_malformed_descriptors_are_reported_not_raised(sysfs):
    (sysfs / "bus/usb/devices/1-1/descriptors").write_bytes(KEYBOARD_DEVICE + b"\x09\x02\xff")
    (kbd,) = discovery.find_devices("usb:1-1", sysfs)
    assert kbd.device is None and kbd.configurations == ()
    assert "malformed descriptors" in kbd.error and "offset 18" in kbd.error
    assert kbd.idVendor == 0x0627  # still known from its own sysfs file


def test_missing_descriptors_file(sysfs):
    (sysfs / "bus/usb/devices/1-1/descriptors").unlink()
    (kbd,) = discovery.find_devices("usb:1-1", sysfs)
    assert kbd.error.startswith("cannot read")


def test_no_usb_bus(tmp_path):
    assert discovery.list_devices(tmp_path) == []


@pytest.mark.parametrize("address", ["usb:1234", "pci:0000:00:03.0", "usb:1-", "usb:xyzw:0001"])
def test_bad_addresses(address):
    with pytest.raises(BadArgument, match="not a USB address"):
        discovery.parse_address(address)


def test_unknown_address_lists_what_is_there(sysfs):
    with pytest.raises(NotFoundError, match=r"usb:1-1 \(usb:0627:0001\)"):
        discovery.find_devices("usb:dead:beef", sysfs)


def test_nub_properties(sysfs):
    (acm,) = discovery.find_devices("usb:1-2", sysfs)
    props = discovery.device_properties(acm)
    assert props["idVendor"] == 0x1D6B and props["idProduct"] == 0x0104
    assert props["bcdDevice"] == 0x0100 and props["bDeviceClass"] == 0xEF
    assert props["bConfigurationValue"] == 1 and props["HWAddress"] == "usb:1-2"
    intf = discovery.interface_properties(acm, acm.interfaces[1])
    assert intf["bInterfaceClass"] == 2 and intf["bInterfaceSubClass"] == 2
    assert intf["idVendor"] == 0x1D6B and intf["bcdDevice"] == 0x0100
    assert intf["HWAddress"] == "usb:1-2:1.1" and intf["HWKernelDriver"] == "cdc_acm"
    assert "HWKernelDriver" not in discovery.interface_properties(acm, acm.interfaces[0])
