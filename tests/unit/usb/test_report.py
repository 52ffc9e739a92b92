"""Tests of hwkit.usb.report: the lsusb -v style text and the JSON."""

from __future__ import annotations

import json

import pytest

from hwkit.usb import discovery, report
from hwkit.usb.descriptors import parse_configuration

from .fakesys import add_acm_gadget, add_keyboard, add_usb_device
from .vectors import KEYBOARD_CONFIG, STORAGE_CONFIG, STORAGE_DEVICE


@pytest.fixture
def sysfs(tmp_path):
    add_keyboard(tmp_path, "1-1")
    add_acm_gadget(tmp_path, "1-2")
    add_usb_device(tmp_path, "2-1", STORAGE_DEVICE, [STORAGE_CONFIG], speed="5000")
    return tmp_path


def _device(sysfs, address):
    (dev,) = discovery.find_devices(address, sysfs)
    return dev


def test_keyboard_text_reads_like_lsusb(sysfs):
    lines = report.format_device(_device(sysfs, "usb:1-1"))
    text = "\n".join(lines)
    assert lines[0].startswith("Bus 001 Device 002: ID 0627:0001 QEMU QEMU USB Keyboard")
    assert "[usb:1-1, Full Speed (12 Mb/s)]" in lines[0]
    assert "  idVendor             0x0627 QEMU" in lines
    assert "  bcdUSB                 2.00" in lines
    assert "    iConfiguration            7 HID Keyboard" in lines
    assert "      bInterfaceClass           3 Human Interface Device" in lines
    assert "      Driver: usbhid [1-1:1.0]" in lines
    assert "        bcdHID                 1.11" in lines
    assert "          Report Descriptor: (length is 63)" in lines
    assert "        bEndpointAddress       0x81 EP 1 IN" in lines
    assert "          Transfer Type            Interrupt" in lines
    assert "    MaxPower            100mA" in text


def test_superspeed_power_unit_and_companion(sysfs):
    text = "\n".join(report.format_device(_device(sysfs, "usb:2-1")))
    assert "MaxPower            400mA" in text  # 50 x 8 mA at SuperSpeed
    assert "SuperSpeed Endpoint Companion Descriptor:" in text
    assert "bMaxBurst                15" in text


def test_composite_shows_iad_cdc_and_tty(sysfs):
    lines = report.format_device(_device(sysfs, "usb:1-2"))
    assert "    Interface Association:" in lines
    assert "      CDC Union:" in lines
    assert "        bSubordinateInterface      2" in lines
    assert "      tty: /dev/ttyACM0 (serial:/dev/ttyACM0)" in lines
    assert "      Driver: (none bound) [1-2:1.0]" in lines


def test_brief(sysfs):
    lines = report.format_device(_device(sysfs, "usb:1-2"), verbose=False)
    assert len(lines) == 4
    assert "Interface 1: class 02/02/01 (Communications), driver cdc_acm" in lines[2]


def test_json_keeps_spec_names_and_numbers(sysfs):
    out = report.device_to_json(_device(sysfs, "usb:1-1"))
    json.dumps(out)  # serialisable as is
    assert out["device"]["idVendor"] == 0x0627 and out["device"]["type"] == "DeviceDescriptor"
    assert out["speed_mbps"] == 12 and out["location_id"] == 0x01100000
    (intf,) = out["configurations"][0]["interfaces"]
    assert intf["driver"] == "usbhid" and intf["extra"][0]["descriptors"] == [[0x22, 63]]
    assert intf["endpoints"][0]["wMaxPacketSize"] == 8


def test_descriptor_to_json_bytes_as_hex():
    cfg = parse_configuration(KEYBOARD_CONFIG)
    assert report.descriptor_to_json(cfg)["wTotalLength"] == 34
    assert report.descriptor_to_json(b"\x01\xff") == "01ff"


def test_malformed_device_still_listed(sysfs):
    (sysfs / "bus/usb/devices/1-1/descriptors").write_bytes(b"\x12\x01")
    lines = report.format_device(_device(sysfs, "usb:1-1"))
    assert lines[1].startswith("  ! malformed descriptors")
    assert "Interface 0: class 03/01/01" in lines[2]
