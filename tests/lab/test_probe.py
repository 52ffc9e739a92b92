"""`hwkit probe` agrees with lspci -vvv and lsusb on live devices, field by field.

In the lab guests (QEMU's edu, NVMe, root port, xHCI, virtio functions, USB devices and
the gadget) and on the host this runs on (whatever functions it has).
"""

import json
import re
import shutil
import subprocess
import sys

import pytest

from hwkit.pci.lspci import compare_all

HWKIT = [sys.executable, "-m", "hwkit.tools.cli"]


def probe_json(bus: str) -> list:
    done = subprocess.run([*HWKIT, "probe", bus, "--json"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def pci_disagreements() -> list[str]:
    lspci = subprocess.run(["lspci", "-vvv"], capture_output=True, text=True, check=True)
    return compare_all(probe_json("pci"), lspci.stdout)


@pytest.mark.lab("pci")
def test_probe_pci_agrees_with_lspci_in_the_pci_guest() -> None:
    functions = probe_json("pci")
    assert {(f["vendor_id"], f["device_id"]) for f in functions} >= {
        (0x1234, 0x11E8),
        (0x1B36, 0x10),
    }
    assert pci_disagreements() == []


@pytest.mark.lab("usb")
def test_probe_pci_agrees_with_lspci_in_the_usb_guest() -> None:
    assert pci_disagreements() == []


@pytest.mark.lab("usb")
def test_probe_usb_lists_what_lsusb_lists() -> None:
    lsusb = subprocess.run(["lsusb"], capture_output=True, text=True, check=True).stdout
    theirs = {
        (int(m[1]), int(m[2]), m[3])
        for m in re.finditer(r"Bus (\d+) Device (\d+): ID ([0-9a-f]{4}:[0-9a-f]{4})", lsusb)
    }
    ours = {
        (d["busnum"], d["devnum"], f"{d['idVendor']:04x}:{d['idProduct']:04x}")
        for d in probe_json("usb")
    }
    assert ours == theirs
    assert len(ours) == 7


@pytest.mark.skipif(
    shutil.which("lspci") is None, reason="lspci (Debian package pciutils) not here"
)
def test_probe_pci_agrees_with_lspci_on_this_host() -> None:
    assert pci_disagreements() == []
