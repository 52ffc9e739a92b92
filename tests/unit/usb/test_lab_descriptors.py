"""Real descriptors, read from the sysfs ``descriptors`` files of the lab guest's devices
(QEMU's usb-kbd, usb-serial, usb-storage, the xHCI and dummy_hcd root hubs, and the
lab's configfs gadget), checked field by field against what ``lsusb -v`` printed for
the same devices in the same guest run (tests/unit/usb/data)."""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from pathlib import Path

import pytest

from hwkit.usb import descriptors as d

DATA = Path(__file__).parent / "data"

# lsusb's "Bus BBB Device DDD" of each saved descriptors file.
DEVICES = {
    "lab-gadget-sourcesink-acm": (3, 2),
    "lab-dummy-hcd-root-hub": (3, 1),
    "lab-qemu-usb-storage": (2, 2),
    "lab-xhci-root-hub-usb3": (2, 1),
    "lab-qemu-usb-serial-ftdi": (1, 3),
    "lab-qemu-usb-kbd": (1, 2),
    "lab-xhci-root-hub-usb2": (1, 1),
}

_FIELD = re.compile(r"^\s+([a-zA-Z][A-Za-z0-9]*)\s+(0x[0-9a-f]+|\d+\.\d\d|\d+)(?:\s|$)")
# lsusb's names for the few fields it spells differently.
_LSUSB_NAMES = {
    "iSerial": "iSerialNumber",
    "bMasterInterface": "bControlInterface",
    "bSlaveInterface": "bSubordinateInterface",
}
# Sections lsusb reads from the open device, not from the descriptors file.
_END = ("Hub Descriptor:", "Device Qualifier", "Device Status:", "Binary Object Store")


def _number(text: str) -> int:
    if "." in text:  # a BCD version, "2.00"
        major, minor = text.split(".")
        return int(major, 16) << 8 | int(minor, 16)
    return int(text, 0)


_MAX_POWER = re.compile(r"^\s+MaxPower\s+(\d+)mA$")


def lsusb_fields(bus: int, dev: int) -> Counter:
    """(name, value) pairs lsusb -v printed for one device's descriptors.

    ``MaxPower 100mA`` counts as bMaxPower in the unit of the device's USB version.
    """
    text = (DATA / "lab-lsusb-v.txt").read_text().splitlines()
    start = text.index(next(t for t in text if t.startswith(f"Bus {bus:03d} Device {dev:03d}:")))
    pairs: Counter = Counter()
    for line in text[start + 1 :]:
        if line.startswith(("Bus ", *_END)):
            break
        if m := _FIELD.match(line):
            pairs[(_LSUSB_NAMES.get(m[1], m[1]), _number(m[2]))] += 1
        elif m := _MAX_POWER.match(line):
            superspeed = any(k == "bcdUSB" and v >= 0x300 for k, v in pairs)
            pairs[("bMaxPower", int(m[1]) // (8 if superspeed else 2))] += 1
    return pairs


def _walk(desc, pairs: Counter) -> None:
    if isinstance(desc, d.SuperSpeedEndpointCompanionDescriptor):
        pairs[("bMaxBurst", desc.bMaxBurst)] += 1  # all lsusb prints of it
        return
    cdc = hasattr(desc, "bFunctionLength")
    for f in dataclasses.fields(desc):
        value = getattr(desc, f.name)
        if dataclasses.is_dataclass(value):
            _walk(value, pairs)
        elif isinstance(value, tuple):
            for item in value:
                if dataclasses.is_dataclass(item):
                    _walk(item, pairs)
                elif isinstance(item, tuple):  # HID (bDescriptorType, wDescriptorLength)
                    pairs[("bDescriptorType", item[0])] += 1
                    pairs[("wDescriptorLength", item[1])] += 1
                else:
                    pairs[(f.name, item)] += 1
        elif isinstance(value, int) and not (cdc and f.name.startswith(("bFunction", "bDesc"))):
            pairs[(f.name, value)] += 1  # lsusb prints no CDC header fields


def hwkit_fields(name: str) -> Counter:
    device, configs = d.parse_device_and_configurations((DATA / f"{name}.descriptors").read_bytes())
    pairs: Counter = Counter()
    for desc in (device, *configs):
        _walk(desc, pairs)
    return pairs


@pytest.mark.parametrize("name", sorted(DEVICES))
def test_every_field_agrees_with_lsusb(name):
    ours, theirs = hwkit_fields(name), lsusb_fields(*DEVICES[name])
    assert ours == theirs, f"only hwkit: {ours - theirs}; only lsusb: {theirs - ours}"


def test_the_lab_gadget():
    device, (config,) = d.parse_device_and_configurations(
        (DATA / "lab-gadget-sourcesink-acm.descriptors").read_bytes()
    )
    assert (device.idVendor, device.idProduct, device.bDeviceClass) == (0x1D6B, 0x0104, 0xEF)
    source_sink, comm, data = config.interfaces
    assert [e.bEndpointAddress for e in source_sink.endpoints] == [0x81, 0x02]
    assert isinstance(comm.extra[-1], d.CDCUnionDescriptor)
    assert [e.bEndpointAddress for e in data.endpoints] == [0x86, 0x07]
    (iad,) = config.associations
    assert (iad.bFirstInterface, iad.bInterfaceCount) == (1, 2)


def test_superspeed_root_hub_endpoint_companion():
    _, (config,) = d.parse_device_and_configurations(
        (DATA / "lab-xhci-root-hub-usb3.descriptors").read_bytes()
    )
    (ep,) = config.interfaces[0].endpoints
    assert ep.companion is not None and ep.companion.wBytesPerInterval == 2
