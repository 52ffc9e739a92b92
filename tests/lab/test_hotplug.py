"""Hot-plug and removal through QEMU's monitor, seen from inside the guest."""

import sys

import pytest

from hwkit.lab import profiles
from hwkit.lab.machine import Lab

WAIT = """
import sys, time
from hwkit.lab import inventory
roots = inventory.Roots()
kind, ident, want, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
find = inventory.usb_devices if kind == "usb" else inventory.pci_functions
deadline = time.monotonic() + timeout
while len(find(roots, ident)) != want:
    if time.monotonic() > deadline:
        sys.exit(f"{kind} {ident}: {len(find(roots, ident))} present, wanted {want}")
    time.sleep(0.1)
print(f"{kind} {ident}: {want} present")
"""


def wait_for_count(lab: Lab, kind: str, ident: str, count: int, timeout: float = 30) -> None:
    """Wait, inside the guest, until exactly `count` devices `ident` are present."""
    result = lab.run([sys.executable, "-c", WAIT, kind, ident, str(count), str(timeout)])
    assert result.status == 0, result.stderr.decode()


@pytest.mark.lab("usb", host=True)
def test_usb_kbd_removed_and_added_back(lab: Lab) -> None:
    wait_for_count(lab, "usb", profiles.USB_KBD_ID, 1)
    lab.qmp.device_del("kbd")
    wait_for_count(lab, "usb", profiles.USB_KBD_ID, 0)
    lab.qmp.device_add("usb-kbd", bus="xhci.0", id="kbd")
    wait_for_count(lab, "usb", profiles.USB_KBD_ID, 1)


@pytest.mark.lab("pci", host=True)
def test_edu_hot_added_then_removed(lab: Lab) -> None:
    wait_for_count(lab, "pci", profiles.EDU_ID, 1)
    lab.qmp.device_add("edu", bus=profiles.HOTPLUG_PORT, id="edu-hot")
    wait_for_count(lab, "pci", profiles.EDU_ID, 2)
    # pciehp answers the attention button after its 5 s abort window
    lab.qmp.device_del("edu-hot", wait=30)
    wait_for_count(lab, "pci", profiles.EDU_ID, 1)
